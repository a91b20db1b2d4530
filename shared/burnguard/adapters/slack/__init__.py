"""Slack adapters: the Web API notifier, request verification, deferred answers through
``response_url``, and the HTTP translators of the slash-command endpoint on each platform."""
