"""The policy pack's bindings: each rule with its severity, controls and remediation.

``BINDINGS`` is the single list of what the pack enforces. Each entry ties one pure rule
from :mod:`infra.policies.rules` to a pulumi-policy enforcement level and severity, the
controls it evidences (ISO 27799:2016 clause, Cap. 486 data protection principle, CIS AWS
Foundations Benchmark v3.0.0 item, where one applies) and remediation text.

Two consumers use the bindings:

- :func:`evaluate_stack` runs every rule over resources captured from the program (the
  mock runtime's ``DeclaredResource`` objects, or anything with ``.type``, ``.name`` and
  ``.inputs``) and returns :class:`Finding` values: the tests and ``hub rollout promote``;
- :func:`pulumi_policies` wraps the bindings as pulumi-policy ``ResourceValidationPolicy``
  and ``StackValidationPolicy`` objects for the CrossGuard entry point (``__main__.py``).

Importing this module starts nothing: only constructing ``PolicyPack`` (in ``__main__``)
starts the analyzer's gRPC server.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi.runtime
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyComplianceFramework,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from infra.policies import rules
from infra.policies.rules import RuleResult, StackResource, Status

PACK_NAME = "hub-hk-health"
CIS_FRAMEWORK = "CIS Amazon Web Services Foundations Benchmark"
CIS_VERSION = "3.0.0"
CONFIG_RESOURCE_TYPE = "pulumi:config"

ResourceRule = Callable[[str, Mapping[str, Any], str], RuleResult]
StackRule = Callable[[Sequence[StackResource]], list[RuleResult]]
ConfigRule = Callable[[Mapping[str, Any]], RuleResult]


@dataclass(frozen=True)
class Controls:
    """What a rule's passing result evidences, by framework."""

    iso27799: tuple[str, ...]
    cap486: tuple[str, ...]
    cis_aws: tuple[str, ...] = ()

    def tags(self) -> list[str]:
        return (
            [f"iso27799:{c.split()[0]}" for c in self.iso27799]
            + [f"cap486:{c.split()[0]}" for c in self.cap486]
            + [f"cis-aws:{c.split()[0]}" for c in self.cis_aws]
        )


@dataclass(frozen=True)
class _Binding(ABC):
    description: str
    enforcement: EnforcementLevel
    severity: Severity
    controls: Controls
    remediation: str

    @property
    @abstractmethod
    def rule_name(self) -> str:
        """The bound rule function's name."""

    @property
    def name(self) -> str:
        """The policy's name in the pack (the rule's name, kebab-case)."""
        return self.rule_name.replace("_", "-")


@dataclass(frozen=True)
class ResourceBinding(_Binding):
    rule: ResourceRule = field(kw_only=True)
    # The types the rule inspects; None: every resource.
    resource_types: frozenset[str] | None = field(default=None, kw_only=True)
    # Also run the rule over the resource's provider (region lives there).
    check_provider: bool = field(default=False, kw_only=True)

    @property
    def rule_name(self) -> str:
        return self.rule.__name__

    def applies_to(self, resource_type: str) -> bool:
        return self.resource_types is None or resource_type in self.resource_types


@dataclass(frozen=True)
class StackBinding(_Binding):
    rule: StackRule = field(kw_only=True)

    @property
    def rule_name(self) -> str:
        return self.rule.__name__


@dataclass(frozen=True)
class ConfigBinding(_Binding):
    rule: ConfigRule = field(kw_only=True)

    @property
    def rule_name(self) -> str:
        return self.rule.__name__


Binding = ResourceBinding | StackBinding | ConfigBinding

MANDATORY = EnforcementLevel.MANDATORY

