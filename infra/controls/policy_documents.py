"""Predicates over IAM and resource policy documents, the same for declared and live ones.

The policy pack reads documents from what the program declares (JSON text or mappings
in a resource's inputs); verification reads them from boto3 replies. Both hand the
document to the functions here, so one statement means one answer whichever side reads
it. Nothing here knows about Pulumi, boto3, resources or reports.

Matching follows IAM: ``*`` and ``?`` are the only wildcards (no character classes);
action names and condition keys ignore case, ARNs do not.

Guarantees: every predicate fails closed. A document that cannot be read is ``None``
from :func:`policy_statements`, and a statement that only might deny (a pattern that
covers some but not every action or object, a condition on another key) does not count
as a deny.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

# Data stores whose grants must name actions one by one.
DATA_STORE_SERVICES = frozenset({"s3", "dynamodb", "kms"})

# (where: the statement's Sid, else its index; what is wrong with it)
Problem = tuple[str, str]


def as_list(value: Any) -> list[Any]:
    """A policy field that may hold one value or a list, as a list."""
    if value is None:
        return []
    if isinstance(value, str | Mapping):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def is_true(value: Any) -> bool:
    # The engine may hand booleans over as strings when they came from config.
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value: Any) -> bool:
    """Whether a condition value (one or a list) holds false, as a bool or a string."""
    return any(v is False or str(v).lower() == "false" for v in as_list(value))


def policy_statements(document: Any) -> list[Mapping[str, Any]] | None:
    """The statements of a policy given as JSON text or a mapping.

    Returns None when the document cannot be read as a policy at all.
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return None
    if not isinstance(document, Mapping):
        return None
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


# --- matching -----------------------------------------------------------------------------


