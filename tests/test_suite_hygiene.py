"""Rules the suite keeps so that tests cannot break each other."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_test_uses_moto_in_process_mocks() -> None:
    """Leaving ``mock_aws()`` resets moto's in-process backends, which the session's
    moto server (tests/conftest.py) shares: every later test would lose its resources."""
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path != Path(__file__).resolve() and "mock_aws" in path.read_text()
    ]
    assert offenders == []
