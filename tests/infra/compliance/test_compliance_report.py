"""The assessor's report on plain data: header, ordering, gaps, the ledger control, three
formats, and the signed, content-addressed history with its diff."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ledger_data import signed_ledger, tampered
from pypdf import PdfReader

from infra.compliance import history
from infra.compliance.html import render_html
from infra.compliance.markdown import render_markdown
from infra.compliance.model import EMULATOR_BANNER, build_hub_report, build_report
from infra.compliance.pdf import render_pdf
from infra.compliance.write import write_hub_report, write_stack_report
from infra.controls.result import Status
from infra.verify.checks import CHECKS
from infra.verify.model import CheckResult, RunContext, VerifyReport
from infra.verify.rules import ledger_verifies

STACK = "phase1-specialist"
CONTEXT = RunContext(
    release="0.1.0+abc1234",
    program_version="0.1.0",
    commit="abc1234",
    deployed_release="0.1.0+abc1234",
    account_id="123456789012",
    region="ap-east-1",
    target="emulator",
    endpoint="http://127.0.0.1:5000",
    operator="ops-1",
    caller_arn="arn:aws:sts::123456789012:user/moto",
    phase=1,
)


def _check(
    check_id: str, resource: str, status: Status, evidence: str, data: Any = None
) -> CheckResult:
    return CheckResult(
        check_id,
        CHECKS[check_id].title,
        resource,
        status,
        evidence,
        [str(r) for r in CHECKS[check_id].requirements],
        data,
    )


def _ledger_check(ledger: dict[str, Any]) -> CheckResult:
    result = ledger_verifies("audit ledger hub-p1-ledger", ledger)
    return _check(
        "ledger.integrity", "audit ledger hub-p1-ledger", result.status, result.message, result.data
    )


def _report(
    *, ledger: dict[str, Any] | None = None, rotation: Status = Status.PASS
) -> VerifyReport:
    return VerifyReport(
        STACK,
        [
            _check(
                "keys.rotation_enabled",
                "records key k1",
                rotation,
                "k1: rotation",
                {"KeyRotationEnabled": rotation is Status.PASS},
            ),
            _check(
                "keys.enabled",
                "records key k1",
                Status.PASS,
                "k1: KeyState=Enabled",
                {"KeyState": "Enabled"},
            ),
            _check(
                "buckets.denies_insecure_transport",
                "hub-p1-shards",
                Status.PASS,
                "as declared (emulator gap: moto)",
            ),
            _check("cognito.mfa_on", "pool", Status.PASS, "pool: MFA ON"),
            _check("buckets.default_encryption", "hub-p1-shards", Status.PASS, "aws:kms k1"),
            _check("api.throttling", "v1", Status.PASS, "v1: 50/s burst 100"),
            _check("lambda.role_least_privilege", "fn", Status.PASS, "fn: no wildcard"),
            _check("logs.encrypted_retained", "/hub/logs", Status.PASS, "retained 365 days"),
            _check("buckets.access_logging", "logs", Status.NOT_APPLICABLE, "logs is the target"),
            _ledger_check(ledger if ledger is not None else signed_ledger()),
        ],
        endpoint="http://127.0.0.1:5000",
        generated_at="2026-01-01T00:00:00+00:00",
        context=CONTEXT,
    )


@dataclass
class _Gap:
    resource: str = "shard-policy"
    type: str = "aws:s3/bucketPolicy:BucketPolicy"
    property: str = "policy"
    not_enforced: str = "conditional statements were not handed to the emulator"
    reason: str = "moto ignores Condition blocks"
    covered_by: tuple[str, ...] = (
        "bucket-policy-denies-insecure-transport",
        "buckets.denies_insecure_transport",
    )


@dataclass
class _Record:
    stack: str = STACK
    resources: list[Any] = field(default_factory=list)
    gaps: list[Any] = field(default_factory=lambda: [_Gap()])


def _headings(markdown: str, level: str) -> list[str]:
    return [
        line[len(level) + 1 :] for line in markdown.splitlines() if line.startswith(level + " ")
    ]


# --- content and order ----------------------------------------------------------------------


def test_header_names_release_commit_account_region_target_time_and_operator() -> None:
    markdown = render_markdown(build_report(_report(), _Record()))
    for text in (
        "0.1.0+abc1234 (program 0.1.0, commit abc1234)",
        "123456789012 / ap-east-1",
        "emulator (http://127.0.0.1:5000)",
        "ops-1 as arn:aws:sts::123456789012:user/moto",
        "2026-01-01T00:00:00+00:00",
    ):
        assert text in markdown
    assert EMULATOR_BANNER in markdown
    # against AWS there is no banner
    aws = replace(CONTEXT, target="aws", endpoint=None)
    report = replace(_report(), context=aws)
    assert EMULATOR_BANNER not in render_markdown(build_report(report, _Record()))


def test_summary_and_scope_come_first() -> None:
    markdown = render_markdown(build_report(_report(), _Record()))
    sections = _headings(markdown, "##")
    assert sections[:2] == ["Executive summary", "Scope"]
    assert "Result: verified: 9 checks passed, 0 failed, 1 not applicable" in markdown


def test_frameworks_in_order_and_clauses_in_their_own_order() -> None:
    markdown = render_markdown(build_report(_report(), _Record()))
    frameworks = [
        h
        for h in _headings(markdown, "##")
        if h in ("ISO 27799", "Cap. 486", "CIS AWS", "AWS FSBP")
    ]
    assert frameworks == ["ISO 27799", "Cap. 486", "CIS AWS", "AWS FSBP"]
    iso = [h.split()[2] for h in _headings(markdown, "###") if h.startswith("ISO 27799")]
    key = [tuple(int(n) for n in ref.split(".")) for ref in iso]
    assert key == sorted(key)
    assert iso.index("9.4.2") < iso.index("12.4.1") < iso.index("18.1.4")
    cap = [h.split()[2] for h in _headings(markdown, "###") if h.startswith("Cap. 486")]
    assert next(c for c in cap if c.startswith("DPP")) == "DPP1"
    assert cap.index("DPP2(2)") < cap.index("DPP4(1)(d)") < cap.index("DPP6")
    cis = [h.split()[2] for h in _headings(markdown, "###") if h.startswith("CIS AWS")]
    assert cis == sorted(cis, key=lambda r: tuple(int(n) for n in r.split(".")))


def test_cap486_principles_carry_only_the_checks_that_evidence_them() -> None:
    markdown = render_markdown(build_report(_report(), _Record()))
    sections = re.split(r"^### ", markdown, flags=re.M)
    dpp = {s.split(":")[0]: s for s in sections if s.startswith("Cap. 486 DPP")}
    transmission = dpp["Cap. 486 DPP4(1)(e) Security"]
    assert "bucket-tls-only" in transmission and "mfa-required" not in transmission
    assert "mfa-required" in dpp["Cap. 486 DPP4(1)(d) Security"]
    assert (
        "not evidenced here"
        in dpp["Cap. 486 DPP1 Purpose and manner of collection of personal data"]
    )
    assert "legal basis" in dpp["Cap. 486 DPP1 Purpose and manner of collection of personal data"]
    # throttling is availability: under ISO 17.2.1, under no principle
    assert not any("api-throttling" in text for text in dpp.values())


def test_messaging_controls_evidence_their_cap486_clauses() -> None:
    """The homeserver's checks sit under the sub-clauses they evidence: the database's
    encryption under the equipment (DPP4(1)(c)), TLS to the database and on the
    balancers under transmission (DPP4(1)(e)), closed federation under use (DPP3), the
    location (DPP4(1)(b)), the persons with access (DPP4(1)(d)) and s33."""
    base = _report()
    messaging = [
        _check("messaging.database_encrypted", "hub-db", Status.PASS, "under the key"),
        _check("messaging.database_not_public", "hub-db", Status.PASS, "private"),
        _check("messaging.database_requires_tls", "hub-db", Status.PASS, "rds.force_ssl=1"),
        _check("messaging.listener_tls13", "public:443", Status.PASS, "HTTPS, TLS 1.3"),
        _check("messaging.federation_closed", "hub-homeserver", Status.PASS, "closed"),
    ]
    report = VerifyReport(
        STACK,
        [*base.checks, *messaging],
        endpoint=base.endpoint,
        generated_at=base.generated_at,
        context=CONTEXT,
    )
    markdown = render_markdown(build_report(report, _Record()))
    sections = re.split(r"^### ", markdown, flags=re.M)
    cap = {s.split(" ", 3)[2]: s for s in sections if s.startswith("Cap. 486 ")}
    assert "database-encryption" in cap["DPP4(1)(c)"]
    for control in ("database-tls-only", "load-balancer-tls13-only"):
        assert control in cap["DPP4(1)(e)"], control
        assert control not in cap["DPP4(1)"], control
    assert "database-not-public" in cap["DPP4(1)"]
    for clause in ("DPP3", "DPP4(1)(b)", "DPP4(1)(d)", "s33"):
        assert "homeserver-federation-closed" in cap[clause], clause
    # nothing of messaging is evidence of retention or openness
    for clause in ("DPP2(2)", "DPP5"):
        assert not any(c in cap.get(clause, "") for c in ("database-", "homeserver-")), clause


def test_each_control_shows_status_checks_evidence_data_gaps_and_remediation() -> None:
    report = build_report(_report(rotation=Status.FAIL), _Record())
    markdown = render_markdown(report)
    block = markdown[markdown.index("#### key-rotation: FAIL") :]
    block = block[: block.index("\n#### ")] if "\n#### " in block else block
    assert "| FAIL | keys.rotation_enabled | records key k1 | k1: rotation |" in block
    assert '`{"KeyRotationEnabled":false}`' in block
    assert CHECKS["keys.rotation_enabled"].remediation in block
    tls = markdown[markdown.index("#### bucket-tls-only: PASS") :]
    assert "Weakened by emulator gaps:" in tls.split("\n#### ")[0]
    # a requirement is as bad as its worst control
    assert "### ISO 27799 10.1.2 Key management: FAIL" in markdown


def test_gap_section_lists_each_gap_with_the_controls_it_weakens() -> None:
    report = build_report(_report(), _Record())
    assert [g.controls for g in report.gaps] == [("bucket-tls-only",)]
    markdown = render_markdown(report)
    section = markdown[markdown.index("## Emulator gaps") :]
    assert "shard-policy" in section and "bucket-tls-only" in section
    assert "moto ignores Condition blocks" in section


def test_ledger_control_shows_size_head_and_first_bad_index() -> None:
    intact = render_markdown(build_report(_report(), _Record()))
    section = intact[intact.index("## Audit ledger integrity") :]
    assert "### phase1-specialist: PASS" in section
    assert "| size | 6 |" in section and "last_signed_head" in section
    bad = build_report(_report(ledger=tampered(signed_ledger(), 3)), _Record())
    assert not bad.passed
    markdown = render_markdown(bad)
    assert "Result: NOT verified" in markdown
    section = markdown[markdown.index("## Audit ledger integrity") :]
    assert "### phase1-specialist: FAIL" in section
    assert "TAMPERED" in section and "| first_bad_index | 3 |" in section
    assert "| finding | modified at 3:" in section
    assert "#### audit-ledger-integrity: FAIL" in markdown


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.h3: list[str] = []
        self._in_h3 = False
        self.text: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(str(values["id"]))
        for name in ("src", "href"):
            if values.get(name) and "://" in str(values[name]):
                self.external.append(str(values[name]))
        self._in_h3 = tag == "h3"
        if self._in_h3:
            self.h3.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h3":
            self._in_h3 = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_h3:
            self.h3[-1] += data


def test_html_has_the_same_sections_escaped_and_self_contained() -> None:
    report = _report(ledger=tampered(signed_ledger(), 3))
    checks = [*report.checks, _check("keys.enabled", "<script>alert(1)</script>", Status.PASS, "x")]
    html = render_html(build_report(replace(report, checks=checks), _Record()))
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    parser = _Text()
    parser.feed(html)
    assert {"emulator-banner", "header", "summary", "scope", "ledger", "gaps"} <= set(parser.ids)
    iso = [h.split()[2] for h in parser.h3 if h.startswith("ISO 27799")]
    assert iso.index("9.4.2") < iso.index("18.1.4")
    text = " ".join(parser.text)
    assert "first_bad_index" in text and "TAMPERED" in text
    assert parser.external == []  # nothing to fetch: it reads the same offline


def test_pdf_renders_locally_with_header_banner_order_and_ledger() -> None:
    report = build_report(_report(ledger=tampered(signed_ledger(), 3)), _Record())
    pdf = render_pdf(report)
    assert pdf.startswith(b"%PDF")
    assert render_pdf(report) == pdf  # invariant: same report, same bytes
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    text = re.sub(r"\s+", " ", text)
    assert "EMULATOR EVIDENCE" in text
    assert "commit abc1234" in text and "123456789012 / ap-east-1" in text
    assert (
        text.index("Executive summary")
        < text.index("ISO 27799 9.")
        < text.index("Cap. 486 DPP1")
        < text.index("CIS AWS 1.16")
    )
    assert text.index("ISO 27799 9.4.2") < text.index("ISO 27799 18.1.4")
    assert "TAMPERED" in text and "first_bad_index 3" in text
    assert "Emulator gaps" in text


def test_hub_report_names_each_check_with_its_stack() -> None:
    one = _report()
    two = replace(_report(), stack="phase2-hospital-authority", context=replace(CONTEXT, phase=2))
    hub = build_hub_report([one, two], {STACK: _Record(), two.stack: _Record(stack=two.stack)})
    assert hub.header.stacks == (STACK, "phase2-hospital-authority")
    resources = {c.resource for c in hub.checks}
    assert "phase2-hospital-authority: records key k1" in resources
    assert [ledger.stack for ledger in hub.ledgers] == [STACK, "phase2-hospital-authority"]
    markdown = render_markdown(hub)
    assert "phase2-hospital-authority: release" in markdown


# --- history ------------------------------------------------------------------------------------


class _LocalSigner:
    """A P-256 signer standing in for the KMS key (the live tests use KMS itself)."""

    key_id = "local-p256"

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def test_two_runs_leave_two_signed_reports_the_second_with_a_diff(tmp_path: Path) -> None:
    signer = _LocalSigner()
    first = write_stack_report(
        _report(), _Record(), tmp_path / "out", state_dir=tmp_path, signer=signer
    )
    second_report = replace(_report(rotation=Status.FAIL), generated_at="2026-01-02T00:00:00+00:00")
    second = write_stack_report(
        second_report, _Record(), tmp_path / "out", state_dir=tmp_path, signer=signer
    )
    entries = history.history_of(tmp_path / "reports" / "history", STACK)
    assert [e["digest"] for e in entries] == [first.kept.digest, second.kept.digest]
    assert entries[1]["previous"] == first.kept.digest
    assert first.kept.diff == {} and first.kept.previous is None
    assert second.kept.diff["changed"] == [
        {
            "check": "keys.rotation_enabled",
            "resource": "records key k1",
            "from": "pass",
            "to": "fail",
        }
    ]
    for kept in (first.kept, second.kept):
        assert kept.path.name == f"{kept.digest}.json" and kept.signed
        assert history.verify_kept(kept.path, signer.public_key_pem())
    # the rendered report says where it sits in the history and what changed
    markdown = (tmp_path / "out" / f"compliance-{STACK}.md").read_text()
    assert f"Previous: `{first.kept.digest}`" in markdown
    assert "keys.rotation_enabled on records key k1: PASS -> FAIL" in markdown
    for suffix in ("md", "html", "pdf"):
        assert (tmp_path / "out" / f"compliance-{STACK}.{suffix}").stat().st_size > 0


def test_a_kept_report_edited_afterwards_no_longer_verifies(tmp_path: Path) -> None:
    signer = _LocalSigner()
    kept = history.keep(_report().to_dict(), STACK, tmp_path, signer=signer)
    assert history.verify_kept(kept.path, signer.public_key_pem())
    edited = json.loads(kept.path.read_text())
    edited["passed"] = not edited["passed"]
    kept.path.write_bytes(history.canonical(edited))
    assert not history.verify_kept(kept.path, signer.public_key_pem())
    # a signature by another key does not verify either
    kept2 = history.keep(_report().to_dict(), "other", tmp_path, signer=_LocalSigner())
    assert not history.verify_kept(kept2.path, signer.public_key_pem())


def test_signed_text_cannot_be_taken_for_a_ledger_checkpoint() -> None:
    message = history.signed_message(STACK, "ab" * 32)
    assert message.startswith(b"health-hub/compliance-report/v1\n")
    assert not message.startswith(b"health-hub/ledger/")
    with pytest.raises(ValueError):
        history.signed_message("two\nlines", "ab" * 32)


def test_a_refused_signature_keeps_the_report_unsigned_and_says_why(tmp_path: Path) -> None:
    class Refusing(_LocalSigner):
        def sign(self, message: bytes) -> bytes:
            raise PermissionError("AccessDeniedException: not allowed kms:Sign")

    kept = history.keep(_report().to_dict(), STACK, tmp_path, signer=Refusing())
    assert kept.path.is_file() and not kept.signed
    assert "kms:Sign" in json.loads(kept.signature_path.read_text())["unsigned"]
    assert not history.verify_kept(kept.path)


def test_hub_report_is_kept_in_its_own_history(tmp_path: Path) -> None:
    records = {STACK: _Record()}
    written = write_hub_report(
        [_report()], records, tmp_path / "hub", state_dir=tmp_path, signer=_LocalSigner()
    )
    assert written.kept.scope == "hub" and written.kept.signed
    assert {p.name for p in written.paths} >= {
        "compliance-hub.json",
        "compliance-hub.md",
        "compliance-hub.html",
        "compliance-hub.pdf",
    }