_RESIDENCY = Controls(
    iso27799=(
        "18.1.1 Identification of applicable legislation",
        "18.1.4 Privacy and protection of personally identifiable information",
    ),
    cap486=(
        "DPP4 Security of personal data",
        "s33 Transfer outside Hong Kong (not yet in operation; residency is our stance)",
    ),
)
_REGION_REMEDIATION = (
    "Set `aws:region: ap-east-1` in the stage file, remove per-resource `region` overrides, "
    "and use KMS keys created in ap-east-1."
)
_S3_TLS = Controls(
    iso27799=(
        "13.2.1 Information transfer policies and procedures",
        "10.1.1 Policy on the use of cryptographic controls",
    ),
    cap486=("DPP4 Security of personal data",),
    cis_aws=("2.1.1 Ensure S3 Bucket Policy is set to deny HTTP requests",),
)
_S3_TLS_REMEDIATION = (
    "Add a bucket policy statement: Effect Deny, Principal *, Action s3:*, Resource the "
    "bucket ARN and ARN/*, Condition Bool aws:SecureTransport false "
    "(infra/components/buckets.py)."
)
_S3_PUBLIC = Controls(
    iso27799=("9.4.1 Information access restriction", "9.1.1 Access control policy"),
    cap486=("DPP4 Security of personal data",),
    cis_aws=(
        "2.1.4 Ensure that S3 Buckets are configured with 'Block public access (bucket settings)'",
    ),
)
_S3_PUBLIC_REMEDIATION = (
    "Declare a BucketPublicAccessBlock for the bucket with blockPublicAcls, "
    "blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true."
)

