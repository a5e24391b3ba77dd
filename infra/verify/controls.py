"""The catalogue of post-deploy checks: id, title, the controls each evidences, remediation.

Rules (``infra.verify.rules``) decide pass or fail and do not know this catalogue; the
catalogue binds each check id to what a passing result is evidence *of*:

- an ISO 27799:2016 theme (health informatics guidance on ISO/IEC 27002 controls);
- a principle of the Personal Data (Privacy) Ordinance, Cap. 486 (DPP2 retention,
  DPP4 security of personal data);
- a CIS AWS Foundations Benchmark v3.0 item where one exists. DynamoDB, Cognito, API
  Gateway and Lambda have no CIS Foundations item; there the AWS Foundational Security
  Best Practices control is cited instead, where one exists.

Guarantees: every check id the verifier emits is listed here (a test holds it to that),
and every entry names at least one ISO 27799 theme and one Cap. 486 principle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    controls: tuple[str, ...]
    remediation: str


ISO_CRYPTO_POLICY = "ISO 27799 10.1.1 Policy on the use of cryptographic controls"
ISO_KEY_MANAGEMENT = "ISO 27799 10.1.2 Key management"
ISO_EVENT_LOGGING = "ISO 27799 12.4.1 Event logging"
ISO_LOG_PROTECTION = "ISO 27799 12.4.2 Protection of log information"
ISO_ADMIN_LOGS = "ISO 27799 12.4.3 Administrator and operator logs"
ISO_BACKUP = "ISO 27799 12.3.1 Information backup"
ISO_ACCESS_RESTRICTION = "ISO 27799 9.4.1 Information access restriction"
ISO_SECURE_LOGON = "ISO 27799 9.4.2 Secure log-on procedures"
ISO_PASSWORDS = "ISO 27799 9.4.3 Password management system"
ISO_USER_ACCESS = "ISO 27799 9.2 User access management"
ISO_USER_REGISTRATION = "ISO 27799 9.2.1 User registration and de-registration"
ISO_NETWORK_CONTROLS = "ISO 27799 13.1.1 Network controls"
ISO_AVAILABILITY = "ISO 27799 17.2.1 Availability of information processing facilities"
ISO_USER_REGISTRATION = "ISO 27799 9.2.1 User registration and de-registration"
ISO_NETWORK_CONTROLS = "ISO 27799 13.1.1 Network controls"
ISO_AVAILABILITY = "ISO 27799 17.2.1 Availability of information processing facilities"
ISO_PRIVILEGED_ACCESS = "ISO 27799 9.2.3 Management of privileged access rights"
ISO_TRANSFER = "ISO 27799 13.2.1 Information transfer policies and procedures"
ISO_NETWORK_SERVICES = "ISO 27799 13.1.2 Security of network services"
ISO_RECORDS = "ISO 27799 18.1.3 Protection of records"
ISO_PII = "ISO 27799 18.1.4 Privacy and protection of personally identifiable information"

DPP2 = "Cap. 486 DPP2 (accuracy and duration of retention)"
DPP4 = "Cap. 486 DPP4 (security of personal data)"

_SPECS = [
    # KMS keys
    CheckSpec(
        "keys.enabled",
        "KMS key is enabled",
        (ISO_KEY_MANAGEMENT, DPP4),
        "Enable the key; a disabled key makes every record it protects unreadable.",
    ),
    CheckSpec(
        "keys.rotation_enabled",
        "Symmetric KMS key rotates automatically",
        (
            ISO_KEY_MANAGEMENT,
            DPP4,
            "CIS AWS 3.6 Rotation for customer-created symmetric CMKs is enabled",
        ),
        "aws kms enable-key-rotation --key-id <key> --rotation-period-in-days 365",
    ),
    CheckSpec(
        "keys.spec_and_usage",
        "KMS key spec and usage are as declared",
        (ISO_CRYPTO_POLICY, ISO_KEY_MANAGEMENT, DPP4),
        "Replace the key with one of the declared spec and usage and re-point its alias.",
    ),
    CheckSpec(
        "keys.policy_root_admin_only",
        "Key policy gives the account root administration only, no cryptographic use",
        (ISO_KEY_MANAGEMENT, ISO_PRIVILEGED_ACCESS, DPP4),
        "Remove cryptographic actions (kms:Decrypt, kms:GenerateDataKey*, kms:Sign...) "
        "and kms:* from the root statement; grant them to named roles with conditions.",
    ),
    CheckSpec(
        "keys.policy_root_admin_only",
        "Key policy gives the account root administration only, no cryptographic use",
        (ISO_KEY_MANAGEMENT, ISO_PRIVILEGED_ACCESS, DPP4),
        "Remove cryptographic actions (kms:Decrypt, kms:GenerateDataKey*, kms:Sign...) "
        "and kms:* from the root statement; grant them to named roles with conditions.",
    ),
    # S3 buckets
    CheckSpec(
        "buckets.default_encryption",
        "Bucket default encryption uses the right key",
        (ISO_CRYPTO_POLICY, ISO_PII, DPP4),
        "Set default encryption to SSE-KMS with the stack's CMK (SSE-S3 on the "
        "access-log bucket only).",
    ),
    CheckSpec(
        "buckets.versioning",
        "Bucket versioning is enabled",
        (ISO_BACKUP, ISO_RECORDS, DPP4),
        "aws s3api put-bucket-versioning --versioning-configuration Status=Enabled",
    ),
    CheckSpec(
        "buckets.public_access_block",
        "All four public-access-block flags are on",
        (
            ISO_ACCESS_RESTRICTION,
            DPP4,
            "CIS AWS 2.1.4 S3 buckets are configured with 'Block public access (bucket settings)'",
        ),
        "aws s3api put-public-access-block with all four flags true.",
    ),
    CheckSpec(
        "buckets.ownership_enforced",
        "Object ownership is BucketOwnerEnforced (no ACLs)",
        (ISO_ACCESS_RESTRICTION, DPP4),
        "aws s3api put-bucket-ownership-controls ObjectOwnership=BucketOwnerEnforced",
    ),
    CheckSpec(
        "buckets.denies_insecure_transport",
        "Bucket policy denies requests without TLS",
        (
            ISO_TRANSFER,
            ISO_NETWORK_SERVICES,
            DPP4,
            "CIS AWS 2.1.1 S3 bucket policy is set to deny HTTP requests",
        ),
        "Add a Deny statement for s3:* on the bucket and its objects when "
        "aws:SecureTransport is false.",
    ),
    CheckSpec(
        "buckets.requires_sse_kms_puts",
        "Shard bucket policy refuses puts that are not SSE-KMS with the records key",
        (ISO_CRYPTO_POLICY, ISO_PII, DPP4),
        "Add Deny statements for s3:PutObject when s3:x-amz-server-side-encryption is "
        "not aws:kms, or the KMS key id is not the records key.",
    ),
    CheckSpec(
        "buckets.access_logging",
        "Server access logging goes to the access-log bucket",
        (
            ISO_EVENT_LOGGING,
            DPP4,
            "CIS AWS 3.4 S3 bucket access logging is enabled on the CloudTrail S3 bucket",
        ),
        "aws s3api put-bucket-logging with the stack's access-log bucket as target.",
    ),
    # the trail bucket
    CheckSpec(
        "trail.bucket_object_lock",
        "Trail bucket Object Lock is COMPLIANCE mode with the configured retention",
        (ISO_LOG_PROTECTION, ISO_RECORDS, DPP2, DPP4),
        "Object Lock can only be set at bucket creation; recreate the bucket with "
        "COMPLIANCE default retention of the configured years.",
    ),
    # CloudTrail
    CheckSpec(
        "trail.logging",
        "CloudTrail trail is logging",
        (ISO_EVENT_LOGGING, DPP4, "CIS AWS 3.1 CloudTrail is enabled in all regions"),
        "aws cloudtrail start-logging --name <trail>",
    ),
    CheckSpec(
        "trail.multi_region",
        "Trail is multi-region and includes global service events",
        (ISO_EVENT_LOGGING, DPP4, "CIS AWS 3.1 CloudTrail is enabled in all regions"),
        "aws cloudtrail update-trail --is-multi-region-trail --include-global-service-events",
    ),
    CheckSpec(
        "trail.management_events",
        "Trail records all management events, reads and writes",
        (
            ISO_EVENT_LOGGING,
            ISO_ADMIN_LOGS,
            DPP4,
            "CIS AWS 3.1 CloudTrail is enabled in all regions",
        ),
        "Add an advanced event selector with eventCategory Management and no readOnly filter.",
    ),
    CheckSpec(
        "trail.log_file_validation",
        "Trail log-file validation is enabled",
        (ISO_LOG_PROTECTION, DPP4, "CIS AWS 3.2 CloudTrail log file validation is enabled"),
        "aws cloudtrail update-trail --enable-log-file-validation",
    ),
    CheckSpec(
        "trail.kms_encrypted",
        "Trail logs are encrypted with the audit CMK",
        (
            ISO_LOG_PROTECTION,
            ISO_CRYPTO_POLICY,
            DPP4,
            "CIS AWS 3.5 CloudTrail logs are encrypted at rest using KMS CMKs",
        ),
        "aws cloudtrail update-trail --kms-key-id <audit key ARN>",
    ),
    CheckSpec(
        "trail.data_event_selectors",
        "Trail records data events (reads and writes) on the data store",
        (
            ISO_EVENT_LOGGING,
            DPP4,
            "CIS AWS 3.8 Object-level logging for write events is enabled for S3 bucket",
            "CIS AWS 3.9 Object-level logging for read events is enabled for S3 bucket",
        ),
        "Add an advanced event selector for the data store's ARN (eventCategory Data, "
        "no readOnly filter).",
    ),
    # DynamoDB
    CheckSpec(
        "dynamodb.customer_key_encryption",
        "Table is encrypted with the stack's CMK",
        (ISO_CRYPTO_POLICY, ISO_PII, DPP4),
        "Update the table's SSE specification to KMS with the declared CMK.",
    ),
    CheckSpec(
        "dynamodb.pitr",
        "Table has point-in-time recovery",
        (
            ISO_BACKUP,
            ISO_RECORDS,
            DPP4,
            "AWS FSBP DynamoDB.2 DynamoDB tables should have point-in-time recovery enabled",
        ),
        "aws dynamodb update-continuous-backups --point-in-time-recovery-specification "
        "PointInTimeRecoveryEnabled=true",
    ),
    CheckSpec(
        "dynamodb.deletion_protection",
        "Table has deletion protection",
        (
            ISO_RECORDS,
            DPP4,
            "AWS FSBP DynamoDB.6 DynamoDB tables should have deletion protection enabled",
        ),
        "aws dynamodb update-table --deletion-protection-enabled",
    ),
    # Cognito
    CheckSpec(
        "cognito.mfa_on",
        "User pool requires MFA",
        (ISO_SECURE_LOGON, DPP4),
        "aws cognito-idp set-user-pool-mfa-config --mfa-configuration ON with TOTP enabled.",
    ),
    CheckSpec(
        "cognito.password_policy",
        "User pool password policy meets the baseline",
        (ISO_PASSWORDS, DPP4),
        "Set minimum length 14, all four character classes, temporary passwords valid one day.",
    ),
    CheckSpec(
        "cognito.custom_attributes",
        "User pool carries the registration attributes",
        (ISO_USER_ACCESS, DPP4),
        "Custom attributes can only be added, never removed: add the missing ones; "
        "recreate the pool if mchk_reg_no is mutable.",
    ),
    CheckSpec(
        "cognito.role_groups",
        "User pool has exactly the platform's role groups",
        (ISO_USER_ACCESS, ISO_PRIVILEGED_ACCESS, DPP4),
        "Create the missing groups; delete groups the access model does not know.",
    ),
    CheckSpec(
        "cognito.federation",
        "Federated identity providers are the phase's, and only those",
        (ISO_USER_ACCESS, ISO_SECURE_LOGON, DPP4),
        "Add the providers the stage lists; remove the others (none in phase 1).",
    ),
    CheckSpec(
        "cognito.triggers_configured",
        "Sign-up is checked against the register and tokens get claims by this stack's triggers",
        (ISO_USER_REGISTRATION, ISO_USER_ACCESS, DPP4),
        "Set the pool's pre sign-up and pre token generation (V2_0) triggers to the "
        "stack's functions.",
    ),
    CheckSpec(
        "cognito.threat_protection",
        "User pool threat protection is enforced",
        (ISO_SECURE_LOGON, DPP4),
        "Set UserPoolAddOns AdvancedSecurityMode=ENFORCED (Plus tier).",
    ),
    CheckSpec(
        "cognito.triggers_configured",
        "Sign-up is checked against the register and tokens get claims by this stack's triggers",
        (ISO_USER_REGISTRATION, ISO_USER_ACCESS, DPP4),
        "Set the pool's pre sign-up and pre token generation (V2_0) triggers to the "
        "stack's functions.",
    ),
    CheckSpec(
        "cognito.threat_protection",
        "User pool threat protection is enforced",
        (ISO_SECURE_LOGON, DPP4),
        "Set UserPoolAddOns AdvancedSecurityMode=ENFORCED (Plus tier).",
    ),
    # API Gateway
    CheckSpec(
        "api.tls_policy",
        "API security policy admits TLS 1.3 only",
        (ISO_TRANSFER, ISO_NETWORK_SERVICES, DPP4),
        "Set the REST API's securityPolicy to SecurityPolicy_TLS13_1_3_2025_09.",
    ),
    CheckSpec(
        "api.authorizer_on_methods",
        "Every method except GET /health needs a Cognito access token",
        (ISO_ACCESS_RESTRICTION, ISO_SECURE_LOGON, DPP4),
        "Set the method's authorization to COGNITO_USER_POOLS with the stack's "
        "authorizer, then redeploy the stage.",
    ),
    CheckSpec(
        "api.throttling",
        "Stage throttles at the configured rate and burst",
        (ISO_NETWORK_SERVICES, ISO_AVAILABILITY, DPP4),
        "Set the stage's */* method settings to the stage file's capacity values.",
    ),
    CheckSpec(
        "api.no_data_trace",
        "Stage never logs request or response bodies",
        (ISO_EVENT_LOGGING, ISO_PII, DPP4),
        "Set dataTraceEnabled=false on every method setting of the stage.",
    ),
    CheckSpec(
        "api.waf_attached",
        "A WAF web ACL with a rate rule guards the stage where the phase enables WAF",
        (ISO_NETWORK_CONTROLS, ISO_NETWORK_SERVICES, DPP4),
        "Associate the stack's web ACL with the API stage.",
    ),
    CheckSpec(
        "api.throttling",
        "Stage throttles at the configured rate and burst",
        (ISO_NETWORK_SERVICES, ISO_AVAILABILITY, DPP4),
        "Set the stage's */* method settings to the stage file's capacity values.",
    ),
    CheckSpec(
        "api.no_data_trace",
        "Stage never logs request or response bodies",
        (ISO_EVENT_LOGGING, ISO_PII, DPP4),
        "Set dataTraceEnabled=false on every method setting of the stage.",
    ),
    CheckSpec(
        "api.waf_attached",
        "A WAF web ACL with a rate rule guards the stage where the phase enables WAF",
        (ISO_NETWORK_CONTROLS, ISO_NETWORK_SERVICES, DPP4),
        "Associate the stack's web ACL with the API stage.",
    ),
    # Lambda
    CheckSpec(
        "lambda.role_least_privilege",
        "Function role has no wildcard data-store actions and reaches only this stack's resources",
        (
            ISO_PRIVILEGED_ACCESS,
            ISO_ACCESS_RESTRICTION,
            DPP4,
            'CIS AWS 1.16 IAM policies that allow full "*:*" administrative '
            "privileges are not attached",
        ),
        "Replace wildcard actions by the operations used and scope resources to the stack's ARNs.",
    ),
    CheckSpec(
        "lambda.no_public_policy",
        "Function resource policy is not public",
        (
            ISO_ACCESS_RESTRICTION,
            DPP4,
            "AWS FSBP Lambda.1 Lambda function policies should prohibit public access",
        ),
        "Remove the statement, or bind it to the caller with a source-ARN condition.",
    ),
    # CloudWatch Logs
    CheckSpec(
        "logs.encrypted_retained",
        "Log group is encrypted with the audit CMK and retained",
        (ISO_LOG_PROTECTION, DPP2, DPP4),
        "aws logs associate-kms-key and put-retention-policy with the declared values.",
    ),
]

CHECKS: dict[str, CheckSpec] = {spec.id: spec for spec in _SPECS}


def spec(check_id: str) -> CheckSpec:
    """The catalogue entry for ``check_id``; KeyError names unknown ids."""
    return CHECKS[check_id]


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table (kept in ``infra/verify/README.md``)."""
    lines = ["| check | what it verifies | controls evidenced |", "|---|---|---|"]
    for entry in _SPECS:
        controls = "<br>".join(entry.controls)
        lines.append(f"| `{entry.id}` | {entry.title} | {controls} |")
    return "\n".join(lines)
