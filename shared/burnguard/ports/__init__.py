"""Every port of burnguard, named by role, one module per concern; adapters implement them.

* :mod:`.ledger` - the ledger (spend facts and deliveries, alert state, audit, stops, snoozes)
* :mod:`.instances` - instance controllers (EC2, Compute Engine, Azure VMs, the local inventory)
* :mod:`.notify` - notifiers (Slack, the console)
* :mod:`.objects` - object stores and the queue publisher
* :mod:`.slack` - the slash-command endpoint's verifier, replay guard, deferrer and responder
"""
