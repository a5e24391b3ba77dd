"""Collecting check results: each rule's answer bound to its catalogue entry.

Evaluation (``infra.verify.evaluate``) hands each rule's inputs to
:meth:`CheckResults.add` together with the rule; the collector decides whether the rule
may run at all. :func:`read` walks into a snapshot without losing track of parts that
were missing or could not be read.

Guarantees: a rule whose input was unreadable (the collector's ``unreadable`` marker)
or missing from the snapshot is not run: the check fails, naming the reason. Every
result carries the title and the requirements of its check from ``infra.verify.checks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from infra.controls.result import Result, failed
from infra.verify.checks import spec
from infra.verify.collect import unreadable_reason
from infra.verify.model import CheckResult

# What a snapshot holds where the deployment lacks a resource its outputs name.
MISSING: Any = object()


def read(part: Any, key: str) -> Any:
    """``part[key]``; :data:`MISSING` if absent; an unreadable or missing ``part`` as is."""
    if part is MISSING or unreadable_reason(part):
        return part
    if not isinstance(part, Mapping) or key not in part:
        return MISSING
    return part[key]


def read_present(snapshot: Mapping[str, Any], key: str) -> Any:
    """``snapshot[key]``, or :data:`MISSING` when it is absent or None."""
    value = snapshot.get(key)
    return MISSING if value is None else value


def unavailable(value: Any) -> bool:
    """Whether ``value`` is missing or unreadable."""
    return value is MISSING or bool(unreadable_reason(value))


def fixed(result: Result) -> Result:
    """A rule that answers ``result`` (an answer decided without reading AWS state)."""
    return result


class CheckResults:
    """Collects results, failing checks whose inputs could not be read or are missing."""

    def __init__(self) -> None:
        self.items: list[CheckResult] = []

    def add(
        self,
        check_id: str,
        resource: str,
        inputs: Sequence[Any],
        rule: Callable[..., Result],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Record ``rule(*args, **kwargs)`` for ``resource``, unless one of ``inputs``
        (the collected data the rule reads) is unreadable or missing."""
        entry = spec(check_id)
        reasons = [r for r in (unreadable_reason(i) for i in inputs) if r]
        if reasons:
            outcome = failed(f"{resource}: could not read the configuration: {reasons[0]}")
        elif any(i is MISSING for i in inputs):
            outcome = failed(f"{resource}: not found in the deployment")
        else:
            outcome = rule(*args, **kwargs)
        self.items.append(
            CheckResult(
                check_id,
                entry.title,
                resource,
                outcome.status,
                outcome.message,
                [str(r) for r in entry.requirements],
                dict(outcome.data) if outcome.data is not None else evidence_data(inputs),
            )
        )


# Keys whose values never stand as evidence: a function's environment may carry
# configuration an assessor need not see, and secret-named values are secrets.
_WITHHELD = {"environment", "clientsecret", "password", "secretaccesskey", "privatekey"}
_MAX_TEXT = 2000


def evidence_data(inputs: Sequence[Any]) -> Any:
    """What the rule read, as evidence: the collected values (one, or a list), with
    function environments and secret-named values withheld and long texts cut."""

    def clean(value: Any) -> Any:
        if value is MISSING:
            return None
        if isinstance(value, Mapping):
            return {
                str(k): "[withheld]" if str(k).lower().replace("_", "") in _WITHHELD else clean(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, str) and len(value) > _MAX_TEXT:
            return value[:_MAX_TEXT] + f"... [{len(value) - _MAX_TEXT} more characters]"
        return value

    cleaned = [clean(i) for i in inputs]
    if not cleaned:
        return None
    return cleaned[0] if len(cleaned) == 1 else cleaned
