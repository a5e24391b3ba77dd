"""The control catalogue: what a passing check is evidence of, each entry defined once.

Two levels:

- a :class:`Requirement` is one item of a framework: an ISO 27799:2016 clause (health
  informatics guidance on the ISO/IEC 27002 controls), a principle or section of the
  Personal Data (Privacy) Ordinance, Cap. 486, a CIS Amazon Web Services Foundations
  Benchmark v3.0.0 item, or, where CIS Foundations has none (DynamoDB, Lambda), an AWS
  Foundational Security Best Practices control;
- a :class:`Control` is one compliant state of the deployment ("KMS keys rotate",
  "S3 buckets refuse requests without TLS") and the requirements it evidences.

The policy pack binds each rule, and verification each check, to controls from here;
when both check one state (one pre-deploy over declared inputs, one post-deploy over
live state) they name the same :class:`Control`, so they cannot map it differently.

Guarantees: every requirement and every control appears once in :data:`REQUIREMENTS`
and :data:`CONTROLS`; every control names at least one ISO 27799 clause and one
Cap. 486 principle (tests hold the catalogue to this).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Framework(StrEnum):
    """The frameworks, in the order reports list them."""

    ISO_27799 = "ISO 27799"
    CAP_486 = "Cap. 486"
    CIS_AWS = "CIS AWS"
    AWS_FSBP = "AWS FSBP"

    @property
    def tag_prefix(self) -> str:
        return {
            Framework.ISO_27799: "iso27799",
            Framework.CAP_486: "cap486",
            Framework.CIS_AWS: "cis-aws",
            Framework.AWS_FSBP: "aws-fsbp",
        }[self]


@dataclass(frozen=True)
class Requirement:
    """One item of a framework: ``ref`` is its number (``10.1.2``, ``DPP4``, ``3.6``)."""

    framework: Framework
    ref: str
    title: str

    def __str__(self) -> str:
        return f"{self.framework} {self.ref} {self.title}"

    @property
    def tag(self) -> str:
        """A short machine tag (``iso27799:10.1.2``), as policy metadata carries it."""
        return f"{self.framework.tag_prefix}:{self.ref}"


@dataclass(frozen=True)
class Control:
    """A compliant state of the deployment and the requirements it evidences."""

    id: str
    title: str
    requirements: tuple[Requirement, ...]


def _iso(ref: str, title: str) -> Requirement:
    return Requirement(Framework.ISO_27799, ref, title)


def _cap486(ref: str, title: str) -> Requirement:
    return Requirement(Framework.CAP_486, ref, title)


def _cis(ref: str, title: str) -> Requirement:
    return Requirement(Framework.CIS_AWS, ref, title)


def _fsbp(ref: str, title: str) -> Requirement:
    return Requirement(Framework.AWS_FSBP, ref, title)


# --- requirements -------------------------------------------------------------------------

ISO_ACCESS_CONTROL_POLICY = _iso("9.1.1", "Access control policy")
ISO_NETWORK_ACCESS = _iso("9.1.2", "Access to networks and network services")
ISO_USER_ACCESS = _iso("9.2", "User access management")
ISO_USER_REGISTRATION = _iso("9.2.1", "User registration and de-registration")
ISO_ACCESS_PROVISIONING = _iso("9.2.2", "User access provisioning")
ISO_PRIVILEGED_ACCESS = _iso("9.2.3", "Management of privileged access rights")
ISO_SECRET_AUTHENTICATION = _iso(
    "9.2.4", "Management of secret authentication information of users"
)
ISO_ACCESS_RESTRICTION = _iso("9.4.1", "Information access restriction")
ISO_SECURE_LOGON = _iso("9.4.2", "Secure log-on procedures")
ISO_PASSWORDS = _iso("9.4.3", "Password management system")
ISO_CRYPTO_POLICY = _iso("10.1.1", "Policy on the use of cryptographic controls")
ISO_KEY_MANAGEMENT = _iso("10.1.2", "Key management")
ISO_BACKUP = _iso("12.3.1", "Information backup")
ISO_EVENT_LOGGING = _iso("12.4.1", "Event logging")
ISO_LOG_PROTECTION = _iso("12.4.2", "Protection of log information")
ISO_ADMIN_LOGS = _iso("12.4.3", "Administrator and operator logs")
ISO_NETWORK_CONTROLS = _iso("13.1.1", "Network controls")
ISO_NETWORK_SERVICES = _iso("13.1.2", "Security of network services")
ISO_TRANSFER = _iso("13.2.1", "Information transfer policies and procedures")
ISO_PUBLIC_NETWORK_SERVICES = _iso("14.1.2", "Securing application services on public networks")
ISO_TRANSACTIONS = _iso("14.1.3", "Protecting application services transactions")
ISO_AVAILABILITY = _iso("17.2.1", "Availability of information processing facilities")
ISO_LEGISLATION = _iso("18.1.1", "Identification of applicable legislation")
ISO_RECORDS = _iso("18.1.3", "Protection of records")
ISO_PII = _iso("18.1.4", "Privacy and protection of personally identifiable information")

DPP2 = _cap486("DPP2", "Accuracy and duration of retention")
DPP4 = _cap486("DPP4", "Security of personal data")
S33 = _cap486("s33", "Transfer outside Hong Kong (not yet in operation; residency is our stance)")

CIS_NO_ADMIN_POLICIES = _cis(
    "1.16", 'Ensure IAM policies that allow full "*:*" administrative privileges are not attached'
)
CIS_S3_DENY_HTTP = _cis("2.1.1", "Ensure S3 Bucket Policy is set to deny HTTP requests")
CIS_S3_BLOCK_PUBLIC = _cis(
    "2.1.4", "Ensure that S3 Buckets are configured with 'Block public access (bucket settings)'"
)
CIS_TRAIL_ALL_REGIONS = _cis("3.1", "Ensure CloudTrail is enabled in all regions")
CIS_TRAIL_VALIDATION = _cis("3.2", "Ensure CloudTrail log file validation is enabled")
CIS_TRAIL_BUCKET_LOGGING = _cis(
    "3.4", "Ensure S3 bucket access logging is enabled on the CloudTrail S3 bucket"
)
CIS_TRAIL_KMS = _cis("3.5", "Ensure CloudTrail logs are encrypted at rest using KMS CMKs")
CIS_KEY_ROTATION = _cis("3.6", "Ensure rotation for customer-created symmetric CMKs is enabled")
CIS_S3_WRITE_EVENTS = _cis(
    "3.8", "Ensure that Object-level logging for write events is enabled for S3 bucket"
)
CIS_S3_READ_EVENTS = _cis(
    "3.9", "Ensure that Object-level logging for read events is enabled for S3 bucket"
)
CIS_MONITORING = _cis(
    "4.1-4.15",
    "Ensure a log metric filter and alarm exist for each monitored event class (section 4)",
)

FSBP_DYNAMODB_PITR = _fsbp(
    "DynamoDB.2", "DynamoDB tables should have point-in-time recovery enabled"
)
FSBP_DYNAMODB_DELETION = _fsbp(
    "DynamoDB.6", "DynamoDB tables should have deletion protection enabled"
)
FSBP_LAMBDA_PUBLIC = _fsbp("Lambda.1", "Lambda function policies should prohibit public access")
FSBP_RDS_PUBLIC = _fsbp("RDS.2", "RDS DB instances should prohibit public access")
FSBP_RDS_ENCRYPTION = _fsbp("RDS.3", "RDS DB instances should have encryption at-rest enabled")
FSBP_ELB_TLS_POLICY = _fsbp(
    "ELB.17",
    "Application and Network Load Balancers with listeners should use recommended "
    "security policies",
)

REQUIREMENTS: tuple[Requirement, ...] = tuple(
    value for value in dict(globals()).values() if isinstance(value, Requirement)
)

# --- controls -----------------------------------------------------------------------------

DATA_RESIDENCY = Control(
    "data-residency",
    "Resources, their provider and their KMS keys stay in ap-east-1 (Hong Kong)",
    (ISO_LEGISLATION, ISO_PII, DPP4, S33),
)

KEY_ENABLED = Control("key-enabled", "KMS keys are enabled", (ISO_KEY_MANAGEMENT, DPP4))
KEY_ROTATION = Control(
    "key-rotation",
    "Symmetric KMS keys rotate automatically, at least yearly",
    (ISO_KEY_MANAGEMENT, DPP4, CIS_KEY_ROTATION),
)
KEY_SPEC = Control(
    "key-spec",
    "KMS keys have the declared spec and usage",
    (ISO_CRYPTO_POLICY, ISO_KEY_MANAGEMENT, DPP4),
)
KEY_POLICY_ROOT_ADMIN_ONLY = Control(
    "key-policy-root-admin-only",
    "Key policies give the account root administration only, no cryptographic use",
    (ISO_KEY_MANAGEMENT, ISO_PRIVILEGED_ACCESS, DPP4),
)

BUCKET_ENCRYPTION = Control(
    "bucket-encryption",
    "S3 buckets default to SSE-KMS under a customer-managed key (SSE-S3 on the access-log "
    "bucket only)",
    (ISO_CRYPTO_POLICY, ISO_KEY_MANAGEMENT, ISO_PII, DPP4),
)
BUCKET_VERSIONING = Control(
    "bucket-versioning", "S3 buckets keep versions", (ISO_BACKUP, ISO_RECORDS, DPP4)
)
BUCKET_PUBLIC_ACCESS_BLOCKED = Control(
    "bucket-public-access-blocked",
    "S3 buckets block all public access",
    (ISO_ACCESS_RESTRICTION, ISO_ACCESS_CONTROL_POLICY, DPP4, CIS_S3_BLOCK_PUBLIC),
)
BUCKET_OWNER_ENFORCED = Control(
    "bucket-owner-enforced",
    "S3 buckets disable ACLs (BucketOwnerEnforced)",
    (ISO_ACCESS_RESTRICTION, DPP4),
)
BUCKET_TLS_ONLY = Control(
    "bucket-tls-only",
    "S3 buckets refuse requests without TLS",
    (ISO_TRANSFER, ISO_NETWORK_SERVICES, ISO_CRYPTO_POLICY, DPP4, CIS_S3_DENY_HTTP),
)
BUCKET_SSE_KMS_PUTS = Control(
    "bucket-sse-kms-puts",
    "The shard bucket refuses puts that are not SSE-KMS under the records key",
    (ISO_CRYPTO_POLICY, ISO_PII, DPP4),
)
BUCKET_ACCESS_LOGGING = Control(
    "bucket-access-logging",
    "S3 buckets log server access to the access-log bucket",
    (ISO_EVENT_LOGGING, DPP4, CIS_TRAIL_BUCKET_LOGGING),
)
AUDIT_BUCKET_OBJECT_LOCK = Control(
    "audit-bucket-object-lock",
    "The trail bucket locks objects in COMPLIANCE mode for the audit retention",
    (ISO_LOG_PROTECTION, ISO_RECORDS, DPP2, DPP4),
)
AUDIT_BUCKET_LIFECYCLE = Control(
    "audit-bucket-lifecycle",
    "The trail bucket's lifecycle expires objects only after the audit retention, expires "
    "noncurrent versions and aborts abandoned uploads",
    (ISO_LOG_PROTECTION, ISO_RECORDS, DPP2, DPP4),
)

TRAIL_LOGGING = Control(
    "trail-logging", "CloudTrail is logging", (ISO_EVENT_LOGGING, DPP4, CIS_TRAIL_ALL_REGIONS)
)
TRAIL_ALL_REGIONS = Control(
    "trail-all-regions",
    "CloudTrail is multi-region and records global service events",
    (ISO_EVENT_LOGGING, ISO_ADMIN_LOGS, DPP4, CIS_TRAIL_ALL_REGIONS),
)
TRAIL_MANAGEMENT_EVENTS = Control(
    "trail-management-events",
    "CloudTrail records every management event, reads and writes",
    (ISO_EVENT_LOGGING, ISO_ADMIN_LOGS, DPP4, CIS_TRAIL_ALL_REGIONS),
)
TRAIL_LOG_FILE_VALIDATION = Control(
    "trail-log-file-validation",
    "CloudTrail validates its log files",
    (ISO_LOG_PROTECTION, DPP4, CIS_TRAIL_VALIDATION),
)
TRAIL_ENCRYPTION = Control(
    "trail-encryption",
    "CloudTrail logs are encrypted with a customer-managed KMS key",
    (ISO_LOG_PROTECTION, ISO_CRYPTO_POLICY, DPP4, CIS_TRAIL_KMS),
)
TRAIL_DATA_EVENTS = Control(
    "trail-data-events",
    "CloudTrail records data events (reads and writes) on the data stores",
    (ISO_EVENT_LOGGING, DPP4, CIS_S3_WRITE_EVENTS, CIS_S3_READ_EVENTS),
)

CIS_METRIC_ALARMS = Control(
    "cis-metric-alarms",
    "Metric filters on the trail's log group, with alarms that notify, cover every CIS "
    "section 4 event class",
    (ISO_EVENT_LOGGING, ISO_ADMIN_LOGS, DPP4, CIS_MONITORING),
)
TRAIL_FUNCTION_EVENTS = Control(
    "trail-function-events",
    "CloudTrail records every invocation of the stack's Lambda functions (data events)",
    (ISO_EVENT_LOGGING, ISO_ADMIN_LOGS, DPP4),
)
TRAIL_INSIGHTS = Control(
    "trail-insights",
    "CloudTrail Insights records unusual API call volumes and error rates",
    (ISO_EVENT_LOGGING, ISO_ADMIN_LOGS, DPP4),
)

TABLE_ENCRYPTION = Control(
    "table-encryption",
    "DynamoDB tables are encrypted with a customer-managed KMS key",
    (ISO_CRYPTO_POLICY, ISO_KEY_MANAGEMENT, ISO_PII, DPP4),
)
TABLE_POINT_IN_TIME_RECOVERY = Control(
    "table-point-in-time-recovery",
    "DynamoDB tables have point-in-time recovery",
    (ISO_BACKUP, ISO_RECORDS, DPP4, FSBP_DYNAMODB_PITR),
)
BACKUP_PLAN_COVERAGE = Control(
    "backup-plan-coverage",
    "An AWS Backup vault under a customer key with a vault lock, and a plan backing up "
    "every table and the record and audit buckets for each data class's retention",
    (ISO_BACKUP, ISO_RECORDS, ISO_KEY_MANAGEMENT, DPP2, DPP4),
)
TABLE_DELETION_PROTECTION = Control(
    "table-deletion-protection",
    "DynamoDB tables have deletion protection",
    (ISO_RECORDS, DPP4, FSBP_DYNAMODB_DELETION),
)

MFA_REQUIRED = Control(
    "mfa-required",
    "Cognito requires MFA of every user",
    (ISO_SECURE_LOGON, ISO_SECRET_AUTHENTICATION, DPP4),
)
APP_CLIENT_SIGN_IN = Control(
    "app-client-sign-in",
    "Cognito app clients sign in with SRP or refresh only, access tokens at most 15 minutes",
    (ISO_SECURE_LOGON, ISO_SECRET_AUTHENTICATION, DPP4),
)
PASSWORD_POLICY = Control(
    "password-policy", "Cognito passwords meet the baseline", (ISO_PASSWORDS, DPP4)
)
REGISTRATION_ATTRIBUTES = Control(
    "registration-attributes",
    "Cognito carries the registration attributes, the registration number immutable",
    (ISO_USER_ACCESS, DPP4),
)
COGNITO_ROLE_GROUPS = Control(
    "role-groups",
    "Cognito has exactly the platform's role groups",
    (ISO_USER_ACCESS, ISO_PRIVILEGED_ACCESS, DPP4),
)
FEDERATION = Control(
    "federation",
    "Federated identity providers are the phase's, and only those",
    (ISO_USER_ACCESS, ISO_SECURE_LOGON, DPP4),
)
GRANTING_ATTRIBUTES_NOT_USER_WRITABLE = Control(
    "granting-attributes-not-user-writable",
    "No Cognito app client lets its users write an attribute that grants anything "
    "(registration number, institution, specialty, roles)",
    (ISO_ACCESS_PROVISIONING, ISO_PRIVILEGED_ACCESS, DPP4),
)
PROVIDERS_RELEASE_PLACEMENT = Control(
    "providers-release-placement",
    "Each identity provider releases what placing its users needs, through an app client "
    "allowed to write it",
    (ISO_USER_REGISTRATION, ISO_ACCESS_PROVISIONING, DPP4),
)
REGISTRATION_TRIGGERS = Control(
    "registration-triggers",
    "Sign-ups are checked against the register and tokens get claims by the stack's triggers",
    (ISO_USER_REGISTRATION, ISO_USER_ACCESS, DPP4),
)
THREAT_PROTECTION = Control(
    "threat-protection", "Cognito threat protection is enforced", (ISO_SECURE_LOGON, DPP4)
)

API_TLS13_ONLY = Control(
    "api-tls13-only",
    "The API accepts TLS 1.3 only",
    (ISO_TRANSFER, ISO_NETWORK_SERVICES, ISO_PUBLIC_NETWORK_SERVICES, ISO_TRANSACTIONS, DPP4),
)
API_AUTHORIZER = Control(
    "api-authorizer",
    "Every API method except GET /health and the web client's static files needs a Cognito "
    "access token",
    (ISO_ACCESS_RESTRICTION, ISO_SECURE_LOGON, DPP4),
)
API_THROTTLING = Control(
    "api-throttling",
    "The API stage throttles at the configured rate and burst",
    (ISO_NETWORK_SERVICES, ISO_AVAILABILITY, DPP4),
)
API_NO_DATA_TRACE = Control(
    "api-no-data-trace",
    "The API never logs request or response bodies",
    (ISO_EVENT_LOGGING, ISO_PII, DPP4),
)
API_WAF = Control(
    "api-waf",
    "A WAF web ACL with a rate rule guards the API in every phase",
    (ISO_NETWORK_CONTROLS, ISO_NETWORK_SERVICES, DPP4),
)

LEAST_PRIVILEGE = Control(
    "least-privilege",
    "IAM grants name their data-store actions and resources (no wildcards)",
    (ISO_PRIVILEGED_ACCESS, ISO_ACCESS_RESTRICTION, DPP4, CIS_NO_ADMIN_POLICIES),
)
ROLE_TRUST_BOUND_TO_SOURCE = Control(
    "role-trust-bound-to-source",
    "Roles an AWS service assumes are bound to this account or resource (aws:SourceAccount "
    "or aws:SourceArn in the trust policy)",
    (ISO_PRIVILEGED_ACCESS, ISO_ACCESS_RESTRICTION, DPP4),
)
FUNCTION_NOT_PUBLIC = Control(
    "function-not-public",
    "Lambda functions can be invoked only by named callers",
    (ISO_NETWORK_ACCESS, ISO_ACCESS_RESTRICTION, DPP4, FSBP_LAMBDA_PUBLIC),
)

LOG_GROUP_PROTECTION = Control(
    "log-group-protection",
    "Log groups are KMS-encrypted and retained a set time (at least a year, never forever)",
    (ISO_EVENT_LOGGING, ISO_LOG_PROTECTION, DPP2, DPP4),
)

# --- messaging (infra/components/messaging.py) -------------------------------------------------

DATABASE_ENCRYPTION = Control(
    "database-encryption",
    "The homeserver's database is encrypted at rest under the messaging CMK",
    (ISO_CRYPTO_POLICY, ISO_KEY_MANAGEMENT, ISO_PII, DPP4, FSBP_RDS_ENCRYPTION),
)
DATABASE_NOT_PUBLIC = Control(
    "database-not-public",
    "The homeserver's database is not publicly accessible",
    (ISO_NETWORK_CONTROLS, ISO_ACCESS_RESTRICTION, DPP4, FSBP_RDS_PUBLIC),
)
DATABASE_TLS_ONLY = Control(
    "database-tls-only",
    "The homeserver's database refuses connections without TLS (rds.force_ssl)",
    (ISO_TRANSFER, ISO_NETWORK_SERVICES, ISO_CRYPTO_POLICY, DPP4),
)
LOAD_BALANCER_TLS13_ONLY = Control(
    "load-balancer-tls13-only",
    "The messaging load balancers listen on HTTPS with a TLS 1.3-only policy",
    (ISO_TRANSFER, ISO_PUBLIC_NETWORK_SERVICES, ISO_CRYPTO_POLICY, DPP4, FSBP_ELB_TLS_POLICY),
)
HOMESERVER_FEDERATION_CLOSED = Control(
    "homeserver-federation-closed",
    "The homeserver federates with no other server and takes no open registration",
    (ISO_NETWORK_CONTROLS, ISO_TRANSFER, ISO_USER_REGISTRATION, ISO_PII, DPP4, S33),
)

CONTROLS: tuple[Control, ...] = tuple(
    value for value in dict(globals()).values() if isinstance(value, Control)
)


def requirements_of(controls: Iterable[Control]) -> tuple[Requirement, ...]:
    """The requirements ``controls`` evidence, each once, by framework then catalogue order."""
    wanted = {r for control in controls for r in control.requirements}
    order = {r: n for n, r in enumerate(REQUIREMENTS)}
    return tuple(sorted(wanted, key=lambda r: (list(Framework).index(r.framework), order[r])))
