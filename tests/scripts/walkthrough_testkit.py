"""Shared pieces of the walk-through tests: loading a script, the platform handle."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Platform:
    doc: dict[str, Any]
    api: str
    state_dir: Path

    @property
    def authenticators(self) -> Path:
        return self.state_dir / "demo-authenticators.json"
