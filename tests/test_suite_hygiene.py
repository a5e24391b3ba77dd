"""Rules the suite keeps so that tests cannot break each other."""

from __future__ import annotations

import re
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


REPO = TESTS.parent
HARNESS = REPO / "infra" / "emulator" / "server.py"


def _sources() -> list[Path]:
    return [
        path
        for folder in ("infra", "app", "scripts", "benchmarks", "tests")
        for path in (REPO / folder).rglob("*.py")
        if path.resolve() not in (HARNESS, Path(__file__).resolve())
    ]


def test_moto_is_started_and_ports_are_found_in_one_place() -> None:
    """One harness (infra/emulator/server.py): a moto started elsewhere could miss the
    DynamoDB isolation the ledger relies on; a copied free-port helper drifts. (Holding a
    listening socket to make a port busy is not finding a free one.)"""
    markers = {
        "starts moto": re.compile(r"ThreadedMotoServer\("),
        "defines a free-port helper": re.compile(r"def _?free_port\b"),
        "finds a free port inline": re.compile(r"port = int\(\w+\.getsockname\(\)\[1\]\)"),
    }
    offenders = [
        f"{path.relative_to(REPO)} {what}"
        for path in _sources()
        for what, pattern in markers.items()
        if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_the_role_list_is_not_copied_into_tools_and_tests() -> None:
    """The service's identity package holds the role list; the identity component
    declares each role with a description and verify keeps its own baseline on purpose
    (tests/infra/verify/test_verify_baseline.py compares them). Nothing else copies it."""
    owners = ("app/identity/", "infra/components/", "infra/verify/")
    offenders = [
        str(path.relative_to(REPO))
        for path in _sources()
        if re.search(r"^\s*ROLE_GROUPS\s*[:=]", path.read_text(), re.MULTILINE)
    ]
    assert [o for o in offenders if not o.startswith(owners)] == []


def test_shared_definitions_are_spelt_once() -> None:
    """One TOTP generator (app/crypto/totp.py: the doctor's client may import app.crypto
    and nothing else of app) and one name for the database key gap's property (verify's
    record vocabulary, which the emulator's gaps import)."""
    once = {
        "a TOTP generator": re.compile(r"\bTOTP\(\w+, 6,"),
        "DATABASE_KEY_ELSEWHERE": re.compile(r"^DATABASE_KEY_ELSEWHERE\s*=", re.MULTILINE),
    }
    sources = [*_sources(), *(REPO / "hubclient").rglob("*.py")]
    for what, pattern in once.items():
        where = [str(p.relative_to(REPO)) for p in sources if pattern.search(p.read_text())]
        assert len(where) == 1, (what, where)