BINDINGS: tuple[Binding, ...] = (
    ResourceBinding(
        rule=rules.resource_region_is_ap_east_1,
        check_provider=True,
        description="AWS resources, their provider and their KMS keys stay in ap-east-1.",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=_RESIDENCY,
        remediation=_REGION_REMEDIATION,
    ),
    ConfigBinding(
        rule=rules.stack_region_is_ap_east_1,
        description="The stack configuration targets ap-east-1 (aws:region).",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=_RESIDENCY,
        remediation=_REGION_REMEDIATION,
    ),
    ResourceBinding(
        rule=rules.kms_key_rotation_enabled,
        resource_types=frozenset({rules.KMS_KEY}),
        description="Symmetric KMS keys rotate automatically.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=Controls(
            iso27799=("10.1.2 Key management",),
            cap486=("DPP4 Security of personal data",),
            cis_aws=("3.6 Ensure rotation for customer-created symmetric CMKs is enabled",),
        ),
        remediation="Set enable_key_rotation=True on the aws.kms.Key (infra/components/keys.py).",
    ),
    StackBinding(
        rule=rules.every_bucket_encrypted_with_customer_kms_key,
        description="Every S3 bucket defaults to SSE-KMS with a customer-managed key "
        "(the server-access-log bucket may use SSE-S3).",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=Controls(
            iso27799=(
                "10.1.1 Policy on the use of cryptographic controls",
                "10.1.2 Key management",
            ),
            cap486=("DPP4 Security of personal data",),
        ),
        remediation="Declare a BucketServerSideEncryptionConfiguration with sse_algorithm "
        "aws:kms and kms_master_key_id set to one of the program's CMKs; only a "
        "bucket tagged hub:purpose=s3-access-logs may use AES256.",
    ),
    ResourceBinding(
        rule=rules.bucket_public_access_fully_blocked,
        resource_types=frozenset({rules.BUCKET_PUBLIC_ACCESS_BLOCK}),
        description="S3 public access blocks set all four flags.",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=_S3_PUBLIC,
        remediation=_S3_PUBLIC_REMEDIATION,
    ),
    StackBinding(
        rule=rules.every_bucket_has_public_access_block,
        description="Every S3 bucket has a public access block with all four flags.",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=_S3_PUBLIC,
        remediation=_S3_PUBLIC_REMEDIATION,
    ),
    ResourceBinding(
        rule=rules.bucket_policy_denies_insecure_transport,
        resource_types=frozenset({rules.BUCKET_POLICY}),
        description="S3 bucket policies deny requests without TLS.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=_S3_TLS,
        remediation=_S3_TLS_REMEDIATION,
    ),
    StackBinding(
        rule=rules.every_bucket_denies_insecure_transport,
        description="Every S3 bucket has a bucket policy denying requests without TLS.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=_S3_TLS,
        remediation=_S3_TLS_REMEDIATION,
    ),
    ResourceBinding(
        rule=rules.cloudtrail_validated_multi_region_and_kms_encrypted,
        resource_types=frozenset({rules.TRAIL}),
        description="CloudTrail trails are multi-region, validate log files and use KMS.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=Controls(
            iso27799=(
                "12.4.1 Event logging",
                "12.4.2 Protection of log information",
                "12.4.3 Administrator and operator logs",
            ),
            cap486=("DPP4 Security of personal data",),
            cis_aws=(
                "3.1 Ensure CloudTrail is enabled in all regions",
                "3.2 Ensure CloudTrail log file validation is enabled",
                "3.5 Ensure CloudTrail logs are encrypted at rest using KMS CMKs",
            ),
        ),
        remediation="Set is_multi_region_trail, include_global_service_events, "
        "enable_log_file_validation and kms_key_id (the audit CMK) on the "
        "trail (infra/components/audit_trail.py).",
    ),
    ResourceBinding(
        rule=rules.dynamodb_table_encrypted_with_customer_key,
        resource_types=frozenset({rules.TABLE}),
        description="DynamoDB tables are encrypted with a customer-managed KMS key.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=Controls(
            iso27799=(
                "10.1.1 Policy on the use of cryptographic controls",
                "10.1.2 Key management",
            ),
            cap486=("DPP4 Security of personal data",),
        ),
        remediation="Set server_side_encryption=enabled with kms_key_arn set to the records "
        "or audit CMK (infra/components/tables.py).",
    ),
    ResourceBinding(
        rule=rules.dynamodb_table_point_in_time_recovery_enabled,
        resource_types=frozenset({rules.TABLE}),
        description="DynamoDB tables have point-in-time recovery.",
        enforcement=MANDATORY,
        severity=Severity.MEDIUM,
        controls=Controls(
            iso27799=("12.3.1 Information backup",),
            cap486=("DPP4 Security of personal data (accidental loss or erasure)",),
        ),
        remediation="Set point_in_time_recovery enabled=True on the table.",
    ),
    ResourceBinding(
        rule=rules.cognito_user_pool_requires_mfa,
        resource_types=frozenset({rules.USER_POOL}),
        description="Cognito user pools require MFA for every user.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=Controls(
            iso27799=(
                "9.4.2 Secure log-on procedures",
                "9.2.4 Management of secret authentication information of users",
            ),
            cap486=("DPP4 Security of personal data",),
        ),
        remediation="Set mfa_configuration='ON' with software_token_mfa_configuration "
        "enabled (infra/components/identity.py).",
    ),
    ResourceBinding(
        rule=rules.cognito_app_client_srp_only_with_short_tokens,
        resource_types=frozenset({rules.USER_POOL_CLIENT}),
        description="Cognito app clients allow only SRP and refresh sign-in, and their "
        "access tokens live at most 15 minutes.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=Controls(
            iso27799=(
                "9.4.2 Secure log-on procedures",
                "9.2.4 Management of secret authentication information of users",
            ),
            cap486=("DPP4 Security of personal data",),
        ),
        remediation="Set explicit_auth_flows=['ALLOW_USER_SRP_AUTH', "
        "'ALLOW_REFRESH_TOKEN_AUTH'] and access_token_validity<=15 minutes on the "
        "UserPoolClient (infra/components/identity.py).",
    ),
    ResourceBinding(
        rule=rules.api_enforces_tls13_security_policy,
        resource_types=frozenset({rules.REST_API, rules.API_DOMAIN_NAME}),
        description="API Gateway accepts TLS 1.3 only (SecurityPolicy_TLS13_1_3_2025_09, STRICT).",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=Controls(
            iso27799=(
                "14.1.2 Securing application services on public networks",
                "14.1.3 Protecting application services transactions",
                "13.2.1 Information transfer policies and procedures",
            ),
            cap486=("DPP4 Security of personal data",),
        ),
        remediation="Set security_policy='SecurityPolicy_TLS13_1_3_2025_09' and "
        "endpoint_access_mode='STRICT' on the RestApi "
        "(infra/components/sharing_service.py).",
    ),
    ResourceBinding(
        rule=rules.lambda_not_publicly_invocable,
        resource_types=frozenset({rules.LAMBDA_PERMISSION, rules.LAMBDA_FUNCTION_URL}),
        description="Lambda functions cannot be invoked by anyone: permissions name a "
        "principal, and service principals a source ARN.",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=Controls(
            iso27799=(
                "9.1.2 Access to networks and network services",
                "9.4.1 Information access restriction",
            ),
            cap486=("DPP4 Security of personal data",),
        ),
        remediation="Give the lambda.Permission a specific principal and, for an AWS "
        "service principal, the source_arn of the invoking resource; give a function URL "
        "authorization_type AWS_IAM.",
    ),
    ResourceBinding(
        rule=rules.iam_policy_grants_no_wildcards_on_data_stores,
        resource_types=rules.IAM_POLICY_TYPES | rules.IAM_ATTACHMENT_TYPES,
        description="IAM identity policies grant no wildcard actions on S3, DynamoDB or KMS, "
        "nor data-store actions on every resource.",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=Controls(
            iso27799=(
                "9.2.3 Management of privileged access rights",
                "9.4.1 Information access restriction",
            ),
            cap486=("DPP4 Security of personal data",),
            cis_aws=(
                '1.16 Ensure IAM policies that allow full "*:*" administrative '
                "privileges are not attached",
            ),
        ),
        remediation="List each S3/DynamoDB/KMS action the service calls and the ARNs it "
        "calls them on (infra/components/sharing_service.py, identity.py); attach no "
        "AWS-managed full-access or read-only policies.",
    ),
    ResourceBinding(
        rule=rules.log_group_encrypted_and_retained,
        resource_types=frozenset({rules.LOG_GROUP}),
        description="CloudWatch log groups are KMS-encrypted and retained a set time "
        f"(at least {rules.MIN_LOG_RETENTION_DAYS} days, never forever).",
        enforcement=MANDATORY,
        severity=Severity.MEDIUM,
        controls=Controls(
            iso27799=("12.4.1 Event logging", "12.4.2 Protection of log information"),
            cap486=("DPP4 Security of personal data", "DPP2 Accuracy and duration of retention"),
        ),
        remediation="Set kms_key_id (the audit CMK) and retention_in_days (>= 365) on the "
        "log group; declare Lambda log groups explicitly so they are not "
        "auto-created unencrypted and never-expiring.",
    ),
)


