"""Every AWS sample event in ``events/aws`` through the ingest handler (the objects they name put
into moto's S3, messages on the Pub/Sub emulator), and ``burnguard invoke aws ...`` on them: with
nothing configured (embedded queue, a fresh ``--home``) and configured for moto and the emulator."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from burnguard.app import aws as bootstrap
from burnguard.core.messages import decode_summary
from tests.functions.aws_helpers import LambdaContext, Topic
from tests.functions.slash_events import load

pytestmark = pytest.mark.emulator
handler = load("aws", "ingest.py").lambda_handler
ROOT = Path(__file__).resolve().parents[2]
EXPORTS = ROOT / "events/exports/aws"
EVENTS = sorted((ROOT / "events/aws").glob("ingest.*.json"))
DATA = next(EXPORTS.glob("acme-billing-cur/cur/*/*/*/*.csv.gz"))
ROWS = gzip.decompress(DATA.read_bytes()).count(b"\n") - 1  # 2,248, counted here
#: What each sample leads to: a published delivery, or nothing.
PUBLISHES = {e.name: ("manifest" in e.name or e.name.startswith(("ingest.sns", "ingest.sqs", "ingest.eventbridge")))
             for e in EVENTS}


@pytest.fixture
def world(aws: Any, pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    s3 = boto3.client("s3")
    for bucket_dir in EXPORTS.iterdir():
        s3.create_bucket(Bucket=bucket_dir.name)
        for path in bucket_dir.rglob("*"):
            if path.is_file():
                s3.put_object(Bucket=bucket_dir.name, Key=str(path.relative_to(bucket_dir)), Body=path.read_bytes())
    topic = Topic(pubsub.project)
    monkeypatch.setenv("BURNGUARD_TOPIC", topic.path)
    bootstrap.ingest_app.cache_clear()
    yield {"topic": topic, "env": {**os.environ}}
    bootstrap.ingest_app.cache_clear()
    topic.close()


@pytest.mark.parametrize("event_path", EVENTS, ids=lambda p: p.name)
def test_every_sample_event_through_the_handler(world: dict[str, Any], event_path: Path) -> None:
    event = json.loads(event_path.read_text())
    result = handler(event, LambdaContext())
    if "Records" in event and event["Records"][0].get("eventSource") == "aws:sqs":
        assert result == {"batchItemFailures": []}
    summaries = [decode_summary(m) for m in world["topic"].drain() if m.attributes["kind"] == "delivery-summary"]
    if PUBLISHES[event_path.name]:
        assert len(summaries) == 1 and summaries[0].totals.rows == ROWS
    else:
        assert summaries == []
        assert [r["action"] for r in result["results"]] == ["skipped"]


def _invoke(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    run = subprocess.run([sys.executable, "-m", "burnguard.app.cli", "invoke", *args], check=False,
                         capture_output=True, text=True,
                         env={**env, "PYTHONPATH": str(ROOT / "shared")}, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    report: dict[str, Any] = json.loads(run.stdout)
    return report


def _bare_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("BURNGUARD_", "AWS_", "PUBSUB_", "GOOGLE_", "FIRESTORE_", "STORAGE_"))}


def test_invoke_with_nothing_configured_runs_on_a_fresh_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    report = _invoke(["aws", "ingest", "events/aws/ingest.s3-notification.manifest.json", "--home", str(home)],
                     _bare_env())
    kinds = [m["kind"] for m in report["published"]]
    assert kinds.count("delivery-summary") == 1 and report["queue"].startswith(str(home))
    summary = next(m for m in report["published"] if m["kind"] == "delivery-summary")
    assert summary["data"]["totals"]["rows"] == ROWS
    assert (home / "queue.sqlite").exists()
    budget = _invoke(["aws", "budget", "events/budget/aws-budgets-sns.forecasted.lambda-event.CONSTRUCTED.json",
                      "--home", str(home)], _bare_env())
    assert [m["kind"] for m in budget["published"]] == ["budget-alert"]
    assert budget["published"][0]["data"]["budget_name"] == "GPU Training Monthly"
    bad = _invoke(["aws", "budget", "tests/fixtures/public/aws-lambda-go-events/sns-event.json", "--home", str(home)],
                  _bare_env())
    assert bad["published"] == [] and "not an AWS Budgets notification" in bad["results"][0]["reason"]


def test_invoke_configured_for_moto_and_the_emulator(world: dict[str, Any], tmp_path: Path) -> None:
    report = _invoke(["aws", "ingest", "events/aws/ingest.eventbridge.manifest.json", "--home", str(tmp_path)],
                     world["env"])
    assert report["queue"] == world["topic"].path
    on_queue = world["topic"].drain()
    assert {m.message_id for m in on_queue} == {m["message_id"] for m in report["published"]}


def test_invoke_aws_slack_answers_a_signed_function_url_event(aws: Any, tmp_path: Path) -> None:
    """The slash command's handler through ``burnguard invoke aws slack``: the signing secret in
    moto's Secrets Manager (by reference), a SQLite ledger, the request signed now."""
    import time

    from burnguard.app.invoke import InvokeContext, invoke
    from tests.functions.test_slash_http_aws import url_event
    from tests.slack_helpers import SECRET, form, sign

    boto3.client("secretsmanager").create_secret(Name="burnguard/slack", SecretString=json.dumps(
        {"signing_secret": SECRET}))
    now = int(time.time())
    body = form("help")
    event_path = tmp_path / "slash.json"
    event_path.write_text(json.dumps(url_event(body, timestamp=now, signature=sign(body, now))))
    env = {**os.environ, "BURNGUARD_SLACK_SIGNING_SECRET_REF": "burnguard/slack#signing_secret",
           "BURNGUARD_POLICY": str(ROOT / "events/policies/demo.yaml"),
           "BURNGUARD_LEDGER": f"sqlite:///{tmp_path / 'ledger.sqlite'}"}
    report = invoke("aws", "slack", event_path, InvokeContext(tmp_path, env))
    response = report["response"]
    assert response["statusCode"] == 200, response
    assert "spend" in json.loads(response["body"])["text"]
