"""The assessor's compliance report as data: what every rendering (Markdown, HTML, PDF) shows.

:func:`build_report` turns one stack's verification (``infra.verify``) and its deployment
record into a :class:`ComplianceReport`; :func:`build_hub_report` does the same for the
three stacks at once (every check named with its stack). The sections, in order:

1. the header: release (program version and commit), account, region, target (AWS or
   the emulator, which gets a banner), time, who ran it;
2. an executive summary (verdict, counts, failing checks, the audit ledger's state, the
   emulator's gaps) and the scope (what was read, what this report cannot show);
3. the frameworks in the catalogue's order, each requirement in the framework's own
   clause order (:meth:`~infra.controls.catalogue.Requirement.sort_key`), each with the
   controls that evidence it; Cap. 486 principles no deployment check evidences say
   where the project meets them (:data:`~infra.controls.catalogue.BEYOND_DEPLOYMENT`);
4. per control: its status, its checks with their evidence (the message and the data
   read), the emulator gaps that weaken it and the remediation of its checks;
5. the audit ledger's integrity (the ``ledger.integrity`` check's data);
6. every emulator gap with the controls it weakens and the checks that cover it;
7. the changes since the previous report (filled in by ``infra.compliance.history``).

Guarantees: a control's status is FAIL if any of its checks failed, PASS if any passed
and none failed, otherwise n/a; a requirement's status is its controls' worst. Nothing
here reads AWS: the report is a pure function of the verification, the record and the
catalogue, so it can be rebuilt from a kept report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.controls import catalogue
from infra.controls.catalogue import Control, Framework, Requirement
from infra.controls.result import Status
from infra.verify.checks import CHECKS
from infra.verify.model import CheckResult, RunContext, VerifyReport

LEDGER_CHECK = "ledger.integrity"
# How a status is shown to a reader; data keeps the status itself.
MARK = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.NOT_APPLICABLE: "n/a"}

EMULATOR_BANNER = (
    "EMULATOR EVIDENCE: these checks ran against an AWS emulator, not an AWS account. "
    "Where the emulator cannot enforce a declared property (the gaps below), the check "
    "read the declared configuration instead; such evidence is weaker than AWS's and must "
    "be confirmed against the real deployment."
)


@dataclass(frozen=True)
class GapView:
    """One emulator gap, as the report shows it."""

    stack: str
    resource: str
    type: str
    property: str
    not_enforced: str
    reason: str
    covered_by: tuple[str, ...]
    controls: tuple[str, ...]  # control ids it weakens

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "resource": self.resource,
            "type": self.type,
            "property": self.property,
            "not_enforced": self.not_enforced,
            "reason": self.reason,
            "covered_by": list(self.covered_by),
            "controls": list(self.controls),
        }


@dataclass(frozen=True)
class ControlView:
    control: Control
    status: Status
    checks: tuple[CheckResult, ...]
    gaps: tuple[GapView, ...]
    remediation: tuple[tuple[str, str], ...]  # (check id, remediation), failing first


@dataclass(frozen=True)
class RequirementView:
    requirement: Requirement
    status: Status | None  # None: no control of this deployment evidences it
    controls: tuple[ControlView, ...]
    note: str = ""  # where the project meets it instead, when no check can


@dataclass(frozen=True)
class FrameworkView:
    framework: Framework
    requirements: tuple[RequirementView, ...]


@dataclass(frozen=True)
class LedgerView:
    stack: str
    status: Status
    evidence: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Header:
    title: str
    stacks: tuple[str, ...]
    generated_at: str
    contexts: Mapping[str, RunContext]  # stack -> who ran what, where

    @property
    def emulated(self) -> bool:
        return any(c.emulated for c in self.contexts.values()) or not self.contexts


@dataclass
class ComplianceReport:
    header: Header
    passed: bool
    counts: dict[str, int]
    failed: tuple[CheckResult, ...]
    scope: tuple[str, ...]
    frameworks: tuple[FrameworkView, ...]
    ledgers: tuple[LedgerView, ...]
    gaps: tuple[GapView, ...]
    checks: tuple[CheckResult, ...]
    diagrams: dict[str, str] = field(default_factory=dict)  # stack -> SVG text
    history: dict[str, Any] = field(default_factory=dict)  # digest, previous, diff

    @property
    def verdict(self) -> str:
        return "verified" if self.passed else "NOT verified"

    def detailed_under(self) -> dict[str, str]:
        """Control id -> the requirement under which its checks are shown in full (its
        first appearance); later appearances refer to it instead of repeating them."""
        first: dict[str, str] = {}
        for framework in self.frameworks:
            for req in framework.requirements:
                for view in req.controls:
                    first.setdefault(view.control.id, str(req.requirement))
        return first


def _worst(statuses: Iterable[Status]) -> Status:
    seen = set(statuses)
    if Status.FAIL in seen:
        return Status.FAIL
    if Status.PASS in seen:
        return Status.PASS
    return Status.NOT_APPLICABLE


def _gap_field(gap: Any, *names: str) -> Any:
    for name in names:
        value = gap.get(name) if isinstance(gap, Mapping) else getattr(gap, name, None)
        if value is not None:
            return value
    return None


def _controls_covered(covered_by: Sequence[str]) -> tuple[str, ...]:
    """The controls whose checks (verify check ids or policy-pack names) cover a gap."""
    from infra.policies.pack import BINDINGS

    by_policy = {b.name: b.controls for b in BINDINGS} | {b.rule_name: b.controls for b in BINDINGS}
    ids: list[str] = []
    for name in covered_by:
        controls = CHECKS[name].controls if name in CHECKS else by_policy.get(name, ())
        ids += [c.id for c in controls if c.id not in ids]
    return tuple(ids)


def gap_views(stack: str, gaps: Iterable[Any]) -> tuple[GapView, ...]:
    views = []
    for gap in gaps:
        covered = tuple(str(c) for c in (_gap_field(gap, "covered_by") or ()))
        views.append(
            GapView(
                stack=stack,
                resource=str(_gap_field(gap, "resource") or ""),
                type=str(_gap_field(gap, "type") or ""),
                property=str(_gap_field(gap, "property") or ""),
                not_enforced=str(_gap_field(gap, "not_enforced") or ""),
                reason=str(_gap_field(gap, "reason", "why") or ""),
                covered_by=covered,
                controls=_controls_covered(covered),
            )
        )
    return tuple(sorted(views, key=lambda g: (g.stack, g.type, g.resource, g.property)))


def _control_views(
    checks: Sequence[CheckResult], gaps: Sequence[GapView]
) -> dict[str, ControlView]:
    by_control: dict[str, list[CheckResult]] = {}
    for check in checks:
        for control in CHECKS[check.id].controls:
            by_control.setdefault(control.id, []).append(check)
    views = {}
    for control in catalogue.CONTROLS:
        found = by_control.get(control.id)
        if not found:
            continue
        order = {Status.FAIL: 0, Status.PASS: 1, Status.NOT_APPLICABLE: 2}
        ordered = tuple(sorted(found, key=lambda c: (order[c.status], c.id, c.resource)))
        remediation: list[tuple[str, str]] = []
        for check in ordered:
            entry = (check.id, CHECKS[check.id].remediation)
            if entry not in remediation:
                remediation.append(entry)
        views[control.id] = ControlView(
            control=control,
            status=_worst(c.status for c in found),
            checks=ordered,
            gaps=tuple(g for g in gaps if control.id in g.controls),
            remediation=tuple(remediation),
        )
    return views


def _frameworks(controls: Mapping[str, ControlView]) -> tuple[FrameworkView, ...]:
    frameworks = []
    for framework in Framework:
        requirements = sorted(
            (r for r in catalogue.REQUIREMENTS if r.framework is framework),
            key=Requirement.sort_key,
        )
        views = []
        for requirement in requirements:
            evidencing = tuple(
                view for view in controls.values() if requirement in view.control.requirements
            )
            note = catalogue.BEYOND_DEPLOYMENT.get(requirement, "")
            if not evidencing and not note:
                continue  # a requirement of the catalogue no check of this run reached
            views.append(
                RequirementView(
                    requirement=requirement,
                    status=_worst(v.status for v in evidencing) if evidencing else None,
                    controls=evidencing,
                    note=note,
                )
            )
        frameworks.append(FrameworkView(framework, tuple(views)))
    return tuple(frameworks)


def _scope(
    stacks: Sequence[str], records: Mapping[str, Any], checks: Sequence[CheckResult]
) -> tuple[str, ...]:
    lines = []
    for stack in stacks:
        record = records.get(stack)
        resources = list(getattr(record, "resources", []) or [])
        components = sorted({str(getattr(r, "component", "") or "") for r in resources} - {""})
        lines.append(
            f"{stack}: {len(resources)} deployed resources"
            + (f" in components {', '.join(components)}" if components else "")
            + f"; {sum(1 for c in checks if c.resource.startswith(stack) or len(stacks) == 1)}"
            " check results read live through Describe/Get/List calls (never data objects)."
        )
    lines += [
        "The audit ledger is verified as hub audit verify does it: every signed head's "
        "signature, consistency between successive heads, and every entry's inclusion.",
        "Out of scope: the service's own behaviour (authorization decisions, crypto, "
        "records) is evidenced by its test suite, not by this report; Cap. 486 principles "
        "that no deployment setting can show say where they are met instead.",
    ]
    return tuple(lines)


def _ledgers(stack_of: Mapping[int, str], checks: Sequence[CheckResult]) -> tuple[LedgerView, ...]:
    return tuple(
        LedgerView(stack_of[id(c)], c.status, c.evidence, dict(c.data or {}))
        for c in checks
        if c.id == LEDGER_CHECK
    )


def build_hub_report(
    reports: Sequence[VerifyReport], records: Mapping[str, Any], *, title: str | None = None
) -> ComplianceReport:
    """One report over several stacks' verifications (each check named with its stack
    when there is more than one) and their records' gaps."""
    multi = len(reports) > 1
    checks: list[CheckResult] = []
    stack_of: dict[int, str] = {}
    gaps: list[GapView] = []
    for report in reports:
        for check in report.checks:
            if multi:
                check = CheckResult(
                    check.id,
                    check.title,
                    f"{report.stack}: {check.resource}",
                    check.status,
                    check.evidence,
                    check.controls,
                    check.data,
                )
            checks.append(check)
            stack_of[id(check)] = report.stack
        record = records.get(report.stack)
        gaps += gap_views(report.stack, getattr(record, "gaps", []) or [])
    stacks = tuple(r.stack for r in reports)
    controls = _control_views(checks, gaps)
    counts = {str(s): sum(1 for c in checks if c.status == s) for s in Status}
    failed = tuple(c for c in checks if c.status == Status.FAIL)
    generated = max((r.generated_at for r in reports), default="")
    header = Header(
        title=title
        or (
            f"Compliance report: {stacks[0]}" if len(stacks) == 1 else "Compliance report: the hub"
        ),
        stacks=stacks,
        generated_at=generated,
        contexts={r.stack: r.context for r in reports if r.context is not None},
    )
    return ComplianceReport(
        header=header,
        passed=bool(checks) and not failed and all(r.passed for r in reports),
        counts=counts,
        failed=failed,
        scope=_scope(stacks, records, checks),
        frameworks=_frameworks(controls),
        ledgers=_ledgers(stack_of, checks),
        gaps=tuple(sorted(gaps, key=lambda g: (g.stack, g.type, g.resource, g.property))),
        checks=tuple(checks),
    )


def build_report(report: VerifyReport, record: Any) -> ComplianceReport:
    """The compliance report of one stack."""
    return build_hub_report([report], {report.stack: record})
