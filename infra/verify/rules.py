"""Post-deploy rules: pure functions from collected AWS state to pass, fail or n/a.

Each rule is named for the compliant state, takes plain data (the shapes boto3 returns,
already collected by ``infra.verify.collect``) plus what is expected, and returns an
:class:`~infra.verify.model.Outcome` whose evidence names the resource and the values
the decision rests on. Rules make no AWS calls and know nothing of reports or controls,
so each is tested on hand-written dicts, compliant and not.

Absent configuration (``None``: no public access block, no bucket policy...) is a
failure, never a pass.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from infra.verify.model import Outcome, failed, not_applicable, passed

# ---------------------------------------------------------------------------- helpers


def key_id_of(key_ref: str | None) -> str:
    """The key id in a key ARN (``arn:...:key/<id>``), or the reference itself."""
    if not key_ref:
        return ""
    return key_ref.rsplit("key/", 1)[-1] if ":key/" in key_ref else key_ref


def same_key(actual: str | None, expected: str | None) -> bool:
    """Whether two key references (ARN or bare id) name the same KMS key."""
    return bool(actual) and bool(expected) and key_id_of(actual) == key_id_of(expected)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def parse_policy(document: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A policy document as a dict (IAM and S3 return JSON strings, sometimes dicts)."""
    if document is None:
        return None
    if isinstance(document, Mapping):
        return dict(document)
    parsed = json.loads(document)
    return parsed if isinstance(parsed, dict) else None


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def _is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return "*" in as_list(principal.get("AWS"))
    return False


def _is_false(value: Any) -> bool:
    return any(str(v).lower() == "false" for v in as_list(value))


# ---------------------------------------------------------------------------- KMS keys


def key_enabled(key: str, metadata: Mapping[str, Any]) -> Outcome:
    state = metadata.get("KeyState")
    if metadata.get("Enabled") is True and state == "Enabled":
        return passed(f"{key}: KeyState=Enabled")
    return failed(f"{key}: KeyState={state}, Enabled={metadata.get('Enabled')}")


def key_rotation_enabled(
    key: str,
    metadata: Mapping[str, Any],
    rotation: Mapping[str, Any] | None,
    *,
    max_period_days: int = 365,
) -> Outcome:
    spec = metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec")
    if spec != "SYMMETRIC_DEFAULT":
        return not_applicable(
            f"{key}: {spec} key; KMS rotates only symmetric encryption keys automatically "
            "(an asymmetric key is rotated by a new key behind the same alias)"
        )
    if rotation is None or rotation.get("KeyRotationEnabled") is not True:
        return failed(f"{key}: automatic rotation is off")
    period = rotation.get("RotationPeriodInDays")
    if period is not None and int(period) > max_period_days:
        return failed(
            f"{key}: rotation on but every {period} days (at most {max_period_days} expected)"
        )
    every = f" every {period} days" if period is not None else ""
    return passed(f"{key}: automatic rotation on{every}")


def key_spec_and_usage(key: str, metadata: Mapping[str, Any], *, spec: str, usage: str) -> Outcome:
    actual_spec = metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec")
    actual_usage = metadata.get("KeyUsage")
    evidence = f"{key}: KeySpec={actual_spec}, KeyUsage={actual_usage}"
    if actual_spec == spec and actual_usage == usage:
        return passed(evidence)
    return failed(f"{evidence} (declared {spec}, {usage})")


# ---------------------------------------------------------------------------- S3 buckets


def bucket_default_encryption(
    bucket: str,
    encryption: Mapping[str, Any] | None,
    *,
    kms_key_arn: str | None,
    sse_s3_reason: str = "",
) -> Outcome:
    """SSE-KMS with ``kms_key_arn``; or SSE-S3 (AES256) when ``kms_key_arn`` is None.

    Args:
        encryption: the ``ServerSideEncryptionConfiguration`` (None if there is none).
        sse_s3_reason: why SSE-S3 is expected, quoted in the evidence.
    """
    rules = as_list((encryption or {}).get("Rules"))
    if not rules:
        return failed(f"{bucket}: no default encryption configured")
    defaults = [r.get("ApplyServerSideEncryptionByDefault") or {} for r in rules]
    algorithms = [d.get("SSEAlgorithm") for d in defaults]
    if kms_key_arn is None:
        if all(a == "AES256" for a in algorithms):
            return passed(f"{bucket}: SSE-S3 (AES256) by design: {sse_s3_reason}".rstrip(": "))
        return failed(f"{bucket}: SSEAlgorithm={algorithms}, expected AES256 ({sse_s3_reason})")
    keys = [d.get("KMSMasterKeyID") for d in defaults]
    if all(a == "aws:kms" for a in algorithms) and all(same_key(k, kms_key_arn) for k in keys):
        return passed(f"{bucket}: SSE-KMS with {kms_key_arn}")
    return failed(
        f"{bucket}: SSEAlgorithm={algorithms}, key={keys}; expected aws:kms with {kms_key_arn}"
    )


