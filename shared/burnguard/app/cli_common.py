"""What every ``burnguard`` command shares: exit codes, the one-line usage error, the embedded
state a command works on, JSON output. (``app/cli.py`` builds the parser; command groups in
their own modules, such as ``app/estimates_cli.py``, import from here, not from it.)"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from burnguard.core.errors import InputError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEBUG_ENV = "BURNGUARD_DEBUG"



class UsageError(InputError):
    """Bad usage: a one-line message, exit 2."""


def home_of(args: argparse.Namespace) -> Path:
    from burnguard.app.embedded import default_home

    return Path(args.home) if getattr(args, "home", None) else default_home()


def local_mode(args: argparse.Namespace, **kwargs: Any) -> Any:
    from burnguard.app.embedded import LocalMode

    home = home_of(args)
    policy = Path(args.policy) if getattr(args, "policy", None) else None
    inventory = Path(args.inventory) if getattr(args, "inventory", None) else None
    for path, option in ((policy, "--policy"), (inventory, "--inventory")):
        if path is not None and not path.is_file():
            raise UsageError(f"no such file {path}; check the path", field=option)
    config = home / "config.json"
    try:
        local = LocalMode.open(home, policy, inventory, **kwargs)
        local.ledger.latest_data()  # touches the database: a damaged one fails here, not mid-way
        return local
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        why = f"{exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else f"no {exc}"
        raise UsageError(f"damaged ({why}); set the state up again with `burnguard ingest --policy FILE "
                         f"--home {home}` or `burnguard demo --home {home}`", file=str(config)) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                         "save it as UTF-8", file=str(policy or _saved_policy(config))) from None
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"the local state in {home} is damaged ({exc}); move the folder away and run "
                         "`burnguard demo` or `burnguard ingest --policy FILE` again", field="--home") from None
    except IsADirectoryError as exc:
        raise UsageError(f"{exc.filename} is a folder, not a file", field="--home") from None


def _saved_policy(config: Path) -> str:
    try:
        return str(json.loads(config.read_text()).get("policy") or config)
    except (OSError, ValueError):
        return str(config)


def dump_json(payload: Any) -> None:
    json.dump(payload, sys.stdout, indent=2, default=_json_default, sort_keys=False)
    sys.stdout.write("\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)

