"""``--aws-backend``: moto by default; ``localstack`` with neither LocalStack endpoint nor
Docker engine is a usage error that says both ways, before any test runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _suite_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("suite_conftest", ROOT / "tests" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


class _Config:
    def __init__(self, backend: str) -> None:
        self.backend = backend

    def getoption(self, name: str) -> str:
        assert name == "--aws-backend"
        return self.backend


def test_localstack_without_endpoint_or_docker_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conftest = _suite_conftest()
    monkeypatch.delenv("HUB_LOCALSTACK_ENDPOINT", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")  # no engine here
    with pytest.raises(pytest.UsageError) as refused:
        conftest.pytest_configure(_Config("localstack"))
    message = str(refused.value)
    assert "HUB_LOCALSTACK_ENDPOINT" in message
    assert "make test-localstack" in message
    assert "localstack/localstack:4.14" in message


def test_moto_and_a_given_endpoint_need_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conftest = _suite_conftest()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.delenv("HUB_LOCALSTACK_ENDPOINT", raising=False)
    conftest.pytest_configure(_Config("moto"))  # the default asks for nothing
    monkeypatch.setenv("HUB_LOCALSTACK_ENDPOINT", "http://127.0.0.1:4566")
    conftest.pytest_configure(_Config("localstack"))