def bucket_versioning_enabled(bucket: str, versioning: Mapping[str, Any] | None) -> Outcome:
    status = (versioning or {}).get("Status")
    if status == "Enabled":
        return passed(f"{bucket}: versioning Enabled")
    return failed(f"{bucket}: versioning {status or 'never enabled'}")


PUBLIC_ACCESS_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


def bucket_blocks_public_access(bucket: str, block: Mapping[str, Any] | None) -> Outcome:
    if block is None:
        return failed(f"{bucket}: no public access block configured")
    off = [f for f in PUBLIC_ACCESS_FLAGS if block.get(f) is not True]
    if off:
        return failed(f"{bucket}: public access block flags off: {', '.join(off)}")
    return passed(f"{bucket}: all four public access block flags on")


def bucket_owner_enforced(bucket: str, ownership: Mapping[str, Any] | None) -> Outcome:
    rules = as_list((ownership or {}).get("Rules"))
    values = [r.get("ObjectOwnership") for r in rules]
    if values and all(v == "BucketOwnerEnforced" for v in values):
        return passed(f"{bucket}: ObjectOwnership=BucketOwnerEnforced (ACLs disabled)")
    return failed(f"{bucket}: ObjectOwnership={values or 'not set'}")


def _covers(patterns: Iterable[Any], target: str) -> bool:
    """Whether an ARN pattern (case-sensitive, ``*``/``?`` wildcards) matches ``target``."""
    return any(fnmatch.fnmatchcase(target, str(p)) for p in patterns)


def _covers_action(patterns: Iterable[Any], action: str) -> bool:
    """Whether an action pattern matches ``action``; IAM action names ignore case."""
    return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in patterns)


def _condition_value(condition: Mapping[str, Any], operator: str, key: str) -> Any:
    """The value of ``key`` under ``operator``; condition keys ignore case in IAM."""
    block = condition.get(operator)
    if not isinstance(block, Mapping):
        return None
    return next((v for k, v in block.items() if str(k).lower() == key.lower()), None)


def bucket_denies_insecure_transport(
    bucket: str,
    bucket_arn: str,
    policy: str | Mapping[str, Any] | None,
    *,
    source: str = "live policy",
) -> Outcome:
    """A Deny for everyone, on all S3 actions over the bucket and its objects, when
    ``aws:SecureTransport`` is false."""
    document = parse_policy(policy)
    if document is None:
        return failed(f"{bucket}: no bucket policy ({source})")
    for statement in statements(document):
        if statement.get("Effect") != "Deny" or not _is_everyone(statement.get("Principal")):
            continue
        actions = as_list(statement.get("Action"))
        if not (
            _covers_action(actions, "s3:GetObject")
            and _covers_action(actions, "s3:PutObject")
            and _covers_action(actions, "s3:ListBucket")
            and _covers_action(actions, "s3:DeleteBucket")
        ):
            continue
        resources = as_list(statement.get("Resource"))
        if not (_covers(resources, bucket_arn) and _covers(resources, f"{bucket_arn}/any")):
            continue
        condition = statement.get("Condition") or {}
        secure = _condition_value(condition, "Bool", "aws:SecureTransport")
        if secure is not None and _is_false(secure):
            sid = statement.get("Sid", "(no Sid)")
            return passed(f"{bucket}: statement {sid} denies s3:* without TLS ({source})")
    return failed(
        f"{bucket}: no statement denies s3:* on the bucket and its objects when "
        f"aws:SecureTransport is false ({source})"
    )


def bucket_logs_to(
    bucket: str, logging: Mapping[str, Any] | None, *, target_bucket: str
) -> Outcome:
    enabled = (logging or {}).get("LoggingEnabled")
    if not enabled:
        return failed(f"{bucket}: server access logging is off")
    target = enabled.get("TargetBucket")
    prefix = enabled.get("TargetPrefix", "")
    if target != target_bucket:
        return failed(f"{bucket}: logs to {target}, expected {target_bucket}")
    return passed(f"{bucket}: server access logs to {target}/{prefix}")


