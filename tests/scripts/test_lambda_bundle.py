"""The Lambda bundle script: contents and reproducibility (offline, --no-deps)."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_lambda_bundle", ROOT / "scripts" / "build_lambda_bundle.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_bundle_holds_the_handlers_and_is_reproducible(tmp_path: Path) -> None:
    script = load_script()
    first = script.write_bundle(tmp_path / "a.zip")
    second = script.write_bundle(tmp_path / "b.zip")
    assert first == second
    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert "app/lambda_handler.py" in names
    assert "app/identity/triggers.py" in names
    assert not any("__pycache__" in n for n in names)


def test_dependencies_are_manylinux_wheels_for_the_declared_runtime() -> None:
    from infra.components.functions import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME

    script = load_script()
    assert LAMBDA_ARCHITECTURE == "arm64" and script.PLATFORM.endswith("aarch64")
    assert f"python{script.PYTHON_VERSION}" == LAMBDA_RUNTIME
    pins = script.pinned_requirements()
    assert any(p.startswith("fastapi==") for p in pins)
    assert any(p.startswith("mangum==") for p in pins)
    # create_app serves the API document's pages from this package's files
    assert any(p.startswith("fastapi-offline==") for p in pins)
