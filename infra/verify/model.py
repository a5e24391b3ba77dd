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
    (``ISO 27799 10.1.2 Key management``...), from the control catalogue."""

    id: str
    title: str
    resource: str
    status: Status
    evidence: str
    controls: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "resource": self.resource,
            "status": str(self.status),
            "evidence": self.evidence,
            "controls": list(self.controls),
        }


@dataclass(frozen=True)
class VerifyReport:
    stack: str
    checks: list[CheckResult]
    endpoint: str | None = None
    generated_at: str = ""

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
            "checks": [c.to_dict() for c in self.checks],
        }
