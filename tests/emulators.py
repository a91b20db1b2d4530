"""Real local emulators for the cloud adapter tests, as a pytest plugin.

Loaded from tests/conftest.py (``pytest_plugins = ["tests.emulators"]``). Every emulator is a
session-scoped fixture that starts lazily (only when a test asks for it) as a subprocess on a free
port of 127.0.0.1, waits until it answers, and is stopped by process group at the end of the
session. A missing binary fails the requesting test with one line saying how to install it: a
skipped test counts as a failure on our machines, so nothing here skips.

Session fixtures (the process, shared by every test):
    moto_server        -> MotoServer        (endpoint_url, reset())
    pubsub_emulator    -> PubSubEmulator    (host "127.0.0.1:PORT", project)
    firestore_emulator -> FirestoreEmulator (host, project, wipe())
    azurite            -> Azurite           (connection_string, blob/queue/table endpoints)
    gcs_emulator       -> GcsEmulator       (endpoint_url for STORAGE_EMULATOR_HOST, wipe())

Function fixtures (per test: state reset where the emulator can, environment set by monkeypatch):
    aws, pubsub, firestore, azure_storage, gcs

Helpers: free_port(), http_server(handler_class), QuietHandler, start_process()/stop_process().
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
GCP_PROJECT = "burnguard-test"
AWS_REGION = "us-east-1"
AZURITE_VERSION = "3.35.0"
TOOLS_DIR = ROOT / ".tools"
AZURITE_BIN = TOOLS_DIR / "node_modules" / ".bin" / "azurite"
GCLOUD_SDK_DEFAULT = Path("/usr/lib/google-cloud-sdk")

# The well-known Azurite development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

START_TIMEOUT = 60.0  # seconds; the JVM emulators start in 2-4 s here, far more under CPU steal
STOP_TIMEOUT = 15.0


class EmulatorError(RuntimeError):
    """An emulator did not start (the message carries the tail of its output). ``exited`` says
    it died before it was ready, which a port taken since free_port() chose it can cause."""

    def __init__(self, message: str, *, pid: int, exited: bool = False) -> None:
        super().__init__(message)
        self.pid = pid
        self.exited = exited


# --------------------------------------------------------------------------------------------
# Ports and processes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the emulator binds it next)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (held open together while choosing, so they differ)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def tcp_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str, expect: bytes | None = None) -> bool:
    """True when GET ``url`` answers 2xx (and its body starts with ``expect``, when given)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body: bytes = response.read()
            return 200 <= response.status < 300 and (expect is None or body.startswith(expect))
    except (OSError, http.client.HTTPException):
        return False


@dataclass(frozen=True)
class ManagedProcess:
    """A started emulator: its process (the leader of its own process group) and its log."""

    name: str
    popen: subprocess.Popen[bytes] = field(repr=False)
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"


_RUNNING: dict[int, ManagedProcess] = {}


def start_process(
    name: str,
    argv: Sequence[str | Path],
    ready: Callable[[], bool],
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> ManagedProcess:
    """Start ``argv`` in a new session (its own process group) with stdout and stderr to a log
    file, and poll ``ready`` until it is true. Raises EmulatorError with the output's tail if the
    process exits first or is not ready within ``timeout`` seconds (it is stopped then)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    proc = ManagedProcess(name, popen, log)
    _RUNNING[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while True:
        code = popen.poll()
        if code is not None:
            stop_process(proc)
            message = f"{name} exited with code {code} before it was ready; output:\n{proc.tail()}"
            raise EmulatorError(message, pid=proc.pid, exited=True)
        if ready():
            return proc
        if time.monotonic() > deadline:
            stop_process(proc)
            raise EmulatorError(f"{name} was not ready after {timeout:.0f} s; output:\n{proc.tail()}", pid=proc.pid)
        time.sleep(0.1)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group ``pgid``, from /proc. A killed child
    whose parent is gone may linger as a zombie until init reaps it; that one is not counted."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a running (not zombie) process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2 :].split()[0] != "Z"


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def stop_process(proc: ManagedProcess, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group (the gcloud launchers and npm shims have children), wait for the
    leader and the rest of the group, then SIGKILL whatever is left. Idempotent."""
    pgid = proc.pid  # start_new_session=True: the leader's pid is the group id
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=timeout)
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=5)
    kill_deadline = time.monotonic() + 5
    while _group_alive(pgid) and time.monotonic() < kill_deadline:
        time.sleep(0.05)  # orphaned children are reaped by init, shortly
    _RUNNING.pop(proc.pid, None)


