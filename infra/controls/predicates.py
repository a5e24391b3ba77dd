"""Predicates over resource settings, the same for declared inputs and live state.

Each function decides one compliant state from plain values that both sides can
supply: the policy pack's adapters read them from what the program declares
(``enableKeyRotation``, ``kmsKeyId``...), verification's from what boto3 returns
(``KeyRotationEnabled``, ``KmsKeyId``...). Adapters translate names and fill in the
defaults AWS applies to an unset input; the decision itself is made here, once.

Functions return ``bool`` for a single property, or a list of problems (short phrases,
empty when compliant) where a control has several parts, so both sides word a failure
the same way.

Guarantees: fail closed. A value that is missing where the compliant state needs it
set (rotation, a key, a retention) is a problem, never a pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from infra.controls.policy_documents import as_list, is_true

# --- KMS keys -----------------------------------------------------------------------------

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
MAX_ROTATION_PERIOD_DAYS = 365


def key_id_of(key_ref: Any) -> str:
    """The key id in a key ARN (``arn:...:key/<id>``), or the reference itself."""
    if not key_ref:
        return ""
    ref = str(key_ref)
    return ref.rsplit("key/", 1)[-1] if ":key/" in ref else ref


def same_key(actual: Any, expected: Any) -> bool:
    """Whether two key references (ARN or bare id) name the same KMS key."""
    return bool(actual) and bool(expected) and key_id_of(actual) == key_id_of(expected)


def is_customer_managed_key(key_ref: Any) -> bool:
    """A key reference that is not an AWS-managed key (``alias/aws/s3`` and friends).

    An AWS-managed key's policy is AWS's, not ours, so it evidences no key management.
    """
    return isinstance(key_ref, str) and bool(key_ref) and "alias/aws/" not in key_ref


def rotation_applies(key_spec: Any, key_usage: Any) -> bool:
    """KMS rotates symmetric encryption keys only; unset spec and usage are KMS's defaults."""
    return (key_spec or SYMMETRIC_DEFAULT) == SYMMETRIC_DEFAULT and (
        key_usage or ENCRYPT_DECRYPT
    ) == ENCRYPT_DECRYPT


def rotation_problems(
    enabled: Any, period_days: Any, *, max_period_days: int = MAX_ROTATION_PERIOD_DAYS
) -> list[str]:
    """Automatic rotation is on, at most every ``max_period_days`` (unset: KMS's 365)."""
    if not is_true(enabled):
        return ["automatic rotation is off"]
    if period_days is not None and float(period_days) > max_period_days:
        return [f"rotation is every {float(period_days):g} days (at most {max_period_days})"]
    return []


# --- IAM role trust ----------------------------------------------------------------------

# Global condition keys that bind a service's AssumeRole to the caller's account or
# resource (IAM condition keys are case-insensitive).
SOURCE_CONDITION_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid"})


def _services_of(principal: Any) -> list[str]:
    if isinstance(principal, Mapping):
        return [str(s) for s in as_list(principal.get("Service"))]
    return []


def _assumes_role(actions: Any) -> bool:
    return any(a in ("sts:AssumeRole", "sts:*", "*") for a in (str(x) for x in as_list(actions)))


