"""``hub verify`` and ``hub report`` against the session's deployed stacks on moto.

Each stack's report is written in three formats with its diagram, kept in the history
signed by the core's KMS ledger key and archived in the core's Object Lock audit bucket
(a layer's too: it re-exports them);
the hub report combines them; a second run leaves a second report with a diff. A
ledger tampered with on the emulator makes ``hub verify`` fail (exit 1) and every
format of the report say so, at the first bad index.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from app.audit.events import AuditEvent, Outcome
from app.ledger.checkpoint import KmsHeadSigner
from app.ledger.service import build_ledger
from infra.cli import app as hub_cli
from infra.compliance import history
from infra.stage import STACK_PHASES

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
from ledger_tamper import tamper_entry

pytestmark = pytest.mark.integration
runner = CliRunner()
CORE = "phase1-specialist"


@pytest.fixture
def state_dir(deployed_stacks: dict[str, Any], hub_state_dir: Path, tmp_path: Path) -> Path:
    """A state directory of its own holding the session's deployment records, so the
    reports, history and rollout state written here touch no other test."""
    state = tmp_path / "state"
    shutil.copytree(hub_state_dir / "deployments", state / "deployments")
    return state


def _hub(*args: str) -> Any:
    return runner.invoke(hub_cli, list(args))


def _verify(stack: str, endpoint: str, state: Path) -> Any:
    return _hub(
        "verify", "--stack", stack, "--endpoint", endpoint, "--state-dir", str(state), "--json"
    )


def _session(endpoint: str) -> Any:
    del endpoint  # clients name it; the session only holds the region
    return boto3.session.Session(region_name="ap-east-1")


def test_verify_then_report_write_three_formats_signed_and_archived(
    deployed_stacks: dict[str, Any], moto_endpoint: str, state_dir: Path
) -> None:
    session = _session(moto_endpoint)
    kms = session.client("kms", endpoint_url=moto_endpoint)
    s3 = session.client("s3", endpoint_url=moto_endpoint)
    for stack in STACK_PHASES:
        result = _verify(stack, moto_endpoint, state_dir)
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        reports = state_dir / "reports" / stack
        for name in ("json", "md", "html", "pdf"):
            prefix = "verify" if name == "json" else "compliance"
            assert (reports / f"{prefix}-{stack}.{name}").stat().st_size > 0
        assert (reports / f"diagram-{stack}.svg").read_text().startswith("<?xml")
        kept = out["history"]
        assert kept["signed"] and kept["archive_error"] is None
        # signed by the hub's ledger key in KMS and archived in its Object Lock bucket:
        # the core's, a layer's report too (a layer owns neither; it re-exports them)
        outputs = deployed_stacks[CORE].outputs
        for name in ("signingKeyArn", "auditBucketName"):
            assert deployed_stacks[stack].outputs[name] == outputs[name], (stack, name)
        pem = KmsHeadSigner(kms, outputs["signingKeyArn"]).public_key_pem()
        assert history.verify_kept(Path(kept["path"]), pem)
        for key in kept["archived"]:
            head = s3.head_object(Bucket=outputs["auditBucketName"], Key=key)
            assert head["ContentLength"] > 0
        assert f"compliance-reports/{stack}/{kept['digest']}.json" in kept["archived"]
        markdown = (reports / f"compliance-{stack}.md").read_text()
        assert "EMULATOR EVIDENCE" in markdown and "## Audit ledger integrity" in markdown
        assert f"![{stack}](diagram-{stack}.svg)" in markdown

    result = _hub("report", "--endpoint", moto_endpoint, "--state-dir", str(state_dir), "--json")
    assert result.exit_code == 0, result.output
    hub = json.loads(result.stdout)
    assert hub["passed"] and hub["history"]["signed"] and hub["scope"] == "hub"
    core = deployed_stacks[CORE].outputs
    pem = KmsHeadSigner(kms, core["signingKeyArn"]).public_key_pem()
    assert history.verify_kept(Path(hub["history"]["path"]), pem)
    html = (state_dir / "reports" / "hub" / "compliance-hub.html").read_text()
    for stack in STACK_PHASES:
        assert f'id="diagram-{stack}"' in html

    # a second run: two reports in the history, the second naming the first, with a diff
    first = json.loads(_verify(CORE, moto_endpoint, state_dir).stdout)["history"]
    entries = history.history_of(state_dir / "reports" / "history", CORE)
    assert len(entries) == 2 and entries[1]["previous"] == entries[0]["digest"]
    assert first["previous"] == entries[0]["digest"] and first["diff"]["changed"] == []
    markdown = (state_dir / "reports" / CORE / f"compliance-{CORE}.md").read_text()
    assert f"Previous: `{entries[0]['digest']}`" in markdown


def test_report_without_kept_reports_is_a_usage_error(state_dir: Path) -> None:
    result = _hub("report", "--state-dir", str(state_dir))
    assert result.exit_code == 2
    assert "run `hub verify --stack phase1-specialist` first" in result.output


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        action="ViewGroup",
        outcome=Outcome.ALLOW if n % 2 else Outcome.DENY,
        reason="member-views-open-group",
        actor="0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab",
        actor_reg_no="M20001",
        institution="harbour-cardiac-alliance",
        resource=f"Group::g{n}",
        actor_roles=("doctor",),
    )


@pytest.fixture
def core_ledger(deployed_stacks: dict[str, Any], moto_endpoint: str) -> Iterator[dict[str, Any]]:
    """Five audited actions in the core stack's deployed ledger, each head signed by its
    KMS key and archived in its Object Lock bucket, as the service writes them."""
    outputs = deployed_stacks[CORE].outputs
    session = _session(moto_endpoint)
    dynamodb = session.client("dynamodb", endpoint_url=moto_endpoint)
    ledger = build_ledger(
        dynamodb,
        outputs["tableNames"]["ledger"],
        kms=session.client("kms", endpoint_url=moto_endpoint),
        s3=session.client("s3", endpoint_url=moto_endpoint),
        signing_key_arn=outputs["signingKeyArn"],
        checkpoint_bucket=outputs["auditBucketName"],
        origin=CORE,
    )
    start = ledger.table.read_head().size if ledger.table.read_head() else 0
    for n in range(5):
        ledger.trail.append(_event(n))
        ledger.integrate()
    yield {"dynamodb": dynamodb, "table": outputs["tableNames"]["ledger"], "first": start}


def test_a_tampered_ledger_fails_verify_and_every_format_says_so(
    core_ledger: dict[str, Any], moto_endpoint: str, state_dir: Path
) -> None:
    intact = _verify(CORE, moto_endpoint, state_dir)
    assert intact.exit_code == 0, intact.output
    [ledger] = [
        c for c in json.loads(intact.stdout)["report"]["checks"] if c["id"] == "ledger.integrity"
    ]
    assert ledger["status"] == "pass" and ledger["data"]["entries"] >= 5
    bad_index = core_ledger["first"] + 2
    before, _ = tamper_entry(core_ledger["dynamodb"], core_ledger["table"], bad_index)
    try:
        result = _verify(CORE, moto_endpoint, state_dir)
        assert result.exit_code == 1, result.output
        out = json.loads(result.stdout)
        assert not out["passed"]
        assert out["failed_checks"] == [f"ledger.integrity (audit ledger {core_ledger['table']})"]
        [ledger] = [c for c in out["report"]["checks"] if c["id"] == "ledger.integrity"]
        assert ledger["data"]["first_bad_index"] == bad_index
        reports = state_dir / "reports" / CORE
        markdown = (reports / f"compliance-{CORE}.md").read_text()
        assert "Result: NOT verified" in markdown
        assert f"| first_bad_index | {bad_index} |" in markdown and "TAMPERED" in markdown
        html = (reports / f"compliance-{CORE}.html").read_text()
        assert "TAMPERED" in html and f"first bad index {bad_index}" in html
        pdf = reports / f"compliance-{CORE}.pdf"
        text = re.sub(
            r"\s+",
            " ",
            " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages),
        )
        assert "TAMPERED" in text and f"first_bad_index {bad_index}" in text
        # the diff against the intact run names the change
        change = {
            "check": "ledger.integrity",
            "resource": f"audit ledger {core_ledger['table']}",
            "from": "pass",
            "to": "fail",
        }
        assert change in out["history"]["diff"]["changed"]
    finally:
        _restore(core_ledger, bad_index, before)
    assert _verify(CORE, moto_endpoint, state_dir).exit_code == 0


def _restore(ledger: dict[str, Any], index: int, raw: bytes) -> None:
    from app.ledger.store import entry_key

    ledger["dynamodb"].update_item(
        TableName=ledger["table"],
        Key=entry_key(index),
        UpdateExpression="SET #e = :e",
        ExpressionAttributeNames={"#e": "entry"},
        ExpressionAttributeValues={":e": {"B": raw}},
    )
