"""One tag model across AWS tags, Google Cloud labels and Azure tags.

The normalization rule (applied by every normalizer, and by the guardrail to instance tags):

1. Keys and values are stripped of surrounding white space; an empty key is dropped. A tag
   with an empty value is kept (Azure writes ``"aks-managed-createOperationID": ""``), except
   in AWS CUR tag columns, where an empty cell means "resource has no such tag".
2. **AWS**: the ``user:`` prefix of user-defined cost allocation tags is removed
   (``resourceTags/user:Team`` → ``Team``; CUR 2.0 map key ``user_team`` → ``team``); AWS
   system tags keep theirs (``aws:createdBy``). Case is kept: AWS keys are case-sensitive.
3. **Google Cloud**: labels are kept as they are (Google allows lower case only). Project
   labels apply to every line item of the project; a resource label of the same key wins.
4. **Azure**: tag names are case-insensitive in Azure, so keys are folded to lower case;
   spellings of one key that differ only in case merge, the first non-empty value wins.
   Values keep their case.
5. **FOCUS** files follow the rule of their ``ProviderName`` (Microsoft → Azure, AWS → AWS,
   Google → Google Cloud); other providers keep keys as written.
6. Matching a policy scope (``team=ml-research``) compares keys case-insensitively and values
   exactly, so one scope spans all three clouds.

Keys longer than :data:`MAX_KEY_LENGTH` or values longer than :data:`MAX_VALUE_LENGTH` are
bad input (every cloud caps them far lower: AWS 128/256, Azure 512/256, Google 63/63).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from typing import Any

from burnguard.core.clouds import AZURE

MAX_KEY_LENGTH = 512
MAX_VALUE_LENGTH = 1024
AWS_USER_PREFIX = "user:"
AWS_CUR2_USER_PREFIX = "user_"


class TagError(ValueError):
    """A tag text that cannot be read, or a key or value past the limits."""


def _check(key: str, value: str) -> None:
    if len(key) > MAX_KEY_LENGTH:
        raise TagError(f"tag key {key[:40]!r}... is {len(key)} characters (limit {MAX_KEY_LENGTH})")
    if len(value) > MAX_VALUE_LENGTH:
        raise TagError(f"value of tag {key[:60]!r} is {len(value)} characters (limit {MAX_VALUE_LENGTH})")


def normalize_key(cloud: str, key: str) -> str:
    """Canonical form of one tag key for ``cloud`` (``aws``, ``gcp``, ``azure`` or other)."""
    k = key.strip()
    if cloud == "aws":
        if k.startswith(AWS_USER_PREFIX):
            k = k[len(AWS_USER_PREFIX):].strip()
    elif cloud == AZURE:
        k = k.lower()
    return k


def normalize_cur2_key(key: str) -> str:
    """CUR 2.0 ``resource_tags`` map keys: ``user_team`` → ``team``; ``aws_...`` kept."""
    k = key.strip()
    return k[len(AWS_CUR2_USER_PREFIX):] if k.startswith(AWS_CUR2_USER_PREFIX) else k


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def normalize_tags(cloud: str, pairs: Iterable[tuple[str, Any]] | Mapping[str, Any]) -> dict[str, str]:
    """Apply the rule to raw ``(key, value)`` pairs; the first non-empty value of a key wins."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    out: dict[str, str] = {}
    for raw_key, raw_value in items:
        key = normalize_key(cloud, str(raw_key))
        if not key:
            continue
        value = _text(raw_value).strip()
        _check(key, value)
        if key not in out or (not out[key] and value):
            out[key] = value
    return out


def parse_tag_object(text: str | None) -> dict[str, Any]:
    """Parse a JSON tag object as exports write it: with braces (MCA, FOCUS, CUR 2.0) or
    without (Azure EA: ``"env": "prod","org": "trey"``). Empty and ``NULL`` give ``{}``."""
    if text is None:
        return {}
    s = text.strip()
    if s in ("", "NULL", "null", "{}"):
        return {}
    if not s.startswith("{"):
        s = "{" + s + "}"
    try:
        value = json.loads(s)
    except json.JSONDecodeError as exc:
        raise TagError(f"tags are not a JSON object ({exc.msg} at character {exc.pos}): {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise TagError(f"tags are not a JSON object: {text[:80]!r}")
    return value


def parse_label_list(text: str | None) -> list[tuple[str, Any]]:
    """Parse Google Cloud labels written as a list of ``{key, value}`` records.

    BigQuery JSON and Parquet extracts give real lists (handled by the reader); a CSV extract
    holds them as JSON text (``TO_JSON_STRING``) or, when flattened by pandas, as a Python
    literal with single quotes and ``None``. Both are read; nothing is evaluated but literals.
    """
    if text is None:
        return []
    s = text.strip()
    if s in ("", "[]", "NULL", "null", "None"):
        return []
    try:
        value = json.loads(s)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(s)
        except (ValueError, SyntaxError) as exc:
            raise TagError(f"labels are neither JSON nor a literal list: {text[:80]!r}") from exc
    if isinstance(value, dict):
        return list(value.items())
    if not isinstance(value, list):
        raise TagError(f"labels are not a list: {text[:80]!r}")
    pairs: list[tuple[str, Any]] = []
    for item in value:
        if not isinstance(item, dict) or "key" not in item:
            raise TagError(f"label {item!r} has no key")
        pairs.append((str(item["key"]), item.get("value")))
    return pairs


def tag_value(tags: Mapping[str, str], key: str) -> str | None:
    """The value of ``key`` in ``tags``, keys compared case-insensitively."""
    want = key.casefold()
    for k, v in tags.items():
        if k.casefold() == want:
            return v
    return None