@atexit.register
def _stop_leftovers() -> None:
    """Last resort if the session ends without fixture teardown (e.g. an interrupted run)."""
    for proc in list(_RUNNING.values()):
        stop_process(proc, timeout=3)


def _missing(what: str, how: str) -> NoReturn:
    """Fail the requesting test with one line: what is missing and how to install it."""
    pytest.fail(f"{what} is missing: {how}", pytrace=False)


# --------------------------------------------------------------------------------------------
# moto (AWS)


@dataclass(frozen=True)
class MotoServer:
    host: str
    port: int
    endpoint_url: str
    region: str = AWS_REGION
    pid: int = 0

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def reset(self) -> None:
        """Wipe every service's state (POST /moto-api/reset)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"moto reset answered {response.status}")


def start_moto_server(log_dir: Path) -> tuple[MotoServer, ManagedProcess]:
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        _missing(f"moto_server ({binary})", "pip install 'moto[server]' (in the dev extra: bash .ci/setup)")
    port = free_port()
    url = f"http://{HOST}:{port}"
    proc = start_process(
        "moto_server",
        [binary, "-H", HOST, "-p", str(port)],
        lambda: http_ok(f"{url}/moto-api/data.json"),
        log_dir,
        # run_instances rejects unknown instance types, as AWS does (g5, g6, p4d, p5 are known).
        env={"MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true"},
    )
    return MotoServer(HOST, port, url, pid=proc.pid), proc


# --------------------------------------------------------------------------------------------
# Google Cloud SDK emulators (Pub/Sub, Firestore)


def gcloud_sdk_root() -> Path | None:
    candidates = [os.environ.get("CLOUDSDK_ROOT_DIR"), str(GCLOUD_SDK_DEFAULT)]
    for candidate in candidates:
        if candidate and (Path(candidate) / "platform").is_dir():
            return Path(candidate)
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    try:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out and Path(out).is_dir() else None


def _gcloud_component(relative: str, component: str) -> Path:
    root = gcloud_sdk_root()
    path = root / relative if root else None
    if path is None or not path.exists():
        where = path or f"<gcloud sdk>/{relative}"
        _missing(
            f"the {component} ({where})",
            f"apt-get install google-cloud-cli-{component} (or: gcloud components install {component})",
        )
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        _missing("java (needed by the gcloud emulators)", "apt-get install openjdk-17-jre-headless")
    return path


@dataclass(frozen=True)
class PubSubEmulator:
    host: str  # "127.0.0.1:PORT", the value of PUBSUB_EMULATOR_HOST
    port: int
    project: str = GCP_PROJECT
    pid: int = 0

    @property
    def env(self) -> dict[str, str]:
        return {"PUBSUB_EMULATOR_HOST": self.host, "PUBSUB_PROJECT_ID": self.project}


def start_pubsub_emulator(log_dir: Path) -> tuple[PubSubEmulator, ManagedProcess]:
    launcher = _gcloud_component("platform/pubsub-emulator/bin/cloud-pubsub-emulator", "pubsub-emulator")
    port = free_port()
    proc = start_process(
        "pubsub-emulator",
        [launcher, f"--host={HOST}", f"--port={port}"],
        lambda: http_ok(f"http://{HOST}:{port}/", expect=b"Ok"),
        log_dir,
        cwd=log_dir,
    )
    return PubSubEmulator(f"{HOST}:{port}", port, pid=proc.pid), proc


@dataclass(frozen=True)
class FirestoreEmulator:
    host: str  # "127.0.0.1:PORT", the value of FIRESTORE_EMULATOR_HOST
    port: int
    project: str = GCP_PROJECT
    pid: int = 0

    @property
    def env(self) -> dict[str, str]:
        return {"FIRESTORE_EMULATOR_HOST": self.host, "GOOGLE_CLOUD_PROJECT": self.project}

    def wipe(self, project: str | None = None) -> None:
        """Delete every document of the project's (default) database."""
        url = f"http://{self.host}/emulator/v1/projects/{project or self.project}/databases/(default)/documents"
        request = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"firestore wipe answered {response.status}")