def bucket_object_lock_compliance(
    bucket: str, lock: Mapping[str, Any] | None, *, years: int
) -> Outcome:
    if not lock or lock.get("ObjectLockEnabled") != "Enabled":
        return failed(f"{bucket}: Object Lock not enabled")
    retention = (lock.get("Rule") or {}).get("DefaultRetention") or {}
    mode = retention.get("Mode")
    got_years = retention.get("Years") or 0
    got_days = retention.get("Days") or 0
    evidence = (
        f"{bucket}: Object Lock {mode}, {got_years or got_days} {'years' if got_years else 'days'}"
    )
    if mode != "COMPLIANCE":
        return failed(f"{evidence}; expected COMPLIANCE mode (GOVERNANCE can be bypassed)")
    if got_years != years:
        return failed(f"{evidence}; expected {years} years (stage auditRetentionYears)")
    return passed(f"{evidence} (stage auditRetentionYears={years})")


# ---------------------------------------------------------------------------- CloudTrail


def trail_logging(trail: str, status: Mapping[str, Any]) -> Outcome:
    if status.get("IsLogging") is True:
        return passed(f"{trail}: IsLogging=true")
    stopped = status.get("StopLoggingTime") or status.get("TimeLoggingStopped")
    return failed(f"{trail}: IsLogging=false" + (f" (stopped {stopped})" if stopped else ""))


def trail_multi_region(trail: str, description: Mapping[str, Any]) -> Outcome:
    multi = description.get("IsMultiRegionTrail")
    global_events = description.get("IncludeGlobalServiceEvents")
    evidence = f"{trail}: IsMultiRegionTrail={multi}, IncludeGlobalServiceEvents={global_events}"
    return passed(evidence) if multi is True and global_events is True else failed(evidence)


def trail_log_file_validation(trail: str, description: Mapping[str, Any]) -> Outcome:
    enabled = description.get("LogFileValidationEnabled")
    evidence = f"{trail}: LogFileValidationEnabled={enabled}"
    return passed(evidence) if enabled is True else failed(evidence)


def trail_kms_encrypted(trail: str, description: Mapping[str, Any], *, kms_key_arn: str) -> Outcome:
    key = description.get("KmsKeyId")
    if same_key(key, kms_key_arn):
        return passed(f"{trail}: logs encrypted with {kms_key_arn}")
    return failed(f"{trail}: KmsKeyId={key}, expected {kms_key_arn}")


def _field_values(selector: Mapping[str, Any], field: str) -> dict[str, list[str]]:
    for fs in as_list(selector.get("FieldSelectors")):
        if fs.get("Field") == field:
            return {
                op: [str(v) for v in as_list(values)] for op, values in fs.items() if op != "Field"
            }
    return {}


def _advanced_selector_covers(selector: Mapping[str, Any], resource_type: str, arn: str) -> bool:
    """Whether one advanced selector logs every read and write data event on ``arn``."""
    if "Data" not in _field_values(selector, "eventCategory").get("Equals", []):
        return False
    if resource_type not in _field_values(selector, "resources.type").get("Equals", []):
        return False
    for field in ("readOnly", "eventName", "eventSource", "eventType"):
        if _field_values(selector, field):
            return False  # logs only part of the events on the resource
    arn_ops = _field_values(selector, "resources.ARN")
    # an S3 object selector must cover every key in the bucket: test the bucket prefix
    target = f"{arn}/" if resource_type == "AWS::S3::Object" else arn
    if any(
        target == v or target.startswith(v)
        for v in arn_ops.get("NotEquals", []) + arn_ops.get("NotStartsWith", [])
    ):
        return False
    if arn_ops.get("NotEndsWith") or arn_ops.get("EndsWith"):
        return False
    positive = {op: vs for op, vs in arn_ops.items() if op in ("Equals", "StartsWith")}
    if not positive:
        return not arn_ops  # no ARN filter: every resource of the type
    return target in positive.get("Equals", []) or any(
        target.startswith(p) for p in positive.get("StartsWith", [])
    )


def _basic_selector_covers(selector: Mapping[str, Any], resource_type: str, arn: str) -> bool:
    if selector.get("ReadWriteType", "All") != "All":
        return False
    target = f"{arn}/" if resource_type == "AWS::S3::Object" else arn
    service_wide = "arn:aws:s3" if resource_type == "AWS::S3::Object" else "arn:aws:dynamodb"
    for data in as_list(selector.get("DataResources")):
        if data.get("Type") != resource_type:
            continue
        values = [str(v) for v in as_list(data.get("Values"))]
        if service_wide in values or target in values:
            return True
    return False


