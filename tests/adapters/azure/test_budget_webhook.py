"""The budget function (the Action Group webhook) called as the host calls it (the function
object of ``function_app.py`` with a real ``azure.functions.HttpRequest``), publishing to the
Pub/Sub emulator. Every budget sample of Azure (budget alert schema, common alert schema) is
published once; unauthenticated or malformed calls are refused with a clear status and
nothing is published. Key Vault has no emulator: the secret reader is replaced by a stand-in
returning the secret (``read_secret``), the rest is real."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from google.cloud import pubsub_v1

from burnguard.adapters.azure import secrets as kv
from burnguard.app import azure as azure_app
from tests.functions.slash_events import load
from tests.pubsub_pull import pull_received

pytestmark = pytest.mark.emulator

app_module = load("azure", "function_app.py")
budget = app_module.budget.build().get_user_function()
ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted(p for p in (ROOT / "events" / "budget").glob("*.json")
                 if p.name.startswith(("azure-budget.", "public.budget-alert.")))
REF = "https://burnguard-kv.vault.azure.net/secrets/budget-webhook"
SECRET = "w3bh00k-" + "k" * 24
URL = "https://burnguard.azurewebsites.net/api/budget"


class Queue:
    def __init__(self, pubsub: Any):
        name = uuid.uuid4().hex[:10]
        self.publisher, self.subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        self.topic = self.publisher.topic_path(pubsub.project, f"b-{name}")
        self.subscription = self.subscriber.subscription_path(pubsub.project, f"bs-{name}")
        self.publisher.create_topic(name=self.topic)
        self.subscriber.create_subscription(name=self.subscription, topic=self.topic)

    def pull(self, want: int) -> list[Any]:
        """What reached the queue, after waiting (under a deadline) for ``want`` messages."""
        return [r.message for r in pull_received(self.subscriber, self.subscription, want)]


@pytest.fixture
def queue(pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    q = Queue(pubsub)
    monkeypatch.setenv(azure_app.TOPIC, q.topic)
    monkeypatch.delenv(azure_app.WIF_CONFIG, raising=False)
    monkeypatch.delenv(azure_app.WEBHOOK_AUTH, raising=False)
    monkeypatch.setenv(azure_app.WEBHOOK_SECRET_REF, REF)
    read: list[str] = []

    def read_secret(ref: str, client: Any = None) -> str:  # Key Vault stand-in
        read.append(ref)
        return SECRET

    monkeypatch.setattr(kv, "azure_secret", read_secret)
    azure_app.budget_endpoint.cache_clear()
    yield q
    azure_app.budget_endpoint.cache_clear()
    assert set(read) <= {REF}


def call(body: bytes, params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
         method: str = "POST") -> func.HttpResponse:
    req = func.HttpRequest(method=method, url=URL, headers={"Content-Type": "application/json", **(headers or {})},
                           params=params or {}, body=body)
    return budget(req)


def test_the_route_is_post_budget() -> None:
    [function] = [f for f in app_module.app.get_functions() if f.get_function_name() == "budget"]
    trigger = next(b for b in json.loads(function.get_function_json())["bindings"] if b["type"] == "httpTrigger")
    assert trigger["route"] == "budget" and [m.lower() for m in trigger["methods"]] == ["post"]


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_each_budget_sample_is_published_once(queue: Queue, sample: Path) -> None:
    raw = sample.read_bytes()
    response = call(raw, {"token": SECRET})
    assert response.status_code == 200, response.get_body()
    [published] = json.loads(response.get_body())["published"]
    [message] = queue.pull(1)
    assert message.attributes["kind"] == "budget-alert"
    assert message.attributes["message_id"] == published["message_id"]
    alert = json.loads(message.data)
    assert alert["provider"] == "azure" and alert["budget_name"] in raw.decode()


def test_refusals_publish_nothing(queue: Queue) -> None:
    good = SAMPLES[0].read_bytes()
    assert call(good).status_code == 401
    assert call(good, {"token": "w" * 32}).status_code == 401
    assert json.loads(call(good, {"token": SECRET[:-1]}).get_body()) == {"error": "unauthorized"}
    assert call(good, {"token": SECRET}, method="GET").status_code == 405
    bad = call(b"{not json", {"token": SECRET})
    assert bad.status_code == 400 and "not JSON" in json.loads(bad.get_body())["error"]
    wrong = call(json.dumps({"schemaId": "Microsoft.Insights/activityLogs", "data": {}}).encode(), {"token": SECRET})
    assert wrong.status_code == 400 and "schemaId" in json.loads(wrong.get_body())["error"]
    assert call(b"[1, 2]", {"token": SECRET}).status_code == 400
    assert call(b"{" + b" " * (300 * 1024) + b"}", {"token": SECRET}).status_code == 413
    assert queue.pull(0) == []


def test_entra_id_authentication(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(azure_app.WEBHOOK_SECRET_REF)
    monkeypatch.setenv(azure_app.WEBHOOK_AUTH, "entra")
    monkeypatch.setenv(azure_app.WEBHOOK_PRINCIPALS, "6f1c2a3b-0000-4000-8000-00000000a11e")
    azure_app.budget_endpoint.cache_clear()
    good = SAMPLES[0].read_bytes()
    assert call(good).status_code == 401  # no principal: Easy Auth did not authenticate the call
    assert call(good, headers={"X-MS-CLIENT-PRINCIPAL-ID": "someone-else"}).status_code == 401
    assert call(good, {"token": SECRET}).status_code == 401  # a URL secret means nothing here
    assert queue.pull(0) == []
    ok = call(good, headers={"X-MS-CLIENT-PRINCIPAL-ID": "6F1C2A3B-0000-4000-8000-00000000A11E",
                             "X-MS-CLIENT-PRINCIPAL-IDP": "aad"})
    assert ok.status_code == 200 and len(queue.pull(1)) == 1


@pytest.mark.parametrize(("env", "named"), [
    ({}, azure_app.WEBHOOK_SECRET_REF),
    ({azure_app.WEBHOOK_AUTH: "entra", azure_app.WEBHOOK_SECRET_REF: REF}, azure_app.WEBHOOK_AUTH),
    ({azure_app.WEBHOOK_AUTH: "basic"}, azure_app.WEBHOOK_AUTH),
])
def test_configuration_is_validated_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(azure_app.ConfigurationError, match=named):
        azure_app.webhook_auth(env, secret=lambda ref: SECRET)


def test_a_short_secret_is_refused_at_cold_start() -> None:
    with pytest.raises(azure_app.ConfigurationError, match="shorter than 16"):
        azure_app.webhook_auth({azure_app.WEBHOOK_SECRET_REF: REF}, secret=lambda ref: "short")


def test_publish_settings_are_validated() -> None:
    with pytest.raises(azure_app.ConfigurationError, match=azure_app.TOPIC):
        azure_app.PublishSettings.from_env({})
    with pytest.raises(azure_app.ConfigurationError, match="projects/<project>/topics/<topic>"):
        azure_app.PublishSettings.from_env({azure_app.TOPIC: "burnguard"})
    with pytest.raises(azure_app.ConfigurationError, match=azure_app.WIF_CONFIG):
        azure_app.PublishSettings.from_env({azure_app.TOPIC: "projects/acme-finops/topics/burnguard-q"})
