"""The audit-ledger walk-through after the demos ran through the local API gateway:
``hub audit verify --live`` passes, ``scripts/ledger_tamper.py`` edits one entry, and the
next verification fails at that index.

Runs after the group and records walk-throughs (file order), on the same platform: the
ledger holds what their requests recorded, each response's head signed inline as the
Lambda function signs it.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner
from walkthrough_testkit import Platform, load_script

from infra.cli import app as hub_cli
from infra.standalone_platform import STANDALONE_STACK

pytestmark = pytest.mark.integration


def test_ledger_verifies_then_a_tampered_entry_is_found(walkthrough_platform: Platform) -> None:
    stack = STANDALONE_STACK
    doc = walkthrough_platform.doc
    outputs = doc["stacks"][stack]["outputs"]
    # The walk-throughs recorded entries through the gateway (test_demo_*.py ran first).
    live = [
        "audit",
        "verify",
        "--live",
        "--table",
        outputs["tableNames"]["ledger"],
        "--bucket",
        outputs["auditBucketName"],
        "--key-id",
        outputs["signingKeyArn"],
        "--endpoint",
        doc["emulatorEndpoint"],
    ]
    runner = CliRunner()
    clean = runner.invoke(hub_cli, live)
    assert clean.exit_code == 0, clean.output
    tamper = load_script("ledger_tamper")
    assert (
        tamper.main(
            ["--index", "3", "--stack", stack, "--state-dir", str(walkthrough_platform.state_dir)]
        )
        == 0
    )
    found = runner.invoke(hub_cli, live)
    assert found.exit_code == 1 and "first bad index: 3" in found.output, found.output