def trail_logs_data_events(
    trail: str, selectors: Mapping[str, Any], *, resource_type: str, resource_arn: str
) -> Outcome:
    """The trail's selectors log all data events (reads and writes) on ``resource_arn``.

    Args:
        selectors: the GetEventSelectors response (``AdvancedEventSelectors`` or
            ``EventSelectors``).
        resource_type: ``AWS::S3::Object`` (``resource_arn`` is the bucket ARN) or
            ``AWS::DynamoDB::Table``.
    """
    for selector in as_list(selectors.get("AdvancedEventSelectors")):
        if _advanced_selector_covers(selector, resource_type, resource_arn):
            name = selector.get("Name", "(unnamed)")
            return passed(
                f"{trail}: advanced selector '{name}' logs all {resource_type} "
                f"data events on {resource_arn}"
            )
    for selector in as_list(selectors.get("EventSelectors")):
        if _basic_selector_covers(selector, resource_type, resource_arn):
            return passed(
                f"{trail}: event selector logs all {resource_type} data events on {resource_arn}"
            )
    return failed(f"{trail}: no selector logs all {resource_type} data events on {resource_arn}")


def trail_logs_management_events(trail: str, selectors: Mapping[str, Any]) -> Outcome:
    """Management events, reads and writes, are logged (CIS 3.1)."""
    for selector in as_list(selectors.get("AdvancedEventSelectors")):
        if "Management" not in _field_values(selector, "eventCategory").get("Equals", []):
            continue
        partial = [
            f for f in ("readOnly", "eventSource", "eventName") if _field_values(selector, f)
        ]
        if not partial:
            name = selector.get("Name", "(unnamed)")
            return passed(f"{trail}: advanced selector '{name}' logs all management events")
    for selector in as_list(selectors.get("EventSelectors")):
        if (
            selector.get("IncludeManagementEvents") is True
            and selector.get("ReadWriteType", "All") == "All"
            and not selector.get("ExcludeManagementEventSources")
        ):
            return passed(f"{trail}: event selector logs all management events")
    return failed(f"{trail}: no selector logs all read and write management events")


# ---------------------------------------------------------------------------- DynamoDB


def table_encrypted_with_customer_key(
    table: str, description: Mapping[str, Any], *, kms_key_arn: str
) -> Outcome:
    sse = description.get("SSEDescription") or {}
    status, sse_type, key = sse.get("Status"), sse.get("SSEType"), sse.get("KMSMasterKeyArn")
    evidence = f"{table}: SSE {status}, {sse_type}, key {key}"
    if status == "ENABLED" and sse_type == "KMS" and same_key(key, kms_key_arn):
        return passed(evidence)
    if not sse:
        return failed(f"{table}: encrypted with an AWS owned key, not the stack's CMK")
    return failed(f"{evidence}; expected KMS with {kms_key_arn}")


def table_pitr_enabled(table: str, backups: Mapping[str, Any]) -> Outcome:
    pitr = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
    evidence = f"{table}: point-in-time recovery {pitr}"
    return passed(evidence) if pitr == "ENABLED" else failed(evidence)


def table_deletion_protected(table: str, description: Mapping[str, Any]) -> Outcome:
    enabled = description.get("DeletionProtectionEnabled")
    evidence = f"{table}: DeletionProtectionEnabled={enabled}"
    return passed(evidence) if enabled is True else failed(evidence)


# ---------------------------------------------------------------------------- Cognito


def user_pool_mfa_on(pool: str, description: Mapping[str, Any], mfa: Mapping[str, Any]) -> Outcome:
    """MFA required, as GetUserPoolMfaConfig (the API that sets and reports it) says.

    DescribeUserPool carries a copy; AWS keeps the two equal, some emulators do not
    update the copy, so a disagreement is reported in the evidence but not decisive.
    """
    configured = mfa.get("MfaConfiguration")
    described = description.get("MfaConfiguration")
    totp = (mfa.get("SoftwareTokenMfaConfiguration") or {}).get("Enabled")
    evidence = f"{pool}: MfaConfiguration={configured}"
    if totp is not None:
        evidence += f", TOTP enabled={totp}"
    if described is not None and described != configured:
        evidence += f" (DescribeUserPool's copy says {described})"
    if configured == "ON" and totp is not False:
        return passed(evidence)
    return failed(evidence)


