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


def test_the_untouched_service_keeps_every_contract(tmp_path: Path) -> None:
    assert set(lint_copy(tmp_path).values()) == {"KEPT"}


@pytest.mark.parametrize(
    ("breach", "broken"),
    [
        pytest.param(
            ("app/audit/events.py", "import app.ledger.trail  # the interface needs its ledger"),
            {LAYERS, ACYCLIC},
            id="audit-imports-ledger",
        ),
        pytest.param(
            ("app/access/gate.py", "import app.records.service  # a lower layer reaches up"),
            # records' jobs reach the gate, so through it they would reach their service
            {LAYERS, RECORDS_JOBS, ACYCLIC},
            id="upward-import-closing-a-cycle",
        ),
        pytest.param(
            ("app/crypto/errors.py", "import app.ledger.errors  # no cycle, still upward"),
            {LAYERS},
            id="upward-import-without-a-cycle",
        ),
        pytest.param(
            ("app/breakglass/service.py", "import app.ledger.service  # siblings in a layer"),
            {LAYERS},
            id="independent-siblings",
        ),
        pytest.param(
            ("app/ledger/_hashing.py", "import app.ledger.merkle  # merkle imports _hashing"),
            {ACYCLIC},
            id="module-cycle-inside-a-package",
        ),
        pytest.param(
            ("app/groups/repository.py", "import app.groups.service  # storage calls logic"),
            {DOMAIN_LAYERS, ACYCLIC},
            id="repository-imports-service",
        ),
        pytest.param(
            ("app/records/idempotency.py", "import app.records.commit  # one job uses another"),
            {RECORDS_JOBS},
            id="records-job-imports-a-sibling-job",
        ),
        pytest.param(
            ("app/settings.py", "import infra.stage  # the service reads the Pulumi stage"),
            {STANDALONE},
            id="app-imports-infra",
        ),
        pytest.param(
            ("app/notifications.py", "from app.errors import HubError"),
            {LAYERS},
            id="new-module-outside-the-layering",
        ),
    ],
)
def test_each_contract_breaks_on_its_breach(
    tmp_path: Path, breach: tuple[str, str], broken: set[str]
) -> None:
    verdicts = lint_copy(tmp_path, breach)
    assert {name for name, v in verdicts.items() if v == "BROKEN"} == broken
