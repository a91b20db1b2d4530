"""Extract a Terraform provider's schema from its CDK Terrain (cdktn) package on PyPI.

`cdktn-provider-google` and `cdktn-provider-azurerm` are generated from `terraform providers
schema -json` of one provider version and carry it, typed, in their jsii assembly
(`_jsii/provider-<name>@<v>.jsii.tgz` → `package/.jsii`): one class per resource and data source
(its Terraform type name in the registry link of its docs), one struct per configuration block
with each argument's type, whether it is optional, and its Terraform name (in the registry link
`…#<name>`). This turns that into a compact JSON that `schema_check.py` reads:

    {"provider": "google", "version": "8.7.0", "package": "cdktn-provider-google==21.1.0",
     "resources": {"google_pubsub_topic": BLOCK, ...}, "data_sources": {...}}
    BLOCK = {"arguments": {name: {"required": bool, "type": "string|number|bool|any|list(..)|map(..)|object"}},
             "blocks": {name: {"required": bool, "list": bool, "block": BLOCK}},
             "attributes": [names readable in references, computed ones included]}

Usage: python infra/tools/provider_schema.py WHEEL OUT.json
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

REGISTRY_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/hashicorp/(?P<provider>\w+)/(?P<version>[\w.-]+)/docs/"
    r"(?P<kind>resources|data-sources)/\w+ (?P<type>\w+)\}")
ARGUMENT_LINK = re.compile(r"/docs/(?:resources|data-sources)/\w+#(\w+) ")
BLOCK_SUMMARY = re.compile(r"^(\w+) block\.$")
# Arguments every Terraform block has (meta-arguments), not part of a provider's schema.
META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioners", "connection"}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _unwrap(ref: dict[str, Any]) -> dict[str, Any]:
    """Drop cdktn.IResolvable from a union (every value may also be an expression)."""
    if "union" in ref:
        kept = [t for t in ref["union"]["types"] if t.get("fqn") != "cdktn.IResolvable"]
        if len(kept) == 1:
            return _unwrap(kept[0])
        return {"primitive": "any"}
    return ref


def _type_name(ref: dict[str, Any]) -> str:
    ref = _unwrap(ref)
    if "primitive" in ref:
        return {"string": "string", "number": "number", "boolean": "bool"}.get(ref["primitive"], "any")
    if "collection" in ref:
        kind = "list" if ref["collection"]["kind"] == "array" else "map"
        return f"{kind}({_type_name(ref['collection']['elementtype'])})"
    return "object"


def _struct_of(ref: dict[str, Any]) -> tuple[str | None, bool]:
    """(fqn of the block's struct, whether the block repeats)."""
    ref = _unwrap(ref)
    if "collection" in ref:
        inner = _unwrap(ref["collection"]["elementtype"])
        return inner.get("fqn"), True
    return ref.get("fqn"), False


class _Assembly:
    def __init__(self, types: dict[str, Any]) -> None:
        self.types = types
        self.open: set[str] = set()

    def properties(self, fqn: str) -> list[dict[str, Any]]:
        """A struct's properties, with those of the structs it extends (not the meta-arguments)."""
        spec = self.types[fqn]
        props = list(spec.get("properties", []))
        for parent in spec.get("interfaces", []):
            if parent in self.types:
                props += self.properties(parent)
        return props

    def block(self, fqn: str, readable: list[str] | None = None) -> dict[str, Any]:
        if fqn in self.open:  # a block that nests itself (recursive schema): not checked deeper
            return {"arguments": {}, "blocks": {}, "unchecked": True}
        self.open.add(fqn)
        try:
            return self._block(fqn, readable)
        finally:
            self.open.discard(fqn)

    def _block(self, fqn: str, readable: list[str] | None) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        for prop in self.properties(fqn):
            docs = prop.get("docs", {})
            text = f"{docs.get('summary', '')} {docs.get('remarks', '')}"
            link = ARGUMENT_LINK.search(text)
            name = link.group(1) if link else _snake(prop["name"])
            if name in META:
                continue
            required = not prop.get("optional", False)
            block_summary = BLOCK_SUMMARY.match(docs.get("summary", ""))
            struct, repeats = _struct_of(prop["type"])
            if block_summary and struct in self.types:
                blocks[block_summary.group(1)] = {"required": required, "list": repeats, "block": self.block(struct)}
            else:
                arguments[name] = {"required": required, "type": _type_name(prop["type"])}
        result: dict[str, Any] = {"arguments": arguments, "blocks": blocks}
        if readable is not None:
            result["attributes"] = sorted(set(readable) | set(arguments) | set(blocks))
        return result


def extract_assembly(assembly: dict[str, Any], package: str) -> dict[str, Any]:
    types = assembly["types"]
    asm = _Assembly(types)
    out: dict[str, Any] = {"provider": None, "version": None, "package": package, "resources": {}, "data_sources": {},
                           "provider_config": None}
    for spec in types.values():
        base = spec.get("base")
        if base == "cdktn.TerraformProvider" and spec.get("kind") == "class":
            config = next(p for p in spec["initializer"]["parameters"] if p["name"] == "config")["type"]["fqn"]
            out["provider_config"] = asm.block(config)
            continue
        if base not in ("cdktn.TerraformResource", "cdktn.TerraformDataSource") or spec.get("kind") != "class":
            continue
        link = REGISTRY_LINK.search(spec.get("docs", {}).get("summary", ""))
        if link is None:
            raise ValueError(f"{spec['fqn']}: no registry link naming its Terraform type")
        out["provider"], out["version"] = link.group("provider"), link.group("version")
        config = next(p for p in spec["initializer"]["parameters"] if p["name"] == "config")["type"]["fqn"]
        readable = [_snake(p["name"]) for p in spec.get("properties", [])
                    if not p.get("static") and not p["name"].endswith("Input")]
        kind = "resources" if link.group("kind") == "resources" else "data_sources"
        out[kind][link.group("type")] = asm.block(config, readable)
    if not out["resources"]:
        raise ValueError(f"{package}: no resource classes in its jsii assembly")
    return out


def extract(wheel: Path) -> dict[str, Any]:
    """The compact schema of the provider whose cdktn wheel this is."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
        tgz = zf.read(name)
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        fields = dict(re.findall(r"^(Name|Version): (\S+)$", metadata, re.MULTILINE))
        package = f"{fields['Name']}=={fields['Version']}"
    with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
        member = tar.extractfile("package/.jsii")
        if member is None:
            raise ValueError(f"{wheel}: no package/.jsii in {name}")
        assembly = json.load(member)
    return extract_assembly(assembly, package)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: provider_schema.py WHEEL OUT.json", file=sys.stderr)
        return 2
    wheel, out = Path(argv[1]), Path(argv[2])
    schema = extract(wheel)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True))
    tmp.replace(out)
    print(f"{out}: hashicorp/{schema['provider']} {schema['version']} ({schema['package']}): "
          f"{len(schema['resources'])} resources, {len(schema['data_sources'])} data sources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