def user_pool_password_policy(
    pool: str, description: Mapping[str, Any], *, min_length: int, max_temporary_days: int
) -> Outcome:
    policy = (description.get("Policies") or {}).get("PasswordPolicy") or {}
    problems = []
    length = policy.get("MinimumLength") or 0
    if length < min_length:
        problems.append(f"MinimumLength={length} < {min_length}")
    for flag in ("RequireUppercase", "RequireLowercase", "RequireNumbers", "RequireSymbols"):
        if policy.get(flag) is not True:
            problems.append(f"{flag} off")
    temporary = policy.get("TemporaryPasswordValidityDays")
    if temporary is None or temporary > max_temporary_days:
        problems.append(f"TemporaryPasswordValidityDays={temporary} > {max_temporary_days}")
    if problems:
        return failed(f"{pool}: " + "; ".join(problems))
    return passed(
        f"{pool}: MinimumLength={length}, all four character classes required, "
        f"temporary passwords valid {temporary} day(s)"
    )


def user_pool_custom_attributes(
    pool: str, description: Mapping[str, Any], *, required: Mapping[str, bool]
) -> Outcome:
    """Each required ``custom:<name>`` exists with the required mutability."""
    schema = {a.get("Name"): a for a in as_list(description.get("SchemaAttributes"))}
    problems = []
    for name, mutable in required.items():
        attribute = schema.get(f"custom:{name}")
        if attribute is None:
            problems.append(f"custom:{name} missing")
        elif not mutable and attribute.get("Mutable") is not False:
            problems.append(f"custom:{name} is mutable (must be fixed at registration)")
    if problems:
        return failed(f"{pool}: " + "; ".join(problems))
    return passed(
        f"{pool}: "
        + ", ".join(f"custom:{n}" + ("" if m else " (immutable)") for n, m in required.items())
    )


def user_pool_role_groups(
    pool: str, groups: Sequence[Mapping[str, Any]], *, required: Iterable[str]
) -> Outcome:
    present = {g.get("GroupName") for g in groups}
    wanted = set(required)
    missing, unknown = sorted(wanted - present), sorted(str(g) for g in present - wanted)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing groups {missing}")
        if unknown:
            parts.append(f"groups outside the access model {unknown}")
        return failed(f"{pool}: " + "; ".join(parts))
    return passed(f"{pool}: groups {sorted(wanted)}")


def user_pool_federation(
    pool: str, providers: Sequence[Mapping[str, Any]], *, phase: int, expected: Mapping[str, str]
) -> Outcome:
    """Exactly the stage's providers (name -> SAML/OIDC); none in phase 1."""
    present = {str(p.get("ProviderName")): str(p.get("ProviderType")) for p in providers}
    # Social and built-in providers are not institutions' IdPs; only SAML/OIDC count.
    federated = {n: t for n, t in present.items() if t in ("SAML", "OIDC")}
    if phase < 2 and expected:
        return failed(f"{pool}: stage lists providers in phase {phase}: {sorted(expected)}")
    if federated == dict(expected):
        if not federated:
            return passed(f"{pool}: no federated identity providers (phase {phase})")
        listed = ", ".join(f"{n} ({t})" for n, t in sorted(federated.items()))
        return passed(f"{pool}: providers {listed} as the phase {phase} stage lists")
    return failed(
        f"{pool}: providers {dict(sorted(federated.items()))}, stage lists "
        f"{dict(sorted(expected.items()))} (phase {phase})"
    )


# ---------------------------------------------------------------------------- API Gateway

TLS13_ONLY_POLICY = re.compile(r"^SecurityPolicy_TLS13_1_3_")


def api_tls13_only(api: str, security_policy: str | None, *, source: str) -> Outcome:
    if security_policy and TLS13_ONLY_POLICY.match(security_policy):
        return passed(f"{api}: securityPolicy={security_policy} ({source})")
    return failed(
        f"{api}: securityPolicy={security_policy} ({source}); expected a TLS 1.3-only "
        "policy (SecurityPolicy_TLS13_1_3_*)"
    )


