"""The doctor's client shares the sealed-record format with the service and nothing else.

pyproject's ``client-shares-only-the-format`` contract forbids ``hubclient`` (and
``app.crypto``) every package of ``app`` but ``app.crypto``; it lists them by name, so this
test keeps the list complete as ``app`` grows, and checks the contract catches a breach."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import app

ROOT = Path(__file__).resolve().parents[2]


def _contract() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["id"] == "client-shares-only-the-format")


def test_the_contract_forbids_every_app_package_but_the_format() -> None:
    packages = {f"app.{m.name}" for m in pkgutil.iter_modules(app.__path__)}
    contract = _contract()
    assert set(contract["source_modules"]) == {"hubclient", "app.crypto"}  # type: ignore[arg-type]
    assert set(contract["forbidden_modules"]) == packages - {"app.crypto"}  # type: ignore[arg-type]


def test_the_client_imports_only_the_format_of_the_service() -> None:
    """The same property, read from the source (independent of import-linter)."""
    import ast

    for path in (ROOT / "hubclient").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name == "app" or name.startswith("app."):
                    assert name.startswith("app.crypto"), (path.name, name)
