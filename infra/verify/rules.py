"""Post-deploy rules: adapters from collected AWS state to the shared predicates.

Each rule is named for the compliant state, takes plain data (the shapes boto3 returns,
already collected by ``infra.verify.collect``) plus what is expected, and returns a
:class:`~infra.controls.result.Result` whose message (the report's evidence) names the
resource and the values the decision rests on. Where the policy pack checks the same
state on declared inputs, the decision is made by the same function of
:mod:`infra.controls.predicates` or :mod:`infra.controls.policy_documents`; the rule
only reads the boto3 reply and words the evidence. Rules make no AWS calls and know
nothing of reports or controls, so each is tested on hand-written dicts, compliant and
not.

Absent configuration (``None``: no public access block, no bucket policy...) is a
failure, never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from infra.controls import predicates
from infra.controls.policy_documents import (
    action_matches,
    as_list,
    condition_values,
    data_store_wildcard_grants,
    insecure_transport_deny,
    is_data_store_action,
    is_wildcard_action,
    policy_statements,
    principal_is_everyone,
    principals,
    public_invocation_grants,
    resource_matches,
)
from infra.controls.predicates import same_key
from infra.controls.result import Result, failed, not_applicable, passed

# ---------------------------------------------------------------------------- KMS keys


def key_enabled(key: str, metadata: Mapping[str, Any]) -> Result:
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
) -> Result:
    spec = metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec")
    if not predicates.rotation_applies(spec, metadata.get("KeyUsage")):
        return not_applicable(
            f"{key}: {spec} key; KMS rotates only symmetric encryption keys automatically "
            "(an asymmetric key is rotated by a new key behind the same alias)"
        )
    rotation = rotation or {}
    period = rotation.get("RotationPeriodInDays")
    problems = predicates.rotation_problems(
        rotation.get("KeyRotationEnabled"), period, max_period_days=max_period_days
    )
    if problems:
        return failed(f"{key}: {'; '.join(problems)}")
    every = f" every {period} days" if period is not None else ""
    return passed(f"{key}: automatic rotation on{every}")


def key_spec_and_usage(key: str, metadata: Mapping[str, Any], *, spec: str, usage: str) -> Result:
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
) -> Result:
    """SSE-KMS with ``kms_key_arn``; or SSE-S3 (AES256) when ``kms_key_arn`` is None.

    Args:
        encryption: the ``ServerSideEncryptionConfiguration`` (None if there is none).
        sse_s3_reason: why SSE-S3 is expected, quoted in the evidence.
    """
    rules = as_list((encryption or {}).get("Rules"))
    if not rules:
        return failed(f"{bucket}: no default encryption configured")
    settings = [r.get("ApplyServerSideEncryptionByDefault") or {} for r in rules]
    defaults = [(d.get("SSEAlgorithm"), d.get("KMSMasterKeyID")) for d in settings]
    algorithms = [a for a, _ in defaults]
    if kms_key_arn is None:
        if predicates.default_encryption_is_sse_s3(defaults):
            return passed(f"{bucket}: SSE-S3 (AES256) by design: {sse_s3_reason}".rstrip(": "))
        return failed(f"{bucket}: SSEAlgorithm={algorithms}, expected AES256 ({sse_s3_reason})")
    if predicates.default_encryption_is_kms(
        defaults, key_matches=lambda key: same_key(key, kms_key_arn)
    ):
        return passed(f"{bucket}: SSE-KMS with {kms_key_arn}")
    keys = [k for _, k in defaults]
    return failed(
        f"{bucket}: SSEAlgorithm={algorithms}, key={keys}; expected aws:kms with {kms_key_arn}"
    )


def bucket_versioning_enabled(bucket: str, versioning: Mapping[str, Any] | None) -> Result:
    status = (versioning or {}).get("Status")
    if status == "Enabled":
        return passed(f"{bucket}: versioning Enabled")
    return failed(f"{bucket}: versioning {status or 'never enabled'}")


def bucket_blocks_public_access(bucket: str, block: Mapping[str, Any] | None) -> Result:
    if block is None:
        return failed(f"{bucket}: no public access block configured")
    off = predicates.public_access_flags_off(block)
    if off:
        return failed(f"{bucket}: public access block flags off: {', '.join(off)}")
    return passed(f"{bucket}: all four public access block flags on")


def bucket_owner_enforced(bucket: str, ownership: Mapping[str, Any] | None) -> Result:
    rules = as_list((ownership or {}).get("Rules"))
    values = [r.get("ObjectOwnership") for r in rules]
    if values and all(v == "BucketOwnerEnforced" for v in values):
        return passed(f"{bucket}: ObjectOwnership=BucketOwnerEnforced (ACLs disabled)")
    return failed(f"{bucket}: ObjectOwnership={values or 'not set'}")


def bucket_denies_insecure_transport(
    bucket: str,
    bucket_arn: str,
    policy: str | Mapping[str, Any] | None,
    *,
    source: str = "live policy",
) -> Result:
    """A Deny for everyone, on every S3 action over the bucket and every object in it,
    when ``aws:SecureTransport`` is false
    (:func:`~infra.controls.policy_documents.insecure_transport_deny`)."""
    if policy is None:
        return failed(f"{bucket}: no bucket policy ({source})")
    statements = policy_statements(policy)
    if statements is None:
        return failed(f"{bucket}: unreadable bucket policy ({source})")
    deny = insecure_transport_deny(statements, bucket_arn)
    if deny is not None:
        sid = deny.get("Sid", "(no Sid)")
        return passed(f"{bucket}: statement {sid} denies s3:* without TLS ({source})")
    return failed(
        f"{bucket}: no statement denies s3:* on the bucket and its objects when "
        f"aws:SecureTransport is false ({source})"
    )


def bucket_logs_to(bucket: str, logging: Mapping[str, Any] | None, *, target_bucket: str) -> Result:
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
) -> Result:
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


def trail_logging(trail: str, status: Mapping[str, Any]) -> Result:
    if predicates.trail_is_logging(status.get("IsLogging")):
        return passed(f"{trail}: IsLogging=true")
    stopped = status.get("StopLoggingTime") or status.get("TimeLoggingStopped")
    return failed(f"{trail}: IsLogging=false" + (f" (stopped {stopped})" if stopped else ""))


def trail_multi_region(trail: str, description: Mapping[str, Any]) -> Result:
    multi = description.get("IsMultiRegionTrail")
    global_events = description.get("IncludeGlobalServiceEvents")
    evidence = f"{trail}: IsMultiRegionTrail={multi}, IncludeGlobalServiceEvents={global_events}"
    if predicates.trail_covers_all_regions(multi, global_events):
        return passed(evidence)
    return failed(evidence)


def trail_log_file_validation(trail: str, description: Mapping[str, Any]) -> Result:
    enabled = description.get("LogFileValidationEnabled")
    evidence = f"{trail}: LogFileValidationEnabled={enabled}"
    return passed(evidence) if predicates.trail_validates_log_files(enabled) else failed(evidence)


def trail_kms_encrypted(trail: str, description: Mapping[str, Any], *, kms_key_arn: str) -> Result:
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
    fields = {
        str(fs.get("Field")): _field_values(selector, str(fs.get("Field")))
        for fs in as_list(selector.get("FieldSelectors"))
    }
    if not predicates.data_selector_logs_every_event_of(fields, resource_type):
        return False
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
) -> Result:
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


def trail_records_insights(trail: str, insights: Any) -> Result:
    """Both CloudTrail Insights types are on (``GetInsightSelectors``; None: Insights off)."""
    types = [s.get("InsightType") for s in as_list(insights) if isinstance(s, Mapping)]
    missing = predicates.missing_insight_types(types)
    if missing:
        return failed(f"{trail}: Insights not recorded: {', '.join(missing)}")
    return passed(f"{trail}: Insights record {', '.join(predicates.INSIGHT_TYPES)}")


def trail_logs_management_events(trail: str, selectors: Mapping[str, Any]) -> Result:
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
) -> Result:
    sse = description.get("SSEDescription") or {}
    status, sse_type, key = sse.get("Status"), sse.get("SSEType"), sse.get("KMSMasterKeyArn")
    evidence = f"{table}: SSE {status}, {sse_type}, key {key}"
    if predicates.table_encrypted_with_kms(
        status == "ENABLED" and sse_type == "KMS",
        key,
        key_matches=lambda ref: same_key(ref, kms_key_arn),
    ):
        return passed(evidence)
    if not sse:
        return failed(f"{table}: encrypted with an AWS owned key, not the stack's CMK")
    return failed(f"{evidence}; expected KMS with {kms_key_arn}")


def table_pitr_enabled(table: str, backups: Mapping[str, Any]) -> Result:
    pitr = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
    evidence = f"{table}: point-in-time recovery {pitr}"
    if predicates.point_in_time_recovery_enabled(pitr == "ENABLED"):
        return passed(evidence)
    return failed(evidence)


def table_deletion_protected(table: str, description: Mapping[str, Any]) -> Result:
    enabled = description.get("DeletionProtectionEnabled")
    evidence = f"{table}: DeletionProtectionEnabled={enabled}"
    return passed(evidence) if enabled is True else failed(evidence)


# ---------------------------------------------------------------------------- Cognito


def user_pool_mfa_on(pool: str, description: Mapping[str, Any], mfa: Mapping[str, Any]) -> Result:
    """MFA required, with a factor enabled, as GetUserPoolMfaConfig (the API that sets and
    reports it) says.

    DescribeUserPool carries a copy; AWS keeps the two equal, some emulators do not
    update the copy, so a disagreement is reported in the evidence but not decisive.
    """
    configured = mfa.get("MfaConfiguration")
    described = description.get("MfaConfiguration")
    totp = (mfa.get("SoftwareTokenMfaConfiguration") or {}).get("Enabled")
    sms = isinstance((mfa.get("SmsMfaConfiguration") or {}).get("SmsConfiguration"), Mapping)
    email = bool(mfa.get("EmailMfaConfiguration"))
    evidence = f"{pool}: MfaConfiguration={configured}"
    if totp is not None:
        evidence += f", TOTP enabled={totp}"
    if sms or email:
        evidence += f", SMS={sms}, email={email}"
    if described is not None and described != configured:
        evidence += f" (DescribeUserPool's copy says {described})"
    problems = predicates.mfa_problems(configured, totp=totp, sms=sms, email=email)
    if problems:
        return failed(f"{evidence}: {'; '.join(problems)}")
    return passed(evidence)


def user_pool_password_policy(
    pool: str, description: Mapping[str, Any], *, min_length: int, max_temporary_days: int
) -> Result:
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
) -> Result:
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
) -> Result:
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
) -> Result:
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


def user_pool_clients_cannot_write_granting_attributes(
    pool: str, clients: Sequence[Mapping[str, Any]]
) -> Result:
    """No app client lets its users write an attribute that grants anything (the pack's
    predicate, :func:`infra.controls.predicates.client_writable_grants`, on the live
    clients)."""
    if not clients:
        return failed(f"{pool}: no app client found")
    problems, fine = [], []
    for client in clients:
        label = str(client.get("ClientName") or client.get("ClientId"))
        writable = predicates.client_writable_grants(
            client.get("WriteAttributes"),
            client.get("ExplicitAuthFlows"),
            client.get("AllowedOAuthScopes"),
        )
        if writable:
            problems.append(f"{label} lets its users write {writable}")
        elif writable is None:
            fine.append(f"{label} (tokens cannot update attributes)")
        else:
            fine.append(f"{label} (writes {sorted(client.get('WriteAttributes') or [])})")
    if problems:
        return failed(f"{pool}: " + "; ".join(problems))
    return passed(f"{pool}: " + ", ".join(fine))


def user_pool_intake_channel(
    pool: str,
    resource_servers: Sequence[Mapping[str, Any]],
    clients: Sequence[Mapping[str, Any]],
    *,
    intake_client_ids: Sequence[str],
    resource_server: str,
    scope: str,
) -> Result:
    """Community-care intake as declared: the pool's resource server ``resource_server``
    defines ``scope``; each intake client (``intake_client_ids``, from the stack's
    outputs) has a secret, allows only the ``client_credentials`` flow and only that
    scope; no other client carries it. With no intake declared, no client may carry it.

    (The emulator's token endpoint enforces the same on each token it mints, a recorded
    gap; this check judges the live pool itself.)"""
    problems: list[str] = []
    by_id = {str(c.get("ClientId")): c for c in clients}
    if intake_client_ids:
        server = next((s for s in resource_servers if s.get("Identifier") == resource_server), None)
        names = {
            f"{resource_server}/{s.get('ScopeName')}" for s in (server or {}).get("Scopes") or []
        }
        if server is None:
            problems.append(f"no resource server {resource_server}")
        elif scope not in names:
            problems.append(f"resource server {resource_server} lacks {scope}")
    for client_id in intake_client_ids:
        client = by_id.get(client_id)
        if client is None:
            problems.append(f"intake client {client_id} not found")
            continue
        label = str(client.get("ClientName") or client_id)
        flows = sorted(client.get("AllowedOAuthFlows") or [])
        scopes = sorted(client.get("AllowedOAuthScopes") or [])
        if flows != ["client_credentials"] or not client.get("AllowedOAuthFlowsUserPoolClient"):
            problems.append(f"{label} allows flows {flows} (client_credentials only)")
        if scopes != [scope]:
            problems.append(f"{label} allows scopes {scopes} ({scope} only)")
        if not client.get("ClientSecret"):
            problems.append(f"{label} has no secret")
    for client_id, client in by_id.items():
        if client_id not in intake_client_ids and scope in (client.get("AllowedOAuthScopes") or []):
            problems.append(f"{client.get('ClientName') or client_id} carries {scope}")
    if problems:
        return failed(f"{pool}: " + "; ".join(problems))
    if not intake_client_ids:
        return passed(f"{pool}: no intake channel declared, and no client carries {scope}")
    return passed(
        f"{pool}: {resource_server} defines {scope}; {len(intake_client_ids)} intake "
        "client(s), client_credentials only, with secrets"
    )


def user_pool_providers_release_placement_claims(
    pool: str,
    providers: Mapping[str, Any],
    *,
    required: Mapping[str, Sequence[str]],
) -> Result:
    """Each stage provider's live attribute mapping fills what placing its users needs
    (the registration number; the hospital code and the group claim where its stage
    mapping uses them)."""
    if not required:
        return passed(f"{pool}: no federated identity providers to place")
    problems, fine = [], []
    for name, claims in sorted(required.items()):
        detail = providers.get(name)
        if not isinstance(detail, Mapping):
            problems.append(f"{name} not found")
            continue
        mapping = dict(detail.get("AttributeMapping") or {})
        missing = predicates.placement_claims_missing(mapping, claims)
        if missing:
            problems.append(f"{name} does not map {missing}")
        else:
            fine.append(f"{name} maps {sorted(k for k in mapping if k != 'username')}")
    if problems:
        return failed(f"{pool}: " + "; ".join(problems))
    return passed(f"{pool}: " + "; ".join(fine))


# ---------------------------------------------------------------------------- API Gateway


def api_tls13_only(api: str, security_policy: str | None, *, source: str) -> Result:
    if predicates.is_tls13_only_policy(security_policy):
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
    public_reason: str = "public health check by design (no data)",
) -> Result:
    """``config`` is the method as GetMethod returns it; ``public`` marks a method that
    is public by design (GET /health, the web client's static files), ``public_reason``
    says why."""
    kind = config.get("authorizationType")
    if public:
        if kind == "NONE":
            return not_applicable(f"{method}: {public_reason}")
        return passed(f"{method}: public method requires {kind}")
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

# Actions AWS defines without resource-level permissions: Resource "*" is the only form.
RESOURCELESS_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        # An SMS goes to a phone number, which has no ARN to name (app/notifications).
        "sns:Publish",
    }
)


def _arn_within(resource: str, stack_arns: Iterable[str]) -> bool:
    return any(resource == arn or resource.startswith((f"{arn}/", f"{arn}:")) for arn in stack_arns)


def _outside_the_stack(
    statements: Sequence[Mapping[str, Any]], stack_arns: Sequence[str]
) -> list[tuple[str, str]]:
    """What the Allow statements reach beyond this stack's resources.

    ``NotResource`` reaches everything but some; ``Resource: "*"`` is only for the
    resource-less actions (data-store actions and wildcards on ``*`` are the shared
    predicate's to report).
    """
    problems = []
    for index, statement in enumerate(statements):
        if statement.get("Effect") != "Allow":
            continue
        where = str(statement.get("Sid") or index)
        if "NotResource" in statement:
            problems.append((where, "allows NotResource"))
            continue
        actions = [str(a) for a in as_list(statement.get("Action"))]
        for resource in (str(r) for r in as_list(statement.get("Resource"))):
            if resource == "*":
                broad = [
                    a
                    for a in actions
                    if a not in RESOURCELESS_ACTIONS
                    and not is_data_store_action(a)
                    and not is_wildcard_action(a)
                ]
                if broad:
                    problems.append((where, f"{broad} on Resource '*'"))
            elif not _arn_within(resource, stack_arns):
                problems.append((where, f"resource {resource} is outside the stack"))
    return problems


def _role_problems(
    documents: Mapping[str, str | Mapping[str, Any]],
    find: Callable[[Sequence[Mapping[str, Any]]], list[tuple[str, str]]],
) -> list[str]:
    problems: list[str] = []
    for name, raw in documents.items():
        statements = policy_statements(raw)
        if statements is None:
            problems.append(f"{name}: unreadable policy document")
            continue
        problems += [f"{name}#{where}: {problem}" for where, problem in find(statements)]
    return problems


def role_grants_no_data_store_wildcards(
    role: str, documents: Mapping[str, str | Mapping[str, Any]]
) -> Result:
    """No ``*`` action, wildcard service or wildcard data-store action, no ``NotAction``,
    no data-store action on every resource: the pack's predicate
    (:func:`~infra.controls.policy_documents.data_store_wildcard_grants`) on the role's
    live documents (policy name or ARN -> document)."""
    problems = _role_problems(documents, data_store_wildcard_grants)
    if problems:
        return failed(f"{role}: " + "; ".join(problems))
    return passed(f"{role}: no wildcard data-store actions")


def role_stays_within_stack(
    role: str, documents: Mapping[str, str | Mapping[str, Any]], *, stack_arns: Sequence[str]
) -> Result:
    """Every resource the role's Allow statements name is this stack's: no
    ``NotResource``, ``*`` only for resource-less actions (``stack_arns``' sub-paths,
    ``<bucket>/*``, ``<table>/index/*``, ``<log group>:*``, count as within)."""
    problems = _role_problems(
        documents, lambda statements: _outside_the_stack(statements, stack_arns)
    )
    if problems:
        return failed(f"{role}: " + "; ".join(problems))
    return passed(f"{role}: every resource is the stack's")


def role_trust_bound_to_source(role: str, trust: Any) -> Result:
    """The pack's :func:`~infra.controls.predicates.service_trust_problems` on the live
    trust policy (``iam:GetRole``'s ``AssumeRolePolicyDocument``)."""
    statements = policy_statements(trust)
    if statements is None:
        return failed(f"{role}: unreadable trust policy")
    problems = predicates.service_trust_problems(statements)
    if problems:
        return failed(f"{role}: " + "; ".join(problems))
    return passed(f"{role}: every service trust is bound to a source account or ARN")


def role_least_privilege(
    role: str, documents: Mapping[str, str | Mapping[str, Any]], *, stack_arns: Sequence[str]
) -> Result:
    """:func:`role_grants_no_data_store_wildcards` (the pack's predicate) and
    :func:`role_stays_within_stack`.

    Args:
        documents: policy name (inline) or ARN (attached) -> policy document.
        stack_arns: the ARNs of this stack's resources.
    """
    if not documents:
        return passed(f"{role}: no policies attached")
    parts = (
        role_grants_no_data_store_wildcards(role, documents),
        role_stays_within_stack(role, documents, stack_arns=stack_arns),
    )
    failures = [p.message.removeprefix(f"{role}: ") for p in parts if p.failed]
    if failures:
        return failed(f"{role}: " + "; ".join(failures))
    return passed(
        f"{role}: {len(documents)} polic{'y' if len(documents) == 1 else 'ies'}; "
        "no wildcard data-store actions; every resource is the stack's"
    )


def function_policy_not_public(
    function: str, policy: str | Mapping[str, Any] | None, *, account_id: str | None = None
) -> Result:
    """Every Allow names its caller, a service caller bound to a source ARN; with
    ``account_id``, no caller of another account
    (:func:`~infra.controls.policy_documents.public_invocation_grants`, the pack's
    predicate)."""
    if policy is None:
        return passed(
            f"{function}: no resource policy (invocable only by IAM principals of the account)"
        )
    statements = policy_statements(policy)
    if statements is None:
        return failed(f"{function}: unreadable resource policy")
    problems = public_invocation_grants(statements, account_id=account_id)
    if problems:
        return failed(f"{function}: " + "; ".join(f"{sid}: {p}" for sid, p in problems))
    sids = [s.get("Sid", "?") for s in statements]
    return passed(f"{function}: every statement bound to a source ({', '.join(map(str, sids))})")


# ---------------------------------------------------------------------------- log groups


def log_group_encrypted_retained(
    group: str, description: Mapping[str, Any] | None, *, kms_key_arn: str, min_retention_days: int
) -> Result:
    if description is None:
        return failed(f"{group}: log group does not exist")
    key = description.get("kmsKeyId")
    days = description.get("retentionInDays")
    problems = []
    if not same_key(key, kms_key_arn):
        problems.append(f"kmsKeyId={key}, expected {kms_key_arn}")
    problems += predicates.retention_problems(days, minimum_days=min_retention_days)
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


def key_policy_root_admin_only(
    key: str, policy: str | Mapping[str, Any] | None, *, account_id: str
) -> Result:
    """The account root (so any IAM policy of the account) gets no cryptographic action.

    Services and named roles may hold cryptographic grants; the root principal (or
    everyone, unconditionally) may not, so an IAM policy alone never opens data.
    """
    if policy is None:
        return failed(f"{key}: no key policy")
    statements = policy_statements(policy)
    if statements is None:
        return failed(f"{key}: unreadable key policy")

    def is_root(principal: str) -> bool:
        return principal in (account_id, "*") or principal.endswith(f":iam::{account_id}:root")

    problems = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        named = principals(statement.get("Principal"))
        if not any(is_root(p) for p in named):
            continue
        if "*" in named and condition_values(statement.get("Condition"), "kms:ViaService"):
            continue  # the account's principals, but only through a named AWS service
        actions = as_list(statement.get("Action"))
        granted = [op for op in CRYPTO_ACTIONS if action_matches(actions, op)]
        if granted or "NotAction" in statement:
            sid = statement.get("Sid", "(no Sid)")
            problems.append(f"{sid} gives {named} {granted or 'NotAction'}")
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
) -> Result:
    """Puts are denied unless they ask for SSE-KMS, and with the stack's key."""
    if policy is None:
        return failed(f"{bucket}: no bucket policy ({source})")
    statements = policy_statements(policy)
    if statements is None:
        return failed(f"{bucket}: unreadable bucket policy ({source})")
    requires_kms = requires_key = None
    for statement in statements:
        if statement.get("Effect") != "Deny" or not principal_is_everyone(
            statement.get("Principal")
        ):
            continue
        if not action_matches(
            as_list(statement.get("Action")), "s3:PutObject"
        ) or not resource_matches(as_list(statement.get("Resource")), f"{bucket_arn}/any"):
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
) -> Result:
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


def user_pool_threat_protection(pool: str, description: Mapping[str, Any]) -> Result:
    mode = (description.get("UserPoolAddOns") or {}).get("AdvancedSecurityMode")
    evidence = f"{pool}: AdvancedSecurityMode={mode}"
    return passed(evidence) if mode == "ENFORCED" else failed(evidence)


# ---------------------------------------------------------------------------- API stages


def stage_throttled(
    stage: str, settings: Mapping[str, Any], *, rate_limit: float, burst_limit: int
) -> Result:
    """The stage-wide method settings (``*/*``) throttle at the configured rate and burst."""
    wide = (settings.get("methodSettings") or {}).get("*/*") or {}
    rate, burst = wide.get("throttlingRateLimit"), wide.get("throttlingBurstLimit")
    evidence = f"{stage}: */* throttling rate {rate}/s, burst {burst}"
    if rate is None or burst is None or float(rate) <= 0 or int(burst) <= 0:
        return failed(f"{evidence}; no stage-wide throttling")
    if float(rate) != float(rate_limit) or int(burst) != int(burst_limit):
        return failed(f"{evidence}; the stage configures {rate_limit}/s, burst {burst_limit}")
    return passed(f"{evidence} as the stage configures")


def stage_without_data_trace(stage: str, settings: Mapping[str, Any]) -> Result:
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


def stage_protected_by_waf(stage: str, web_acl: Mapping[str, Any] | None) -> Result:
    if not web_acl:
        return failed(f"{stage}: no WAF web ACL associated")
    statements_ = [r.get("Statement") or {} for r in as_list(web_acl.get("Rules"))]
    rate = [s["RateBasedStatement"].get("Limit") for s in statements_ if "RateBasedStatement" in s]
    managed = [
        s["ManagedRuleGroupStatement"].get("Name")
        for s in statements_
        if "ManagedRuleGroupStatement" in s
    ]
    if not rate or not predicates.web_acl_rate_limited(statements_):
        return failed(f"{stage}: web ACL {web_acl.get('Name')} has no rate-based rule")
    return passed(
        f"{stage}: web ACL {web_acl.get('Name')}, per-IP rate limit {rate[0]}, "
        f"managed rule groups {managed}"
    )


# ---------------------------------------------------------------------------- monitoring


def cis_metric_alarms(
    log_group: str, filters: Sequence[Mapping[str, Any]], alarms: Sequence[Mapping[str, Any]]
) -> Result:
    """The pack's :func:`~infra.controls.predicates.cis_monitoring_problems` on the live
    metric filters of the trail's log group and the account's alarms."""
    declared = [
        (f.get("filterPattern"), t.get("metricNamespace"), t.get("metricName"))
        for f in filters
        for t in as_list(f.get("metricTransformations"))
        if isinstance(t, Mapping)
    ]
    alarmed = [
        (a.get("Namespace"), a.get("MetricName"))
        for a in alarms
        if as_list(a.get("AlarmActions")) and a.get("ActionsEnabled", True) is not False
    ]
    problems = predicates.cis_monitoring_problems(declared, alarmed)
    if problems:
        return failed(f"{log_group}: " + "; ".join(problems))
    return passed(f"{log_group}: every CIS section 4 event class has a filter and an alarm")


def audit_bucket_lifecycle(bucket: str, rules_: Any, *, years: int) -> Result:
    """The pack's :func:`~infra.controls.predicates.audit_lifecycle_problems` on the live
    ``GetBucketLifecycleConfiguration`` rules (None: no lifecycle)."""
    if not rules_:
        return failed(f"{bucket}: no lifecycle configuration")
    live = [
        {
            "enabled": r.get("Status") == "Enabled",
            "expiration_days": (r.get("Expiration") or {}).get("Days"),
            "noncurrent_days": (r.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays"),
            "abort_days": (r.get("AbortIncompleteMultipartUpload") or {}).get(
                "DaysAfterInitiation"
            ),
        }
        for r in as_list(rules_)
        if isinstance(r, Mapping)
    ]
    problems = predicates.audit_lifecycle_problems(live, retention_days=years * 365)
    if problems:
        return failed(f"{bucket}: " + "; ".join(problems))
    return passed(f"{bucket}: objects expire only after the {years}-year retention")


# --- the audit ledger ------------------------------------------------------------------------


def ledger_verifies(name: str, ledger: Mapping[str, Any]) -> Result:
    """The ledger verifies against its signed heads, trusting only the public key: the
    verifier of ``hub audit verify`` (:func:`app.ledger.verify.verify_snapshot`) over what
    the collector read. An empty ledger (no entry, no head) has nothing to attest yet;
    entries with no signed head covering them fail.

    ``data`` carries the evidence: entries, log size, the last signed head, the counts of
    signatures, consistency and inclusion proofs verified, the first bad index and the
    findings (at most 20, by index)."""
    import base64
    import datetime as dt

    from app.ledger.checkpoint import (
        BadSignature,
        MalformedHead,
        SignedTreeHead,
        load_public_key,
        verify_head,
    )
    from app.ledger.errors import LedgerError
    from app.ledger.verify import LedgerSnapshot, verify_snapshot

    where = {"table": ledger.get("table"), "bucket": ledger.get("bucket")}
    try:
        key = load_public_key(str(ledger["public_key_pem"]).encode("ascii"))
        heads = [SignedTreeHead.from_json(h) for h in as_list(ledger.get("heads"))]
        entries = {int(i): base64.b64decode(v) for i, v in (ledger.get("entries") or {}).items()}
        leaves_in = ledger.get("tree_leaves")
        leaves = (
            None
            if leaves_in is None
            else {int(i): base64.b64decode(v) for i, v in leaves_in.items()}
        )
    except (KeyError, TypeError, ValueError, LedgerError) as error:
        return failed(f"{name}: not verifiable: {error}", data=where)
    if not entries and not heads:
        return not_applicable(
            f"{name}: empty (no audited action yet, no signed head): nothing to attest",
            data={**where, "entries": 0, "size": 0},
        )
    report = verify_snapshot(LedgerSnapshot(entries, heads, leaves), key)
    good = []
    for head in heads:
        try:
            verify_head(head, key)
        except (BadSignature, MalformedHead):
            continue
        good.append(head)
    last = max(good, key=lambda h: (h.size, h.timestamp_ms), default=None)
    last_head = (
        None
        if last is None
        else {
            "size": last.size,
            "root": base64.b64encode(last.root).decode("ascii"),
            "signed_at": dt.datetime.fromtimestamp(last.timestamp_ms / 1000, dt.UTC).isoformat(
                timespec="seconds"
            ),
            "key_id": last.key_id,
        }
    )
    findings = sorted(report.findings, key=lambda f: (f.index is None, f.index or 0))
    data = {
        **where,
        "entries": len(entries),
        "size": report.size,
        "last_signed_head": last_head,
        "heads_verified": report.heads_verified,
        "consistency_proofs_verified": report.consistency_checked,
        "inclusion_proofs_verified": report.inclusions_checked,
        "first_bad_index": report.first_bad_index,
        "findings": [{"kind": f.kind, "index": f.index, "message": f.message} for f in findings][
            :20
        ],
    }
    if report.ok:
        return passed(
            f"{name}: {len(entries)} entries verified against {report.heads_verified} signed "
            f"heads (log size {report.size}, {report.inclusions_checked} inclusion proofs)",
            data=data,
        )
    if not report.findings:
        return failed(f"{name}: {len(entries)} entries but no signed head covers them", data=data)
    first = report.first_bad_index
    kinds = sorted({f.kind for f in report.findings})
    where_bad = f"first bad index {first}" if first is not None else "bad head signatures"
    return failed(
        f"{name}: TAMPERED: {', '.join(kinds)}; {where_bad} ({len(report.findings)} findings)",
        data=data,
    )


# ---------------------------------------------------------------------------- Messaging


def database_encrypted(name: str, instance: Mapping[str, Any], *, key_arn: str | None) -> Result:
    problems = predicates.database_encryption_problems(
        instance.get("StorageEncrypted"),
        instance.get("KmsKeyId"),
        key_matches=lambda ref: predicates.same_key(ref, key_arn),
    )
    if problems:
        return failed(f"{name}: {'; '.join(problems)} (expected the messaging key {key_arn})")
    return passed(f"{name}: storage encrypted under {instance.get('KmsKeyId')}")


def database_not_public(name: str, instance: Mapping[str, Any]) -> Result:
    if predicates.database_is_private(instance.get("PubliclyAccessible")):
        return passed(f"{name}: PubliclyAccessible={instance.get('PubliclyAccessible')}")
    return failed(f"{name}: publicly accessible")


def database_requires_tls(name: str, parameters: Mapping[str, Any]) -> Result:
    value = parameters.get("rds.force_ssl")
    if predicates.parameters_force_tls(parameters):
        return passed(f"{name}: rds.force_ssl={value}")
    return failed(f"{name}: rds.force_ssl={value!r}, plain-text connections are accepted")


def listener_tls13(listener: str, protocol: Any, ssl_policy: Any) -> Result:
    problems = predicates.listener_tls_problems(protocol, ssl_policy)
    if problems:
        return failed(f"{listener}: {'; '.join(problems)}")
    return passed(f"{listener}: {protocol} with {ssl_policy}")


def homeserver_federation_closed(family: str, container_definitions: Any) -> Result:
    configs = predicates.homeserver_configs(container_definitions)
    if not configs:
        return failed(f"{family}: no homeserver configuration (HUB_HOMESERVER_CONFIG) found")
    problems = [p for config in configs for p in predicates.homeserver_federation_problems(config)]
    if problems:
        return failed(f"{family}: {'; '.join(problems)}")
    return passed(f"{family}: no federation listener, an empty whitelist, no registration")


def backup_plan_coverage(
    vault_name: str,
    vault: Any,
    plans: Any,
    *,
    selected: list[Any],
    required: Mapping[str, str],
    source: str = "live",
) -> Result:
    """The pack's :func:`~infra.controls.predicates.backup_problems` on the live vault
    (``DescribeBackupVault``; None: no vault), its plans' rules and their selections."""
    if not isinstance(vault, Mapping):
        return failed(f"{vault_name}: no backup vault")
    lock = (
        {"min_days": vault.get("MinRetentionDays"), "max_days": vault.get("MaxRetentionDays")}
        if vault.get("Locked")
        else None
    )
    rules_ = [
        {
            "name": r.get("RuleName"),
            "delete_after": (r.get("Lifecycle") or {}).get("DeleteAfterDays"),
        }
        for plan in as_list(plans)
        if isinstance(plan, Mapping)
        for r in as_list((plan.get("plan") or {}).get("Rules"))
        if isinstance(r, Mapping) and r.get("TargetBackupVaultName") == vault_name
    ]
    problems = predicates.backup_problems(
        vault_key=vault.get("EncryptionKeyArn"),
        lock=lock,
        rules=rules_,
        selected=selected,
        required=required,
        minimum_days=predicates.BACKUP_MINIMUM_RETENTION_DAYS,
    )
    if problems:
        return failed(f"{vault_name}: " + "; ".join(problems) + f" ({source})")
    return passed(
        f"{vault_name}: locked, under a customer key; its plan keeps every data class its "
        f"documented retention and backs up {len(required)} data stores ({source})"
    )
