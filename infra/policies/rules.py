"""Pre-deploy policy rules: adapters from what the program declares to the shared predicates.

Each rule is named for the compliant state and looks at plain data only, never at AWS:

- a *resource rule* takes ``(resource_type, props, name="")``, where ``props`` are the
  resource's camelCase inputs exactly as pulumi-policy's ``ResourceValidationArgs.props``
  and the mock runtime's ``DeclaredResource.inputs`` present them (IAM and bucket policy
  documents arrive as JSON strings or as mappings);
- a *stack rule* takes every declared resource as :class:`StackResource` values, for
  properties that only show across resources ("every bucket has a TLS-only policy");
- a *config rule* takes the flat stack configuration (``aws:region``...).

A rule reads the declared inputs, fills in the defaults AWS applies to an unset one, and
hands the decision to :mod:`infra.controls.predicates` or
:mod:`infra.controls.policy_documents`: the same functions post-deploy verification
uses on live state, so a declared and a deployed setting get the same answer. A rule
returns a :class:`~infra.controls.result.Result` (a stack rule, one per subject
resource): pass, fail or not applicable, with a message that names the resource. Rules
know nothing about the pack that binds them to severity and controls
(``infra.policies.pack``), nor about the Pulumi engine; they never raise on well-formed
but non-compliant input.

Guarantees: a rule fails closed. A property that is missing where the compliant state
needs it set (rotation flag, KMS key id, retention...) is a failure, not a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from infra.controls import predicates
from infra.controls.policy_documents import (
    as_list,
    data_store_wildcard_grants,
    insecure_transport_deny,
    is_true,
    policy_statements,
    public_invocation_grants,
)
from infra.controls.predicates import is_customer_managed_key
from infra.controls.result import Result, failed, not_applicable, passed

REQUIRED_REGION = "ap-east-1"
TLS13_SECURITY_POLICY = "SecurityPolicy_TLS13_1_3_2025_09"
MIN_LOG_RETENTION_DAYS = predicates.MIN_LOG_RETENTION_DAYS
ACCESS_LOG_BUCKET_TAG = ("hub:purpose", "s3-access-logs")
# Buckets (by their hub:purpose tag) whose default encryption may be SSE-S3, and why.
SSE_S3_PURPOSES = {
    "s3-access-logs": "the server-access-log bucket: SSE-S3 (S3 access logging cannot "
    "write to SSE-KMS)",
    "web-client": "the web client's static site: SSE-S3 (public code every browser "
    "downloads, read by API Gateway, which would otherwise need the key)",
}
# ap-east-1 is in the aws partition; the region rule holds every resource to it.
PARTITION = "aws"

KMS_KEY = "aws:kms/key:Key"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
TRAIL = "aws:cloudtrail/trail:Trail"
TABLE = "aws:dynamodb/table:Table"
USER_POOL = "aws:cognito/userPool:UserPool"
DB_INSTANCE = "aws:rds/instance:Instance"
DB_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
LB_LISTENER = "aws:lb/listener:Listener"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
IDENTITY_PROVIDER = "aws:cognito/identityProvider:IdentityProvider"
# What an app client may allow: SRP sign-in and refresh; never a password sent in the
# clear (USER_PASSWORD_AUTH) or an admin flow that needs AWS credentials.
ALLOWED_AUTH_FLOWS = frozenset({"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"})
MAX_ACCESS_TOKEN_MINUTES = 15
_TOKEN_UNIT_MINUTES = {"seconds": 1 / 60, "minutes": 1, "hours": 60, "days": 24 * 60}
REST_API = "aws:apigateway/restApi:RestApi"
API_DOMAIN_NAME = "aws:apigateway/domainName:DomainName"
LAMBDA_PERMISSION = "aws:lambda/permission:Permission"
LAMBDA_FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
AWS_PROVIDER = "pulumi:providers:aws"
IAM_POLICY_TYPES = frozenset(
    {
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
        "aws:iam/role:Role",
    }
)
IAM_ATTACHMENT_TYPES = frozenset(
    {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
        "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment",
    }
)
# AWS-managed policies that grant wildcards on S3, DynamoDB or KMS (s3:*, s3:Get*, kms:*...).
# Their documents are AWS's, not declared, so the pack names them; verification reads
# the attached documents themselves.
BROAD_MANAGED_POLICIES = frozenset(
    {
        "AdministratorAccess",
        "PowerUserAccess",
        "ReadOnlyAccess",
        "AmazonS3FullAccess",
        "AmazonS3ReadOnlyAccess",
        "AmazonDynamoDBFullAccess",
        "AmazonDynamoDBReadOnlyAccess",
        "AWSKeyManagementServicePowerUser",
    }
)
# Inputs that name a KMS key by ARN, across the resource types the program declares.
KMS_KEY_REFERENCES = ("kmsKeyId", "kmsKeyArn", "kmsMasterKeyId")
# Declared names of the public access block flags -> their API names.
PUBLIC_ACCESS_BLOCK_FLAGS = {
    "blockPublicAcls": "BlockPublicAcls",
    "ignorePublicAcls": "IgnorePublicAcls",
    "blockPublicPolicy": "BlockPublicPolicy",
    "restrictPublicBuckets": "RestrictPublicBuckets",
}


class StackResource(NamedTuple):
    """One declared resource as a stack rule sees it."""

    type: str
    name: str
    props: Mapping[str, Any]


def _default(value: Any, default: Any) -> Any:
    """A declared input, or what AWS applies when it is left unset."""
    return default if value is None else value


def _label(resource_type: str, props: Mapping[str, Any], name: str) -> str:
    """How a message names the resource: its logical name, else its physical name."""
    if name:
        return f"{resource_type.rsplit(':', 1)[-1]} '{name}'"
    for key in ("name", "bucket", "function", "description"):
        value = props.get(key)
        if isinstance(value, str) and value:
            return f"{resource_type.rsplit(':', 1)[-1]} '{value}'"
    return resource_type


# --- region -------------------------------------------------------------------------------


def _arn_region(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("arn:"):
        parts = value.split(":")
        if len(parts) > 3:
            return parts[3]
    return None


def resource_region_is_ap_east_1(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """The AWS provider, and any resource that sets its own region, target ap-east-1.

    Resources that leave ``region`` unset inherit the provider's; the pack checks that
    provider too. KMS key references given as ARNs must also point into ap-east-1, so
    nothing is encrypted under a key held outside Hong Kong.
    """
    label = _label(resource_type, props, name)
    if resource_type == AWS_PROVIDER:
        region = props.get("region")
        if region == REQUIRED_REGION:
            return passed(f"{label} targets {REQUIRED_REGION}")
        return failed(
            f"{label} targets region {region!r}, not {REQUIRED_REGION}: "
            "patient data must stay in Hong Kong (Cap. 486)"
        )
    if not resource_type.startswith("aws:"):
        return not_applicable(f"{label} is not an AWS resource")
    problems: list[str] = []
    region = props.get("region")
    if region is not None and region != REQUIRED_REGION:
        problems.append(f"region {region!r}")
    for key in KMS_KEY_REFERENCES:
        key_region = _arn_region(props.get(key))
        if key_region is not None and key_region != REQUIRED_REGION:
            problems.append(f"{key} in {key_region!r}")
    if problems:
        return failed(f"{label} is outside {REQUIRED_REGION}: {', '.join(problems)}")
    if region is None and not any(_arn_region(props.get(k)) for k in KMS_KEY_REFERENCES):
        return not_applicable(f"{label} inherits the provider's region")
    return passed(f"{label} stays in {REQUIRED_REGION}")


def stack_region_is_ap_east_1(config: Mapping[str, Any]) -> Result:
    """The stack configuration sets ``aws:region`` to ap-east-1."""
    region = config.get("aws:region")
    if region == REQUIRED_REGION:
        return passed(f"stack config aws:region is {REQUIRED_REGION}", "aws:region")
    return failed(
        f"stack config aws:region is {region!r}, not {REQUIRED_REGION}: patient "
        "data must stay in Hong Kong (Cap. 486)",
        "aws:region",
    )


# --- KMS ----------------------------------------------------------------------------------


def kms_key_rotation_enabled(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """Symmetric encryption keys rotate, at least yearly; asymmetric and HMAC keys cannot,
    so do not apply."""
    label = _label(resource_type, props, name)
    if resource_type != KMS_KEY:
        return not_applicable(f"{label} is not a KMS key")
    spec = props.get("customerMasterKeySpec") or props.get("keySpec")
    usage = props.get("keyUsage")
    if not predicates.rotation_applies(spec, usage):
        return not_applicable(
            f"{label} is {spec}/{usage or predicates.ENCRYPT_DECRYPT}; KMS rotates "
            "symmetric encryption keys only"
        )
    problems = predicates.rotation_problems(
        props.get("enableKeyRotation"), props.get("rotationPeriodInDays")
    )
    if problems:
        return failed(f"{label} is a symmetric key: {'; '.join(problems)}")
    return passed(f"{label} rotates automatically")


# --- S3 -----------------------------------------------------------------------------------


def _buckets(resources: Iterable[StackResource]) -> list[StackResource]:
    return [r for r in resources if r.type == BUCKET]


def _bucket_name(bucket: StackResource) -> Any:
    return bucket.props.get("bucket") or bucket.name


def _bucket_arn(bucket_name: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket_name}"


def _attached(
    resources: Iterable[StackResource], resource_type: str, bucket: StackResource
) -> list[StackResource]:
    wanted = _bucket_name(bucket)
    return [r for r in resources if r.type == resource_type and r.props.get("bucket") == wanted]


BUCKET_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
AUDIT_BUCKET_TAG = ("hub:purpose", "audit-trail")


def _declared_lifecycle_rules(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for rule in as_list(props.get("rules")):
        if not isinstance(rule, Mapping):
            continue
        out.append(
            {
                "enabled": rule.get("status") == "Enabled",
                "expiration_days": (rule.get("expiration") or {}).get("days"),
                "noncurrent_days": (rule.get("noncurrentVersionExpiration") or {}).get(
                    "noncurrentDays"
                ),
                "abort_days": (rule.get("abortIncompleteMultipartUpload") or {}).get(
                    "daysAfterInitiation"
                ),
            }
        )
    return out


def _lock_retention_days(lock: StackResource) -> int | None:
    retention = ((lock.props.get("rule") or {}).get("defaultRetention")) or {}
    years, days = retention.get("years"), retention.get("days")
    if isinstance(years, int | float) and not isinstance(years, bool):
        return int(years * 365)
    if isinstance(days, int | float) and not isinstance(days, bool):
        return int(days)
    return None


def every_audit_bucket_has_a_retention_lifecycle(
    resources: Sequence[StackResource],
) -> list[Result]:
    """The audit (trail) bucket has a lifecycle that expires objects only after its
    Object Lock retention (:func:`~infra.controls.predicates.audit_lifecycle_problems`)."""
    results = []
    key, value = AUDIT_BUCKET_TAG
    for bucket in _buckets(resources):
        tags = bucket.props.get("tags")
        if not (isinstance(tags, Mapping) and tags.get(key) == value):
            continue
        label = f"Bucket '{bucket.name}'"
        locks = [_lock_retention_days(r) for r in _attached(resources, BUCKET_OBJECT_LOCK, bucket)]
        retention = max((d for d in locks if d is not None), default=None)
        lifecycles = _attached(resources, BUCKET_LIFECYCLE, bucket)
        if retention is None:
            results.append(failed(f"{label} has no Object Lock retention", bucket.name))
            continue
        if not lifecycles:
            results.append(failed(f"{label} has no lifecycle configuration", bucket.name))
            continue
        rules_ = [r for lc in lifecycles for r in _declared_lifecycle_rules(lc.props)]
        problems = predicates.audit_lifecycle_problems(rules_, retention_days=retention)
        if problems:
            results.append(failed(f"{label}: {'; '.join(problems)}", bucket.name))
        else:
            results.append(
                passed(
                    f"{label} expires objects only after its {retention}-day retention", bucket.name
                )
            )
    return results


BACKUP_VAULT = "aws:backup/vault:Vault"
BACKUP_VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_SELECTION = "aws:backup/selection:Selection"
# Buckets whose objects hold records, audit data or messages (hub:purpose tags).
BACKED_UP_BUCKET_PURPOSES = frozenset({"record-shards", "audit-trail", "messaging-media"})
DB_INSTANCE = "aws:rds/instance:Instance"


def _backup_required(resources: Sequence[StackResource]) -> dict[str, str]:
    """Label -> the ARN a selection must name: every table, every database instance
    (messaging's homeserver), the shard, audit and messaging media buckets."""
    required = {}
    for r in resources:
        if r.type == TABLE and isinstance(r.props.get("name"), str):
            name = r.props["name"]
            required[f"table {name}"] = f"table/{name}"
        elif r.type == DB_INSTANCE and isinstance(r.props.get("identifier"), str):
            identifier = r.props["identifier"]
            required[f"database {identifier}"] = f"db:{identifier}"
        elif r.type == BUCKET:
            tags = r.props.get("tags")
            purpose = tags.get("hub:purpose") if isinstance(tags, Mapping) else None
            if purpose in BACKED_UP_BUCKET_PURPOSES:
                bucket = str(_bucket_name(r))
                required[f"bucket {bucket}"] = _bucket_arn(bucket)
    return required


def _selected_suffixes(selected: Iterable[Any], required: Mapping[str, str]) -> list[str]:
    """The required references a selected ARN names (a table ARN ends ``table/<name>``,
    whatever the account; a bucket ARN is exact)."""
    out = []
    for arn in selected:
        for ref in required.values():
            if isinstance(arn, str) and (arn == ref or arn.endswith(f":{ref}")):
                out.append(ref)
    return out


def backup_vault_locked_and_plan_covers_data_stores(
    resources: Sequence[StackResource],
) -> list[Result]:
    """Each stack with data stores has a backup vault under a customer key, locked, and a
    plan whose rules keep each data class at least its documented retention and whose
    selections name every table and the shard and audit buckets
    (:func:`~infra.controls.predicates.backup_problems`)."""
    required = _backup_required(resources)
    if not required:
        return []
    vaults = [r for r in resources if r.type == BACKUP_VAULT]
    if not vaults:
        return [failed("No AWS Backup vault: the tables and buckets are not backed up")]
    minimum = predicates.BACKUP_MINIMUM_RETENTION_DAYS
    results = []
    for vault in vaults:
        vault_name = vault.props.get("name") or vault.name
        label = f"Backup vault '{vault.name}'"
        locks = [
            r
            for r in resources
            if r.type == BACKUP_VAULT_LOCK and r.props.get("backupVaultName") == vault_name
        ]
        lock = (
            {
                "min_days": locks[0].props.get("minRetentionDays"),
                "max_days": locks[0].props.get("maxRetentionDays"),
            }
            if locks
            else None
        )
        plans = [
            p
            for p in resources
            if p.type == BACKUP_PLAN
            and any(
                isinstance(rule, Mapping) and rule.get("targetVaultName") == vault_name
                for rule in as_list(p.props.get("rules"))
            )
        ]
        plan_ids = {str(i) for p in plans for i in (p.name, p.props.get("name"), p.props.get("id"))}
        rules_ = [
            {
                "name": rule.get("ruleName"),
                "delete_after": (rule.get("lifecycle") or {}).get("deleteAfter"),
            }
            for p in plans
            for rule in as_list(p.props.get("rules"))
            if isinstance(rule, Mapping) and rule.get("targetVaultName") == vault_name
        ]
        selected = [
            arn
            for s in resources
            if s.type == BACKUP_SELECTION and str(s.props.get("planId")) in plan_ids
            for arn in as_list(s.props.get("resources"))
        ]
        problems = predicates.backup_problems(
            vault_key=vault.props.get("kmsKeyArn"),
            lock=lock,
            rules=rules_,
            selected=_selected_suffixes(selected, required),
            required=required,
            minimum_days=minimum,
        )
        if problems:
            results.append(failed(f"{label}: {'; '.join(problems)}", vault.name))
        else:
            results.append(
                passed(
                    f"{label} is locked, under a customer key, and its plan backs up "
                    f"{len(required)} data stores for their documented retention",
                    vault.name,
                )
            )
    return results


def _sse_s3_reason(bucket: StackResource) -> str | None:
    """Why this bucket may use SSE-S3 (its hub:purpose is listed), else None."""
    tags = bucket.props.get("tags")
    key, _ = ACCESS_LOG_BUCKET_TAG
    purpose = tags.get(key) if isinstance(tags, Mapping) else None
    return SSE_S3_PURPOSES.get(str(purpose)) if purpose is not None else None


def _sse_rule_defaults(props: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    """(algorithm, KMS key) of each declared default-encryption rule."""
    defaults = []
    for rule in as_list(props.get("rules")):
        if isinstance(rule, Mapping):
            default = rule.get("applyServerSideEncryptionByDefault")
            default = default if isinstance(default, Mapping) else {}
            defaults.append((default.get("sseAlgorithm"), default.get("kmsMasterKeyId")))
    return defaults


def every_bucket_encrypted_with_customer_kms_key(
    resources: Sequence[StackResource],
) -> list[Result]:
    """Every bucket's default encryption is SSE-KMS under a customer-managed key.

    The buckets whose ``hub:purpose`` is in ``SSE_S3_PURPOSES`` may use SSE-S3 instead:
    the server-access-log bucket (S3 server access logging cannot deliver to SSE-KMS
    buckets) and the web client's static site (public code, read by API Gateway).
    """
    results = []
    for bucket in _buckets(resources):
        label = f"Bucket '{bucket.name}'"
        configs = _attached(resources, BUCKET_SSE, bucket)
        defaults = [d for c in configs for d in _sse_rule_defaults(c.props)]
        if not defaults:
            results.append(failed(f"{label} has no default-encryption configuration", bucket.name))
        elif predicates.default_encryption_is_kms(defaults):
            results.append(passed(f"{label} is encrypted with a customer KMS key", bucket.name))
        elif (reason := _sse_s3_reason(bucket)) and predicates.default_encryption_is_sse_s3(
            defaults
        ):
            results.append(passed(f"{label} is {reason}", bucket.name))
        else:
            algorithms = sorted({str(algorithm) for algorithm, _ in defaults})
            results.append(
                failed(
                    f"{label} default encryption is {', '.join(algorithms)} "
                    "without a customer-managed KMS key",
                    bucket.name,
                )
            )
    return results


def bucket_public_access_fully_blocked(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A bucket public access block sets all four flags."""
    label = _label(resource_type, props, name)
    if resource_type != BUCKET_PUBLIC_ACCESS_BLOCK:
        return not_applicable(f"{label} is not a bucket public access block")
    flags = {api: props.get(declared) for declared, api in PUBLIC_ACCESS_BLOCK_FLAGS.items()}
    off = set(predicates.public_access_flags_off(flags))
    missing = [declared for declared, api in PUBLIC_ACCESS_BLOCK_FLAGS.items() if api in off]
    if missing:
        return failed(f"{label} does not set {', '.join(missing)}")
    return passed(f"{label} sets all four public-access-block flags")


def every_bucket_has_public_access_block(resources: Sequence[StackResource]) -> list[Result]:
    """Every bucket has its own public access block with all four flags set."""
    results = []
    for bucket in _buckets(resources):
        label = f"Bucket '{bucket.name}'"
        blocks = _attached(resources, BUCKET_PUBLIC_ACCESS_BLOCK, bucket)
        if any(bucket_public_access_fully_blocked(b.type, b.props).passed for b in blocks):
            results.append(passed(f"{label} blocks all public access", bucket.name))
        elif blocks:
            results.append(
                failed(f"{label} has a public access block without all four flags", bucket.name)
            )
        else:
            results.append(failed(f"{label} has no public access block", bucket.name))
    return results


def bucket_policy_denies_insecure_transport(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A bucket policy denies every S3 action on its bucket and every object in it
    without TLS (:func:`~infra.controls.policy_documents.insecure_transport_deny`)."""
    label = _label(resource_type, props, name)
    if resource_type != BUCKET_POLICY:
        return not_applicable(f"{label} is not a bucket policy")
    statements = policy_statements(props.get("policy"))
    if statements is None:
        return failed(f"{label} has no readable policy document")
    bucket = props.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        return failed(f"{label} names no bucket")
    deny = insecure_transport_deny(statements, _bucket_arn(bucket))
    if deny is not None:
        sid = deny.get("Sid", "(no Sid)")
        return passed(f"{label}: statement {sid} denies requests without TLS")
    return failed(
        f"{label} has no Deny on every S3 action for aws:SecureTransport=false covering "
        f"the bucket {bucket} and its objects"
    )


def every_bucket_denies_insecure_transport(
    resources: Sequence[StackResource],
) -> list[Result]:
    """Every bucket has a bucket policy that denies requests without TLS."""
    results = []
    for bucket in _buckets(resources):
        label = f"Bucket '{bucket.name}'"
        policies = _attached(resources, BUCKET_POLICY, bucket)
        if any(bucket_policy_denies_insecure_transport(p.type, p.props).passed for p in policies):
            results.append(passed(f"{label} has a TLS-only bucket policy", bucket.name))
        elif policies:
            results.append(
                failed(
                    f"{label} has a bucket policy that does not deny insecure transport",
                    bucket.name,
                )
            )
        else:
            results.append(
                failed(f"{label} has no bucket policy denying insecure transport", bucket.name)
            )
    return results


# --- CloudTrail ---------------------------------------------------------------------------


def cloudtrail_validated_multi_region_and_kms_encrypted(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A trail logs, is multi-region with global events, validates log files, uses KMS."""
    label = _label(resource_type, props, name)
    if resource_type != TRAIL:
        return not_applicable(f"{label} is not a CloudTrail trail")
    # Unset, global service events and logging are on (AWS's defaults for a new trail).
    multi_region = props.get("isMultiRegionTrail")
    global_events = _default(props.get("includeGlobalServiceEvents"), True)
    problems = []
    if not predicates.trail_validates_log_files(props.get("enableLogFileValidation")):
        problems.append("log-file validation is off")
    if not predicates.trail_covers_all_regions(multi_region, global_events):
        if not is_true(multi_region):
            problems.append("it is not multi-region")
        if not is_true(global_events):
            problems.append("global service events are excluded")
    if not predicates.trail_is_logging(_default(props.get("enableLogging"), True)):
        problems.append("logging is disabled")
    if not is_customer_managed_key(props.get("kmsKeyId")):
        problems.append("logs are not encrypted with a customer KMS key (kmsKeyId)")
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label} is multi-region, validated and KMS-encrypted")


_SELECTOR_OPERATORS = {
    "equals": "Equals",
    "startsWiths": "StartsWith",
    "endsWiths": "EndsWith",
    "notEquals": "NotEquals",
    "notStartsWiths": "NotStartsWith",
    "notEndsWiths": "NotEndsWith",
}


def _declared_selector_fields(selector: Mapping[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """A declared advanced selector as field -> API operator -> values."""
    fields: dict[str, dict[str, list[Any]]] = {}
    for field in as_list(selector.get("fieldSelectors")):
        if isinstance(field, Mapping):
            fields[str(field.get("field"))] = {
                theirs: as_list(field.get(ours))
                for ours, theirs in _SELECTOR_OPERATORS.items()
                if field.get(ours)
            }
    return fields


def cloudtrail_records_insights_and_function_events(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A trail records CloudTrail Insights (API call and error rates) and every Lambda
    invocation data event (who invoked which function, when)."""
    label = _label(resource_type, props, name)
    if resource_type != TRAIL:
        return not_applicable(f"{label} is not a CloudTrail trail")
    problems = []
    insight_types = [
        s.get("insightType")
        for s in as_list(props.get("insightSelectors"))
        if isinstance(s, Mapping)
    ]
    missing = predicates.missing_insight_types(insight_types)
    if missing:
        problems.append(f"Insights not recorded: {', '.join(missing)}")
    selectors = [s for s in as_list(props.get("advancedEventSelectors")) if isinstance(s, Mapping)]
    if not any(
        predicates.data_selector_logs_every_event_of(
            _declared_selector_fields(s), "AWS::Lambda::Function"
        )
        for s in selectors
    ):
        problems.append("no advanced selector logs Lambda function data events")
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label} records Insights and Lambda invocation data events")


# --- DynamoDB -----------------------------------------------------------------------------


def dynamodb_table_encrypted_with_customer_key(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A table is encrypted with a customer-managed KMS key, not the AWS-owned default."""
    label = _label(resource_type, props, name)
    if resource_type != TABLE:
        return not_applicable(f"{label} is not a DynamoDB table")
    sse = props.get("serverSideEncryption")
    sse = sse if isinstance(sse, Mapping) else {}
    if predicates.table_encrypted_with_kms(
        sse.get("enabled"), sse.get("kmsKeyArn"), key_matches=is_customer_managed_key
    ):
        return passed(f"{label} is encrypted with a customer KMS key")
    return failed(
        f"{label} is not encrypted with a customer KMS key "
        "(serverSideEncryption.enabled with kmsKeyArn)"
    )


def dynamodb_table_point_in_time_recovery_enabled(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A table has point-in-time recovery on."""
    label = _label(resource_type, props, name)
    if resource_type != TABLE:
        return not_applicable(f"{label} is not a DynamoDB table")
    pitr = props.get("pointInTimeRecovery")
    if isinstance(pitr, Mapping) and predicates.point_in_time_recovery_enabled(pitr.get("enabled")):
        return passed(f"{label} has point-in-time recovery")
    return failed(f"{label} has no point-in-time recovery")


# --- Cognito ------------------------------------------------------------------------------


def cognito_user_pool_requires_mfa(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A user pool requires MFA of every user (``mfaConfiguration: ON``) with a factor set."""
    label = _label(resource_type, props, name)
    if resource_type != USER_POOL:
        return not_applicable(f"{label} is not a Cognito user pool")
    totp = props.get("softwareTokenMfaConfiguration")
    problems = predicates.mfa_problems(
        props.get("mfaConfiguration"),
        totp=isinstance(totp, Mapping) and is_true(totp.get("enabled")),
        sms=isinstance(props.get("smsConfiguration"), Mapping),
        email=isinstance(props.get("emailMfaConfiguration"), Mapping),
    )
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label} requires MFA")


def cognito_app_client_srp_only_with_short_tokens(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """An app client allows only SRP and refresh sign-in, and its access tokens live at
    most 15 minutes (the service refuses older ones too: HUB_MAX_TOKEN_AGE_SECONDS)."""
    label = _label(resource_type, props, name)
    if resource_type != USER_POOL_CLIENT:
        return not_applicable(f"{label} is not a Cognito user pool client")
    problems = []
    flows = set(as_list(props.get("explicitAuthFlows")))
    if not flows:
        problems.append("explicitAuthFlows is unset (Cognito then allows password flows)")
    elif flows - ALLOWED_AUTH_FLOWS:
        problems.append(f"allows {', '.join(sorted(flows - ALLOWED_AUTH_FLOWS))}")
    raw_validity = props.get("accessTokenValidity")
    validity = (
        float(raw_validity)
        if isinstance(raw_validity, int | float)
        and not isinstance(raw_validity, bool)
        and raw_validity > 0
        else None
    )
    units = props.get("tokenValidityUnits")
    unit = units.get("accessToken", "hours") if isinstance(units, Mapping) else "hours"
    minutes = validity * _TOKEN_UNIT_MINUTES.get(str(unit), 60) if validity else None
    if minutes is None or minutes > MAX_ACCESS_TOKEN_MINUTES:
        problems.append(
            f"access tokens live {validity:g} {unit}, more than {MAX_ACCESS_TOKEN_MINUTES} minutes"
            if validity
            else "accessTokenValidity is unset (Cognito's default is 60 minutes)"
        )
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label} signs in with SRP only; access tokens live {minutes:g} minutes")


def cognito_client_cannot_write_granting_attributes(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """An app client lets its users write no attribute that grants anything: its write
    attributes are declared and exclude them, or its tokens cannot update attributes at
    all (:func:`infra.controls.predicates.client_writable_grants`, as verify decides it
    on the live client)."""
    label = _label(resource_type, props, name)
    if resource_type != USER_POOL_CLIENT:
        return not_applicable(f"{label} is not a Cognito user pool client")
    writable = predicates.client_writable_grants(
        as_list(props.get("writeAttributes")),
        as_list(props.get("explicitAuthFlows")),
        as_list(props.get("allowedOauthScopes")),
    )
    if writable is None:
        return passed(f"{label}: its tokens cannot update user attributes")
    if writable:
        return failed(f"{label} lets its users write {writable}")
    return passed(f"{label} lets its users write contact details only")


def cognito_providers_release_placement_claims(
    resources: Sequence[StackResource],
) -> list[Result]:
    """Each identity provider maps what placing its users needs onto the pool attributes
    the hub reads (always the registration number), maps no legacy attribute the hub does
    not read, and is served by an app client allowed to write what it maps (Cognito
    refuses the sign-in otherwise). Which providers also need a hospital code or the
    group claim depends on the stage: the verify check
    ``cognito.providers_release_placement_claims`` holds each live provider to it."""
    from app.identity.federation import ASSERTED_ATTRIBUTES, GRANTING_ATTRIBUTES

    clients = [r for r in resources if r.type == USER_POOL_CLIENT]
    providers = [r for r in resources if r.type == IDENTITY_PROVIDER]
    if not providers:
        return [not_applicable("no identity provider is declared (phase 1)")]
    legacy_attributes = GRANTING_ATTRIBUTES - set(ASSERTED_ATTRIBUTES)
    results = []
    for provider in providers:
        label = _label(provider.type, provider.props, provider.name)
        raw = provider.props.get("attributeMapping")
        mapping = dict(raw) if isinstance(raw, Mapping) else {}
        problems = []
        missing = predicates.placement_claims_missing(mapping, ["reg_no"])
        if missing:
            problems.append(f"does not map {missing}")
        legacy = sorted(set(mapping) & legacy_attributes)
        if legacy:
            problems.append(f"maps {legacy}, which the hub does not read (use custom:idp_*)")
        provider_name = provider.props.get("providerName")
        serving = [
            c
            for c in clients
            if provider_name in as_list(c.props.get("supportedIdentityProviders"))
        ]
        if not serving:
            problems.append("is served by no app client")
        for client in serving:
            unwritable = sorted(set(mapping) - set(as_list(client.props.get("writeAttributes"))))
            if unwritable:
                client_label = _label(client.type, client.props, client.name)
                problems.append(f"maps {unwritable}, which {client_label} cannot write")
        if problems:
            results.append(failed(f"{label} " + "; ".join(problems), provider.name))
        else:
            results.append(passed(f"{label} maps {sorted(mapping)}", provider.name))
    return results


# --- API Gateway --------------------------------------------------------------------------


def api_enforces_tls13_security_policy(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A REST API (or custom domain) uses a TLS 1.3-only security policy in STRICT mode."""
    label = _label(resource_type, props, name)
    if resource_type not in (REST_API, API_DOMAIN_NAME):
        return not_applicable(f"{label} is not an API Gateway REST API or domain name")
    problems = []
    policy = props.get("securityPolicy")
    if not predicates.is_tls13_only_policy(policy):
        problems.append(
            f"securityPolicy is {policy!r}, not a TLS 1.3-only policy (SecurityPolicy_TLS13_1_3_*)"
        )
    mode = props.get("endpointAccessMode")
    if mode != "STRICT":
        problems.append(f"endpointAccessMode is {mode!r}, not STRICT")
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label} accepts TLS 1.3 only ({policy}), in STRICT mode")


# --- Lambda -------------------------------------------------------------------------------


def _permission_statement(props: Mapping[str, Any]) -> dict[str, Any]:
    """The function-policy statement Lambda writes for a declared permission.

    Lambda's AddPermission turns ``principal`` into a Service principal (a service
    domain), an AWS principal (an account or ARN) or everyone, and ``sourceArn``,
    ``sourceAccount`` and ``functionUrlAuthType`` into conditions.
    """
    principal = props.get("principal")
    if not isinstance(principal, str) or not principal or principal == "*":
        statement_principal: Any = "*"
    elif principal.endswith(".amazonaws.com"):
        statement_principal = {"Service": principal}
    else:
        statement_principal = {"AWS": principal}
    condition: dict[str, dict[str, Any]] = {}
    if props.get("sourceArn"):
        condition["ArnLike"] = {"AWS:SourceArn": props["sourceArn"]}
    equals = {
        key: props[declared]
        for declared, key in (
            ("sourceAccount", "AWS:SourceAccount"),
            ("functionUrlAuthType", "lambda:FunctionUrlAuthType"),
        )
        if props.get(declared)
    }
    if equals:
        condition["StringEquals"] = equals
    statement: dict[str, Any] = {
        "Sid": "permission",
        "Effect": "Allow",
        "Principal": statement_principal,
        "Action": props.get("action") or "lambda:InvokeFunction",
    }
    if condition:
        statement["Condition"] = condition
    return statement


def lambda_not_publicly_invocable(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A Lambda permission names its caller; a service caller is bound to a source ARN
    (:func:`~infra.controls.policy_documents.public_invocation_grants` on the statement
    the permission becomes).

    A function URL must require IAM auth: ``NONE`` lets anyone on the internet invoke it.
    """
    label = _label(resource_type, props, name)
    if resource_type == LAMBDA_FUNCTION_URL:
        auth = props.get("authorizationType")
        if auth == "AWS_IAM":
            return passed(f"{label} requires IAM-signed requests")
        return failed(f"{label} is a function URL without IAM auth (authorizationType {auth!r})")
    if resource_type != LAMBDA_PERMISSION:
        return not_applicable(f"{label} is not a Lambda permission or function URL")
    problems = public_invocation_grants([_permission_statement(props)])
    if problems:
        return failed(f"{label} {'; '.join(problem for _, problem in problems)}")
    return passed(f"{label} is limited to {props.get('principal')}")


# --- IAM ----------------------------------------------------------------------------------


def _broad_managed_policies(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type == "aws:iam/role:Role":
        arns = as_list(props.get("managedPolicyArns"))
    elif resource_type in IAM_ATTACHMENT_TYPES:
        arns = [props.get("policyArn")]
    else:
        return []
    return [
        str(arn)
        for arn in arns
        if isinstance(arn, str)
        and arn.startswith("arn:aws:iam::aws:policy/")
        and arn.rsplit("/", 1)[-1] in BROAD_MANAGED_POLICIES
    ]


def _iam_documents(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    if resource_type in IAM_ATTACHMENT_TYPES:
        return []
    if resource_type == "aws:iam/role:Role":
        # Inline policies on the role itself; the trust policy is not an identity policy.
        return [
            (str(p.get("name") or "inline"), p.get("policy"))
            for p in as_list(props.get("inlinePolicies"))
            if isinstance(p, Mapping)
        ]
    return [("policy", props.get("policy"))]


def iam_policy_grants_no_wildcards_on_data_stores(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """IAM identity policies name S3, DynamoDB and KMS actions and resources one by one.

    Fails an Allow with ``*``, a wildcard service (``*:GetObject``), a wildcard on a data
    store (``s3:*``, ``s3:Get*``, ``kms:GenerateDataKey*``), ``NotAction``, or a data-store
    action on ``Resource: "*"``
    (:func:`~infra.controls.policy_documents.data_store_wildcard_grants`); and attaching
    an AWS-managed policy that does (``AmazonS3FullAccess``, ``AmazonS3ReadOnlyAccess``...).
    KMS *key* policies are resource policies, not checked here: their administrator
    statements legitimately use wildcards.
    """
    label = _label(resource_type, props, name)
    if resource_type not in IAM_POLICY_TYPES | IAM_ATTACHMENT_TYPES:
        return not_applicable(f"{label} is not an IAM identity policy")
    documents = _iam_documents(resource_type, props)
    broad = _broad_managed_policies(resource_type, props)
    if not documents and not broad and resource_type not in IAM_ATTACHMENT_TYPES:
        return not_applicable(f"{label} has no inline or AWS-managed identity policy")
    problems = [f"attaches {arn.rsplit('/', 1)[-1]}" for arn in broad]
    for doc_name, document in documents:
        statements = policy_statements(document)
        if statements is None:
            problems.append(f"{doc_name}: unreadable policy document")
            continue
        problems += [
            f"{doc_name} statement {where} {problem}"
            for where, problem in data_store_wildcard_grants(statements)
        ]
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label} names its data-store actions and resources")


# --- WAF ----------------------------------------------------------------------------------

API_STAGE = "aws:apigateway/stage:Stage"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"


def _stage_arn_suffix(stage: StackResource) -> str | None:
    api, name = stage.props.get("restApi"), stage.props.get("stageName")
    if isinstance(api, str) and isinstance(name, str):
        return f"/restapis/{api}/stages/{name}"
    return None


def every_api_stage_has_web_acl(resources: Sequence[StackResource]) -> list[Result]:
    """Every API Gateway stage is associated with a WAF web ACL that has a rate-based rule.

    A stage is matched to an association by its ARN; where the preview does not know
    the ARN yet on either side, an association whose resource is unknown too counts.
    """
    acls = {str(r.props.get("name")): r for r in resources if r.type == WEB_ACL}
    associations = [r for r in resources if r.type == WEB_ACL_ASSOCIATION]
    results = []
    for stage in (r for r in resources if r.type == API_STAGE):
        label = f"API stage '{stage.name}'"
        suffix = _stage_arn_suffix(stage)
        mine = [
            a
            for a in associations
            if (
                isinstance(a.props.get("resourceArn"), str)
                and suffix is not None
                and str(a.props["resourceArn"]).endswith(suffix)
            )
            or (suffix is None and not isinstance(a.props.get("resourceArn"), str))
        ]
        if not mine:
            results.append(failed(f"{label} has no WAF web ACL association", stage.name))
            continue
        guarded = False
        for association in mine:
            arn = association.props.get("webAclArn")
            named = [
                acl
                for name, acl in acls.items()
                if isinstance(arn, str) and f"/webacl/{name}/" in arn
            ] or ([] if isinstance(arn, str) else list(acls.values()))
            guarded |= any(
                predicates.web_acl_rate_limited(
                    rule.get("statement") or {}
                    for rule in as_list(acl.props.get("rules"))
                    if isinstance(rule, Mapping)
                )
                for acl in named
            )
        if guarded:
            results.append(passed(f"{label} is guarded by a rate-limited web ACL", stage.name))
        else:
            results.append(
                failed(f"{label}: its web ACL is not declared here or has no rate rule", stage.name)
            )
    return results


# --- CIS monitoring ----------------------------------------------------------------------

LOG_METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def every_trail_has_cis_metric_alarms(resources: Sequence[StackResource]) -> list[Result]:
    """Each trail's events are watched for every CIS section 4 event class: a metric
    filter naming the events and an alarm with an action on its metric
    (:func:`~infra.controls.predicates.cis_monitoring_problems`)."""
    filters = []
    for r in resources:
        if r.type == LOG_METRIC_FILTER:
            transformation = r.props.get("metricTransformation") or {}
            filters.append(
                (
                    r.props.get("pattern"),
                    transformation.get("namespace"),
                    transformation.get("name"),
                )
            )
    alarmed = [
        (r.props.get("namespace"), r.props.get("metricName"))
        for r in resources
        if r.type == METRIC_ALARM and as_list(r.props.get("alarmActions"))
    ]
    results = []
    for trail in (r for r in resources if r.type == TRAIL):
        label = f"Trail '{trail.name}'"
        problems = predicates.cis_monitoring_problems(filters, alarmed)
        if problems:
            results.append(failed(f"{label}: {'; '.join(problems)}", trail.name))
        else:
            results.append(
                passed(
                    f"{label}: every CIS section 4 event class has a filter and alarm", trail.name
                )
            )
    return results


# --- IAM role trust ----------------------------------------------------------------------

IAM_ROLE = "aws:iam/role:Role"


def role_trust_is_bound_to_source(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A role an AWS service may assume names the source account or resource it acts for."""
    label = _label(resource_type, props, name)
    if resource_type != IAM_ROLE:
        return not_applicable(f"{label} is not an IAM role")
    statements = policy_statements(props.get("assumeRolePolicy"))
    if statements is None:
        return failed(f"{label}: unreadable trust policy (assumeRolePolicy)")
    problems = predicates.service_trust_problems(statements)
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label}: every service trust is bound to a source account or ARN")


# --- CloudWatch Logs ----------------------------------------------------------------------


def log_group_encrypted_and_retained(
    resource_type: str,
    props: Mapping[str, Any],
    name: str = "",
    minimum_days: int = MIN_LOG_RETENTION_DAYS,
) -> Result:
    """A log group is KMS-encrypted and expires after a set retention of at least a year.

    Retention must be set: never-expiring logs keep personal data (user ids, addresses)
    longer than necessary (DPP2), and less than ``minimum_days`` loses audit evidence.
    """
    label = _label(resource_type, props, name)
    if resource_type != LOG_GROUP:
        return not_applicable(f"{label} is not a CloudWatch log group")
    problems = []
    if not is_customer_managed_key(props.get("kmsKeyId")):
        problems.append("not KMS-encrypted (kmsKeyId)")
    problems += predicates.retention_problems(
        props.get("retentionInDays"), minimum_days=minimum_days
    )
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label} is KMS-encrypted and retained {props['retentionInDays']:g} days")


# --- Messaging: the homeserver's database, load balancers, configuration --------------------


def database_encrypted_with_customer_kms_key(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """An RDS instance encrypts its storage under a customer-managed KMS key."""
    label = _label(resource_type, props, name)
    if resource_type != DB_INSTANCE:
        return not_applicable(f"{label} is not an RDS instance")
    problems = predicates.database_encryption_problems(
        props.get("storageEncrypted"),
        props.get("kmsKeyId"),
        key_matches=is_customer_managed_key,
    )
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label} encrypts its storage under a customer-managed key")


def database_not_publicly_accessible(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """An RDS instance is not publicly accessible."""
    label = _label(resource_type, props, name)
    if resource_type != DB_INSTANCE:
        return not_applicable(f"{label} is not an RDS instance")
    if not predicates.database_is_private(props.get("publiclyAccessible")):
        return failed(f"{label} is publicly accessible")
    return passed(f"{label} is not publicly accessible")


def database_requires_tls(resources: Sequence[StackResource]) -> list[Result]:
    """Every RDS instance uses a declared parameter group that sets ``rds.force_ssl`` 1
    (an instance on the engine's default group fails: that default lets plain text in)."""
    groups = {
        str(r.props.get("name") or r.name): r for r in resources if r.type == DB_PARAMETER_GROUP
    }
    results = []
    for instance in (r for r in resources if r.type == DB_INSTANCE):
        label = f"Instance '{instance.name}'"
        group = groups.get(str(instance.props.get("parameterGroupName") or ""))
        if group is None:
            results.append(
                failed(f"{label} uses no declared parameter group (TLS not forced)", instance.name)
            )
            continue
        parameters = {
            str(p.get("name")): p.get("value")
            for p in as_list(group.props.get("parameters"))
            if isinstance(p, Mapping)
        }
        if predicates.parameters_force_tls(parameters):
            results.append(passed(f"{label} forces TLS (rds.force_ssl=1)", instance.name))
        else:
            results.append(failed(f"{label}'s parameter group does not force TLS", instance.name))
    return results


def load_balancer_listeners_use_tls13(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A load balancer listener speaks HTTPS with a TLS 1.3-only policy."""
    label = _label(resource_type, props, name)
    if resource_type != LB_LISTENER:
        return not_applicable(f"{label} is not a load balancer listener")
    problems = predicates.listener_tls_problems(props.get("protocol"), props.get("sslPolicy"))
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label} accepts TLS 1.3 only ({props.get('sslPolicy')})")


def homeserver_federation_closed(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> Result:
    """A task that runs the homeserver declares a configuration with closed federation
    and no open registration (:func:`app.messaging.homeserver.federation_problems`)."""
    label = _label(resource_type, props, name)
    if resource_type != TASK_DEFINITION:
        return not_applicable(f"{label} is not an ECS task definition")
    configs = predicates.homeserver_configs(props.get("containerDefinitions"))
    if not configs:
        return not_applicable(f"{label} runs no homeserver")
    problems = [p for config in configs for p in predicates.homeserver_federation_problems(config)]
    if problems:
        return failed(f"{label}: {'; '.join(problems)}")
    return passed(f"{label}: the homeserver federates with nobody and takes no registrations")
