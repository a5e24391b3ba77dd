"""The one result type every check returns, pre-deploy and post-deploy.

A rule (a policy-pack rule over declared inputs, or a verify rule over what boto3
returned) answers with a :class:`Result`: one :class:`Status` out of three, and a
message that names the resource and the values the answer rests on.

Guarantees: there are exactly three statuses, spelled ``pass``, ``fail`` and
``not_applicable`` everywhere (rules, findings, reports, JSON); ``Status`` is a ``str``
enum, so a status compares equal to its spelling and serialises as it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Result:
    """What a rule decided about one resource, and why.

    ``resource`` names the subject when one rule answers for several resources (the
    pack's stack rules); a rule about a single resource leaves it empty. ``data`` is the
    evidence as data (JSON-able values), for a rule whose inputs are too large or too
    sensitive to stand as evidence themselves (the audit ledger's entries).
    """

    status: Status
    message: str
    resource: str = ""
    data: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL

    @property
    def not_applicable(self) -> bool:
        return self.status is Status.NOT_APPLICABLE


def passed(message: str, resource: str = "", data: Mapping[str, Any] | None = None) -> Result:
    return Result(Status.PASS, message, resource, data)


def failed(message: str, resource: str = "", data: Mapping[str, Any] | None = None) -> Result:
    return Result(Status.FAIL, message, resource, data)


def not_applicable(
    message: str, resource: str = "", data: Mapping[str, Any] | None = None
) -> Result:
    return Result(Status.NOT_APPLICABLE, message, resource, data)