def start_firestore_emulator(log_dir: Path) -> tuple[FirestoreEmulator, ManagedProcess]:
    launcher = _gcloud_component("platform/cloud-firestore-emulator/cloud_firestore_emulator", "firestore-emulator")
    port = free_port()
    proc = start_process(
        "firestore-emulator",
        # Native mode is the default database mode; say so anyway.
        [launcher, "start", f"--host={HOST}", f"--port={port}", "--database-mode=firestore-native"],
        lambda: http_ok(f"http://{HOST}:{port}/", expect=b"Ok"),
        log_dir,
        cwd=log_dir,
    )
    return FirestoreEmulator(f"{HOST}:{port}", port, pid=proc.pid), proc


# --------------------------------------------------------------------------------------------
# Azurite (Azure Blob, Queue, Table)


@dataclass(frozen=True)
class Azurite:
    host: str
    blob_port: int
    queue_port: int
    table_port: int
    account_name: str = AZURITE_ACCOUNT
    account_key: str = AZURITE_KEY
    pid: int = 0

    @property
    def blob_endpoint(self) -> str:
        return f"http://{self.host}:{self.blob_port}/{self.account_name}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://{self.host}:{self.queue_port}/{self.account_name}"

    @property
    def table_endpoint(self) -> str:
        return f"http://{self.host}:{self.table_port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};AccountKey={self.account_key};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    @property
    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string, "AzureWebJobsStorage": self.connection_string}


def start_azurite(log_dir: Path) -> tuple[Azurite, ManagedProcess]:
    if not AZURITE_BIN.exists():
        _missing(
            f"azurite ({AZURITE_BIN})",
            f"run bash .ci/setup (npm install --no-audit --no-fund --prefix .tools azurite@{AZURITE_VERSION})",
        )
    if shutil.which("node") is None:
        _missing("node (needed by azurite)", "apt-get install nodejs npm")
    blob, queue, table = free_ports(3)
    proc = start_process(
        "azurite",
        [
            AZURITE_BIN, "--silent", "--inMemoryPersistence", "--skipApiVersionCheck",
            "--blobHost", HOST, "--queueHost", HOST, "--tableHost", HOST,
            "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table),
        ],
        lambda: all(tcp_open(p) for p in (blob, queue, table)),
        log_dir,
        cwd=log_dir,  # nothing should be written, but never into the repo
    )
    return Azurite(HOST, blob, queue, table, pid=proc.pid), proc


# --------------------------------------------------------------------------------------------
# gcp-storage-emulator (Cloud Storage)


@dataclass(frozen=True)
class GcsEmulator:
    host: str
    port: int
    endpoint_url: str  # the value of STORAGE_EMULATOR_HOST
    project: str = GCP_PROJECT
    pid: int = 0

    @property
    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint_url, "GOOGLE_CLOUD_PROJECT": self.project}

    def wipe(self, keep_buckets: bool = False) -> None:
        """Delete every object (and every bucket unless ``keep_buckets``)."""
        query = "?keep-buckets=true" if keep_buckets else ""
        with urllib.request.urlopen(f"{self.endpoint_url}/wipe{query}", timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"gcs wipe answered {response.status}")


