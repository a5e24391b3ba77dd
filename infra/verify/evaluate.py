"""Evaluation: what a stack should look like, and the checks over a collected snapshot.

``expectations_from_record`` turns a deployment record (outputs, resources, gaps) and
the stack's typed stage into :class:`Expectations`: which resources to read and what
each must be. ``evaluate`` runs every rule of ``infra.verify.rules`` over a snapshot
from ``infra.verify.collect`` and binds each outcome to its catalogue entry
(``infra.verify.checks``). Both are pure: no AWS calls, testable on plain data.

Declared values stand in for live ones in exactly two places, both only where the
deployment record carries a gap for them, and the evidence then says "as declared
(emulator gap: ...)": API Gateway's TLS security policy when the live API does not
report one (moto does not store it), and a bucket policy the emulator could not hand
to moto whole (moto would enforce every Condition as a deny, so it holds at most the
unconditional statements). Everything else is read live.

Guarantees: one result per (check, resource); an input that could not be read fails
its check with the reason; a resource the stack's outputs name but the snapshot lacks
fails, never passes by omission.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.controls.result import Result, failed, not_applicable
from infra.verify import rules
from infra.verify.checks import spec
from infra.verify.collect import Targets, unreadable_reason
from infra.verify.model import CheckResult, DeploymentRecordLike

# --------------------------------------------------------------------- the baseline

# Key label -> (key spec, key usage), as the program declares them.
KEY_SPECS: dict[str, tuple[str, str]] = {
    "records": ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    "audit": ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    "signing": ("ECC_NIST_P256", "SIGN_VERIFY"),
}
KEY_OUTPUTS = {"records": "recordsKeyArn", "audit": "auditKeyArn", "signing": "signingKeyArn"}
BUCKET_OUTPUTS = {
    "shard": "shardBucketName",
    "access_log": "accessLogBucketName",
    "audit": "auditBucketName",
}
# Tables whose items are audit data use the audit key; all others the records key.
AUDIT_KEY_TABLES = frozenset({"ledger"})

SSE_S3_REASON = (
    "S3 server access logging cannot deliver to a bucket whose default "
    "encryption is SSE-KMS, so the access-log bucket uses SSE-S3"
)

ROLE_GROUPS = ("doctor", "specialist", "institution_admin", "auditor", "platform_admin")
# custom attribute -> mutable? (the registration number is fixed once verified)
CUSTOM_ATTRIBUTES: dict[str, bool] = {
    "mchk_reg_no": False,
    "institution_id": True,
    "specialty": True,
}
PASSWORD_MIN_LENGTH = 14
TEMPORARY_PASSWORD_MAX_DAYS = 1
OPERATIONAL_LOG_MIN_DAYS = 365
PUBLIC_METHODS = frozenset({("/health", "GET")})

RESOURCE_TYPES = {
    "bucket_policy": "aws:s3/bucketPolicy:BucketPolicy",
    "rest_api": "aws:apigateway/restApi:RestApi",
    "function": "aws:lambda/function:Function",
    "log_group": "aws:cloudwatch/logGroup:LogGroup",
}


@dataclass(frozen=True)
class Declared:
    """A declared value standing in for a live one the emulator could not hold."""

    value: Any
    why: str


@dataclass(frozen=True)
class Expectations:
    stack: str
    phase: int
    region: str
    partition: str
    account_id: str
    keys: dict[str, str]  # label -> ARN
    buckets: dict[str, str]  # label -> name
    trail_arn: str | None
    tables: dict[str, str]  # logical -> name
    user_pool_id: str | None
    api_id: str | None
    functions: tuple[str, ...]
    log_groups: dict[str, int]  # name -> minimum retention days
    audit_retention_years: int
    federation: dict[str, str]  # provider name -> SAML/OIDC
    waf_required: bool = False
    throttle: tuple[float, int] | None = None  # (rate per second, burst) from the stage
    declared_bucket_policies: dict[str, Declared] = field(default_factory=dict)
    declared_api_security_policy: Declared | None = None

    def targets(self) -> Targets:
        return Targets(
            keys=self.keys,
            buckets=self.buckets,
            trail=self.trail_arn,
            tables=self.tables,
            user_pool_id=self.user_pool_id,
            api_id=self.api_id,
            functions=self.functions,
            log_groups=tuple(self.log_groups),
        )

    def bucket_arn(self, name: str) -> str:
        return f"arn:{self.partition}:s3:::{name}"

    def log_group_arn(self, name: str) -> str:
        return f"arn:{self.partition}:logs:{self.region}:{self.account_id}:log-group:{name}"

    def user_pool_arn(self) -> str:
        return (
            f"arn:{self.partition}:cognito-idp:{self.region}:{self.account_id}:userpool/"
            f"{self.user_pool_id}"
        )


# --------------------------------------------------------------------- expectations


def _field(item: Any, *names: str) -> Any:
    """The first of ``names`` present on ``item`` (a mapping or an object), else None."""
    for name in names:
        value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
        if value is not None:
            return value
    return None


# Record fields under the names either record shape uses (the brief's, the emulator's).
def _type(resource: Any) -> str:
    return str(_field(resource, "type") or "")


def _name(resource: Any) -> str:
    return str(_field(resource, "name") or "")


def _physical_id(resource: Any) -> str:
    return str(_field(resource, "physical_id", "id") or "")


def _declared(resource: Any) -> Mapping[str, Any]:
    declared = _field(resource, "declared", "inputs")
    return declared if isinstance(declared, Mapping) else {}


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


def _resources_of(record: DeploymentRecordLike, type_token: str) -> list[Any]:
    return [r for r in record.resources if _type(r) == type_token]


def _gap_why(gap: Any) -> str:
    parts = [str(p) for p in (_field(gap, "why"), _field(gap, "reason")) if p]
    why = parts[0] if parts else "not enforced by the emulator"
    return why.split(",")[0].split(";")[0].strip()


def _declared_bucket_policies(
    record: DeploymentRecordLike, buckets: Iterable[str]
) -> dict[str, Declared]:
    wanted = set(buckets)
    found: dict[str, Declared] = {}
    for resource in _resources_of(record, RESOURCE_TYPES["bucket_policy"]):
        declared = _declared(resource)
        bucket = str(declared.get("bucket", ""))
        if bucket not in wanted:
            continue
        gap = find_gap(
            record.gaps,
            [_name(resource), _physical_id(resource), bucket],
            ["policy", "bucketPolicy"],
            type_token=RESOURCE_TYPES["bucket_policy"],
        )
        if gap is not None and declared.get("policy") is not None:
            found[bucket] = Declared(declared["policy"], _gap_why(gap))
    return found


def _declared_security_policy(record: DeploymentRecordLike, api_id: str | None) -> Declared | None:
    for resource in _resources_of(record, RESOURCE_TYPES["rest_api"]):
        if api_id and _physical_id(resource) not in ("", api_id):
            continue
        gap = find_gap(
            record.gaps,
            [_name(resource), _physical_id(resource), str(api_id or "")],
            ["securityPolicy"],
            type_token=RESOURCE_TYPES["rest_api"],
        )
        if gap is not None:
            return Declared(_declared(resource).get("securityPolicy"), _gap_why(gap))
    return None


def _physical_names(record: DeploymentRecordLike, type_token: str) -> list[str]:
    names = []
    for resource in _resources_of(record, type_token):
        name = _physical_id(resource) or _declared(resource).get("name")
        if name:
            names.append(str(name))
    return names


def expectations_from_record(
    record: DeploymentRecordLike,
    *,
    phase: int,
    audit_retention_years: int,
    federation: Mapping[str, str],
    waf: bool = False,
    throttle: tuple[float, int] | None = None,
) -> Expectations:
    """What ``record``'s stack must look like, given the stage's phase, audit retention,
    federated providers (name -> ``SAML``/``OIDC``), WAF feature and API throttling
    (rate per second, burst)."""
    outputs = record.outputs
    keys = {label: str(outputs[o]) for label, o in KEY_OUTPUTS.items() if outputs.get(o)}
    reference = next(iter(keys.values()), "arn:aws:kms:ap-east-1:000000000000:key/none")
    arn_parts = reference.split(":")
    partition, region, account_id = arn_parts[1], arn_parts[3], arn_parts[4]
    buckets = {label: str(outputs[o]) for label, o in BUCKET_OUTPUTS.items() if outputs.get(o)}
    tables = {str(k): str(v) for k, v in dict(outputs.get("tableNames") or {}).items()}

    functions = list(_physical_names(record, RESOURCE_TYPES["function"]))
    if outputs.get("functionName") and str(outputs["functionName"]) not in functions:
        functions.insert(0, str(outputs["functionName"]))

    log_groups: dict[str, int] = {}
    for name in _physical_names(record, RESOURCE_TYPES["log_group"]):
        log_groups[name] = OPERATIONAL_LOG_MIN_DAYS
    for function in functions:
        log_groups.setdefault(f"/aws/lambda/{function}", OPERATIONAL_LOG_MIN_DAYS)
    if outputs.get("trailLogGroupName"):
        # the trail's copy of the audit events is kept as long as the audit itself
        log_groups[str(outputs["trailLogGroupName"])] = max(
            OPERATIONAL_LOG_MIN_DAYS, audit_retention_years * 365
        )

    api_id = str(outputs["apiId"]) if outputs.get("apiId") else None
    return Expectations(
        stack=record.stack,
        phase=phase,
        region=str(outputs.get("region") or region),
        partition=partition,
        account_id=account_id,
        keys=keys,
        buckets=buckets,
        trail_arn=str(outputs["trailArn"]) if outputs.get("trailArn") else None,
        tables=tables,
        user_pool_id=str(outputs["userPoolId"]) if outputs.get("userPoolId") else None,
        api_id=api_id,
        functions=tuple(functions),
        log_groups=log_groups,
        audit_retention_years=audit_retention_years,
        federation=dict(federation),
        waf_required=waf,
        throttle=throttle,
        declared_bucket_policies=_declared_bucket_policies(record, buckets.values()),
        declared_api_security_policy=_declared_security_policy(record, api_id),
    )


# --------------------------------------------------------------------- evaluation


class _Results:
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
        catalogue = spec(check_id)
        reasons = [r for r in (unreadable_reason(i) for i in inputs) if r]
        if reasons:
            outcome = failed(f"{resource}: could not read the configuration: {reasons[0]}")
        elif any(i is _MISSING for i in inputs):
            outcome = failed(f"{resource}: not found in the deployment")
        else:
            outcome = rule(*args, **kwargs)
        self.items.append(
            CheckResult(
                check_id,
                catalogue.title,
                resource,
                outcome.status,
                outcome.message,
                [str(r) for r in catalogue.requirements],
            )
        )


_MISSING: Any = object()


def _get(mapping: Any, key: str) -> Any:
    """``mapping[key]``; the missing marker if absent; an unreadable parent as is."""
    if mapping is _MISSING or unreadable_reason(mapping):
        return mapping
    if not isinstance(mapping, Mapping) or key not in mapping:
        return _MISSING
    return mapping[key]


def _fixed(outcome: Result) -> Result:
    return outcome


def evaluate(expect: Expectations, snapshot: Mapping[str, Any]) -> list[CheckResult]:
    """Every check over ``snapshot``, area by area."""
    results = _Results()
    _evaluate_keys(expect, snapshot, results)
    _evaluate_buckets(expect, snapshot, results)
    _evaluate_trail(expect, snapshot, results)
    _evaluate_tables(expect, snapshot, results)
    _evaluate_user_pool(expect, snapshot, results)
    _evaluate_api(expect, snapshot, results)
    _evaluate_api_stages(expect, snapshot, results)
    _evaluate_functions(expect, snapshot, results)
    _evaluate_log_groups(expect, snapshot, results)
    return results.items


def _evaluate_keys(expect: Expectations, snapshot: Mapping[str, Any], out: _Results) -> None:
    for label, arn in expect.keys.items():
        key = _get(snapshot.get("keys"), label)
        meta, rotation = _get(key, "metadata"), _get(key, "rotation")
        name = f"{label} key {arn}"
        key_spec, usage = KEY_SPECS[label]
        out.add("keys.enabled", name, [meta], rules.key_enabled, name, meta)
        out.add(
            "keys.rotation_enabled",
            name,
            [meta, rotation],
            rules.key_rotation_enabled,
            name,
            meta,
            rotation,
        )
        out.add(
            "keys.spec_and_usage",
            name,
            [meta],
            rules.key_spec_and_usage,
            name,
            meta,
            spec=key_spec,
            usage=usage,
        )
        policy = _get(key, "policy")
        out.add(
            "keys.policy_root_admin_only",
            name,
            [policy],
            rules.key_policy_root_admin_only,
            name,
            policy,
            account_id=expect.account_id,
        )


def _evaluate_buckets(expect: Expectations, snapshot: Mapping[str, Any], out: _Results) -> None:
    log_target = expect.buckets.get("access_log", "")
    bucket_keys = {
        "shard": expect.keys.get("records"),
        "audit": expect.keys.get("audit"),
        "access_log": None,
    }
    for label, name in expect.buckets.items():
        data = _get(snapshot.get("buckets"), label)
        encryption, versioning, block, ownership, policy, logging, lock = (
            _get(data, k)
            for k in (
                "encryption",
                "versioning",
                "public_access_block",
                "ownership",
                "policy",
                "logging",
                "object_lock",
            )
        )
        out.add(
            "buckets.default_encryption",
            name,
            [encryption],
            rules.bucket_default_encryption,
            name,
            encryption,
            kms_key_arn=bucket_keys.get(label),
            sse_s3_reason=SSE_S3_REASON,
        )
        out.add(
            "buckets.versioning",
            name,
            [versioning],
            rules.bucket_versioning_enabled,
            name,
            versioning,
        )
        out.add(
            "buckets.public_access_block",
            name,
            [block],
            rules.bucket_blocks_public_access,
            name,
            block,
        )
        out.add(
            "buckets.ownership_enforced",
            name,
            [ownership],
            rules.bucket_owner_enforced,
            name,
            ownership,
        )
        declared = expect.declared_bucket_policies.get(name)
        if declared is not None:
            document, inputs = declared.value, [data]
            source = f"as declared (emulator gap: {declared.why})"
        else:
            document, inputs, source = policy, [policy], "live policy"
        out.add(
            "buckets.denies_insecure_transport",
            name,
            inputs,
            rules.bucket_denies_insecure_transport,
            name,
            expect.bucket_arn(name),
            document,
            source=source,
        )
        if label == "shard":
            out.add(
                "buckets.requires_sse_kms_puts",
                name,
                inputs,
                rules.bucket_requires_sse_kms_puts,
                name,
                expect.bucket_arn(name),
                document,
                kms_key_arn=expect.keys.get("records", ""),
                source=source,
            )
        if label == "access_log":
            out.add(
                "buckets.access_logging",
                name,
                [],
                _fixed,
                not_applicable(
                    f"{name}: the access-log bucket is the log target; logging it into itself "
                    "would loop"
                ),
            )
        else:
            out.add(
                "buckets.access_logging",
                name,
                [logging],
                rules.bucket_logs_to,
                name,
                logging,
                target_bucket=log_target,
            )
        if label == "audit":
            out.add(
                "trail.bucket_object_lock",
                name,
                [lock],
                rules.bucket_object_lock_compliance,
                name,
                lock,
                years=expect.audit_retention_years,
            )


def _table_arns(expect: Expectations, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """Table name -> ARN as described (or the unreadable/missing marker)."""
    arns: dict[str, Any] = {}
    for logical, name in expect.tables.items():
        description = _get(_get(snapshot.get("tables"), logical), "description")
        if isinstance(description, Mapping) and not unreadable_reason(description):
            arns[name] = description.get("TableArn") or _MISSING
        else:
            arns[name] = description
    return arns


def _evaluate_trail(expect: Expectations, snapshot: Mapping[str, Any], out: _Results) -> None:
    if not expect.trail_arn:
        return
    trail = snapshot.get("trail")
    trail = _MISSING if trail is None else trail
    description, status, selectors = (
        _get(trail, k) for k in ("description", "status", "selectors")
    )
    name = expect.trail_arn
    out.add("trail.logging", name, [status], rules.trail_logging, name, status)
    out.add("trail.multi_region", name, [description], rules.trail_multi_region, name, description)
    out.add(
        "trail.log_file_validation",
        name,
        [description],
        rules.trail_log_file_validation,
        name,
        description,
    )
    out.add(
        "trail.kms_encrypted",
        name,
        [description],
        rules.trail_kms_encrypted,
        name,
        description,
        kms_key_arn=expect.keys.get("audit", ""),
    )
    out.add(
        "trail.management_events",
        name,
        [selectors],
        rules.trail_logs_management_events,
        name,
        selectors,
    )
    stores: list[tuple[str, str, Any]] = []
    if "shard" in expect.buckets:
        bucket = expect.buckets["shard"]
        stores.append((bucket, "AWS::S3::Object", expect.bucket_arn(bucket)))
    for table, arn in _table_arns(expect, snapshot).items():
        stores.append((table, "AWS::DynamoDB::Table", arn))
    for store, resource_type, arn in stores:
        out.add(
            "trail.data_event_selectors",
            store,
            [selectors, arn],
            rules.trail_logs_data_events,
            name,
            selectors,
            resource_type=resource_type,
            resource_arn=arn,
        )


def _evaluate_tables(expect: Expectations, snapshot: Mapping[str, Any], out: _Results) -> None:
    for logical, name in expect.tables.items():
        table = _get(snapshot.get("tables"), logical)
        description, backups = _get(table, "description"), _get(table, "backups")
        key = expect.keys.get("audit" if logical in AUDIT_KEY_TABLES else "records", "")
        out.add(
            "dynamodb.customer_key_encryption",
            name,
            [description],
            rules.table_encrypted_with_customer_key,
            name,
            description,
            kms_key_arn=key,
        )
        out.add("dynamodb.pitr", name, [backups], rules.table_pitr_enabled, name, backups)
        out.add(
            "dynamodb.deletion_protection",
            name,
            [description],
            rules.table_deletion_protected,
            name,
            description,
        )


def _evaluate_user_pool(expect: Expectations, snapshot: Mapping[str, Any], out: _Results) -> None:
    if not expect.user_pool_id:
        return
    pool = snapshot.get("user_pool")
    pool = _MISSING if pool is None else pool
    description, mfa, groups, providers = (
        _get(pool, k) for k in ("description", "mfa", "groups", "providers")
    )
    name = expect.user_pool_id
    out.add(
        "cognito.mfa_on", name, [description, mfa], rules.user_pool_mfa_on, name, description, mfa
    )
    out.add(
        "cognito.password_policy",
        name,
        [description],
        rules.user_pool_password_policy,
        name,
        description,
        min_length=PASSWORD_MIN_LENGTH,
        max_temporary_days=TEMPORARY_PASSWORD_MAX_DAYS,
    )
    out.add(
        "cognito.custom_attributes",
        name,
        [description],
        rules.user_pool_custom_attributes,
        name,
        description,
        required=CUSTOM_ATTRIBUTES,
    )
    out.add(
        "cognito.role_groups",
        name,
        [groups],
        rules.user_pool_role_groups,
        name,
        groups,
        required=ROLE_GROUPS,
    )
    out.add(
        "cognito.federation",
        name,
        [providers],
        rules.user_pool_federation,
        name,
        providers,
        phase=expect.phase,
        expected=expect.federation,
    )
    out.add(
        "cognito.triggers_configured",
        name,
        [description],
        rules.user_pool_triggers_configured,
        name,
        description,
        functions=expect.functions,
    )
    out.add(
        "cognito.threat_protection",
        name,
        [description],
        rules.user_pool_threat_protection,
        name,
        description,
    )


def _evaluate_api(expect: Expectations, snapshot: Mapping[str, Any], out: _Results) -> None:
    if not expect.api_id:
        return
    api = snapshot.get("api")
    api = _MISSING if api is None else api
    rest_api, resources, authorizers = (
        _get(api, k) for k in ("rest_api", "resources", "authorizers")
    )
    name = expect.api_id
    live_policy = rest_api.get("securityPolicy") if isinstance(rest_api, Mapping) else None
    declared = expect.declared_api_security_policy
    if live_policy is None and declared is not None:
        out.add(
            "api.tls_policy",
            name,
            [rest_api],
            rules.api_tls13_only,
            name,
            declared.value,
            source=f"as declared (emulator gap: {declared.why})",
        )
    else:
        out.add(
            "api.tls_policy",
            name,
            [rest_api],
            rules.api_tls13_only,
            name,
            live_policy,
            source="live",
        )
    if resources is _MISSING or unreadable_reason(resources):
        out.add("api.authorizer_on_methods", name, [resources], _fixed, failed(name))
        return
    methods = sorted(
        (
            (str(r.get("path")), str(m), config)
            for r in resources
            for m, config in (r.get("resourceMethods") or {}).items()
        ),
        key=lambda m: (m[0], m[1]),
    )
    if not methods:
        out.add(
            "api.authorizer_on_methods", name, [], _fixed, failed(f"{name}: the API has no methods")
        )
    for path, http_method, config in methods:
        label = f"{name} {http_method} {path}"
        out.add(
            "api.authorizer_on_methods",
            label,
            [authorizers],
            rules.api_method_requires_authorizer,
            label,
            config,
            authorizers,
            user_pool_arn=expect.user_pool_arn(),
            public=(path, http_method) in PUBLIC_METHODS,
        )


def _evaluate_api_stages(expect: Expectations, snapshot: Mapping[str, Any], out: _Results) -> None:
    if not expect.api_id:
        return
    api = snapshot.get("api")
    api = _MISSING if api is None else api
    stages, web_acls = _get(api, "stages"), _get(api, "web_acls")
    if stages is _MISSING or unreadable_reason(stages) or not stages:
        for check_id in ("api.throttling", "api.no_data_trace", "api.waf_attached"):
            out.add(
                check_id,
                expect.api_id,
                [stages],
                _fixed,
                failed(f"{expect.api_id}: the API has no deployed stage"),
            )
        return
    for stage in stages:
        stage_name = str(stage.get("stageName"))
        label = f"{expect.api_id} stage {stage_name}"
        if expect.throttle is None:
            out.add(
                "api.throttling",
                label,
                [],
                _fixed,
                not_applicable(f"{label}: no throttling configured for this stack"),
            )
        else:
            out.add(
                "api.throttling",
                label,
                [],
                rules.stage_throttled,
                label,
                stage,
                rate_limit=expect.throttle[0],
                burst_limit=expect.throttle[1],
            )
        out.add("api.no_data_trace", label, [], rules.stage_without_data_trace, label, stage)
        if expect.waf_required:
            web_acl = _get(web_acls, stage_name)
            out.add(
                "api.waf_attached", label, [web_acl], rules.stage_protected_by_waf, label, web_acl
            )
        else:
            out.add(
                "api.waf_attached",
                label,
                [],
                _fixed,
                not_applicable(
                    f"{label}: WAF is not enabled for phase {expect.phase} (stage features.waf)"
                ),
            )


def _stack_arns(expect: Expectations, snapshot: Mapping[str, Any]) -> list[str]:
    arns = list(expect.keys.values())
    arns += [expect.bucket_arn(b) for b in expect.buckets.values()]
    arns += [a for a in _table_arns(expect, snapshot).values() if isinstance(a, str)]
    arns += [expect.log_group_arn(g) for g in expect.log_groups]
    if expect.user_pool_id:
        # the service reads doctors' attributes (AdminGetUser) from its own pool only
        arns.append(expect.user_pool_arn())
    return arns


def _evaluate_functions(expect: Expectations, snapshot: Mapping[str, Any], out: _Results) -> None:
    stack_arns = _stack_arns(expect, snapshot)
    for name in expect.functions:
        function = _get(snapshot.get("functions"), name)
        configuration, policy, role = (
            _get(function, k) for k in ("configuration", "policy", "role")
        )
        role = _MISSING if role is None else role
        documents = _get(role, "documents")
        role_name = role.get("name", "?") if isinstance(role, Mapping) else "?"
        out.add(
            "lambda.role_least_privilege",
            name,
            [configuration, documents],
            rules.role_least_privilege,
            f"{name} (role {role_name})",
            documents,
            stack_arns=stack_arns,
        )
        out.add(
            "lambda.no_public_policy",
            name,
            [configuration, policy],
            rules.function_policy_not_public,
            name,
            policy,
            account_id=expect.account_id,
        )


def _evaluate_log_groups(expect: Expectations, snapshot: Mapping[str, Any], out: _Results) -> None:
    audit_key = expect.keys.get("audit", "")
    groups = snapshot.get("log_groups")
    groups = _MISSING if groups is None else groups
    for name, min_days in expect.log_groups.items():
        description = _get(groups, name)
        out.add(
            "logs.encrypted_retained",
            name,
            [description],
            rules.log_group_encrypted_retained,
            name,
            description,
            kms_key_arn=audit_key,
            min_retention_days=min_days,
        )