# --- evaluation over captured resources ---------------------------------------------------


class DeclaredResourceLike(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def inputs(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one resource, with what the pack binds to that rule."""

    policy: str
    status: Status
    message: str
    resource_type: str
    resource_name: str
    enforcement: EnforcementLevel
    severity: Severity
    controls: Controls
    remediation: str

    @property
    def violation(self) -> bool:
        return self.status is Status.FAIL

    @property
    def blocking(self) -> bool:
        """A violation of a mandatory policy: the deployment must not proceed."""
        return self.violation and self.enforcement is EnforcementLevel.MANDATORY


def _finding(
    binding: Binding, result: RuleResult, resource_type: str, resource_name: str
) -> Finding:
    return Finding(
        policy=binding.name,
        status=result.status,
        message=result.message,
        resource_type=resource_type,
        resource_name=resource_name,
        enforcement=binding.enforcement,
        severity=binding.severity,
        controls=binding.controls,
        remediation=binding.remediation,
    )


def evaluate_stack(
    resources: Iterable[DeclaredResourceLike], config: Mapping[str, Any]
) -> list[Finding]:
    """Run every bound rule over a stack's declared resources and its configuration.

    Args:
        resources: what the program declared (``ProgramRun.resources``); component
            resources carry no inputs and are only seen by the region rule.
        config: the flat stack configuration (``aws:region``, ``hub:...``).

    Returns:
        One finding per rule and resource it inspects (pass, fail or not applicable).
    """
    view = [StackResource(r.type, r.name, r.inputs) for r in resources]
    types_by_name = {r.name: r.type for r in view}
    findings: list[Finding] = []
    for binding in BINDINGS:
        if isinstance(binding, ResourceBinding):
            for r in view:
                if binding.applies_to(r.type):
                    result = binding.rule(r.type, r.props, r.name)
                    findings.append(_finding(binding, result, r.type, r.name))
        elif isinstance(binding, StackBinding):
            for result in binding.rule(view):
                findings.append(
                    _finding(
                        binding, result, types_by_name.get(result.resource, ""), result.resource
                    )
                )
        else:
            findings.append(
                _finding(binding, binding.rule(config), CONFIG_RESOURCE_TYPE, "aws:region")
            )
    return findings


def blocking_findings(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocking]


# --- pulumi-policy (CrossGuard) wrappers --------------------------------------------------


def _framework(controls: Controls) -> PolicyComplianceFramework | None:
    if not controls.cis_aws:
        return None
    return PolicyComplianceFramework(
        name=CIS_FRAMEWORK,
        version=CIS_VERSION,
        reference=", ".join(c.split()[0] for c in controls.cis_aws),
    )


def _policy_metadata(binding: Binding) -> dict[str, Any]:
    return {
        "name": binding.name,
        "description": binding.description,
        "enforcement_level": binding.enforcement,
        "severity": binding.severity,
        "framework": _framework(binding.controls),
        "tags": binding.controls.tags(),
        "remediation_steps": binding.remediation,
    }


def _resource_validation(
    binding: ResourceBinding,
) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not binding.applies_to(args.resource_type):
            return
        results = [binding.rule(args.resource_type, args.props, args.name)]
        provider = args.provider
        if binding.check_provider and provider is not None:
            results.append(binding.rule(provider.resource_type, provider.props, provider.name))
        failures = [r for r in results if r.failed]
        for failure in failures:
            report_violation(failure.message, None)
        if not failures and all(r.status is Status.NOT_APPLICABLE for r in results):
            args.not_applicable(results[0].message)

    return validate


class _Overlay(Mapping[str, Any]):
    """A resource's properties with some keys replaced, leaving unknowns untouched."""

    def __init__(self, base: Mapping[str, Any], overrides: Mapping[str, Any]):
        self._base = base
        self._overrides = overrides

    def __getitem__(self, key: str) -> Any:
        if key in self._overrides:
            return self._overrides[key]
        return self._base[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._overrides
        yield from (k for k in self._base if k not in self._overrides)

    def __len__(self) -> int:
        return len(set(self._base) | set(self._overrides))


def _known(props: Mapping[str, Any], key: str) -> Any:
    # Iterating keys never trips pulumi-policy's unknown-value proxy; reading a value can.
    if key not in list(props):
        return None
    try:
        return props[key]
    except UnknownValueError:
        return None


def stack_view(resources: Sequence[PolicyResource]) -> list[StackResource]:
    """The stack as stack rules see it, with S3 bucket references resolved.

    During a preview a new bucket's id is unknown, so a BucketPolicy's ``bucket`` input
    is too; the engine still records which bucket it came from, so the reference is
    resolved through the property dependency. A bucket without a known name is keyed by
    its URN, consistently on both sides.
    """
    bucket_keys: dict[str, str] = {}
    for r in resources:
        if r.resource_type == rules.BUCKET:
            bucket_keys[r.urn] = str(_known(r.props, "bucket") or r.urn)
    view = []
    for r in resources:
        props: Mapping[str, Any] = r.props
        if r.resource_type == rules.BUCKET:
            props = _Overlay(props, {"bucket": bucket_keys[r.urn]})
        elif "bucket" in list(props) and _known(props, "bucket") is None:
            sources = [
                d.urn for d in r.property_dependencies.get("bucket", []) if d.urn in bucket_keys
            ]
            if len(sources) == 1:
                props = _Overlay(props, {"bucket": bucket_keys[sources[0]]})
        view.append(StackResource(r.resource_type, r.name, props))
    return view


def _stack_validation(
    binding: StackBinding,
) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        urns = {r.name: r.urn for r in args.resources}
        results = binding.rule(stack_view(args.resources))
        for result in results:
            if result.failed:
                report_violation(result.message, urns.get(result.resource))
        if not results:
            args.not_applicable("the stack declares nothing this policy inspects")

    return validate


def _config_validation(
    binding: ConfigBinding,
) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        # The CLI hands the analyzer the stack's configuration through PULUMI_CONFIG.
        config = pulumi.runtime.get_config_env()
        if not config:
            args.not_applicable(
                "the stack configuration was not passed to the policy pack; "
                "the provider's region is checked per resource instead"
            )
        result = binding.rule(config)
        if result.failed:
            report_violation(result.message, None)

    return validate


def pulumi_policies(bindings: Sequence[Binding] = BINDINGS) -> list[Policy]:
    """The bindings as pulumi-policy policies. Constructing them starts nothing."""
    policies: list[Policy] = []
    for binding in bindings:
        metadata = _policy_metadata(binding)
        if isinstance(binding, ResourceBinding):
            policies.append(
                ResourceValidationPolicy(validate=_resource_validation(binding), **metadata)
            )
        elif isinstance(binding, StackBinding):
            policies.append(StackValidationPolicy(validate=_stack_validation(binding), **metadata))
        else:
            policies.append(StackValidationPolicy(validate=_config_validation(binding), **metadata))
    return policies
