"""Schema check of the Google Cloud and Azure modules (infra/tools/schema_check.py).

Not `terraform validate`: the google and azurerm providers are not mirrored on these machines.
The schemas come from the cdktn provider packages (`.ci/setup` extracts them into .tools/schemas;
BURNGUARD_PROVIDER_SCHEMAS points elsewhere). The versions.tf pins must be the checked versions.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
SCHEMAS = Path(os.environ.get("BURNGUARD_PROVIDER_SCHEMAS", ROOT / ".tools" / "schemas"))
CHECKED = ("modules/gcp", "modules/azure", "examples/complete", "examples/aws-only")

sys.path.insert(0, str(INFRA / "tools"))
import schema_check  # noqa: E402


@pytest.fixture(scope="module")
def schemas() -> schema_check.Schemas:
    paths = [SCHEMAS / "google.json", SCHEMAS / "azurerm.json"]
    missing = [str(p) for p in paths if not p.is_file()]
    assert not missing, f"provider schemas missing: {missing}; run `bash .ci/setup` (it extracts them from the cdktn packages)"
    return schema_check.Schemas.load(paths)


def _pins(directory: Path) -> dict[str, str]:
    parsed = hcl2.loads((directory / "versions.tf").read_text(), serialization_options=schema_check.OPTIONS)
    return {name: spec["version"] for t in parsed["terraform"] for block in t["required_providers"]
            for name, spec in block.items() if name != "__is_block__"}


@pytest.mark.parametrize("directory", CHECKED)
def test_pins_are_the_checked_provider_versions(schemas: schema_check.Schemas, directory: str) -> None:
    pins = _pins(INFRA / directory)
    for name in ("google", "azurerm"):
        if name in pins:
            assert pins[name] == schemas.by_prefix[name]["version"], (
                f"{directory}: pins {name} {pins[name]} but the schema check uses {schemas.by_prefix[name]['version']}")


@pytest.mark.parametrize("directory", CHECKED)
def test_module_matches_its_provider_schemas(schemas: schema_check.Schemas, directory: str) -> None:
    problems, counts = schema_check.check_directory(INFRA / directory, schemas)
    assert problems == []
    if directory.startswith("modules/"):
        assert counts["resources"] >= 20 and counts["unchecked"] == 0, counts
    elif directory == "examples/complete":
        assert counts["providers"] == 2, counts


# --- the checker finds what it claims to find ---------------------------------------------------

BROKEN = '''
variable "name" {
  type = string
}

data "google_project" "this" {}

resource "google_pubsub_topic" "ok" {
  name    = var.name
  project = data.google_project.this.project_id
}

resource "google_pubsub_topic" "no_name" {
  labels = {a = "b"}
}

resource "google_pubsub_topc" "typo" {
  name = "x"
}

resource "google_pubsub_subscription" "bad" {
  name                 = google_pubsub_topic.ok.nme
  topic                = google_pubsub_topic.missing.id
  ack_deadline_seconds = "soon"
  retain_acked_messages = [true]
  colour               = "blue"
  push_config = {
    push_endpoint = "https://example.com"
  }
  expiration_policy {
    ttl = local.undeclared
  }
  expiration_policy {
    ttl = ""
  }
  dead_letter_policy {
    dead_letter_topic = var.nope
  }
}

resource "google_cloudfunctions2_function" "dyn" {
  name     = "f"
  location = "europe-west1"
  dynamic "event_trigger" {
    for_each = []
    content {
      trigger_region = "europe-west1"
    }
  }
  dynamic "event_triger" {
    for_each = []
    content {}
  }
}

resource "azurerm_storage_queue" "old" {
  name                 = "q"
  storage_account_name = "sa"
}
'''


def test_the_check_reports_each_kind_of_problem(schemas: schema_check.Schemas, tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(BROKEN)
    problems, counts = schema_check.check_directory(tmp_path, schemas)
    text = "\n".join(problems)
    expected = [
        "google_pubsub_topic.no_name: required argument 'name' is not set",
        "has no resource type 'google_pubsub_topc'",
        "google_pubsub_topic.ok.nme: google_pubsub_topic has no attribute 'nme'",
        "google_pubsub_topic.missing is not declared",
        "ack_deadline_seconds: str 'soon' where the schema has number",
        "retain_acked_messages: list [True] where the schema has bool",
        "unknown argument 'colour'",
        "'push_config' is a block of the schema, written as an argument",
        "local.undeclared is not declared",
        "var.nope is not declared",
        "block 'expiration_policy' appears 2 times; the schema allows one",
        "dynamic block 'event_triger' is not a block of the schema",
        "google_cloudfunctions2_function.dyn.event_trigger: required argument 'event_type' is not set",
        "azurerm_storage_queue.old: unknown argument 'storage_account_name'",
        "azurerm_storage_queue.old: required argument 'storage_account_id' is not set",
    ]
    for line in expected:
        assert line in text, f"not reported: {line}\n{text}"
    # and nothing about what is right
    assert "google_pubsub_topic.ok:" not in text and "var.name" not in text and "data.google_project" not in text
    assert len(problems) == len(expected), text
    assert counts["resources"] == 5 and counts["data_sources"] == 1


def test_schemas_carry_the_types_the_modules_use(schemas: schema_check.Schemas) -> None:
    google: dict[str, Any] = schemas.by_prefix["google"]
    function = google["resources"]["google_cloudfunctions2_function"]
    assert function["arguments"]["location"] == {"required": True, "type": "string"}
    assert function["blocks"]["event_trigger"]["list"] is False
    assert "url" in function["attributes"]  # computed, readable
    assert google["resources"]["google_pubsub_subscription"]["blocks"]["push_config"]["block"]["blocks"]["oidc_token"]
    azurerm: dict[str, Any] = schemas.by_prefix["azurerm"]
    assert azurerm["resources"]["azurerm_function_app_flex_consumption"]["blocks"]["site_config"]["required"] is True
    assert json.dumps(azurerm["package"]).startswith('"cdktn-provider-azurerm==')


def test_the_check_reports_module_calls_that_do_not_fit(schemas: schema_check.Schemas, tmp_path: Path) -> None:
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "variables.tf").write_text(
        'variable "needed" {\n  type = string\n}\n\nvariable "optional" {\n  type    = string\n  default = "x"\n}\n'
        'output "there" {\n  value = var.needed\n}\n')
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "main.tf").write_text(
        'module "m" {\n  source = "../mod"\n  optinal = "y"\n}\n\nmodule "ok" {\n  source = "../mod"\n  needed = "y"\n}\n'
        'output "a" {\n  value = module.ok.there\n}\n\noutput "b" {\n  value = module.ok.missing\n}\n')
    problems, _ = schema_check.check_directory(tmp_path / "root", schemas)
    assert problems == ["root/main.tf: module m: ../mod has no variable 'optinal'",
                        "root/main.tf: module m: required variable 'needed' is not set",
                        "root/main.tf: module.ok.missing: the module has no output 'missing'"]
