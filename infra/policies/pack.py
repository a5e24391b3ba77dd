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

from infra.controls import catalogue
from infra.controls.catalogue import Control, Framework, Requirement, requirements_of
from infra.controls.result import Result, Status
from infra.policies import rules
from infra.policies.rules import StackResource

PACK_NAME = "hub-hk-health"
CIS_FRAMEWORK = "CIS Amazon Web Services Foundations Benchmark"
CIS_VERSION = "3.0.0"
CONFIG_RESOURCE_TYPE = "pulumi:config"

ResourceRule = Callable[[str, Mapping[str, Any], str], Result]
StackRule = Callable[[Sequence[StackResource]], list[Result]]
ConfigRule = Callable[[Mapping[str, Any]], Result]


@dataclass(frozen=True)
class _Binding(ABC):
    description: str
    enforcement: EnforcementLevel
    severity: Severity
    controls: tuple[Control, ...]
    remediation: str

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        """What a passing result evidences, by framework (from the catalogue)."""
        return requirements_of(self.controls)

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

_REGION_REMEDIATION = (
    "Set `aws:region: ap-east-1` in the stage file, remove per-resource `region` overrides, "
    "and use KMS keys created in ap-east-1."
)
_S3_TLS_REMEDIATION = (
    "Add a bucket policy statement: Effect Deny, Principal *, Action s3:*, Resource the "
    "bucket ARN and ARN/*, Condition Bool aws:SecureTransport false "
    "(infra/components/buckets.py)."
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
        controls=(catalogue.DATA_RESIDENCY,),
        remediation=_REGION_REMEDIATION,
    ),
    ConfigBinding(
        rule=rules.stack_region_is_ap_east_1,
        description="The stack configuration targets ap-east-1 (aws:region).",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=(catalogue.DATA_RESIDENCY,),
        remediation=_REGION_REMEDIATION,
    ),
    ResourceBinding(
        rule=rules.kms_key_rotation_enabled,
        resource_types=frozenset({rules.KMS_KEY}),
        description="Symmetric KMS keys rotate automatically, at least yearly.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.KEY_ROTATION,),
        remediation="Set enable_key_rotation=True, and rotation_period_in_days at most 365 if "
        "set, on the aws.kms.Key (infra/components/keys.py).",
    ),
    StackBinding(
        rule=rules.every_bucket_encrypted_with_customer_kms_key,
        description="Every S3 bucket defaults to SSE-KMS with a customer-managed key "
        "(the server-access-log bucket and the web client's static site may use SSE-S3).",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.BUCKET_ENCRYPTION,),
        remediation="Declare a BucketServerSideEncryptionConfiguration with sse_algorithm "
        "aws:kms and kms_master_key_id set to one of the program's CMKs; only a "
        "bucket tagged hub:purpose=s3-access-logs or web-client may use AES256.",
    ),
    ResourceBinding(
        rule=rules.bucket_public_access_fully_blocked,
        resource_types=frozenset({rules.BUCKET_PUBLIC_ACCESS_BLOCK}),
        description="S3 public access blocks set all four flags.",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=(catalogue.BUCKET_PUBLIC_ACCESS_BLOCKED,),
        remediation=_S3_PUBLIC_REMEDIATION,
    ),
    StackBinding(
        rule=rules.every_bucket_has_public_access_block,
        description="Every S3 bucket has a public access block with all four flags.",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=(catalogue.BUCKET_PUBLIC_ACCESS_BLOCKED,),
        remediation=_S3_PUBLIC_REMEDIATION,
    ),
    ResourceBinding(
        rule=rules.bucket_policy_denies_insecure_transport,
        resource_types=frozenset({rules.BUCKET_POLICY}),
        description="S3 bucket policies deny requests without TLS.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.BUCKET_TLS_ONLY,),
        remediation=_S3_TLS_REMEDIATION,
    ),
    StackBinding(
        rule=rules.every_bucket_denies_insecure_transport,
        description="Every S3 bucket has a bucket policy denying requests without TLS.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.BUCKET_TLS_ONLY,),
        remediation=_S3_TLS_REMEDIATION,
    ),
    ResourceBinding(
        rule=rules.cloudtrail_validated_multi_region_and_kms_encrypted,
        resource_types=frozenset({rules.TRAIL}),
        description="CloudTrail trails are multi-region, validate log files and use KMS.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(
            catalogue.TRAIL_LOGGING,
            catalogue.TRAIL_ALL_REGIONS,
            catalogue.TRAIL_LOG_FILE_VALIDATION,
            catalogue.TRAIL_ENCRYPTION,
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
        controls=(catalogue.TABLE_ENCRYPTION,),
        remediation="Set server_side_encryption=enabled with kms_key_arn set to the records "
        "or audit CMK (infra/components/tables.py).",
    ),
    ResourceBinding(
        rule=rules.dynamodb_table_point_in_time_recovery_enabled,
        resource_types=frozenset({rules.TABLE}),
        description="DynamoDB tables have point-in-time recovery.",
        enforcement=MANDATORY,
        severity=Severity.MEDIUM,
        controls=(catalogue.TABLE_POINT_IN_TIME_RECOVERY,),
        remediation="Set point_in_time_recovery enabled=True on the table.",
    ),
    ResourceBinding(
        rule=rules.cognito_user_pool_requires_mfa,
        resource_types=frozenset({rules.USER_POOL}),
        description="Cognito user pools require MFA for every user.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.MFA_REQUIRED,),
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
        controls=(catalogue.APP_CLIENT_SIGN_IN,),
        remediation="Set explicit_auth_flows=['ALLOW_USER_SRP_AUTH', "
        "'ALLOW_REFRESH_TOKEN_AUTH'] and access_token_validity<=15 minutes on the "
        "UserPoolClient (infra/components/identity.py).",
    ),
    ResourceBinding(
        rule=rules.cognito_client_cannot_write_granting_attributes,
        resource_types=frozenset({rules.USER_POOL_CLIENT}),
        description="No Cognito app client lets its users write an attribute that grants "
        "anything (registration number, institution, specialty, roles).",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=(catalogue.GRANTING_ATTRIBUTES_NOT_USER_WRITABLE,),
        remediation="Declare write_attributes (contact details only) on a client whose "
        "tokens may update attributes; a federated client gets no password flow and no "
        "aws.cognito.signin.user.admin scope (infra/components/identity.py).",
    ),
    StackBinding(
        rule=rules.cognito_providers_release_placement_claims,
        description="Each identity provider maps what placing its users needs, through a "
        "client allowed to write it.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.PROVIDERS_RELEASE_PLACEMENT,),
        remediation="Map custom:idp_reg_no (and custom:hospital_code, custom:idp_groups "
        "where the provider's placement uses them) from the provider's claims, and list "
        "each mapped attribute in the federated client's write_attributes "
        "(app/identity/federation.py, infra/components/identity.py).",
    ),
    ResourceBinding(
        rule=rules.api_enforces_tls13_security_policy,
        resource_types=frozenset({rules.REST_API, rules.API_DOMAIN_NAME}),
        description="API Gateway accepts TLS 1.3 only (a SecurityPolicy_TLS13_1_3_* policy, "
        "STRICT).",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.API_TLS13_ONLY,),
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
        controls=(catalogue.FUNCTION_NOT_PUBLIC,),
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
        controls=(catalogue.LEAST_PRIVILEGE,),
        remediation="List each S3/DynamoDB/KMS action the service calls and the ARNs it "
        "calls them on (infra/components/sharing_service.py, identity.py); attach no "
        "AWS-managed full-access or read-only policies.",
    ),
    StackBinding(
        rule=rules.backup_vault_locked_and_plan_covers_data_stores,
        description="An AWS Backup vault under a customer-managed key with a vault lock, "
        "and a plan whose rules keep each data class its documented retention and whose "
        "selections name every table, database instance and the shard, audit and "
        "messaging media buckets.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.BACKUP_PLAN_COVERAGE,),
        remediation="Declare infra/components/backup.py's Backups in the program with every "
        "table ARN and the shard and audit bucket ARNs, and cover messaging's database and "
        "media bucket (Backups.cover; docs/disaster-recovery.md).",
    ),
    StackBinding(
        rule=rules.every_audit_bucket_has_a_retention_lifecycle,
        description="The audit bucket's lifecycle expires objects only after the Object "
        "Lock retention, expires noncurrent versions and aborts abandoned uploads.",
        enforcement=MANDATORY,
        severity=Severity.MEDIUM,
        controls=(catalogue.AUDIT_BUCKET_LIFECYCLE,),
        remediation="Declare a BucketLifecycleConfiguration on the audit bucket with "
        "expiration after retention_years * 365 days (infra/components/audit_trail.py).",
    ),
    StackBinding(
        rule=rules.every_api_stage_has_web_acl,
        description="Every API stage is associated with a WAF web ACL that has a per-IP "
        "rate-based rule, in every phase.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.API_WAF,),
        remediation="Set hub:features.waf to true in the stage file (required in every "
        "phase); the sharing service then declares the web ACL and its association.",
    ),
    ResourceBinding(
        rule=rules.cloudtrail_records_insights_and_function_events,
        resource_types=frozenset({rules.TRAIL}),
        description="The trail records CloudTrail Insights (API call and error rates) and "
        "Lambda invocation data events.",
        enforcement=MANDATORY,
        severity=Severity.MEDIUM,
        controls=(catalogue.TRAIL_INSIGHTS, catalogue.TRAIL_FUNCTION_EVENTS),
        remediation="Set insight_selectors (ApiCallRateInsight, ApiErrorRateInsight) and an "
        "advanced event selector for AWS::Lambda::Function data events on the trail "
        "(infra/components/audit_trail.py).",
    ),
    StackBinding(
        rule=rules.every_trail_has_cis_metric_alarms,
        description="The trail's log group has a metric filter and a notifying alarm for "
        "every CIS AWS Foundations section 4 event class.",
        enforcement=MANDATORY,
        severity=Severity.MEDIUM,
        controls=(catalogue.CIS_METRIC_ALARMS,),
        remediation="Add the missing item to CIS_ALARMS in infra/components/monitoring.py "
        "(filter pattern from the benchmark; the alarm notifies the security topic).",
    ),
    ResourceBinding(
        rule=rules.role_trust_is_bound_to_source,
        resource_types=frozenset({rules.IAM_ROLE}),
        description="Roles an AWS service assumes carry aws:SourceAccount or aws:SourceArn "
        "in their trust policy (no cross-service confused deputy).",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.ROLE_TRUST_BOUND_TO_SOURCE,),
        remediation="Build the trust policy with infra.components.documents."
        "assume_role_policy(service, source_account=..., source_arn=...).",
    ),
    ResourceBinding(
        rule=rules.log_group_encrypted_and_retained,
        resource_types=frozenset({rules.LOG_GROUP}),
        description="CloudWatch log groups are KMS-encrypted and retained a set time "
        f"(at least {rules.MIN_LOG_RETENTION_DAYS} days, never forever).",
        enforcement=MANDATORY,
        severity=Severity.MEDIUM,
        controls=(catalogue.LOG_GROUP_PROTECTION,),
        remediation="Set kms_key_id (the audit CMK) and retention_in_days (>= 365) on the "
        "log group; declare Lambda log groups explicitly so they are not "
        "auto-created unencrypted and never-expiring.",
    ),
    ResourceBinding(
        rule=rules.database_encrypted_with_customer_kms_key,
        resource_types=frozenset({rules.DB_INSTANCE}),
        description="The homeserver's database encrypts its storage under a customer-managed "
        "KMS key.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.DATABASE_ENCRYPTION,),
        remediation="Set storage_encrypted=True and kms_key_id to the messaging CMK on the "
        "aws.rds.Instance (infra/components/messaging.py); an unencrypted instance is "
        "re-created from an encrypted snapshot copy.",
    ),
    ResourceBinding(
        rule=rules.database_not_publicly_accessible,
        resource_types=frozenset({rules.DB_INSTANCE}),
        description="The homeserver's database is not publicly accessible.",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=(catalogue.DATABASE_NOT_PUBLIC,),
        remediation="Set publicly_accessible=False on the aws.rds.Instance and keep it in "
        "the private subnets (infra/components/messaging.py).",
    ),
    StackBinding(
        rule=rules.database_requires_tls,
        description="The homeserver's database refuses connections without TLS "
        "(rds.force_ssl=1 in its declared parameter group).",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.DATABASE_TLS_ONLY,),
        remediation="Declare an aws.rds.ParameterGroup with rds.force_ssl=1 and name it in "
        "the instance's parameter_group_name (infra/components/messaging.py).",
    ),
    ResourceBinding(
        rule=rules.load_balancer_listeners_use_tls13,
        resource_types=frozenset({rules.LB_LISTENER}),
        description="Load balancer listeners speak HTTPS with a TLS 1.3-only security policy.",
        enforcement=MANDATORY,
        severity=Severity.HIGH,
        controls=(catalogue.LOAD_BALANCER_TLS13_ONLY,),
        remediation="Set protocol='HTTPS' and ssl_policy='ELBSecurityPolicy-TLS13-1-3-2021-06' "
        "on the aws.lb.Listener (infra/components/messaging.py).",
    ),
    ResourceBinding(
        rule=rules.homeserver_federation_closed,
        resource_types=frozenset({rules.TASK_DEFINITION}),
        description="The homeserver's declared configuration closes federation and registration.",
        enforcement=MANDATORY,
        severity=Severity.CRITICAL,
        controls=(catalogue.HOMESERVER_FEDERATION_CLOSED,),
        remediation="Generate HUB_HOMESERVER_CONFIG with "
        "app.messaging.homeserver.deployed_homeserver_config (no federation listener, "
        "federation_domain_whitelist: [], no trusted key servers, enable_registration: "
        "false); never hand-edit it.",
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
    controls: tuple[Control, ...]
    remediation: str

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return requirements_of(self.controls)

    @property
    def violation(self) -> bool:
        return self.status is Status.FAIL

    @property
    def blocking(self) -> bool:
        """A violation of a mandatory policy: the deployment must not proceed."""
        return self.violation and self.enforcement is EnforcementLevel.MANDATORY


def _finding(binding: Binding, result: Result, resource_type: str, resource_name: str) -> Finding:
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


def _framework(requirements: Sequence[Requirement]) -> PolicyComplianceFramework | None:
    cis = [r.ref for r in requirements if r.framework is Framework.CIS_AWS]
    if not cis:
        return None
    return PolicyComplianceFramework(
        name=CIS_FRAMEWORK, version=CIS_VERSION, reference=", ".join(cis)
    )


def _policy_metadata(binding: Binding) -> dict[str, Any]:
    return {
        "name": binding.name,
        "description": binding.description,
        "enforcement_level": binding.enforcement,
        "severity": binding.severity,
        "framework": _framework(binding.requirements),
        "tags": [r.tag for r in binding.requirements],
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
