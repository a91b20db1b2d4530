"""Schema check of Terraform configurations against provider schemas (not `terraform validate`).

The google and azurerm providers are not mirrored on the CI machines, so `terraform validate`
cannot load them. This checks a configuration directory against the schemas that
`provider_schema.py` extracts from the cdktn provider packages:

* every resource and data source type of a checked provider exists;
* every argument and block is known, written as what it is (`x = ...` for an argument, `x { }`
  for a block), a single block at most once; every required argument and block is set (in the
  block itself or through a `dynamic` block);
* literal values have the argument's type (a list is not given to a string, "yes" to a bool, ...);
* every reference (`var.`, `local.`, `data.T.N`, `module.`, `T.N.attr`) points at something
  declared in the directory, `T.N.attr` at an attribute the type has (computed ones included),
  and `module.M.out` at an output of that module;
* the provider blocks' arguments are known; calls of local modules set only variables the
  module declares, and all of its required ones.

Usage: python infra/tools/schema_check.py SCHEMA.json [SCHEMA.json ...] -- DIR [DIR ...]
Prints one line per problem (`file: resource T.N: ...`) and exits 1 if there is any.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=True, with_comments=False)
RESOURCE_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
EXPRESSION = re.compile(r"\$\{")
REFERENCE = re.compile(
    r"(?<![\w.\"'])(?P<kind>var|local|module|data\.[a-z][a-z0-9_]*|[a-z][a-z0-9]*_[a-z0-9_]+)\.(?P<name>[A-Za-z_][\w-]*)"
    r"(?P<index>\[[^\]]*\])?(?:\.(?P<attr>[A-Za-z_]\w*))?")
NOT_REFERENCES = {"each", "count", "self", "path", "terraform", "var", "local", "module"}


@dataclass
class Schemas:
    by_prefix: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, paths: list[Path]) -> Schemas:
        schemas = cls()
        for path in paths:
            schema = json.loads(path.read_text())
            schemas.by_prefix[schema["provider"]] = schema
        return schemas

    def provider_of(self, rtype: str) -> dict[str, Any] | None:
        return self.by_prefix.get(rtype.split("_", 1)[0])


def _is_block(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and bool(EXPRESSION.search(value))


def _type_problem(expected: str, value: Any) -> str | None:
    """Why a literal value cannot have the expected type (None: it can, or it is an expression)."""
    if expected == "any" or _is_expression(value):
        return None
    if isinstance(value, bool):
        ok = expected in ("bool", "string")
    elif isinstance(value, (int, float)):
        ok = expected in ("number", "string")
    elif isinstance(value, str):
        if expected == "number":
            ok = bool(re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value))
        elif expected == "bool":
            ok = value in ("true", "false")
        else:
            ok = expected == "string"
    elif isinstance(value, list):
        ok = expected.startswith("list(")
        if ok:
            inner = expected[5:-1]
            return next((p for v in value if (p := _type_problem(inner, v))), None)
    elif isinstance(value, dict):
        ok = expected.startswith("map(") or expected == "object"
    else:
        ok = True
    return None if ok else f"{type(value).__name__} {value!r} where the schema has {expected}"


def check_block(body: dict[str, Any], schema: dict[str, Any], where: str, meta: set[str]) -> Iterator[str]:
    if schema.get("unchecked"):
        return
    arguments, blocks = schema["arguments"], schema["blocks"]
    yield from _check_dynamic_blocks(body, arguments, blocks, where)
    for key, value in body.items():
        if (key in ("__is_block__", "dynamic") and key not in arguments) or key in meta:
            continue
        yield from _check_entry(key, value, arguments, blocks, where)
    yield from _check_required(body, arguments, blocks, _dynamic_blocks(body, arguments), where)


def _dynamic_blocks(body: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """The ``dynamic "<name>"`` blocks of a body (unless the schema has an argument named dynamic)."""
    if "dynamic" in arguments:
        return {}
    return {name: spec for dyn in body.get("dynamic", []) for name, spec in dyn.items() if name != "__is_block__"}


def _check_dynamic_blocks(body: dict[str, Any], arguments: dict[str, Any], blocks: dict[str, Any],
                          where: str) -> Iterator[str]:
    for name, spec in _dynamic_blocks(body, arguments).items():
        if name not in blocks:
            yield f"{where}: dynamic block {name!r} is not a block of the schema" + (
                " (it is an argument)" if name in arguments else "")
            continue
        for content in spec.get("content", []):
            yield from check_block(content, blocks[name]["block"], f"{where}.{name}", set())


def _check_entry(key: str, value: Any, arguments: dict[str, Any], blocks: dict[str, Any], where: str) -> Iterator[str]:
    """One argument or block of a body against the schema."""
    if key in blocks:
        yield from _check_nested_block(key, value, blocks[key], where)
    elif key in arguments:
        if _is_block(value) and arguments[key]["type"] != "object":
            yield f"{where}: {key!r} is an argument of the schema, written as a block (write `{key} = ...`)"
            return
        problem = _type_problem(arguments[key]["type"], value)
        if problem:
            yield f"{where}: {key}: {problem}"
    else:
        kind = "block" if _is_block(value) else "argument"
        yield f"{where}: unknown {kind} {key!r}"


def _check_nested_block(key: str, value: Any, spec: dict[str, Any], where: str) -> Iterator[str]:
    if not _is_block(value):
        yield f"{where}: {key!r} is a block of the schema, written as an argument (write `{key} {{ ... }}`)"
        return
    if not spec["list"] and len(value) > 1:
        yield f"{where}: block {key!r} appears {len(value)} times; the schema allows one"
    for item in value:
        yield from check_block(item, spec["block"], f"{where}.{key}", set())


def _check_required(body: dict[str, Any], arguments: dict[str, Any], blocks: dict[str, Any],
                    dynamic: dict[str, Any], where: str) -> Iterator[str]:
    for name, spec in arguments.items():
        if spec["required"] and name not in body:
            yield f"{where}: required argument {name!r} is not set"
    for name, spec in blocks.items():
        if spec["required"] and name not in body and name not in dynamic:
            yield f"{where}: required block {name!r} is not set"


@dataclass
class Config:
    directory: Path
    files: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, directory: Path) -> Config:
        return cls(directory, {p.name: hcl2.loads(p.read_text(), serialization_options=OPTIONS)
                               for p in sorted(directory.glob("*.tf"))})

    def items(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for file, parsed in self.files.items():
            for entry in parsed.get(kind, []):
                yield file, entry

    def declared(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {"var": set(), "local": set(), "module": set(), "resource": set(), "data": set()}
        for _, entry in self.items("variable"):
            found["var"] |= set(entry) - {"__is_block__"}
        for _, entry in self.items("locals"):
            found["local"] |= set(entry) - {"__is_block__"}
        for _, entry in self.items("module"):
            found["module"] |= set(entry) - {"__is_block__"}
        for kind in ("resource", "data"):
            for _, entry in self.items(kind):
                for rtype, named in entry.items():
                    if rtype != "__is_block__":
                        found[kind] |= {f"{rtype}.{name}" for name in named if name != "__is_block__"}
        return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _expressions(text: str) -> Iterator[str]:
    """The ${...} parts of a string, string literals inside them blanked (they are not references)."""
    start = 0
    while (i := text.find("${", start)) >= 0:
        depth, j = 0, i
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        yield re.sub(r'\\?"(?:[^"\\]|\\.)*?\\?"', '""', text[i + 2:j])
        start = j + 1


def _module_outputs(config: Config) -> dict[str, set[str]]:
    """Outputs of the local modules a configuration calls, by call name."""
    outputs: dict[str, set[str]] = {}
    for _, entry in config.items("module"):
        for name, body in entry.items():
            if name != "__is_block__" and str(body.get("source", "")).startswith("."):
                called = Config.load((config.directory / body["source"]).resolve())
                outputs[name] = {o for _, e in called.items("output") for o in e if o != "__is_block__"}
    return outputs


def check_references(config: Config, schemas: Schemas) -> Iterator[str]:
    declared = config.declared()
    outputs = _module_outputs(config)
    for file, parsed in config.files.items():
        for text in _strings(parsed):
            for expression in _expressions(text):
                for m in REFERENCE.finditer(expression):
                    yield from _check_reference(file, m, declared, outputs, schemas)


def _check_reference(file: str, m: re.Match[str], declared: dict[str, set[str]], outputs: dict[str, set[str]],
                     schemas: Schemas) -> Iterator[str]:
    """One reference: to a variable, local, module output, data source or resource (attribute)."""
    kind, name, attr = m.group("kind"), m.group("name"), m.group("attr")
    if kind in ("var", "local", "module"):
        if name not in declared[kind]:
            yield f"{file}: {kind}.{name} is not declared"
        elif kind == "module" and attr and name in outputs and attr not in outputs[name]:
            yield f"{file}: module.{name}.{attr}: the module has no output {attr!r}"
    elif kind.startswith("data."):
        address = f"{kind[5:]}.{name}"
        if address not in declared["data"]:
            yield f"{file}: data.{address} is not declared"
        else:
            yield from _attribute(file, schemas, "data_sources", kind[5:], name=name, attr=attr)
    elif kind not in NOT_REFERENCES and schemas.provider_of(kind) is not None:
        if f"{kind}.{name}" not in declared["resource"]:
            yield f"{file}: {kind}.{name} is not declared"
        else:
            yield from _attribute(file, schemas, "resources", kind, name=name, attr=attr)


def _attribute(file: str, schemas: Schemas, kind: str, rtype: str, *, name: str, attr: str | None) -> Iterator[str]:
    schema = schemas.provider_of(rtype)
    if schema is None or attr is None or rtype not in schema[kind]:
        return
    if attr not in schema[kind][rtype].get("attributes", []):
        yield f"{file}: {rtype}.{name}.{attr}: {rtype} has no attribute {attr!r}"


def check_directory(directory: Path, schemas: Schemas) -> tuple[list[str], dict[str, int]]:
    """Problems found, and how many resources/data sources/providers were checked against a schema."""
    config = Config.load(directory)
    problems: list[str] = []
    counts = {"resources": 0, "data_sources": 0, "providers": 0, "unchecked": 0}
    for kind, key in (("resource", "resources"), ("data", "data_sources")):
        for file, entry in config.items(kind):
            for rtype, named in entry.items():
                if rtype == "__is_block__":
                    continue
                schema = schemas.provider_of(rtype)
                if schema is None:
                    counts["unchecked"] += 1
                    continue
                for name, body in named.items():
                    if name == "__is_block__":
                        continue
                    where = f"{directory.name}/{file}: {kind} {rtype}.{name}"
                    if rtype not in schema[key]:
                        provider = f"hashicorp/{schema['provider']} {schema['version']}"
                        problems.append(f"{where}: {provider} has no {kind} type {rtype!r}")
                        continue
                    counts[key] += 1
                    problems.extend(check_block(body, schema[key][rtype], where, RESOURCE_META))
    for file, entry in config.items("provider"):
        for name, body in entry.items():
            schema = schemas.by_prefix.get(name)
            if schema is None or name == "__is_block__" or not schema.get("provider_config"):
                continue
            counts["providers"] += 1
            where = f"{directory.name}/{file}: provider {name}"
            problems.extend(check_block(body, schema["provider_config"], where, {"alias"}))
    problems.extend(check_module_calls(config))
    problems.extend(f"{directory.name}/{p}" for p in check_references(config, schemas))
    return problems, counts


MODULE_META = {"source", "version", "count", "for_each", "depends_on", "providers"}


def check_module_calls(config: Config) -> Iterator[str]:
    """Calls of local modules: every argument is a variable of the module, every required one is set."""
    for file, entry in config.items("module"):
        for name, body in entry.items():
            if name == "__is_block__" or not str(body.get("source", "")).startswith("."):
                continue
            called = Config.load((config.directory / body["source"]).resolve())
            variables = {v: spec for _, e in called.items("variable") for v, spec in e.items() if v != "__is_block__"}
            where = f"{config.directory.name}/{file}: module {name}"
            for key in set(body) - MODULE_META - {"__is_block__"}:
                if key not in variables:
                    yield f"{where}: {body['source']} has no variable {key!r}"
            for var, spec in variables.items():
                if "default" not in spec and var not in body:
                    yield f"{where}: required variable {var!r} is not set"


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: schema_check.py SCHEMA.json [...] -- DIR [...]", file=sys.stderr)
        return 2
    split = argv.index("--")
    schemas = Schemas.load([Path(p) for p in argv[1:split]])
    failed = False
    for directory in argv[split + 1:]:
        problems, counts = check_directory(Path(directory), schemas)
        for problem in problems:
            print(problem)
        failed |= bool(problems)
        print(f"{directory}: {counts['resources']} resources, {counts['data_sources']} data sources, "
              f"{counts['providers']} provider blocks checked; {len(problems)} problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
