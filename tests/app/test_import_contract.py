"""The import contract of app/ catches what it exists to catch.

``make lint`` runs ``lint-imports`` with the contracts in pyproject.toml. A contract that
can no longer fail would pass silently, so here each contract is run, exactly as
configured, on a copy of app/ with one breach written into it, and must break; the
untouched copy must keep every contract (so the breaches, not the set-up, are what fail).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS = "app: domains in layers, no upward import"
DOMAIN_LAYERS = "app domains: router > service > schemas > repository"
RECORDS_JOBS = "app.records: the service over independent jobs"
ACYCLIC = "app: no import cycle at any depth"
STANDALONE = "app: never imports infra, tests, scripts, benchmarks"
CONTRACTS = (LAYERS, DOMAIN_LAYERS, RECORDS_JOBS, ACYCLIC, STANDALONE)


def lint_copy(tmp_path: Path, breach: tuple[str, str] | None = None) -> dict[str, str]:
    """Each contract's verdict (KEPT/BROKEN) on a copy of app/, with ``breach`` (a module
    path relative to the copy and a line appended to it) written in first."""
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if breach is not None:
        module, line = breach
        target = tmp_path / module
        text = target.read_text(encoding="utf-8") if target.exists() else ""
        target.write_text(text + "\n" + line + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
         " sys.exit(lint_imports_command())", "--no-cache"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    verdicts = {}
    for name in CONTRACTS:
        found = [ln for ln in result.stdout.splitlines() if ln.startswith(name + " ")]
        assert found, f"no verdict for {name!r}:\n{result.stdout}\n{result.stderr}"
        verdicts[name] = found[0].rsplit(" ", 1)[1]
    assert (result.returncode == 0) == all(v == "KEPT" for v in verdicts.values())
    return verdicts


# Each case: a line appended to a module of the copy, and the contracts it must break.
BREACHES: dict[str, tuple[tuple[str, str], set[str]]] = {
    "audit-imports-ledger": (
        ("app/audit/events.py", "import app.ledger.trail  # the interface needs its ledger"),
        {LAYERS, ACYCLIC},
    ),
    "upward-import-closing-a-cycle": (
        ("app/access/gate.py", "import app.records.service  # a lower layer reaches up"),
        # records' jobs reach the gate, so through it they would reach their service
        {LAYERS, RECORDS_JOBS, ACYCLIC},
    ),
    "upward-import-without-a-cycle": (
        ("app/crypto/errors.py", "import app.ledger.errors  # no cycle, still upward"),
        {LAYERS},
    ),
    "independent-siblings": (
        ("app/breakglass/service.py", "import app.ledger.service  # siblings in a layer"),
        {LAYERS},
    ),
    "module-cycle-inside-a-package": (
        ("app/ledger/_hashing.py", "import app.ledger.merkle  # merkle imports _hashing"),
        {ACYCLIC},
    ),
    "repository-imports-service": (
        ("app/groups/repository.py", "import app.groups.service  # storage calls logic"),
        {DOMAIN_LAYERS, ACYCLIC},
    ),
    "records-job-imports-a-sibling-job": (
        ("app/records/idempotency.py", "import app.records.commit  # one job uses another"),
        {RECORDS_JOBS},
    ),
    "app-imports-infra": (
        ("app/settings.py", "import infra.stage  # the service reads the Pulumi stage"),
        {STANDALONE},
    ),
    "new-module-outside-the-layering": (
        ("app/unlayered_domain.py", "from app.errors import HubError"),
        {LAYERS},
    ),
}


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, dict[str, str]]:
    """Every case's verdicts, linted side by side (each run is its own process)."""
    cases: list[str | None] = [None, *BREACHES]

    def run(case: str | None) -> dict[str, str]:
        breach = BREACHES[case][0] if case is not None else None
        return lint_copy(tmp_path_factory.mktemp(case or "untouched"), breach)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(cases, pool.map(run, cases), strict=True))


def test_the_untouched_service_keeps_every_contract(
    verdicts: dict[str | None, dict[str, str]],
) -> None:
    assert set(verdicts[None].values()) == {"KEPT"}


@pytest.mark.parametrize("case", BREACHES)
def test_each_contract_breaks_on_its_breach(
    verdicts: dict[str | None, dict[str, str]], case: str
) -> None:
    broken = {name for name, v in verdicts[case].items() if v == "BROKEN"}
    assert broken == BREACHES[case][1]
