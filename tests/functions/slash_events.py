"""Shared by the slash-command handler tests: load an entry point from its file, the way each
platform does, and make the bootstrap hand it a service built on a test world."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from burnguard.app import slack as bootstrap

FUNCTIONS = Path(__file__).parents[2] / "functions"


def load(cloud: str, filename: str) -> ModuleType:
    path = FUNCTIONS / cloud / filename
    name = f"burnguard_test_{cloud}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def use_service(monkeypatch: pytest.MonkeyPatch, cloud: str, service: Any) -> list[str]:
    """Replace the bootstrap: the handler gets ``service``; returns the clouds it asked for."""
    asked: list[str] = []

    def fake(name: str) -> Any:
        asked.append(name)
        return service

    monkeypatch.setattr(bootstrap, "slash_service", fake)
    return asked
