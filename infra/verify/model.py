"""The data that post-deploy verification takes in and hands out.

Input: a deployment record (whatever wrote it: the emulator, or an export of a real
stack), typed here as a structural :class:`DeploymentRecordLike` so verification does
not depend on the emulator package. Output: a :class:`VerifyReport` of
:class:`CheckResult` values, one per (check, resource), each carrying the evidence it
was decided on and the controls it evidences.

Statuses are the one vocabulary of :class:`infra.controls.result.Status` (``pass``,
``fail``, ``not_applicable``); rules return :class:`infra.controls.result.Result`.

Guarantees: a report with no checks, or with any failed check, does not pass; results
are plain, JSON-able values (``to_dict``), so reports can be written and compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.controls.result import Status


class DeploymentRecordLike(Protocol):
    """What verification reads from a deployment record.

    Each resource has ``type``, ``name`` (logical), ``physical_id`` (or ``id``) and
    ``declared`` (or ``inputs``: the declared inputs, camelCase), as keys or attributes.
    Each gap has ``resource`` (a logical name, or ``*`` with ``type``), ``property``,
    ``why`` (or ``reason``) and ``covered_by``, as keys or attributes.
    """

    @property
    def stack(self) -> str: ...

    @property
    def outputs(self) -> Mapping[str, Any]: ...

    @property
    def resources(self) -> Sequence[Any]: ...

    @property
    def gaps(self) -> Sequence[Any]: ...


@dataclass(frozen=True)
class CheckResult:
    """One check's result on one resource; ``controls`` are the requirements it evidences
    (``ISO 27799 10.1.2 Key management``...), from the control catalogue; ``data`` is the
    evidence as data: what was read from the deployment and decided on (secret-named
    values and function environments left out), or the rule's own summary."""

    id: str
    title: str
    resource: str
    status: Status
    evidence: str
    controls: list[str] = field(default_factory=list)
    data: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "resource": self.resource,
            "status": str(self.status),
            "evidence": self.evidence,
            "controls": list(self.controls),
            "data": self.data,
        }


@dataclass(frozen=True)
class RunContext:
    """Who verified what, where, with which program: the header a report carries.

    ``release`` is the program that ran the checks (version, commit, ``-dirty`` for
    local edits); ``deployed_release`` the one the deployment record says was deployed.
    ``target`` is ``aws`` or ``emulator``; an emulator's evidence is weaker than AWS's
    (its gaps), and reports say so in a banner.
    """

    release: str
    program_version: str
    commit: str | None
    deployed_release: str
    account_id: str
    region: str
    target: str
    endpoint: str | None
    operator: str
    caller_arn: str | None
    phase: int | None = None

    @property
    def emulated(self) -> bool:
        return self.target != "aws"

    def to_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "program_version": self.program_version,
            "commit": self.commit,
            "deployed_release": self.deployed_release,
            "account_id": self.account_id,
            "region": self.region,
            "target": self.target,
            "endpoint": self.endpoint,
            "operator": self.operator,
            "caller_arn": self.caller_arn,
            "phase": self.phase,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunContext:
        return cls(
            release=str(data.get("release", "")),
            program_version=str(data.get("program_version", "")),
            commit=data.get("commit"),
            deployed_release=str(data.get("deployed_release", "")),
            account_id=str(data.get("account_id", "")),
            region=str(data.get("region", "")),
            target=str(data.get("target", "emulator")),
            endpoint=data.get("endpoint"),
            operator=str(data.get("operator", "")),
            caller_arn=data.get("caller_arn"),
            phase=data.get("phase"),
        )


@dataclass(frozen=True)
class VerifyReport:
    stack: str
    checks: list[CheckResult]
    endpoint: str | None = None
    generated_at: str = ""
    context: RunContext | None = None

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == Status.FAIL]

    @property
    def passed(self) -> bool:
        """True only if at least one check ran and none failed."""
        return bool(self.checks) and not self.failed

    def counts(self) -> dict[str, int]:
        """How many checks have each status, keyed by its spelling."""
        return {str(s): sum(1 for c in self.checks if c.status == s) for s in Status}

    def result(self, check_id: str, resource: str) -> CheckResult:
        """The result of ``check_id`` on ``resource``; KeyError if there is none."""
        for check in self.checks:
            if check.id == check_id and check.resource == resource:
                return check
        raise KeyError((check_id, resource))

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "endpoint": self.endpoint,
            "generated_at": self.generated_at,
            "passed": self.passed,
            "counts": self.counts(),
            "context": self.context.to_dict() if self.context else None,
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerifyReport:
        """A report read back from its JSON (``to_dict``), e.g. from the history."""
        context = data.get("context")
        return cls(
            stack=str(data["stack"]),
            checks=[
                CheckResult(
                    id=str(c["id"]),
                    title=str(c["title"]),
                    resource=str(c["resource"]),
                    status=Status(c["status"]),
                    evidence=str(c["evidence"]),
                    controls=list(c.get("controls", [])),
                    data=c.get("data"),
                )
                for c in data.get("checks", [])
            ],
            endpoint=data.get("endpoint"),
            generated_at=str(data.get("generated_at", "")),
            context=RunContext.from_dict(context) if isinstance(context, Mapping) else None,
        )
