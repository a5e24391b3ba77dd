"""Pre-deploy policy rules: small pure functions over what the program declares.

Each rule is named for the compliant state and looks at plain data only, never at AWS:

- a *resource rule* takes ``(resource_type, props, name="")``, where ``props`` are the
  resource's camelCase inputs exactly as pulumi-policy's ``ResourceValidationArgs.props``
  and the mock runtime's ``DeclaredResource.inputs`` present them (IAM and bucket policy
  documents arrive as JSON strings or as mappings);
- a *stack rule* takes every declared resource as :class:`StackResource` values, for
  properties that only show across resources ("every bucket has a TLS-only policy");
- a *config rule* takes the flat stack configuration (``aws:region``...).

A rule returns a :class:`RuleResult` (a stack rule, one per subject resource): pass, fail
or not applicable, with a message that names the resource. Rules know nothing about the
pack that binds them to severity and controls (``infra.policies.pack``), nor about the
Pulumi engine; they never raise on well-formed but non-compliant input.

Guarantees: a rule fails closed. A property that is missing where the compliant state
needs it set (rotation flag, KMS key id, retention...) is a failure, not a pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

REQUIRED_REGION = "ap-east-1"
TLS13_SECURITY_POLICY = "SecurityPolicy_TLS13_1_3_2025_09"
MIN_LOG_RETENTION_DAYS = 365
ACCESS_LOG_BUCKET_TAG = ("hub:purpose", "s3-access-logs")
# Data stores whose IAM grants must name actions one by one.
DATA_STORE_SERVICES = frozenset({"s3", "dynamodb", "kms"})

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
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
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


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule on one resource (``resource`` names it for stack rules)."""

    status: Status
    message: str
    resource: str = ""

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


class StackResource(NamedTuple):
    """One declared resource as a stack rule sees it."""

    type: str
    name: str
    props: Mapping[str, Any]


def _pass(message: str, resource: str = "") -> RuleResult:
    return RuleResult(Status.PASS, message, resource)


def _fail(message: str, resource: str = "") -> RuleResult:
    return RuleResult(Status.FAIL, message, resource)


def _not_applicable(message: str, resource: str = "") -> RuleResult:
    return RuleResult(Status.NOT_APPLICABLE, message, resource)


def _label(resource_type: str, props: Mapping[str, Any], name: str) -> str:
    """How a message names the resource: its logical name, else its physical name."""
    if name:
        return f"{resource_type.rsplit(':', 1)[-1]} '{name}'"
    for key in ("name", "bucket", "function", "description"):
        value = props.get(key)
        if isinstance(value, str) and value:
            return f"{resource_type.rsplit(':', 1)[-1]} '{value}'"
    return resource_type