def api_method_requires_authorizer(
    method: str,
    config: Mapping[str, Any],
    authorizers: Sequence[Mapping[str, Any]],
    *,
    user_pool_arn: str,
    public: bool = False,
) -> Outcome:
    """``config`` is the method as GetMethod returns it; ``public`` marks GET /health."""
    kind = config.get("authorizationType")
    if public:
        if kind == "NONE":
            return not_applicable(f"{method}: public health check by design (no data)")
        return passed(f"{method}: health check requires {kind}")
    if kind != "COGNITO_USER_POOLS":
        return failed(f"{method}: authorizationType={kind}; a Cognito access token is required")
    authorizer = next((a for a in authorizers if a.get("id") == config.get("authorizerId")), None)
    if authorizer is None:
        return failed(f"{method}: authorizer {config.get('authorizerId')} does not exist")
    providers = as_list(authorizer.get("providerARNs"))
    if authorizer.get("type") != "COGNITO_USER_POOLS" or user_pool_arn not in providers:
        return failed(
            f"{method}: authorizer {authorizer.get('name')} trusts {providers}, not "
            f"the stack's pool {user_pool_arn}"
        )
    scopes = as_list(config.get("authorizationScopes"))
    tokens = "access tokens only" if scopes else "id or access tokens"
    return passed(
        f"{method}: Cognito authorizer '{authorizer.get('name')}' on the stack's "
        f"pool ({tokens}; scopes {scopes})"
    )


# ---------------------------------------------------------------------------- Lambda

DATA_STORE_SERVICES = ("s3", "dynamodb", "kms")
# Actions AWS defines without resource-level permissions: Resource "*" is the only form.
RESOURCELESS_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    }
)


def _arn_within(resource: str, stack_arns: Iterable[str]) -> bool:
    return any(resource == arn or resource.startswith((f"{arn}/", f"{arn}:")) for arn in stack_arns)


def role_least_privilege(
    role: str, documents: Mapping[str, str | Mapping[str, Any]], *, stack_arns: Sequence[str]
) -> Outcome:
    """No ``*`` action, no wildcard action on a data store, no NotAction/NotResource
    allows, and every resource within the stack (``*`` only for resource-less actions).

    Args:
        documents: policy name (inline) or ARN (attached) -> policy document.
        stack_arns: the ARNs of this stack's resources; sub-paths (``<bucket>/*``,
            ``<table>/index/*``, ``<log group>:*``) count as within.
    """
    if not documents:
        return passed(f"{role}: no policies attached")
    problems: list[str] = []
    for name, raw in documents.items():
        document = parse_policy(raw) or {}
        for n, statement in enumerate(statements(document)):
            if statement.get("Effect") != "Allow":
                continue
            where = f"{name}#{statement.get('Sid', n)}"
            if "NotAction" in statement or "NotResource" in statement:
                problems.append(f"{where}: Allow with NotAction/NotResource")
                continue
            actions = [str(a) for a in as_list(statement.get("Action"))]
            for action in actions:
                service, _, operation = action.partition(":")
                if action == "*" or (
                    service.lower() in DATA_STORE_SERVICES
                    and ("*" in operation or "?" in operation)
                ):
                    problems.append(f"{where}: wildcard action {action}")
            for resource in (str(r) for r in as_list(statement.get("Resource"))):
                if resource == "*":
                    broad = [a for a in actions if a not in RESOURCELESS_ACTIONS]
                    if broad:
                        problems.append(f"{where}: {broad} on Resource '*'")
                elif not _arn_within(resource, stack_arns):
                    problems.append(f"{where}: resource {resource} is outside the stack")
    if problems:
        return failed(f"{role}: " + "; ".join(problems))
    return passed(
        f"{role}: {len(documents)} polic{'y' if len(documents) == 1 else 'ies'}; "
        "no wildcard data-store actions; every resource is the stack's"
    )


def _bound_to_source(statement: Mapping[str, Any], *, arn_only: bool) -> bool:
    condition = statement.get("Condition") or {}
    keys = {k.lower() for block in condition.values() if isinstance(block, Mapping) for k in block}
    accepted = ("aws:sourcearn",) if arn_only else ("aws:sourcearn", "aws:sourceaccount")
    return any(k in keys for k in accepted)


def function_policy_not_public(
    function: str, policy: str | Mapping[str, Any] | None, *, account_id: str | None = None
) -> Outcome:
    """No Allow to everyone, and none to a service principal, without a source binding;
    with ``account_id``, no Allow to another account's principals either."""
    document = parse_policy(policy)
    if document is None:
        return passed(
            f"{function}: no resource policy (invocable only by IAM principals of the account)"
        )
    problems = []
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        sid = statement.get("Sid", "(no Sid)")
        if _is_everyone(principal) and not _bound_to_source(statement, arn_only=True):
            problems.append(f"{sid}: Principal '*' without a source-ARN condition")
        elif (
            isinstance(principal, Mapping)
            and "Service" in principal
            and not _bound_to_source(statement, arn_only=False)
        ):
            # an unbound service principal lets any account's resource of that service
            # invoke the function (confused deputy)
            problems.append(f"{sid}: service {principal['Service']} without a source condition")
        elif account_id and isinstance(principal, Mapping):
            foreign = [
                p
                for p in _principals(principal)
                if p != "*" and p != account_id and f":iam::{account_id}:" not in p
            ]
            if foreign:
                problems.append(f"{sid}: principals of another account {foreign}")
    if problems:
        return failed(f"{function}: " + "; ".join(problems))
    sids = [s.get("Sid", "?") for s in statements(document)]
    return passed(f"{function}: every statement bound to a source ({', '.join(map(str, sids))})")


