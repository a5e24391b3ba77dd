"""Reading a deployment record: its resources, their declared inputs, and its gaps.

A record comes from whatever deployed the stack (the emulator's ``DeploymentRecord``, or
an export of a real stack) and may use either shape for each field: the brief's
(``physical_id``, ``declared``, ``why``) or the emulator's (``id``, ``inputs``,
``reason``), as mapping keys or attributes. This module is the only place that knows
those shapes.

Guarantees: a declared value is only ever offered in place of a live one together with
the gap the record carries for it (:class:`Declared`); without a gap, nothing declared
is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.verify.model import DeploymentRecordLike

BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
REST_API = "aws:apigateway/restApi:RestApi"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
DB_INSTANCE = "aws:rds/instance:Instance"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
BACKUP_SELECTION = "aws:backup/selection:Selection"


@dataclass(frozen=True)
class Declared:
    """A declared value standing in for a live one the emulator could not hold."""

    value: Any
    why: str


def _field(item: Any, *names: str) -> Any:
    """The first of ``names`` present on ``item`` (a mapping or an object), else None."""
    for name in names:
        value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
        if value is not None:
            return value
    return None


def resource_type(resource: Any) -> str:
    return str(_field(resource, "type") or "")


def logical_name(resource: Any) -> str:
    return str(_field(resource, "name") or "")


def physical_id(resource: Any) -> str:
    return str(_field(resource, "physical_id", "id") or "")


def declared_inputs(resource: Any) -> Mapping[str, Any]:
    declared = _field(resource, "declared", "inputs")
    return declared if isinstance(declared, Mapping) else {}


def resources_of(record: DeploymentRecordLike, type_token: str) -> list[Any]:
    return [r for r in record.resources if resource_type(r) == type_token]


def physical_names(record: DeploymentRecordLike, type_token: str) -> list[str]:
    """The physical names of the record's resources of ``type_token``, in record order."""
    names = []
    for resource in resources_of(record, type_token):
        name = physical_id(resource) or declared_inputs(resource).get("name")
        if name:
            names.append(str(name))
    return names


def _norm(text: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text or "").lower())


def find_gap(
    gaps: Iterable[Any], names: Iterable[str], properties: Iterable[str], *, type_token: str = ""
) -> Any:
    """The gap recorded for one of ``names`` (logical name, physical id...) or for every
    resource of ``type_token`` (``resource: "*"``), on one of ``properties``.

    Properties compare case- and punctuation-insensitively; a gap property naming
    several (``securityPolicy/endpointAccessMode``) matches any of them.
    """
    wanted_names = {n for n in names if n}
    wanted_props = {_norm(p) for p in properties}
    for gap in gaps:
        resource = str(_field(gap, "resource") or "")
        gap_type = str(_field(gap, "type") or "")
        if resource not in wanted_names and not (
            resource == "*" and type_token and gap_type == type_token
        ):
            continue
        if type_token and gap_type and gap_type != type_token:
            continue
        props = {_norm(p) for p in re.split(r"[/,]", str(_field(gap, "property") or ""))}
        if props & wanted_props:
            return gap
    return None


def _gap_why(gap: Any) -> str:
    parts = [str(p) for p in (_field(gap, "why"), _field(gap, "reason")) if p]
    why = parts[0] if parts else "not enforced by the emulator"
    return why.split(",")[0].split(";")[0].strip()


def declared_bucket_policies(
    record: DeploymentRecordLike, buckets: Iterable[str]
) -> dict[str, Declared]:
    """Bucket name -> the declared policy, for the buckets whose policy the record says
    the emulator could not hold whole."""
    wanted = set(buckets)
    found: dict[str, Declared] = {}
    for resource in resources_of(record, BUCKET_POLICY):
        declared = declared_inputs(resource)
        bucket = str(declared.get("bucket", ""))
        if bucket not in wanted:
            continue
        gap = find_gap(
            record.gaps,
            [logical_name(resource), physical_id(resource), bucket],
            ["policy", "bucketPolicy"],
            type_token=BUCKET_POLICY,
        )
        if gap is not None and declared.get("policy") is not None:
            found[bucket] = Declared(declared["policy"], _gap_why(gap))
    return found


def declared_security_policy(record: DeploymentRecordLike, api_id: str | None) -> Declared | None:
    """The REST API's declared TLS security policy, if the record says the emulator does
    not store it."""
    for resource in resources_of(record, REST_API):
        if api_id and physical_id(resource) not in ("", api_id):
            continue
        gap = find_gap(
            record.gaps,
            [logical_name(resource), physical_id(resource), str(api_id or "")],
            ["securityPolicy"],
            type_token=REST_API,
        )
        if gap is not None:
            return Declared(declared_inputs(resource).get("securityPolicy"), _gap_why(gap))
    return None


# The property the emulator's database key gap names (infra.emulator.gaps, which
# imports it from here: the record's vocabulary is verify's, spelt once).
DATABASE_KEY_ELSEWHERE = "kmsKeyId on another emulator"


def declared_database_keys(record: DeploymentRecordLike) -> dict[str, Declared]:
    """Per database instance (physical name), its declared storage key, where the record
    says the key lives on another emulator than RDS (the LocalStack tier)."""
    out = {}
    for resource in resources_of(record, DB_INSTANCE):
        gap = find_gap(
            record.gaps,
            [logical_name(resource), physical_id(resource)],
            [DATABASE_KEY_ELSEWHERE],
            type_token=DB_INSTANCE,
        )
        if gap is not None:
            key = declared_inputs(resource).get("kmsKeyId")
            out[physical_id(resource)] = Declared(key, _gap_why(gap))
    return out


def declared_backup_selection(record: DeploymentRecordLike) -> Declared | None:
    """The resources every declared backup selection names, if the record says the
    emulator holds no selections (moto has none)."""
    selected: list[Any] = []
    why = ""
    for resource in resources_of(record, BACKUP_SELECTION):
        gap = find_gap(
            record.gaps,
            [logical_name(resource), physical_id(resource)],
            ["resources"],
            type_token=BACKUP_SELECTION,
        )
        if gap is None:
            return None
        why = _gap_why(gap)
        selected.extend(declared_inputs(resource).get("resources") or [])
    return Declared(selected, why) if why else None