def service_trust_problems(statements: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each Allow that lets an AWS service assume the role carries ``aws:SourceAccount``,
    ``aws:SourceArn`` or ``aws:SourceOrgID`` (else any account could have the service act
    with this role: the cross-service confused deputy)."""
    problems = []
    for index, statement in enumerate(statements):
        services = _services_of(statement.get("Principal"))
        if statement.get("Effect") != "Allow" or not services:
            continue
        if not _assumes_role(statement.get("Action")):
            continue
        condition = statement.get("Condition")
        keys = {
            str(k).lower()
            for block in (condition.values() if isinstance(condition, Mapping) else [])
            if isinstance(block, Mapping)
            for k in block
        }
        if not keys & SOURCE_CONDITION_KEYS:
            where = statement.get("Sid") or f"#{index}"
            problems.append(
                f"statement {where} lets {', '.join(services)} assume the role without an "
                "aws:SourceAccount or aws:SourceArn condition"
            )
    return problems


# --- S3 -----------------------------------------------------------------------------------

KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
SSE_S3_ALGORITHM = "AES256"
PUBLIC_ACCESS_BLOCK_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


def default_encryption_is_kms(
    defaults: Iterable[tuple[Any, Any]],
    *,
    key_matches: Callable[[Any], bool] = is_customer_managed_key,
) -> bool:
    """Every default-encryption rule is SSE-KMS under a key ``key_matches`` accepts.

    Args:
        defaults: (algorithm, KMS key reference) per rule; none is a failure.
        key_matches: the key test: any customer-managed key (declared: the key's ARN
            is not known yet), or one expected key (live).
    """
    pairs = list(defaults)
    return bool(pairs) and all(a in KMS_ALGORITHMS and key_matches(k) for a, k in pairs)


def default_encryption_is_sse_s3(defaults: Iterable[tuple[Any, Any]]) -> bool:
    pairs = list(defaults)
    return bool(pairs) and all(a == SSE_S3_ALGORITHM for a, _ in pairs)


def public_access_flags_off(flags: Mapping[str, Any]) -> list[str]:
    """The public-access-block flags (by their API names) that are not on."""
    return [flag for flag in PUBLIC_ACCESS_BLOCK_FLAGS if not is_true(flags.get(flag))]


def audit_lifecycle_problems(
    rules: Iterable[Mapping[str, Any]], *, retention_days: int
) -> list[str]:
    """The audit bucket's lifecycle expires what it holds once, and only once, the audit
    retention has passed, and cleans up abandoned uploads.

    Args:
        rules: each enabled-or-not rule as ``{"enabled", "expiration_days",
            "noncurrent_days", "abort_days"}`` (None where the rule has no such action).
        retention_days: the Object Lock retention in days (``auditRetentionYears`` * 365).

    Expiring sooner would try to delete what retention requires (Object Lock refuses it,
    but the intent is wrong and a GOVERNANCE lock would yield); never expiring keeps
    personal data longer than necessary (DPP2).
    """
    enabled = [r for r in rules if r.get("enabled")]
    if not enabled:
        return ["no enabled lifecycle rule"]
    problems = []
    expirations = [_positive_number(r.get("expiration_days")) for r in enabled]
    expirations_set = [d for d in expirations if d is not None]
    if not expirations_set:
        problems.append("no rule expires objects after the retention (kept forever, DPP2)")
    for days in expirations_set:
        if days < retention_days:
            problems.append(
                f"a rule expires objects after {days:g} days, before the "
                f"{retention_days}-day audit retention"
            )
    if not any(_positive_number(r.get("noncurrent_days")) for r in enabled):
        problems.append("noncurrent versions never expire")
    if not any(_positive_number(r.get("abort_days")) for r in enabled):
        problems.append("incomplete multipart uploads are never aborted")
    return problems


# --- AWS Backup ---------------------------------------------------------------------------


# The documented minimum retention of each data class's recovery points (the plan rule of
# the same name), docs/disaster-recovery.md: 35 days for every class, the window the
# runbook promises to restore from (and the longest a shredded version stays in a backup).
BACKUP_MINIMUM_RETENTION_DAYS: dict[str, int] = {
    "ledger": 35,
    "audit-objects": 35,
    "records": 35,
    "operational": 35,
    "messages": 35,
}


def backup_problems(
    *,
    vault_key: Any,
    lock: Mapping[str, Any] | None,
    rules: Iterable[Mapping[str, Any]],
    selected: Iterable[Any],
    required: Mapping[str, str],
    minimum_days: Mapping[str, int],
) -> list[str]:
    """A backup vault encrypted under a customer key, locked, and a plan backing up every
    data store for at least its data class's documented retention.

    Args:
        vault_key: the vault's encryption key ARN.
        lock: ``{"min_days", "max_days"}`` of the vault lock, None when the vault has none.
        rules: the plan rules writing to the vault, as ``{"name", "delete_after"}``.
        selected: the ARNs the plan's selections name.
        required: what must be selected, label -> ARN (every table, the shard and audit
            buckets).
        minimum_days: data class (a rule name) -> the documented minimum retention.

    Without a lock anyone with backup rights can delete recovery points early; a rule
    shorter than its class's retention loses the restore window the runbook promises.
    """
    problems = []
    if not is_customer_managed_key(vault_key):
        problems.append("the vault is not encrypted under a customer-managed KMS key")
    if lock is None:
        problems.append("the vault has no vault lock")
    else:
        low, high = _positive_number(lock.get("min_days")), _positive_number(lock.get("max_days"))
        if low is None or high is None:
            problems.append("the vault lock sets no minimum or no maximum retention")
    kept = {str(r.get("name")): _positive_number(r.get("delete_after")) for r in rules}
    for data_class, days in sorted(minimum_days.items()):
        actual = kept.get(data_class)
        if data_class not in kept:
            problems.append(f"no plan rule for data class {data_class!r}")
        elif actual is None or actual < days:
            problems.append(
                f"rule {data_class!r} keeps recovery points {actual or 0:g} days, "
                f"under the documented {days}"
            )
    chosen = {str(a) for a in selected}
    missing = sorted(label for label, arn in required.items() if arn not in chosen)
    if missing:
        problems.append("no plan selection backs up " + ", ".join(missing))
    return problems


# --- CloudTrail ---------------------------------------------------------------------------


def trail_covers_all_regions(multi_region: Any, global_service_events: Any) -> bool:
    """Multi-region and with global service events (IAM, STS: the administrators' calls)."""
    return is_true(multi_region) and is_true(global_service_events)


def trail_validates_log_files(enabled: Any) -> bool:
    return is_true(enabled)


def trail_is_logging(logging: Any) -> bool:
    return is_true(logging)


# CloudTrail Insights types: unusual write-API call volume and unusual error rates.
INSIGHT_TYPES = ("ApiCallRateInsight", "ApiErrorRateInsight")


def missing_insight_types(declared: Iterable[Any]) -> list[str]:
    """The Insights types the trail does not record (both are required)."""
    present = {str(t) for t in declared}
    return [t for t in INSIGHT_TYPES if t not in present]


def data_selector_logs_every_event_of(
    fields: Mapping[str, Mapping[str, Iterable[Any]]], resource_type: str
) -> bool:
    """One advanced selector, as field -> operator -> values (API operator names:
    ``Equals``, ``StartsWith``...), logs every read and write data event of
    ``resource_type`` (no readOnly, eventName, eventSource or eventType narrowing)."""
    category = [str(v) for v in fields.get("eventCategory", {}).get("Equals", [])]
    types = [str(v) for v in fields.get("resources.type", {}).get("Equals", [])]
    narrowed = any(fields.get(f) for f in ("readOnly", "eventName", "eventSource", "eventType"))
    return "Data" in category and resource_type in types and not narrowed


# --- CIS monitoring (CloudWatch metric filters and alarms on the trail) ---------------------

# CIS AWS Foundations v3.0.0 section 4: id -> (what, the tokens a filter pattern must name).
CIS_MONITORING: dict[str, tuple[str, tuple[str, ...]]] = {
    "4.1": ("unauthorized API calls", ("UnauthorizedOperation", "AccessDenied")),
    "4.2": ("console sign-in without MFA", ("ConsoleLogin", "MFAUsed")),
    "4.3": ("root account usage", ("Root",)),
    "4.4": (
        "IAM policy changes",
        ("PutRolePolicy", "DeleteRolePolicy", "AttachRolePolicy", "CreatePolicyVersion"),
    ),
    "4.5": ("CloudTrail configuration changes", ("StopLogging", "DeleteTrail", "UpdateTrail")),
    "4.6": ("console authentication failures", ("ConsoleLogin", "Failed authentication")),
    "4.7": ("CMK disabled or scheduled for deletion", ("DisableKey", "ScheduleKeyDeletion")),
    "4.8": ("S3 bucket policy changes", ("PutBucketPolicy", "PutBucketAcl", "DeleteBucketPolicy")),
    "4.9": (
        "AWS Config changes",
        ("StopConfigurationRecorder", "DeleteDeliveryChannel", "PutConfigurationRecorder"),
    ),
    "4.10": (
        "security group changes",
        ("AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "CreateSecurityGroup"),
    ),
    "4.11": (
        "network ACL changes",
        ("CreateNetworkAclEntry", "DeleteNetworkAcl", "ReplaceNetworkAclAssociation"),
    ),
    "4.12": (
        "network gateway changes",
        ("CreateCustomerGateway", "AttachInternetGateway", "DeleteInternetGateway"),
    ),
    "4.13": (
        "route table changes",
        ("CreateRoute", "ReplaceRouteTableAssociation", "DisassociateRouteTable"),
    ),
    "4.14": ("VPC changes", ("CreateVpc", "DeleteVpc", "ModifyVpcAttribute")),
    "4.15": (
        "AWS Organizations changes",
        ("organizations.amazonaws.com", "CreateAccount", "LeaveOrganization"),
    ),
}


def cis_monitoring_problems(
    filters: Iterable[tuple[Any, Any, Any]], alarmed: Iterable[tuple[Any, Any]]
) -> list[str]:
    """Each CIS section 4 item has a metric filter naming its events and an alarm with an
    action on that filter's metric.

    Args:
        filters: (pattern, metric namespace, metric name) of each filter on the trail's
            log group.
        alarmed: (namespace, metric name) of each alarm that has an action.
    """
    wanted = {(str(n), str(m)) for n, m in alarmed}
    listed = [(str(p or ""), str(n), str(m)) for p, n, m in filters]
    problems = []
    for cis_id, (what, tokens) in CIS_MONITORING.items():
        matching = [(n, m) for p, n, m in listed if all(t in p for t in tokens)]
        if not matching:
            problems.append(f"CIS {cis_id} ({what}): no metric filter")
        elif not any(metric in wanted for metric in matching):
            problems.append(f"CIS {cis_id} ({what}): no alarm with an action on its metric")
    return problems


# --- DynamoDB -----------------------------------------------------------------------------


def table_encrypted_with_kms(
    enabled: Any, key_ref: Any, *, key_matches: Callable[[Any], bool]
) -> bool:
    """Server-side encryption is on, with a KMS key ``key_matches`` accepts (not the
    AWS-owned default key, which has no key policy of ours)."""
    return is_true(enabled) and key_matches(key_ref)


def point_in_time_recovery_enabled(enabled: Any) -> bool:
    return is_true(enabled)


# --- Cognito ------------------------------------------------------------------------------


def mfa_problems(mode: Any, *, totp: Any, sms: Any, email: Any) -> list[str]:
    """MFA is required of every user (``ON``) and at least one factor is enabled."""
    if mode != "ON":
        return [f"MFA is {mode or 'OFF'}, not required (ON)"]
    if not (is_true(totp) or is_true(sms) or is_true(email)):
        return ["MFA is required but no factor (TOTP, SMS or email) is enabled"]
    return []


# --- API Gateway --------------------------------------------------------------------------

TLS13_ONLY_POLICY = re.compile(r"^SecurityPolicy_TLS13_1_3_")


def is_tls13_only_policy(security_policy: Any) -> bool:
    """An API Gateway security policy that admits TLS 1.3 only (``SecurityPolicy_TLS13_1_3_*``)."""
    return isinstance(security_policy, str) and bool(TLS13_ONLY_POLICY.match(security_policy))


# --- WAF ----------------------------------------------------------------------------------


def web_acl_rate_limited(rule_statements: Iterable[Mapping[str, Any]]) -> bool:
    """A web ACL has a rate-based rule (``RateBasedStatement`` live, ``rateBasedStatement``
    declared): without one a single client can flood the API."""
    return any(
        str(kind).lower() == "ratebasedstatement"
        for statement in rule_statements
        if isinstance(statement, Mapping)
        for kind in statement
    )


# --- CloudWatch Logs ----------------------------------------------------------------------

MIN_LOG_RETENTION_DAYS = 365


def _positive_number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def retention_problems(days: Any, *, minimum_days: int = MIN_LOG_RETENTION_DAYS) -> list[str]:
    """Logs expire (never-expiring logs keep personal data longer than necessary, DPP2),
    but not before ``minimum_days`` (less loses audit evidence)."""
    retention = _positive_number(days)
    if retention is None:
        return ["retention is not set (logs never expire)"]
    if retention < minimum_days:
        return [f"retention {retention:g} days is under {minimum_days}"]
    return []


# --- Cognito: who may write what ---------------------------------------------------------

# Explicit auth flows whose tokens carry aws.cognito.signin.user.admin (so may call
# UpdateUserAttributes); Cognito's default when none is declared includes SRP and custom.
SELF_SERVICE_AUTH_FLOWS = frozenset(
    {
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_ADMIN_USER_PASSWORD_AUTH",
        "ALLOW_CUSTOM_AUTH",
        "ALLOW_USER_AUTH",
        "USER_PASSWORD_AUTH",
        "ADMIN_NO_SRP_AUTH",
        "CUSTOM_AUTH_FLOW_ONLY",
    }
)
SELF_SERVICE_SCOPE = "aws.cognito.signin.user.admin"


def client_writable_grants(
    write_attributes: Iterable[str] | None,
    explicit_auth_flows: Iterable[str] | None,
    oauth_scopes: Iterable[str] | None,
) -> list[str] | None:
    """The granting attributes (``app.identity.federation.GRANTING_ATTRIBUTES``) a
    client's users could write about themselves.

    None when the client's tokens cannot call ``UpdateUserAttributes`` at all (no sign-in
    flow issuing the admin scope, no admin scope through OAuth): such a client may have to
    write mapped attributes (Cognito requires it of a federation client) without its
    users being able to. A client that declares no write attributes lets users write
    every attribute, so then every granting attribute is returned (fail closed).
    """
    from app.identity.federation import GRANTING_ATTRIBUTES

    flows = set(explicit_auth_flows or ())
    self_service = (
        not flows
        or bool(flows & SELF_SERVICE_AUTH_FLOWS)
        or SELF_SERVICE_SCOPE in set(oauth_scopes or ())
    )
    if not self_service:
        return None
    written = set(write_attributes or ())
    if not written:
        return sorted(GRANTING_ATTRIBUTES)
    return sorted(GRANTING_ATTRIBUTES & written)


def placement_claims_missing(
    mapping: Mapping[str, Any], required_claims: Iterable[str]
) -> list[str]:
    """The pool attributes placing a provider's users needs (``required_claims``, see
    ``app.identity.federation``) that its attribute mapping does not fill (an empty
    claim name fills nothing)."""
    from app.identity.federation import needed_attributes

    return [a for a in needed_attributes(required_claims) if not mapping.get(a)]


# --- Messaging: the homeserver's database, load balancers and configuration ------------------

TLS13_LOAD_BALANCER_POLICY = re.compile(r"^ELBSecurityPolicy-TLS13-1-3-")


def database_encryption_problems(
    storage_encrypted: Any, key_ref: Any, *, key_matches: Callable[[Any], bool]
) -> list[str]:
    """Storage encryption is on, under a key ``key_matches`` accepts (a customer-managed
    key declared; the expected key live). Unset encryption is RDS's default: off."""
    problems = []
    if not is_true(storage_encrypted):
        problems.append("storage is not encrypted")
    elif not key_matches(key_ref):
        problems.append(f"storage is encrypted under {key_ref or 'the AWS-managed key'}")
    return problems


def database_is_private(publicly_accessible: Any) -> bool:
    """Not publicly accessible. Unset is RDS's default for a VPC instance: private."""
    return not is_true(publicly_accessible)


def parameters_force_tls(parameters: Mapping[str, Any]) -> bool:
    """The parameter group refuses connections without TLS (``rds.force_ssl`` = 1).
    Unset is PostgreSQL on RDS's default before version 15: off (fails closed)."""
    return str(parameters.get("rds.force_ssl", "")).strip() == "1"


def is_tls13_only_load_balancer_policy(ssl_policy: Any) -> bool:
    """An ELB security policy that admits TLS 1.3 only (``ELBSecurityPolicy-TLS13-1-3-*``)."""
    return isinstance(ssl_policy, str) and bool(TLS13_LOAD_BALANCER_POLICY.match(ssl_policy))


def listener_tls_problems(protocol: Any, ssl_policy: Any) -> list[str]:
    """The listener speaks HTTPS with a TLS 1.3-only policy (plain HTTP: a problem)."""
    if str(protocol or "").upper() != "HTTPS":
        return [f"protocol is {protocol or 'unset'}, not HTTPS"]
    if not is_tls13_only_load_balancer_policy(ssl_policy):
        return [f"sslPolicy is {ssl_policy!r}, not a TLS 1.3-only policy"]
    return []


HOMESERVER_CONFIG_VARIABLE = "HUB_HOMESERVER_CONFIG"


def homeserver_configs(container_definitions: Any) -> list[Any]:
    """The homeserver configurations the task's containers are given (JSON, parsed; a
    value that is not a JSON object stays as the raw text, which then fails)."""
    import json

    if isinstance(container_definitions, str):
        try:
            container_definitions = json.loads(container_definitions)
        except ValueError:
            return []
    found: list[Any] = []
    for container in container_definitions if isinstance(container_definitions, list) else []:
        for variable in (
            container.get("environment") or [] if isinstance(container, Mapping) else []
        ):
            if variable.get("name") == HOMESERVER_CONFIG_VARIABLE:
                try:
                    found.append(json.loads(str(variable.get("value"))))
                except ValueError:
                    found.append(variable.get("value"))
    return found


def homeserver_federation_problems(config: Any) -> list[str]:
    """Why a homeserver configuration would federate (empty: closed; the definition of
    closed is the project's homeserver configuration's own,
    :func:`app.messaging.homeserver.federation_problems`)."""
    from app.messaging.homeserver import federation_problems

    if not isinstance(config, Mapping):
        return ["the homeserver configuration is not a JSON object"]
    return federation_problems(config)
