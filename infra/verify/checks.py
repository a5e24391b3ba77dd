"""The post-deploy checks: id, title, the controls each evidences, remediation.

Rules (``infra.verify.rules``) decide pass or fail and do not know this list; this list
binds each check id to the controls a passing result is evidence of, all taken from the
one catalogue (:mod:`infra.controls.catalogue`) the policy pack cites too. Where the pack
checks the same state before deployment, both name the same control.

Guarantees: every check id the verifier emits is listed here once (tests hold it to
that), and every entry's controls name at least one ISO 27799 clause and one Cap. 486
principle.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.controls import catalogue
from infra.controls.catalogue import Control, Requirement, requirements_of


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    controls: tuple[Control, ...]
    remediation: str

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        """What a passing result evidences, by framework."""
        return requirements_of(self.controls)


CHECK_SPECS: tuple[CheckSpec, ...] = (
    # KMS keys
    CheckSpec(
        "keys.enabled",
        "KMS key is enabled",
        (catalogue.KEY_ENABLED,),
        "Enable the key; a disabled key makes every record it protects unreadable.",
    ),
    CheckSpec(
        "keys.rotation_enabled",
        "Symmetric KMS key rotates automatically",
        (catalogue.KEY_ROTATION,),
        "aws kms enable-key-rotation --key-id <key> --rotation-period-in-days 365",
    ),
    CheckSpec(
        "keys.spec_and_usage",
        "KMS key spec and usage are as declared",
        (catalogue.KEY_SPEC,),
        "Replace the key with one of the declared spec and usage and re-point its alias.",
    ),
    CheckSpec(
        "keys.policy_root_admin_only",
        "Key policy gives the account root administration only, no cryptographic use",
        (catalogue.KEY_POLICY_ROOT_ADMIN_ONLY,),
        "Remove cryptographic actions (kms:Decrypt, kms:GenerateDataKey*, kms:Sign...) "
        "and kms:* from the root statement; grant them to named roles with conditions.",
    ),
    # S3 buckets
    CheckSpec(
        "buckets.default_encryption",
        "Bucket default encryption uses the right key",
        (catalogue.BUCKET_ENCRYPTION,),
        "Set default encryption to SSE-KMS with the stack's CMK (SSE-S3 on the "
        "access-log bucket only).",
    ),
    CheckSpec(
        "buckets.versioning",
        "Bucket versioning is enabled",
        (catalogue.BUCKET_VERSIONING,),
        "aws s3api put-bucket-versioning --versioning-configuration Status=Enabled",
    ),
    CheckSpec(
        "buckets.public_access_block",
        "All four public-access-block flags are on",
        (catalogue.BUCKET_PUBLIC_ACCESS_BLOCKED,),
        "aws s3api put-public-access-block with all four flags true.",
    ),
    CheckSpec(
        "buckets.ownership_enforced",
        "Object ownership is BucketOwnerEnforced (no ACLs)",
        (catalogue.BUCKET_OWNER_ENFORCED,),
        "aws s3api put-bucket-ownership-controls ObjectOwnership=BucketOwnerEnforced",
    ),
    CheckSpec(
        "buckets.denies_insecure_transport",
        "Bucket policy denies requests without TLS",
        (catalogue.BUCKET_TLS_ONLY,),
        "Add a Deny statement for s3:* on the bucket and its objects when "
        "aws:SecureTransport is false.",
    ),
    CheckSpec(
        "buckets.requires_sse_kms_puts",
        "Shard bucket policy refuses puts that are not SSE-KMS with the records key",
        (catalogue.BUCKET_SSE_KMS_PUTS,),
        "Add Deny statements for s3:PutObject when s3:x-amz-server-side-encryption is "
        "not aws:kms, or the KMS key id is not the records key.",
    ),
    CheckSpec(
        "buckets.access_logging",
        "Server access logging goes to the access-log bucket",
        (catalogue.BUCKET_ACCESS_LOGGING,),
        "aws s3api put-bucket-logging with the stack's access-log bucket as target.",
    ),
    # the trail bucket
    CheckSpec(
        "trail.bucket_object_lock",
        "Trail bucket Object Lock is COMPLIANCE mode with the configured retention",
        (catalogue.AUDIT_BUCKET_OBJECT_LOCK,),
        "Object Lock can only be set at bucket creation; recreate the bucket with "
        "COMPLIANCE default retention of the configured years.",
    ),
    # CloudTrail
    CheckSpec(
        "trail.logging",
        "CloudTrail trail is logging",
        (catalogue.TRAIL_LOGGING,),
        "aws cloudtrail start-logging --name <trail>",
    ),
    CheckSpec(
        "trail.multi_region",
        "Trail is multi-region and includes global service events",
        (catalogue.TRAIL_ALL_REGIONS,),
        "aws cloudtrail update-trail --is-multi-region-trail --include-global-service-events",
    ),
    CheckSpec(
        "trail.function_events",
        "Trail records every invocation of the function (Lambda data events)",
        (catalogue.TRAIL_FUNCTION_EVENTS,),
        "Add an advanced event selector for AWS::Lambda::Function data events on the "
        "stack's function ARNs (eventCategory Data, no readOnly filter).",
    ),
    CheckSpec(
        "trail.insights",
        "Trail records CloudTrail Insights (API call and error rates)",
        (catalogue.TRAIL_INSIGHTS,),
        "aws cloudtrail put-insight-selectors --insight-selectors "
        "InsightType=ApiCallRateInsight InsightType=ApiErrorRateInsight",
    ),
    CheckSpec(
        "trail.management_events",
        "Trail records all management events, reads and writes",
        (catalogue.TRAIL_MANAGEMENT_EVENTS,),
        "Add an advanced event selector with eventCategory Management and no readOnly filter.",
    ),
    CheckSpec(
        "trail.log_file_validation",
        "Trail log-file validation is enabled",
        (catalogue.TRAIL_LOG_FILE_VALIDATION,),
        "aws cloudtrail update-trail --enable-log-file-validation",
    ),
    CheckSpec(
        "trail.kms_encrypted",
        "Trail logs are encrypted with the audit CMK",
        (catalogue.TRAIL_ENCRYPTION,),
        "aws cloudtrail update-trail --kms-key-id <audit key ARN>",
    ),
    CheckSpec(
        "trail.data_event_selectors",
        "Trail records data events (reads and writes) on the data store",
        (catalogue.TRAIL_DATA_EVENTS,),
        "Add an advanced event selector for the data store's ARN (eventCategory Data, "
        "no readOnly filter).",
    ),
    CheckSpec(
        "buckets.audit_lifecycle",
        "The audit bucket's lifecycle expires objects only after the audit retention",
        (catalogue.AUDIT_BUCKET_LIFECYCLE,),
        "aws s3api put-bucket-lifecycle-configuration on the audit bucket: expiration after "
        "auditRetentionYears * 365 days, noncurrent expiration, abort incomplete uploads.",
    ),
    CheckSpec(
        "backup.plan_coverage",
        "A locked backup vault under a customer key, and a plan backing up every table, "
        "the record and audit buckets and messaging's database and media bucket for their "
        "documented retention",
        (catalogue.BACKUP_PLAN_COVERAGE,),
        "Deploy infra/components/backup.py (vault under its CMK, vault lock, plan, "
        "selection of every table and the shard and audit buckets, and Backups.cover for "
        "messaging's database and media bucket).",
    ),
    # DynamoDB
    CheckSpec(
        "dynamodb.customer_key_encryption",
        "Table is encrypted with the stack's CMK",
        (catalogue.TABLE_ENCRYPTION,),
        "Update the table's SSE specification to KMS with the declared CMK.",
    ),
    CheckSpec(
        "dynamodb.pitr",
        "Table has point-in-time recovery",
        (catalogue.TABLE_POINT_IN_TIME_RECOVERY,),
        "aws dynamodb update-continuous-backups --point-in-time-recovery-specification "
        "PointInTimeRecoveryEnabled=true",
    ),
    CheckSpec(
        "dynamodb.deletion_protection",
        "Table has deletion protection",
        (catalogue.TABLE_DELETION_PROTECTION,),
        "aws dynamodb update-table --deletion-protection-enabled",
    ),
    # Cognito
    CheckSpec(
        "cognito.mfa_on",
        "User pool requires MFA",
        (catalogue.MFA_REQUIRED,),
        "aws cognito-idp set-user-pool-mfa-config --mfa-configuration ON with TOTP enabled.",
    ),
    CheckSpec(
        "cognito.password_policy",
        "User pool password policy meets the baseline",
        (catalogue.PASSWORD_POLICY,),
        "Set minimum length 14, all four character classes, temporary passwords valid one day.",
    ),
    CheckSpec(
        "cognito.custom_attributes",
        "User pool carries the registration attributes",
        (catalogue.REGISTRATION_ATTRIBUTES,),
        "Custom attributes can only be added, never removed: add the missing ones; "
        "recreate the pool if mchk_reg_no is mutable.",
    ),
    CheckSpec(
        "cognito.role_groups",
        "User pool has exactly the platform's role groups",
        (catalogue.COGNITO_ROLE_GROUPS,),
        "Create the missing groups; delete groups the access model does not know.",
    ),
    CheckSpec(
        "cognito.federation",
        "Federated identity providers are the phase's, and only those",
        (catalogue.FEDERATION,),
        "Add the providers the stage lists; remove the others (none in phase 1).",
    ),
    CheckSpec(
        "cognito.client_write_attributes",
        "No app client lets its users write an attribute that grants anything",
        (catalogue.GRANTING_ATTRIBUTES_NOT_USER_WRITABLE,),
        "Declare the native client's write attributes (contact details only); give the "
        "federated client no password flow and no aws.cognito.signin.user.admin scope.",
    ),
    CheckSpec(
        "cognito.intake_channel",
        "The intake scope is declared and held only by client-credentials intake clients",
        (catalogue.INTAKE_CLIENT_CREDENTIALS_ONLY,),
        "Declare the hub-intake resource server with records.write; give each clinic "
        "system's client a secret, the client_credentials flow and that scope only; remove "
        "the scope from every other client.",
    ),
    CheckSpec(
        "cognito.providers_release_placement_claims",
        "Each identity provider releases what placing its users needs",
        (catalogue.PROVIDERS_RELEASE_PLACEMENT,),
        "Map custom:idp_reg_no (and custom:hospital_code, custom:idp_groups where the "
        "provider's placement uses them) from the provider's claims.",
    ),
    CheckSpec(
        "cognito.triggers_configured",
        "Sign-up is checked against the register and tokens get claims by this stack's triggers",
        (catalogue.REGISTRATION_TRIGGERS,),
        "Set the pool's pre sign-up and pre token generation (V2_0) triggers to the "
        "stack's functions.",
    ),
    CheckSpec(
        "cognito.threat_protection",
        "User pool threat protection is enforced",
        (catalogue.THREAT_PROTECTION,),
        "Set UserPoolAddOns AdvancedSecurityMode=ENFORCED (Plus tier).",
    ),
    # API Gateway
    CheckSpec(
        "api.tls_policy",
        "API security policy admits TLS 1.3 only",
        (catalogue.API_TLS13_ONLY,),
        "Set the REST API's securityPolicy to SecurityPolicy_TLS13_1_3_2025_09.",
    ),
    CheckSpec(
        "api.authorizer_on_methods",
        "Every method except GET /health and the web client's static files (GET /web, "
        "/web/{asset+}, from S3) needs a Cognito access token",
        (catalogue.API_AUTHORIZER,),
        "Set the method's authorization to COGNITO_USER_POOLS with the stack's "
        "authorizer, then redeploy the stage.",
    ),
    CheckSpec(
        "api.throttling",
        "Stage throttles at the configured rate and burst",
        (catalogue.API_THROTTLING,),
        "Set the stage's */* method settings to the stage file's capacity values.",
    ),
    CheckSpec(
        "api.no_data_trace",
        "Stage never logs request or response bodies",
        (catalogue.API_NO_DATA_TRACE,),
        "Set dataTraceEnabled=false on every method setting of the stage.",
    ),
    CheckSpec(
        "api.waf_attached",
        "A WAF web ACL with a rate rule guards the stage",
        (catalogue.API_WAF,),
        "Associate the stack's web ACL with the API stage.",
    ),
    # Lambda
    CheckSpec(
        "lambda.role_least_privilege",
        "Function role has no wildcard data-store actions and reaches only this stack's resources",
        (catalogue.LEAST_PRIVILEGE,),
        "Replace wildcard actions by the operations used and scope resources to the stack's ARNs.",
    ),
    CheckSpec(
        "lambda.role_trust_bound_to_source",
        "Function role's trust policy binds the Lambda service to this account",
        (catalogue.ROLE_TRUST_BOUND_TO_SOURCE,),
        "aws iam update-assume-role-policy with a StringEquals aws:SourceAccount (or "
        "aws:SourceArn) condition on the service statement.",
    ),
    CheckSpec(
        "lambda.no_public_policy",
        "Function resource policy is not public",
        (catalogue.FUNCTION_NOT_PUBLIC,),
        "Remove the statement, or give it a named principal (a service principal bound to "
        "the caller with a source-ARN condition).",
    ),
    # CloudWatch Logs
    CheckSpec(
        "logs.encrypted_retained",
        "Log group is encrypted with the audit CMK and retained",
        (catalogue.LOG_GROUP_PROTECTION,),
        "aws logs associate-kms-key and put-retention-policy with the declared values.",
    ),
    # CloudWatch metric filters and alarms
    CheckSpec(
        "monitoring.cis_metric_alarms",
        "Every CIS section 4 event class has a metric filter on the trail's log group and "
        "an alarm with an action",
        (catalogue.CIS_METRIC_ALARMS,),
        "aws logs put-metric-filter on the trail's log group and aws cloudwatch "
        "put-metric-alarm notifying the security topic, per infra/components/monitoring.py.",
    ),
    # the audit ledger (app/ledger): the same verification as `hub audit verify --live`
    CheckSpec(
        "ledger.integrity",
        "Audit ledger entries verify against the signed tree heads in the Object Lock bucket",
        (catalogue.AUDIT_LEDGER_INTEGRITY,),
        "Treat as a security incident: export the ledger (hub audit export), find who "
        "wrote the table from CloudTrail's data events, restore the entries from "
        "point-in-time recovery before the first bad index, and verify again.",
    ),
    # Messaging (infra/components/messaging.py)
    CheckSpec(
        "messaging.database_encrypted",
        "The homeserver's database is encrypted under the messaging key",
        (catalogue.DATABASE_ENCRYPTION,),
        "Restore the instance from a snapshot copied with the messaging CMK "
        "(aws rds copy-db-snapshot --kms-key-id ...; restore-db-instance-from-db-snapshot).",
    ),
    CheckSpec(
        "messaging.database_not_public",
        "The homeserver's database is not publicly accessible",
        (catalogue.DATABASE_NOT_PUBLIC,),
        "aws rds modify-db-instance --no-publicly-accessible --apply-immediately",
    ),
    CheckSpec(
        "messaging.database_requires_tls",
        "The homeserver's database forces TLS (rds.force_ssl=1)",
        (catalogue.DATABASE_TLS_ONLY,),
        "aws rds modify-db-parameter-group --parameters "
        "ParameterName=rds.force_ssl,ParameterValue=1,ApplyMethod=immediate",
    ),
    CheckSpec(
        "messaging.listener_tls13",
        "Messaging load balancer listeners are HTTPS with a TLS 1.3-only policy",
        (catalogue.LOAD_BALANCER_TLS13_ONLY,),
        "aws elbv2 modify-listener --protocol HTTPS --ssl-policy "
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
    ),
    CheckSpec(
        "messaging.federation_closed",
        "The homeserver's task runs a configuration with closed federation",
        (catalogue.HOMESERVER_FEDERATION_CLOSED,),
        "Redeploy the program's task definition (HUB_HOMESERVER_CONFIG from "
        "deployed_homeserver_config); never register a hand-edited revision.",
    ),
)

CHECKS: dict[str, CheckSpec] = {spec.id: spec for spec in CHECK_SPECS}


def spec(check_id: str) -> CheckSpec:
    """The entry for ``check_id``; KeyError names unknown ids."""
    return CHECKS[check_id]


@dataclass(frozen=True)
class FindingNotApplicable:
    """A scanner finding that does not apply to this design, and why, in writing.

    ``covered_by`` names the checks (verify ids, pack policies) that hold what the
    finding is really after, so the reason cannot drift from what is checked.
    """

    finding: str
    reason: str
    covered_by: tuple[str, ...]


FINDINGS_NOT_APPLICABLE: tuple[FindingNotApplicable, ...] = (
    FindingNotApplicable(
        "Lambda functions have no dead-letter queue",
        "Every function is invoked synchronously: the API function by API Gateway's proxy "
        "integration, the two triggers by Cognito during sign-up and token issue. Lambda "
        "sends only failed asynchronous invocations to a dead-letter queue, so one would "
        "never receive anything; a synchronous failure goes back to its caller (the client "
        "gets a 5xx, the sign-up or sign-in is refused). Work that must survive a failure "
        "after a commit goes through the outbox in DynamoDB, in the committing transaction, "
        "and is retried from there.",
        ("lambda.no_public_policy", "lambda-not-publicly-invocable"),
    ),
    FindingNotApplicable(
        "Lambda environment variables are not encrypted with a customer-managed key",
        "The environments hold no secret: table and bucket names, key ARNs, the user pool "
        "and client ids, the phase and the admitted institution ids, all of which the "
        "stack outputs publish anyway. Secrets never go in the environment (the audit "
        "hash key is sealed under the audit CMK in the ledger table). Lambda encrypts "
        "environments at rest with its AWS-managed key; a customer key would add only a "
        "grant for the deployer on a key whose policy gives the account root "
        "administration only.",
        ("keys.policy_root_admin_only", "iam-policy-grants-no-wildcards-on-data-stores"),
    ),
    FindingNotApplicable(
        "Cognito self sign-up is enabled on the hub's user pool",
        "The one hub has one pool, the core's; phase 3 admits private clinics by "
        "self-registration with proof, and a layer cannot change the core's pool, so the "
        "pool allows sign-up and the decision is data: the pre sign-up trigger refuses a "
        "native sign-up unless phase 3's layer switch stands in the institutions table, "
        "and POST /registrations refuses likewise (docs/one-hub.md). A sign-up is not "
        "access: the trigger never auto-confirms or auto-verifies and refuses any granting "
        "attribute; the applicant then proves who they are through the API (the claimed "
        "Medical Council number and name must match the register) and stays pending, with "
        "no access, until the claimed clinic's admin (or a platform admin, for a new "
        "clinic) approves. MFA is required, the pre token trigger re-resolves enrolment "
        "and registration at every token, the service again on every request, and the "
        "WAF is on in every phase.",
        (
            "cognito.triggers_configured",
            "cognito.mfa_on",
            "api.waf_attached",
            "cognito-user-pool-requires-mfa",
        ),
    ),
)
