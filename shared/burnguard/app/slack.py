"""Build the slash-command service of a cloud function from its environment.

The three entry points (``functions/aws/slack_command.py``, ``functions/gcp/main.py``,
``functions/azure/function_app.py``) call :func:`slash_service` with their cloud's name and
nothing else; tests replace :func:`slash_service` (or call :func:`build_slash_service` with
fakes). Nothing here runs at import time: SDK clients and the secret are fetched on the first
request of an instance, then kept for the warm ones.

Environment (Terraform sets it; secret *references* only, never secrets):

========================================  ====================================================
``BURNGUARD_SLACK_SIGNING_SECRET_REF``    the signing secret's reference in the cloud's
                                          secret store (see :mod:`.secrets`) — required
``BURNGUARD_POLICY``                      path of the policy YAML bundled with the function —
                                          required
``BURNGUARD_LEDGER``                      where the ledger is: ``sqlite:///<path>`` (one file,
                                          development) or ``firestore://projects/<p>/databases/<d>``
                                          (the cloud control plane) — required
``BURNGUARD_GCP_WIF_CONFIG``              AWS and Azure with a Firestore ledger: the
                                          external-account configuration the Firestore
                                          client's credentials are federated from (no key);
                                          Azure also reads ``BURNGUARD_AZURE_WIF_AUDIENCE``
``BURNGUARD_SLACK_REPLAY``                ``memory`` (default: per-instance cache) or
                                          ``ledger`` (shared, through ``Ledger.announce``)
``BURNGUARD_SLACK_DEFER_TOPIC``           GCP: Pub/Sub topic path of deferred answers
``AWS_LAMBDA_FUNCTION_NAME``              AWS: set by Lambda; the function invokes itself
``BURNGUARD_SLACK_DEFER_QUEUE``           Azure: Storage queue of deferred answers
========================================  ====================================================

``resume`` from Slack needs the cloud instance controllers (EC2, GCE, Azure VMs), which do not
exist yet: the cloud services are built without them and answer that resume is not available
there (``burnguard resume`` works on the embedded mode). Queries, ``snooze`` and every check
work.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burnguard.adapters.aws.deferral import LambdaSelfInvokeDeferrer
from burnguard.adapters.gcp.deferral import PubSubDeferrer
from burnguard.adapters.slack.respond import WebhookResponder
from burnguard.adapters.slack.verify import LedgerReplayGuard, SlackRequestVerifier, TtlReplayCache
from burnguard.app.config import LEDGER, POLICY, ConfigurationError, open_ledger
from burnguard.core.clouds import AZURE, CLOUDS
from burnguard.core.policy import Policy, load_policy
from burnguard.ports.ledger import Ledger
from burnguard.ports.secrets import SecretError
from burnguard.ports.slack import Deferrer, Responder
from burnguard.services.guardrail import GuardrailService
from burnguard.services.slack_endpoint import SlashService, UnavailableDeferrer

SIGNING_SECRET_REF = "BURNGUARD_SLACK_SIGNING_SECRET_REF"
REPLAY = "BURNGUARD_SLACK_REPLAY"
DEFER_TOPIC = "BURNGUARD_SLACK_DEFER_TOPIC"
WIF_CONFIG = "BURNGUARD_GCP_WIF_CONFIG"
FIRESTORE_EMULATOR = "FIRESTORE_EMULATOR_HOST"
DATASTORE_SCOPE = "https://www.googleapis.com/auth/datastore"


@dataclass(frozen=True)
class SlashSettings:
    cloud: str
    signing_secret_ref: str
    policy: Path
    ledger: str
    replay: str = "memory"
    defer_topic: str | None = None
    function_name: str | None = None
    #: Google credentials of the Firestore ledger's client (``None``: the default credentials)
    ledger_credentials: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_env(cls, cloud: str, env: Mapping[str, str]) -> SlashSettings:
        if cloud not in CLOUDS:
            raise ConfigurationError(f"unknown cloud {cloud!r}")
        missing = [k for k in (SIGNING_SECRET_REF, POLICY, LEDGER) if not env.get(k)]
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
        replay = env.get(REPLAY, "memory")
        if replay not in ("memory", "ledger"):
            raise ConfigurationError(f"{REPLAY} is memory or ledger, not {replay!r}")
        return cls(cloud, env[SIGNING_SECRET_REF], Path(env[POLICY]), env[LEDGER], replay,
                   env.get(DEFER_TOPIC) or None, env.get("AWS_LAMBDA_FUNCTION_NAME") or None,
                   ledger_credentials(cloud, env))


def ledger_credentials(cloud: str, env: Mapping[str, str]) -> Any:
    """The Google credentials a slash function reads a Firestore ledger with. On Google Cloud
    (and with a SQLite ledger, or the Firestore emulator): ``None``, the default credentials.
    On AWS and Azure: workload identity federation from ``BURNGUARD_GCP_WIF_CONFIG`` (the
    Lambda role, the Function App's managed identity), never a key; required there."""
    if cloud == "gcp" or not env.get(LEDGER, "").startswith("firestore://"):
        return None
    if not env.get(WIF_CONFIG, "").strip():
        if env.get(FIRESTORE_EMULATOR):
            return None
        raise ConfigurationError(f"{WIF_CONFIG} is not set (the external-account configuration that lets the "
                                 f"{cloud} function read the Firestore ledger of {LEDGER}); set "
                                 f"{FIRESTORE_EMULATOR} for the emulator")
    if cloud == "aws":
        from burnguard.app.aws import parse_wif_config, wif_credentials

        return wif_credentials(parse_wif_config(env[WIF_CONFIG]), scopes=(DATASTORE_SCOPE,))
    from burnguard.app.azure import PublishSettings, federated_credentials, federation_from_env

    federation = federation_from_env(env)
    assert federation is not None
    return federated_credentials(PublishSettings("", *federation), scopes=(DATASTORE_SCOPE,))


def default_deferrer(settings: SlashSettings) -> Deferrer:
    """The cloud's way to finish a command after the 3-second acknowledgement."""
    if settings.cloud == "aws":
        if not settings.function_name:
            return UnavailableDeferrer("AWS_LAMBDA_FUNCTION_NAME is not set (not running on Lambda?)")
        import boto3

        return LambdaSelfInvokeDeferrer(boto3.client("lambda"), settings.function_name)
    if settings.cloud == "gcp":
        if not settings.defer_topic:
            return UnavailableDeferrer(f"{DEFER_TOPIC} is not set")
        from google.cloud.pubsub_v1 import PublisherClient

        return PubSubDeferrer(PublisherClient(), settings.defer_topic)
    return azure_deferrer(os.environ)


#: Azure: the Storage queue of deferred slash answers
AZURE_DEFER_QUEUE = "BURNGUARD_SLACK_DEFER_QUEUE"


def azure_deferrer(env: Mapping[str, str], queue_client: Any = None) -> Deferrer:
    """The Azure :class:`~burnguard.ports.slack.Deferrer` (a Storage queue), or an unavailable
    one saying which variable is missing."""
    from burnguard.adapters.azure.deferral import StorageQueueDeferrer
    from burnguard.services.slack_endpoint import UnavailableDeferrer

    if queue_client is None:
        queue = env.get(AZURE_DEFER_QUEUE, "").strip()
        if not queue:
            return UnavailableDeferrer(f"{AZURE_DEFER_QUEUE} is not set")
        from azure.storage.queue import QueueClient

        connection = env.get("AzureWebJobsStorage", "").strip()
        uri = env.get("AzureWebJobsStorage__queueServiceUri", "").strip()
        if connection:
            queue_client = QueueClient.from_connection_string(connection, queue)
        elif uri:
            from azure.identity import DefaultAzureCredential

            queue_client = QueueClient(uri, queue, credential=DefaultAzureCredential())
        else:
            return UnavailableDeferrer("AzureWebJobsStorage is not set")
    return StorageQueueDeferrer(queue_client)


def read_secret(cloud: str, ref: str, client: Any = None) -> str:
    """Read a secret by reference from ``cloud``'s secret store (the reader is imported lazily:
    a cold start pays only for its own cloud's SDK)."""
    if cloud == "aws":
        from burnguard.adapters.aws.secrets import aws_secret as reader
    elif cloud == "gcp":
        from burnguard.adapters.gcp.secrets import gcp_secret as reader
    elif cloud == AZURE:
        from burnguard.adapters.azure.secrets import azure_secret as reader
    else:
        raise SecretError(f"no secret store for cloud {cloud!r}")
    return reader(ref, client)


def build_slash_service(settings: SlashSettings, *, secret: Callable[[str, str], str] = read_secret,
                        deferrer: Deferrer | None = None, clock: Callable[[], float] | None = None,
                        guardrails: Callable[[Policy, Ledger], GuardrailService] | None = None,
                        responder: Responder | None = None, **kwargs: Any) -> SlashService:
    """The service of ``settings``; ``secret(cloud, ref)`` reads the signing secret;
    ``guardrails(policy, ledger)`` builds the guardrail service ``resume`` acts through (its
    instance controllers); without it ``resume`` answers that it is not available here."""
    signing_secret = secret(settings.cloud, settings.signing_secret_ref)
    if not signing_secret:
        raise ConfigurationError("the Slack signing secret is empty")
    policy = load_policy(settings.policy)
    ledger = open_ledger(settings.ledger, credentials=settings.ledger_credentials)
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    replay = LedgerReplayGuard(ledger, **extra) if settings.replay == "ledger" else TtlReplayCache(**extra)
    verifier = SlackRequestVerifier(signing_secret, replay=replay, **extra)
    resume = (lambda: guardrails(policy, ledger)) if guardrails is not None else None
    return SlashService(verifier, ledger, policy, resume, deferrer=deferrer or default_deferrer(settings),
                        responder=responder or WebhookResponder(), **kwargs)


@functools.cache
def slash_service(cloud: str) -> SlashService:
    """The instance's service (built on its first request, kept while the instance is warm)."""
    resume = RESUMERS.get(cloud)
    return build_slash_service(SlashSettings.from_env(cloud, os.environ),
                               guardrails=resume(os.environ) if resume is not None else None)


#: cloud → ``env → (policy, ledger) → GuardrailService``: how ``resume`` reaches the instances
#: on that cloud, registered by the cloud's composition root (``app/gcp.py``) when it loads
RESUMERS: dict[str, Callable[[Mapping[str, str]], Callable[[Policy, Ledger], GuardrailService]]] = {}

