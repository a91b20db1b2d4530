"""Benchmark: the Azure ingest path (an export run streamed from Blob storage) against the
same run read from a local directory, in the same process and run.

Prints figures (a table, then one JSON line); not a test. Usage::

    python -m tests.bench.bench_azure_ingest              # 500,000 rows, gzip CSV, 4 MiB ranges
    python -m tests.bench.bench_azure_ingest --rows 50000

The run is the restated sample run of ``events/exports/azure`` with its 86 rows repeated to
``--rows`` rows, gzip CSV, one part, with its ``manifest.json``. It is uploaded to a fresh
Azurite (started here, stopped at the end). Both sides call ``ingest_object`` with a publisher
that only counts (so the queue is not measured): the baseline through ``DirectoryStore`` (Arrow
reads the local path), Azure through ``BlobStore`` (``download_blob().chunks()`` behind a raw
stream). What is measured: wall time, rows/s, the Arrow memory pool's peak, and the largest
chunk ``ChunkStream`` held.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from tests.adapters.azure.exports import EXPORT_DIR, RESTATED_RUN, SAMPLES
from tests.emulators import start_azurite, stop_process


def build(rows: int, root: Path) -> tuple[str, dict[str, Path]]:
    src = (SAMPLES / EXPORT_DIR / RESTATED_RUN / "part_0_0001.csv").read_text()
    header, *lines = src.splitlines(keepends=True)
    folder = f"{EXPORT_DIR}/bench-{rows}"
    part = f"{folder}/part_0_0001.csv.gz"
    (root / folder).mkdir(parents=True)
    with gzip.open(root / part, "wt", compresslevel=6) as out:
        out.write(header)
        for i in range(rows):
            out.write(lines[i % len(lines)])
    manifest = json.loads((SAMPLES / EXPORT_DIR / RESTATED_RUN / "manifest.json").read_text())
    manifest["runInfo"]["runId"] = f"bench-{rows}"
    manifest.update(blobCount=1, dataRowCount=rows, blobs=[{"blobName": part, "dataRowCount": rows}])
    (root / folder / "manifest.json").write_text(json.dumps(manifest))
    return f"{folder}/manifest.json", {part: root / part, f"{folder}/manifest.json": root / folder / "manifest.json"}


class Counter:
    def __init__(self) -> None:
        self.messages = 0

    def __call__(self, messages: Any) -> None:
        self.messages += len(messages)


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _child(store: Any, bucket: str, manifest: str, out: Any, held: list[int]) -> None:
    from burnguard.services.objects import ingest_object

    start = _rss()
    pool = pa.default_memory_pool()
    t = time.perf_counter()
    outcome = ingest_object("azure", bucket, manifest, store, Counter())
    seconds = time.perf_counter() - t
    assert outcome.report is not None
    rows = outcome.report.summary.totals.rows
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out.put({"seconds": round(seconds, 3), "rows": rows, "rows_per_s": round(rows / seconds),
             "arrow_peak_mib": round((pool.max_memory() or 0) / 2**20, 1),
             "rss_growth_mib": round(max(0, peak - start) / 2**20, 1),
             "max_chunk_held_mib": round(held[0] / 2**20, 2),
             "billed": {k: str(v) for k, v in outcome.report.summary.totals.billed.items()}})


def measure(store: Any, bucket: str, manifest: str, held: list[int]) -> dict[str, Any]:
    """One ingest in a forked child (its own Arrow pool and peak RSS)."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    proc = ctx.Process(target=_child, args=(store, bucket, manifest, out, held))
    proc.start()
    result: dict[str, Any] = out.get(timeout=600)
    proc.join()
    return result


def run(rows: int, chunk_mib: int) -> dict[str, Any]:
    from azure.storage.blob import BlobServiceClient

    from burnguard.adapters.azure import blob as blob_module
    from burnguard.adapters.azure.blob import BlobStore
    from burnguard.adapters.local.store import DirectoryStore

    held = [0]
    original = blob_module.ChunkStream.readinto

    def tracking(self: Any, buffer: Any) -> int:
        n = original(self, buffer)
        held[0] = max(held[0], len(self._held) + n)
        return n

    blob_module.ChunkStream.readinto = tracking  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        manifest, files = build(rows, root)
        size = sum(p.stat().st_size for p in files.values())
        azurite, proc = start_azurite(Path(tmp))
        try:
            client = BlobServiceClient.from_connection_string(azurite.connection_string,
                                                              max_chunk_get_size=chunk_mib << 20)
            client.create_container("bench")
            for key, path in files.items():
                with path.open("rb") as fh:
                    client.get_blob_client("bench", key).upload_blob(fh, overwrite=True)
            local = measure(DirectoryStore(), str(root), manifest, held)
            azure = measure(BlobStore(client), "bench", manifest, held)
        finally:
            stop_process(proc)
    assert local["billed"] == azure["billed"] and local["rows"] == azure["rows"] == rows
    return {"rows": rows, "gzip_bytes": size, "chunk_mib": chunk_mib, "baseline_local": local, "azure_blob": azure,
            "slowdown": round(azure["seconds"] / local["seconds"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--chunk-mib", type=int, default=4)
    args = parser.parse_args()
    r = run(args.rows, args.chunk_mib)
    print(f"{'':22}{'seconds':>10}{'rows/s':>12}{'arrow peak MiB':>16}{'RSS growth MiB':>16}")
    for name in ("baseline_local", "azure_blob"):
        m = r[name]
        print(f"{name:22}{m['seconds']:>10}{m['rows_per_s']:>12,}{m['arrow_peak_mib']:>16}{m['rss_growth_mib']:>16}")
    print(f"{r['rows']:,} rows, {r['gzip_bytes']:,} bytes gzip; Azure/local = {r['slowdown']}x; largest chunk "
          f"held {r['azure_blob']['max_chunk_held_mib']} MiB (ranges of {r['chunk_mib']} MiB)")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
