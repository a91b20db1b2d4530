"""The three clouds' ingest functions tune Arrow at their cold start as ``burnguard normalize``
does (``burnguard.app.runtime.tune_arrow``: jemalloc, one I/O thread), so a deployed ingest
keeps the memory the CLI's was measured with.

Arrow's settings are process-wide and ``tune_arrow`` applies once per process: each test puts
Arrow back to its defaults (8 I/O threads, another pool) and forgets the earlier call, builds the
cloud's ingest as its entry point does on a first event (clients made, nothing contacted), and
reads Arrow's settings back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest

from burnguard.app import aws, azure, gcp
from burnguard.app.runtime import tune_arrow

TOPIC = "projects/burnguard-test/topics/shared-q"
try:
    pa.jemalloc_memory_pool()
    JEMALLOC_OR_SYSTEM = "jemalloc"
except NotImplementedError:  # a pyarrow built without it keeps the pool it had
    JEMALLOC_OR_SYSTEM = "system"
NOWHERE = "127.0.0.1:9"  # an emulator address that is never contacted: building a client does not connect


@pytest.fixture
def untuned() -> Iterator[None]:
    pool, threads = pa.default_memory_pool(), pa.io_thread_count()
    tune_arrow.cache_clear()
    pa.set_io_thread_count(8)
    pa.set_memory_pool(pa.system_memory_pool())
    yield
    pa.set_memory_pool(pool)
    pa.set_io_thread_count(threads)


def _aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {"BURNGUARD_TOPIC": TOPIC, "PUBSUB_EMULATOR_HOST": NOWHERE, "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    aws.ingest_app.cache_clear()
    try:
        return aws.ingest_app()
    finally:
        aws.ingest_app.cache_clear()


def _gcp(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {"BURNGUARD_TOPIC": TOPIC, "PUBSUB_EMULATOR_HOST": NOWHERE,
                        "STORAGE_EMULATOR_HOST": f"http://{NOWHERE}", "GOOGLE_CLOUD_PROJECT": "burnguard-test"}.items():
        monkeypatch.setenv(name, value)
    gcp.ingest_runtime.cache_clear()
    try:
        return gcp.ingest_runtime()
    finally:
        gcp.ingest_runtime.cache_clear()


def _azure(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {"BURNGUARD_TOPIC": TOPIC, "PUBSUB_EMULATOR_HOST": NOWHERE,
                        "BURNGUARD_AZURE_EXPORT_STORAGE": "UseDevelopmentStorage=true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BURNGUARD_DEAD_LETTER_CONTAINER", raising=False)
    azure.ingest_endpoint.cache_clear()
    try:
        return azure.ingest_endpoint()
    finally:
        azure.ingest_endpoint.cache_clear()


@pytest.mark.parametrize("cold_start", [_aws, _gcp, _azure], ids=["aws", "gcp", "azure"])
def test_the_ingest_cold_start_tunes_arrow_like_the_cli(cold_start: Callable[[pytest.MonkeyPatch], Any],
                                                       untuned: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pa.io_thread_count() == 8 and pa.default_memory_pool().backend_name == "system"
    assert cold_start(monkeypatch) is not None
    assert pa.io_thread_count() == 1
    assert pa.default_memory_pool().backend_name == JEMALLOC_OR_SYSTEM