# ---------------------------------------------------------------------------- log groups


def log_group_encrypted_retained(
    group: str, description: Mapping[str, Any] | None, *, kms_key_arn: str, min_retention_days: int
) -> Outcome:
    if description is None:
        return failed(f"{group}: log group does not exist")
    key = description.get("kmsKeyId")
    days = description.get("retentionInDays")
    problems = []
    if not same_key(key, kms_key_arn):
        problems.append(f"kmsKeyId={key}, expected {kms_key_arn}")
    if days is None:
        problems.append("never expires (no retention set: Cap. 486 DPP2 wants a limit)")
    elif days < min_retention_days:
        problems.append(f"retention {days} days < {min_retention_days}")
    if problems:
        return failed(f"{group}: " + "; ".join(problems))
    return passed(
        f"{group}: encrypted with {kms_key_arn}, retained {days} days "
        f"(at least {min_retention_days})"
    )


# ---------------------------------------------------------------------------- key policies

# What a key's cryptographic use means: none of these may reach the account root.
CRYPTO_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:Sign",
    "kms:GenerateMac",
    "kms:DeriveSharedSecret",
)


def _principals(principal: Any) -> list[str]:
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        return [str(p) for p in as_list(principal.get("AWS"))]
    return []


def key_policy_root_admin_only(
    key: str, policy: str | Mapping[str, Any] | None, *, account_id: str
) -> Outcome:
    """The account root (so any IAM policy of the account) gets no cryptographic action.

    Services and named roles may hold cryptographic grants; the root principal (or
    everyone, unconditionally) may not, so an IAM policy alone never opens data.
    """
    document = parse_policy(policy)
    if document is None:
        return failed(f"{key}: no key policy")

    def is_root(principal: str) -> bool:
        return principal in (account_id, "*") or principal.endswith(f":iam::{account_id}:root")

    problems = []
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        principals = _principals(statement.get("Principal"))
        if not any(is_root(p) for p in principals):
            continue
        condition_keys = {
            k.lower()
            for block in (statement.get("Condition") or {}).values()
            if isinstance(block, Mapping)
            for k in block
        }
        if "*" in principals and "kms:viaservice" in condition_keys:
            continue  # the account's principals, but only through a named AWS service
        actions = as_list(statement.get("Action"))
        granted = [op for op in CRYPTO_ACTIONS if _covers_action(actions, op)]
        if granted or "NotAction" in statement:
            sid = statement.get("Sid", "(no Sid)")
            problems.append(f"{sid} gives {principals} {granted or 'NotAction'}")
    if problems:
        return failed(f"{key}: " + "; ".join(problems))
    return passed(
        f"{key}: the account root has key administration only; cryptographic "
        "use is granted to named principals or bound services"
    )


def bucket_requires_sse_kms_puts(
    bucket: str,
    bucket_arn: str,
    policy: str | Mapping[str, Any] | None,
    *,
    kms_key_arn: str,
    source: str = "live policy",
) -> Outcome:
    """Puts are denied unless they ask for SSE-KMS, and with the stack's key."""
    document = parse_policy(policy)
    if document is None:
        return failed(f"{bucket}: no bucket policy ({source})")
    requires_kms = requires_key = None
    for statement in statements(document):
        if statement.get("Effect") != "Deny" or not _is_everyone(statement.get("Principal")):
            continue
        if not _covers_action(as_list(statement.get("Action")), "s3:PutObject") or not _covers(
            as_list(statement.get("Resource")), f"{bucket_arn}/any"
        ):
            continue
        condition = statement.get("Condition") or {}
        for operator, block in condition.items():
            if not operator.startswith("StringNotEquals") or not isinstance(block, Mapping):
                continue
            algorithm = block.get("s3:x-amz-server-side-encryption")
            if algorithm is not None and as_list(algorithm) == ["aws:kms"]:
                requires_kms = statement.get("Sid", "(no Sid)")
            key = block.get("s3:x-amz-server-side-encryption-aws-kms-key-id")
            if key is not None and all(same_key(str(k), kms_key_arn) for k in as_list(key)):
                requires_key = statement.get("Sid", "(no Sid)")
    if requires_kms and requires_key:
        return passed(
            f"{bucket}: {requires_kms} denies puts without SSE-KMS, {requires_key} "
            f"puts with another key than {kms_key_arn} ({source})"
        )
    missing = [
        m
        for m, found in (
            ("a deny of puts without SSE-KMS", requires_kms),
            (f"a deny of puts with a key other than {kms_key_arn}", requires_key),
        )
        if not found
    ]
    return failed(f"{bucket}: no {' and no '.join(missing)} ({source})")


