"""The Google Cloud billing extraction workflow (modules/gcp/billing_export.yaml.tftpl): rendered
by Terraform itself (`terraform console`, offline), parsed as YAML, and checked against what the
ingest side reads: burnguard's GCS layout and the manifest model of burnguard.core.delivery."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from burnguard.core import delivery

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "infra" / "modules" / "gcp" / "billing_export.yaml.tftpl"
VALUES = {"bucket": "bg-exports", "prefix": "billing/", "billing_account": "01D4EE-079462-DFD6EC",
          "table": "bg-billing.billing.gcp_billing_export_resource_v1_01D4EE_079462_DFD6EC", "previous_month_days": 5}


def _render(tmp_path: Path) -> dict[str, Any]:
    terraform = shutil.which("terraform")
    assert terraform, "terraform is not installed"
    expression = f"jsonencode(templatefile({json.dumps(str(TEMPLATE))}, {json.dumps(VALUES).replace(':', ' = ')}))\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")} | {"CHECKPOINT_DISABLE": "1"}
    out = subprocess.run([terraform, "console"], input=expression, capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    rendered = json.loads(json.loads(out.stdout))
    parsed: dict[str, Any] = yaml.safe_load(rendered)
    return parsed


def _steps(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: body for step in steps for name, body in step.items()}


def test_the_workflow_exports_the_month_then_writes_the_manifest_last(tmp_path: Path) -> None:
    main = _render(tmp_path)["main"]
    top = _steps(main["steps"])
    loop = _steps(top["each_month"]["for"]["steps"])
    assert list(loop) == ["paths", "export", "count", "rows", "files", "each_file", "manifest"]  # manifest last
    # the run folder is <prefix><billing account>/<YYYY-MM>/<run id>/ (delivery's layout)
    folder = _steps([loop["paths"]["assign"][0]])["folder"]
    assert folder == '${"billing/01D4EE-079462-DFD6EC/" + month + "/" + run_id + "/"}'
    query = loop["export"]["args"]["body"]["configuration"]["query"]["query"]
    assert query.startswith('${"EXPORT DATA OPTIONS (uri = \'" + parts + "\', format = \'PARQUET\'')
    assert f"FROM `{VALUES['table']}` WHERE invoice.month = '\" + text.replace_all(month, \"-\", \"\")" in query
    # every file's rows are counted from the files themselves
    count = loop["count"]["args"]["body"]["configuration"]["query"]
    assert "_FILE_NAME" in count["query"] and count["tableDefinitions"]["parts"]["sourceUris"] == ["${parts}"]
    manifest = loop["manifest"]["args"]
    assert manifest["bucket"] == "bg-exports" and manifest["name"] == '${folder + "manifest.json"}'
    assert manifest["uploadType"] == "media"
    # the manifest carries exactly the fields the ingest's model reads
    assert set(manifest["body"]) == set(delivery.GcpManifest.model_fields)
    assert manifest["body"]["format"] == "parquet" and manifest["body"]["billingAccountId"] == VALUES["billing_account"]


def test_a_rendered_run_folder_is_one_the_ingest_recognises() -> None:
    key = "billing/01D4EE-079462-DFD6EC/2026-11/20261122T060000Z/manifest.json"
    manifest = {"billingAccountId": "01D4EE-079462-DFD6EC", "billingPeriod": "2026-11", "runId": "20261122T060000Z",
                "files": [{"name": "billing/01D4EE-079462-DFD6EC/2026-11/20261122T060000Z/part-000000000000.parquet",
                           "rows": 3}], "totalRows": 3, "format": "parquet", "createdAt": "2026-11-22T06:04:10Z"}
    parsed = delivery.parse_gcp_manifest(json.dumps(manifest), key, bucket="bg-exports")
    assert parsed.billing_period == "2026-11" and parsed.version == "20261122T060000Z" and parsed.complete
    # the workflow's run id: the UTC time without separators, as the template builds it
    now = "2026-11-22T06:00:00.123456Z"
    assert re.sub(r"[-:]", "", now[:19]) + "Z" == "20261122T060000Z"