def _is_true(value: Any) -> bool:
    # The engine may hand booleans over as strings when they came from config.
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | Mapping):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def _policy_statements(document: Any) -> list[Mapping[str, Any]] | None:
    """The statements of an IAM/resource policy given as JSON text or a mapping.

    Returns None when the document cannot be read as a policy at all.
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return None
    if not isinstance(document, Mapping):
        return None
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _positive_number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


# --- region -------------------------------------------------------------------------------


def _arn_region(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("arn:"):
        parts = value.split(":")
        if len(parts) > 3:
            return parts[3]
    return None


def resource_region_is_ap_east_1(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """The AWS provider, and any resource that sets its own region, target ap-east-1.

    Resources that leave ``region`` unset inherit the provider's; the pack checks that
    provider too. KMS key references given as ARNs must also point into ap-east-1, so
    nothing is encrypted under a key held outside Hong Kong.
    """
    label = _label(resource_type, props, name)
    if resource_type == AWS_PROVIDER:
        region = props.get("region")
        if region == REQUIRED_REGION:
            return _pass(f"{label} targets {REQUIRED_REGION}")
        return _fail(
            f"{label} targets region {region!r}, not {REQUIRED_REGION}: "
            "patient data must stay in Hong Kong (Cap. 486)"
        )
    if not resource_type.startswith("aws:"):
        return _not_applicable(f"{label} is not an AWS resource")
    problems: list[str] = []
    region = props.get("region")
    if region is not None and region != REQUIRED_REGION:
        problems.append(f"region {region!r}")
    for key in KMS_KEY_REFERENCES:
        key_region = _arn_region(props.get(key))
        if key_region is not None and key_region != REQUIRED_REGION:
            problems.append(f"{key} in {key_region!r}")
    if problems:
        return _fail(f"{label} is outside {REQUIRED_REGION}: {', '.join(problems)}")
    if region is None and not any(_arn_region(props.get(k)) for k in KMS_KEY_REFERENCES):
        return _not_applicable(f"{label} inherits the provider's region")
    return _pass(f"{label} stays in {REQUIRED_REGION}")


def stack_region_is_ap_east_1(config: Mapping[str, Any]) -> RuleResult:
    """The stack configuration sets ``aws:region`` to ap-east-1."""
    region = config.get("aws:region")
    if region == REQUIRED_REGION:
        return _pass(f"stack config aws:region is {REQUIRED_REGION}", "aws:region")
    return _fail(
        f"stack config aws:region is {region!r}, not {REQUIRED_REGION}: patient "
        "data must stay in Hong Kong (Cap. 486)",
        "aws:region",
    )


# --- KMS ----------------------------------------------------------------------------------


def kms_key_rotation_enabled(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """Symmetric encryption keys rotate; asymmetric and HMAC keys cannot, so do not apply."""
    label = _label(resource_type, props, name)
    if resource_type != KMS_KEY:
        return _not_applicable(f"{label} is not a KMS key")
    spec = props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT"
    usage = props.get("keyUsage") or "ENCRYPT_DECRYPT"
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        return _not_applicable(
            f"{label} is {spec}/{usage}; KMS rotates symmetric encryption keys only"
        )
    if _is_true(props.get("enableKeyRotation")):
        return _pass(f"{label} rotates automatically")
    return _fail(f"{label} is a symmetric key without automatic rotation")


# --- S3 -----------------------------------------------------------------------------------


def _buckets(resources: Iterable[StackResource]) -> list[StackResource]:
    return [r for r in resources if r.type == BUCKET]


def _bucket_name(bucket: StackResource) -> Any:
    return bucket.props.get("bucket") or bucket.name


def _attached(
    resources: Iterable[StackResource], resource_type: str, bucket: StackResource
) -> list[StackResource]:
    wanted = _bucket_name(bucket)
    return [r for r in resources if r.type == resource_type and r.props.get("bucket") == wanted]


def _is_access_log_bucket(bucket: StackResource) -> bool:
    tags = bucket.props.get("tags")
    key, value = ACCESS_LOG_BUCKET_TAG
    return isinstance(tags, Mapping) and tags.get(key) == value


def _is_customer_kms_key_id(key_id: Any) -> bool:
    # alias/aws/s3 and friends are AWS-managed keys: no key policy of ours governs them.
    return isinstance(key_id, str) and bool(key_id) and "alias/aws/" not in key_id


def _sse_rule_defaults(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    defaults = []
    for rule in _as_list(props.get("rules")):
        if isinstance(rule, Mapping):
            default = rule.get("applyServerSideEncryptionByDefault")
            defaults.append(default if isinstance(default, Mapping) else {})
    return defaults


def every_bucket_encrypted_with_customer_kms_key(
    resources: Sequence[StackResource],
) -> list[RuleResult]:
    """Every bucket's default encryption is SSE-KMS under a customer-managed key.

    The S3 server-access-log bucket (tagged ``hub:purpose: s3-access-logs``) may use
    SSE-S3 instead, because S3 server access logging cannot deliver to SSE-KMS buckets.
    """
    results = []
    for bucket in _buckets(resources):
        label = f"Bucket '{bucket.name}'"
        configs = _attached(resources, BUCKET_SSE, bucket)
        defaults = [d for c in configs for d in _sse_rule_defaults(c.props)]
        if not defaults:
            results.append(_fail(f"{label} has no default-encryption configuration", bucket.name))
            continue
        kms_ok = all(
            d.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse")
            and _is_customer_kms_key_id(d.get("kmsMasterKeyId"))
            for d in defaults
        )
        if kms_ok:
            results.append(_pass(f"{label} is encrypted with a customer KMS key", bucket.name))
        elif _is_access_log_bucket(bucket) and all(
            d.get("sseAlgorithm") == "AES256" for d in defaults
        ):
            results.append(
                _pass(
                    f"{label} is the server-access-log bucket: SSE-S3 (S3 "
                    "access logging cannot write to SSE-KMS)",
                    bucket.name,
                )
            )
        else:
            algorithms = sorted({str(d.get("sseAlgorithm")) for d in defaults})
            results.append(
                _fail(
                    f"{label} default encryption is {', '.join(algorithms)} "
                    "without a customer-managed KMS key",
                    bucket.name,
                )
            )
    return results


PUBLIC_ACCESS_BLOCK_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def bucket_public_access_fully_blocked(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """A bucket public access block sets all four flags."""
    label = _label(resource_type, props, name)
    if resource_type != BUCKET_PUBLIC_ACCESS_BLOCK:
        return _not_applicable(f"{label} is not a bucket public access block")
    missing = [flag for flag in PUBLIC_ACCESS_BLOCK_FLAGS if not _is_true(props.get(flag))]
    if missing:
        return _fail(f"{label} does not set {', '.join(missing)}")
    return _pass(f"{label} sets all four public-access-block flags")


def every_bucket_has_public_access_block(resources: Sequence[StackResource]) -> list[RuleResult]:
    """Every bucket has its own public access block with all four flags set."""
    results = []
    for bucket in _buckets(resources):
        label = f"Bucket '{bucket.name}'"
        blocks = _attached(resources, BUCKET_PUBLIC_ACCESS_BLOCK, bucket)
        if any(bucket_public_access_fully_blocked(b.type, b.props).passed for b in blocks):
            results.append(_pass(f"{label} blocks all public access", bucket.name))
        elif blocks:
            results.append(
                _fail(f"{label} has a public access block without all four flags", bucket.name)
            )
        else:
            results.append(_fail(f"{label} has no public access block", bucket.name))
    return results


def _principal_is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return "*" in _as_list(principal.get("AWS"))
    return False


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny" or not _principal_is_everyone(statement.get("Principal")):
        return False
    actions = {str(a).lower() for a in _as_list(statement.get("Action"))}
    if not actions & {"s3:*", "*"}:
        return False
    resources = [str(r) for r in _as_list(statement.get("Resource"))]
    # The deny must cover the bucket itself and its objects.
    if not (
        any(not r.endswith("/*") for r in resources)
        and any(r.endswith("/*") or r == "*" for r in resources)
    ):
        return False
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    secure = condition.get("Bool")
    if not isinstance(secure, Mapping):
        return False
    values = _as_list(secure.get("aws:SecureTransport"))
    return any(v is False or str(v).lower() == "false" for v in values)


def bucket_policy_denies_insecure_transport(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """A bucket policy denies every S3 action on the bucket and its objects without TLS."""
    label = _label(resource_type, props, name)
    if resource_type != BUCKET_POLICY:
        return _not_applicable(f"{label} is not a bucket policy")
    statements = _policy_statements(props.get("policy"))
    if statements is None:
        return _fail(f"{label} has no readable policy document")
    if any(_denies_insecure_transport(s) for s in statements):
        return _pass(f"{label} denies requests without TLS (aws:SecureTransport=false)")
    return _fail(
        f"{label} has no Deny on s3:* for aws:SecureTransport=false covering the "
        "bucket and its objects"
    )


def every_bucket_denies_insecure_transport(
    resources: Sequence[StackResource],
) -> list[RuleResult]:
    """Every bucket has a bucket policy that denies requests without TLS."""
    results = []
    for bucket in _buckets(resources):
        label = f"Bucket '{bucket.name}'"
        policies = _attached(resources, BUCKET_POLICY, bucket)
        if any(bucket_policy_denies_insecure_transport(p.type, p.props).passed for p in policies):
            results.append(_pass(f"{label} has a TLS-only bucket policy", bucket.name))
        elif policies:
            results.append(
                _fail(
                    f"{label} has a bucket policy that does not deny insecure transport",
                    bucket.name,
                )
            )
        else:
            results.append(
                _fail(f"{label} has no bucket policy denying insecure transport", bucket.name)
            )
    return results


# --- CloudTrail ---------------------------------------------------------------------------


def cloudtrail_validated_multi_region_and_kms_encrypted(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """A trail logs, is multi-region with global events, validates log files, uses KMS."""
    label = _label(resource_type, props, name)
    if resource_type != TRAIL:
        return _not_applicable(f"{label} is not a CloudTrail trail")
    problems = []
    if not _is_true(props.get("enableLogFileValidation")):
        problems.append("log-file validation is off")
    if not _is_true(props.get("isMultiRegionTrail")):
        problems.append("it is not multi-region")
    if props.get("includeGlobalServiceEvents") is False:
        problems.append("global service events are excluded")
    if props.get("enableLogging") is False:
        problems.append("logging is disabled")
    if not _is_customer_kms_key_id(props.get("kmsKeyId")):
        problems.append("logs are not encrypted with a customer KMS key (kmsKeyId)")
    if problems:
        return _fail(f"{label}: {'; '.join(problems)}")
    return _pass(f"{label} is multi-region, validated and KMS-encrypted")


# --- DynamoDB -----------------------------------------------------------------------------


def dynamodb_table_encrypted_with_customer_key(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """A table is encrypted with a customer-managed KMS key, not the AWS-owned default."""
    label = _label(resource_type, props, name)
    if resource_type != TABLE:
        return _not_applicable(f"{label} is not a DynamoDB table")
    sse = props.get("serverSideEncryption")
    if (
        isinstance(sse, Mapping)
        and _is_true(sse.get("enabled"))
        and _is_customer_kms_key_id(sse.get("kmsKeyArn"))
    ):
        return _pass(f"{label} is encrypted with a customer KMS key")
    return _fail(
        f"{label} is not encrypted with a customer KMS key "
        "(serverSideEncryption.enabled with kmsKeyArn)"
    )


def dynamodb_table_point_in_time_recovery_enabled(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """A table has point-in-time recovery on."""
    label = _label(resource_type, props, name)
    if resource_type != TABLE:
        return _not_applicable(f"{label} is not a DynamoDB table")
    pitr = props.get("pointInTimeRecovery")
    if isinstance(pitr, Mapping) and _is_true(pitr.get("enabled")):
        return _pass(f"{label} has point-in-time recovery")
    return _fail(f"{label} has no point-in-time recovery")


# --- Cognito ------------------------------------------------------------------------------


def cognito_user_pool_requires_mfa(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """A user pool requires MFA of every user (``mfaConfiguration: ON``) with a factor set."""
    label = _label(resource_type, props, name)
    if resource_type != USER_POOL:
        return _not_applicable(f"{label} is not a Cognito user pool")
    mode = props.get("mfaConfiguration")
    if mode != "ON":
        return _fail(f"{label} MFA is {mode or 'OFF'}, not required (ON)")
    totp = props.get("softwareTokenMfaConfiguration")
    factors = [
        isinstance(totp, Mapping) and _is_true(totp.get("enabled")),
        isinstance(props.get("smsConfiguration"), Mapping),
        isinstance(props.get("emailMfaConfiguration"), Mapping),
    ]
    if not any(factors):
        return _fail(f"{label} requires MFA but enables no factor (TOTP, SMS or email)")
    return _pass(f"{label} requires MFA")


def cognito_app_client_srp_only_with_short_tokens(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """An app client allows only SRP and refresh sign-in, and its access tokens live at
    most 15 minutes (the service refuses older ones too: HUB_MAX_TOKEN_AGE_SECONDS)."""
    label = _label(resource_type, props, name)
    if resource_type != USER_POOL_CLIENT:
        return _not_applicable(f"{label} is not a Cognito user pool client")
    problems = []
    flows = set(_as_list(props.get("explicitAuthFlows")))
    if not flows:
        problems.append("explicitAuthFlows is unset (Cognito then allows password flows)")
    elif flows - ALLOWED_AUTH_FLOWS:
        problems.append(f"allows {', '.join(sorted(flows - ALLOWED_AUTH_FLOWS))}")
    validity = _positive_number(props.get("accessTokenValidity"))
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
        return _fail(f"{label}: {'; '.join(problems)}")
    return _pass(f"{label} signs in with SRP only; access tokens live {minutes:g} minutes")


# --- API Gateway --------------------------------------------------------------------------


def api_enforces_tls13_security_policy(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """A REST API (or custom domain) uses the TLS 1.3 security policy in STRICT mode."""
    label = _label(resource_type, props, name)
    if resource_type not in (REST_API, API_DOMAIN_NAME):
        return _not_applicable(f"{label} is not an API Gateway REST API or domain name")
    problems = []
    policy = props.get("securityPolicy")
    if policy != TLS13_SECURITY_POLICY:
        problems.append(f"securityPolicy is {policy!r}, not {TLS13_SECURITY_POLICY}")
    mode = props.get("endpointAccessMode")
    if mode != "STRICT":
        problems.append(f"endpointAccessMode is {mode!r}, not STRICT")
    if problems:
        return _fail(f"{label}: {'; '.join(problems)}")
    return _pass(f"{label} accepts TLS 1.3 only, in STRICT mode")


# --- Lambda -------------------------------------------------------------------------------


def lambda_not_publicly_invocable(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """A Lambda permission names a principal; a service principal is bound to a source ARN.

    A function URL must require IAM auth: ``NONE`` lets anyone on the internet invoke it.
    """
    label = _label(resource_type, props, name)
    if resource_type == LAMBDA_FUNCTION_URL:
        auth = props.get("authorizationType")
        if auth == "AWS_IAM":
            return _pass(f"{label} requires IAM-signed requests")
        return _fail(f"{label} is a function URL without IAM auth (authorizationType {auth!r})")
    if resource_type != LAMBDA_PERMISSION:
        return _not_applicable(f"{label} is not a Lambda permission or function URL")
    principal = props.get("principal")
    if not isinstance(principal, str) or not principal or principal == "*":
        return _fail(f"{label} lets anyone invoke the function (principal {principal!r})")
    if props.get("functionUrlAuthType") == "NONE":
        return _fail(f"{label} opens an unauthenticated function URL")
    if principal.endswith(".amazonaws.com") and not props.get("sourceArn"):
        # Without a source ARN any account's use of the service could invoke the function.
        return _fail(f"{label} grants {principal} without a sourceArn")
    return _pass(f"{label} is limited to {principal}")


# --- IAM ----------------------------------------------------------------------------------


def _wildcard_data_store_action(action: str) -> bool:
    service, _, operation = action.lower().partition(":")
    if action == "*":
        return True
    if "*" in service or "?" in service:
        return True
    return service in DATA_STORE_SERVICES and ("*" in operation or "?" in operation)


def _is_data_store_action(action: str) -> bool:
    return action.lower().partition(":")[0] in DATA_STORE_SERVICES


def _broad_managed_policies(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type == "aws:iam/role:Role":
        arns = _as_list(props.get("managedPolicyArns"))
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
            for p in _as_list(props.get("inlinePolicies"))
            if isinstance(p, Mapping)
        ]
    return [("policy", props.get("policy"))]


def iam_policy_grants_no_wildcards_on_data_stores(
    resource_type: str, props: Mapping[str, Any], name: str = ""
) -> RuleResult:
    """IAM identity policies name S3, DynamoDB and KMS actions and resources one by one.

    Fails an Allow with ``*``, a service wildcard (``s3:*``), a partial wildcard on a data
    store (``s3:Get*``, ``kms:GenerateDataKey*``), ``NotAction``, or a data-store action
    on ``Resource: "*"``; and attaching an AWS-managed policy that does (``AmazonS3FullAccess``,
    ``AmazonS3ReadOnlyAccess``...). KMS *key* policies are resource policies, not checked here:
    their administrator statements legitimately use wildcards.
    """
    label = _label(resource_type, props, name)
    if resource_type not in IAM_POLICY_TYPES | IAM_ATTACHMENT_TYPES:
        return _not_applicable(f"{label} is not an IAM identity policy")
    documents = _iam_documents(resource_type, props)
    broad = _broad_managed_policies(resource_type, props)
    if not documents and not broad and resource_type not in IAM_ATTACHMENT_TYPES:
        return _not_applicable(f"{label} has no inline or AWS-managed identity policy")
    problems = [f"attaches {arn.rsplit('/', 1)[-1]}" for arn in broad]
    for doc_name, document in documents:
        statements = _policy_statements(document)
        if statements is None:
            problems.append(f"{doc_name}: unreadable policy document")
            continue
        for index, statement in enumerate(statements):
            if statement.get("Effect") != "Allow":
                continue
            where = f"{doc_name} statement {statement.get('Sid') or index}"
            if "NotAction" in statement:
                problems.append(f"{where} allows NotAction")
            actions = [str(a) for a in _as_list(statement.get("Action"))]
            wild = [a for a in actions if _wildcard_data_store_action(a)]
            if wild:
                problems.append(f"{where} allows {', '.join(wild)}")
            resources = [str(r) for r in _as_list(statement.get("Resource"))]
            if any(_is_data_store_action(a) for a in actions) and (
                "*" in resources or "NotResource" in statement
            ):
                problems.append(f"{where} allows data-store actions on every resource")
    if problems:
        return _fail(f"{label}: {'; '.join(problems)}")
    return _pass(f"{label} names its data-store actions and resources")


# --- CloudWatch Logs ----------------------------------------------------------------------


def log_group_encrypted_and_retained(
    resource_type: str,
    props: Mapping[str, Any],
    name: str = "",
    minimum_days: int = MIN_LOG_RETENTION_DAYS,
) -> RuleResult:
    """A log group is KMS-encrypted and expires after a set retention of at least a year.

    Retention must be set: never-expiring logs keep personal data (user ids, addresses)
    longer than necessary (DPP2), and less than ``minimum_days`` loses audit evidence.
    """
    label = _label(resource_type, props, name)
    if resource_type != LOG_GROUP:
        return _not_applicable(f"{label} is not a CloudWatch log group")
    problems = []
    if not _is_customer_kms_key_id(props.get("kmsKeyId")):
        problems.append("not KMS-encrypted (kmsKeyId)")
    retention = _positive_number(props.get("retentionInDays"))
    if retention is None:
        problems.append("retention is not set (logs never expire)")
    elif retention < minimum_days:
        problems.append(f"retention {retention:g} days is under {minimum_days}")
    if problems:
        return _fail(f"{label}: {'; '.join(problems)}")
    return _pass(f"{label} is KMS-encrypted and retained {retention:g} days")