def start_gcs_emulator(log_dir: Path) -> tuple[GcsEmulator, ManagedProcess]:
    binary = Path(sys.executable).parent / "gcp-storage-emulator"
    if not binary.exists():
        _missing(f"gcp-storage-emulator ({binary})", "pip install gcp-storage-emulator (in the dev extra: bash .ci/setup)")
    port = free_port()
    url = f"http://{HOST}:{port}"
    proc = start_process(
        "gcp-storage-emulator",
        [binary, "start", "--host", HOST, "--port", str(port), "--in-memory", "-q"],
        lambda: http_ok(f"{url}/storage/v1/b?project={GCP_PROJECT}"),
        log_dir,
        cwd=log_dir,
    )
    return GcsEmulator(HOST, port, url, pid=proc.pid), proc


# --------------------------------------------------------------------------------------------
# A stdlib HTTP server in a thread, for fakes (Compute Engine, Azure Resource Manager, Slack)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler base that does not log each request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def http_server(handler_class: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler_class`` on a free port of 127.0.0.1 in a daemon thread; yields the base URL
    (``http://127.0.0.1:PORT``, no trailing slash) and shuts the server down on exit."""
    server = ThreadingHTTPServer((HOST, 0), handler_class)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=f"http_server-{handler_class.__name__}", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# Fixtures

T = TypeVar("T")


@pytest.fixture(scope="session")
def emulator_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the emulators write their output (and their working directory)."""
    return tmp_path_factory.mktemp("emulators")


def _serve(started: tuple[T, ManagedProcess]) -> Iterator[T]:
    info, proc = started
    try:
        yield info
    finally:
        stop_process(proc)


def _start(starter: Callable[[Path], tuple[T, ManagedProcess]], log_dir: Path) -> tuple[T, ManagedProcess]:
    """Start an emulator, once more on other ports if the first one died (another process on
    this shared machine may have taken the port in between)."""
    for attempt in (1, 2):
        try:
            return starter(log_dir)
        except EmulatorError as exc:
            if exc.exited and attempt == 1:
                continue
            pytest.fail(str(exc), pytrace=False)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def moto_server(emulator_logs: Path) -> Iterator[MotoServer]:
    yield from _serve(_start(start_moto_server, emulator_logs))


@pytest.fixture(scope="session")
def pubsub_emulator(emulator_logs: Path) -> Iterator[PubSubEmulator]:
    yield from _serve(_start(start_pubsub_emulator, emulator_logs))


@pytest.fixture(scope="session")
def firestore_emulator(emulator_logs: Path) -> Iterator[FirestoreEmulator]:
    yield from _serve(_start(start_firestore_emulator, emulator_logs))


@pytest.fixture(scope="session")
def azurite(emulator_logs: Path) -> Iterator[Azurite]:
    yield from _serve(_start(start_azurite, emulator_logs))


@pytest.fixture(scope="session")
def gcs_emulator(emulator_logs: Path) -> Iterator[GcsEmulator]:
    yield from _serve(_start(start_gcs_emulator, emulator_logs))


def _set_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """moto with no state from earlier tests; boto3 clients made without arguments go to it."""
    moto_server.reset()
    _set_env(monkeypatch, moto_server.env)
    return moto_server


@pytest.fixture
def pubsub(pubsub_emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch) -> PubSubEmulator:
    """PUBSUB_EMULATOR_HOST set. The emulator has no reset: use topic names unique to the test."""
    _set_env(monkeypatch, pubsub_emulator.env)
    return pubsub_emulator


@pytest.fixture
def firestore(firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch) -> FirestoreEmulator:
    """FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT set; the project's documents wiped first."""
    firestore_emulator.wipe()
    _set_env(monkeypatch, firestore_emulator.env)
    return firestore_emulator


@pytest.fixture
def azure_storage(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Azurite:
    """AZURE_STORAGE_CONNECTION_STRING and AzureWebJobsStorage set. Azurite has no reset: use
    container and queue names unique to the test."""
    _set_env(monkeypatch, azurite.env)
    return azurite


@pytest.fixture
def gcs(gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> GcsEmulator:
    """STORAGE_EMULATOR_HOST set; every bucket and object wiped first."""
    gcs_emulator.wipe()
    _set_env(monkeypatch, gcs_emulator.env)
    return gcs_emulator