@cache
def _glob(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _glob_matches(pattern: str, value: str) -> bool:
    return _glob(pattern).fullmatch(value) is not None


def _glob_covers_prefix(pattern: str, prefix: str) -> bool:
    """Whether ``pattern`` matches every string that starts with ``prefix``.

    Such a pattern ends in ``*`` and, without its trailing stars, matches some leading
    part of ``prefix`` (the star then absorbs the rest). Anything else leaves some string
    unmatched, or needs at least one more character (``s3:?*``): not covered.
    """
    stem = pattern.rstrip("*")
    if stem == pattern:
        return False
    return any(_glob_matches(stem, prefix[:end]) for end in range(len(prefix) + 1))


def action_matches(patterns: Iterable[Any], action: str) -> bool:
    """Whether an action pattern names ``action``; IAM action names ignore case."""
    return any(_glob_matches(str(p).lower(), action.lower()) for p in patterns)


def actions_cover_service(patterns: Iterable[Any], service: str) -> bool:
    """Whether the patterns name every action of ``service`` (``s3:*``, ``*``, ``s*``...)."""
    return any(_glob_covers_prefix(str(p).lower(), f"{service.lower()}:") for p in patterns)


def resource_matches(patterns: Iterable[Any], arn: str) -> bool:
    """Whether an ARN pattern (case-sensitive) matches ``arn``."""
    return any(_glob_matches(str(p), arn) for p in patterns)


def resources_cover_prefix(patterns: Iterable[Any], prefix: str) -> bool:
    """Whether the patterns match every ARN under ``prefix`` (every object of a bucket)."""
    return any(_glob_covers_prefix(str(p), prefix) for p in patterns)


def principals(principal: Any) -> list[str]:
    """The AWS principals a statement names (``*`` for everyone)."""
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        return [str(p) for p in as_list(principal.get("AWS"))]
    return []


def principal_is_everyone(principal: Any) -> bool:
    return "*" in principals(principal)


def condition_value(condition: Any, operator: str, key: str) -> Any:
    """The value of ``key`` under ``operator``; condition keys ignore case in IAM."""
    if not isinstance(condition, Mapping):
        return None
    block = condition.get(operator)
    if not isinstance(block, Mapping):
        return None
    return next((v for k, v in block.items() if str(k).lower() == key.lower()), None)


def condition_values(condition: Any, key: str) -> list[Any]:
    """Every value of ``key`` under any operator (lower-cased key comparison)."""
    if not isinstance(condition, Mapping):
        return []
    return [
        v
        for block in condition.values()
        if isinstance(block, Mapping)
        for k, v in block.items()
        if str(k).lower() == key.lower()
    ]


def _sid(statement: Mapping[str, Any], index: int) -> str:
    return str(statement.get("Sid") or index)


# --- S3: TLS only -------------------------------------------------------------------------


def statement_denies_insecure_transport(statement: Mapping[str, Any], bucket_arn: str) -> bool:
    """A Deny for everyone, on every S3 action, over the bucket and every object in it,
    when ``aws:SecureTransport`` is false."""
    if statement.get("Effect") != "Deny" or not principal_is_everyone(statement.get("Principal")):
        return False
    if not actions_cover_service(as_list(statement.get("Action")), "s3"):
        return False
    resources = as_list(statement.get("Resource"))
    if not (
        resource_matches(resources, bucket_arn)
        and resources_cover_prefix(resources, f"{bucket_arn}/")
    ):
        return False
    secure = condition_value(statement.get("Condition"), "Bool", "aws:SecureTransport")
    return secure is not None and is_false(secure)


def insecure_transport_deny(
    statements: Iterable[Mapping[str, Any]], bucket_arn: str
) -> Mapping[str, Any] | None:
    """The first statement denying requests without TLS to ``bucket_arn``, if any."""
    return next((s for s in statements if statement_denies_insecure_transport(s, bucket_arn)), None)


# --- IAM: no wildcard grants on data stores -----------------------------------------------


def is_wildcard_action(action: str) -> bool:
    """``*``, a wildcard service (``*:GetObject``), or a wildcard operation on a data store
    (``s3:*``, ``s3:Get*``, ``kms:GenerateDataKey*``)."""
    service, _, operation = action.lower().partition(":")
    if action == "*" or "*" in service or "?" in service:
        return True
    return service in DATA_STORE_SERVICES and ("*" in operation or "?" in operation)


def is_data_store_action(action: str) -> bool:
    return action.lower().partition(":")[0] in DATA_STORE_SERVICES


def data_store_wildcard_grants(statements: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """What the Allow statements grant beyond named data-store actions on named resources.

    Each problem names its statement: an Allow with ``NotAction``; a wildcard action
    (:func:`is_wildcard_action`); or a data-store action on ``Resource: "*"`` or with
    ``NotResource``. Deny statements may use wildcards.
    """
    problems: list[Problem] = []
    for index, statement in enumerate(statements):
        if statement.get("Effect") != "Allow":
            continue
        where = _sid(statement, index)
        if "NotAction" in statement:
            problems.append((where, "allows NotAction"))
        actions = [str(a) for a in as_list(statement.get("Action"))]
        wild = [a for a in actions if is_wildcard_action(a)]
        if wild:
            problems.append((where, f"allows {', '.join(wild)}"))
        resources = [str(r) for r in as_list(statement.get("Resource"))]
        if any(is_data_store_action(a) for a in actions) and (
            "*" in resources or "NotResource" in statement
        ):
            problems.append((where, "allows data-store actions on every resource"))
    return problems


# --- Lambda: who may invoke a function ----------------------------------------------------


def _service_principals(principal: Any) -> list[str]:
    if isinstance(principal, Mapping):
        return [str(p) for p in as_list(principal.get("Service"))]
    return []


def public_invocation_grants(
    statements: Iterable[Mapping[str, Any]], *, account_id: str | None = None
) -> list[Problem]:
    """The Allow statements of a function policy that let too many callers invoke it.

    A statement fails when it names everyone (``*``, with or without conditions: a
    permission names its caller); a service principal without an ``aws:SourceArn``
    condition (any account's use of that service could invoke the function: the
    confused deputy); an unauthenticated function URL (``lambda:FunctionUrlAuthType``
    ``NONE``); or, given ``account_id``, principals of another account.
    """
    problems: list[Problem] = []
    for index, statement in enumerate(statements):
        if statement.get("Effect") != "Allow":
            continue
        sid = _sid(statement, index)
        principal = statement.get("Principal")
        condition = statement.get("Condition")
        services = _service_principals(principal)
        if principal_is_everyone(principal) or not (principals(principal) or services):
            problems.append((sid, f"lets anyone invoke the function (principal {principal!r})"))
        elif services and not condition_values(condition, "aws:SourceArn"):
            problems.append((sid, f"grants {', '.join(services)} without a source ARN"))
        elif any(str(v).upper() == "NONE" for v in _url_auth_types(condition)):
            problems.append((sid, "opens an unauthenticated function URL"))
        elif account_id:
            foreign = [
                p
                for p in principals(principal)
                if p != account_id and f":iam::{account_id}:" not in p
            ]
            if foreign:
                problems.append((sid, f"grants principals of another account {foreign}"))
    return problems


def _url_auth_types(condition: Any) -> list[Any]:
    return [
        v
        for value in condition_values(condition, "lambda:FunctionUrlAuthType")
        for v in as_list(value)
    ]