# ---------------------------------------------------------------------------- more Cognito


def user_pool_triggers_configured(
    pool: str, description: Mapping[str, Any], *, functions: Sequence[str]
) -> Outcome:
    """Pre sign-up (register check) and pre token generation V2 run this stack's code."""
    config = description.get("LambdaConfig") or {}
    pre_sign_up = config.get("PreSignUp")
    token = config.get("PreTokenGenerationConfig") or {}
    pre_token = token.get("LambdaArn") or config.get("PreTokenGeneration")
    version = token.get("LambdaVersion")

    def ours(arn: Any) -> bool:
        return bool(arn) and str(arn).rsplit(":function:", 1)[-1].split(":")[0] in functions

    problems = []
    if not ours(pre_sign_up):
        problems.append(
            f"pre sign-up trigger {pre_sign_up} is not one of the stack's "
            "functions (sign-ups would skip the Medical Council register check)"
        )
    if not ours(pre_token):
        problems.append(
            f"pre token generation trigger {pre_token} is not one of the stack's functions"
        )
    elif version != "V2_0":
        problems.append(f"pre token generation is {version}, not V2_0 (no access-token claims)")
    if problems:
        return failed(f"{pool}: " + "; ".join(problems))
    return passed(f"{pool}: pre sign-up {pre_sign_up}; pre token generation V2_0 {pre_token}")


def user_pool_threat_protection(pool: str, description: Mapping[str, Any]) -> Outcome:
    mode = (description.get("UserPoolAddOns") or {}).get("AdvancedSecurityMode")
    evidence = f"{pool}: AdvancedSecurityMode={mode}"
    return passed(evidence) if mode == "ENFORCED" else failed(evidence)


# ---------------------------------------------------------------------------- API stages


def stage_throttled(
    stage: str, settings: Mapping[str, Any], *, rate_limit: float, burst_limit: int
) -> Outcome:
    """The stage-wide method settings (``*/*``) throttle at the configured rate and burst."""
    wide = (settings.get("methodSettings") or {}).get("*/*") or {}
    rate, burst = wide.get("throttlingRateLimit"), wide.get("throttlingBurstLimit")
    evidence = f"{stage}: */* throttling rate {rate}/s, burst {burst}"
    if rate is None or burst is None or float(rate) <= 0 or int(burst) <= 0:
        return failed(f"{evidence}; no stage-wide throttling")
    if float(rate) != float(rate_limit) or int(burst) != int(burst_limit):
        return failed(f"{evidence}; the stage configures {rate_limit}/s, burst {burst_limit}")
    return passed(f"{evidence} as the stage configures")


def stage_without_data_trace(stage: str, settings: Mapping[str, Any]) -> Outcome:
    """No method logs full requests and responses (they would carry patient data)."""
    traced = sorted(
        path
        for path, s in (settings.get("methodSettings") or {}).items()
        if isinstance(s, Mapping) and s.get("dataTraceEnabled") is True
    )
    if traced:
        return failed(
            f"{stage}: data trace logging on for {traced}: request and response "
            "bodies would reach CloudWatch Logs"
        )
    return passed(f"{stage}: no method logs request or response bodies")


def stage_protected_by_waf(stage: str, web_acl: Mapping[str, Any] | None) -> Outcome:
    if not web_acl:
        return failed(f"{stage}: no WAF web ACL associated")
    statements_ = [r.get("Statement") or {} for r in as_list(web_acl.get("Rules"))]
    rate = [s["RateBasedStatement"].get("Limit") for s in statements_ if "RateBasedStatement" in s]
    managed = [
        s["ManagedRuleGroupStatement"].get("Name")
        for s in statements_
        if "ManagedRuleGroupStatement" in s
    ]
    if not rate:
        return failed(f"{stage}: web ACL {web_acl.get('Name')} has no rate-based rule")
    return passed(
        f"{stage}: web ACL {web_acl.get('Name')}, per-IP rate limit {rate[0]}, "
        f"managed rule groups {managed}"
    )
