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

Cap. 486's data protection principles are all listed (DPP1 to DPP6), DPP2 and DPP4 by
the sub-clause a control really evidences (DPP4(1)(b) the location of the data,
DPP4(1)(c) the security of the equipment that stores it, DPP4(1)(d) the persons with
access, DPP4(1)(e) secure transmission, DPP4(1) the protection against unauthorised
access in general); a control that is no evidence of a principle (API throttling is
availability) names none. :data:`BEYOND_DEPLOYMENT` says, for the principles no
deployment check can evidence, where the project meets them instead, so a report can
say so rather than stay silent.

Guarantees: every requirement and every control appears once in :data:`REQUIREMENTS`
and :data:`CONTROLS`; every control names at least one ISO 27799 clause (tests hold
the catalogue to this); :meth:`Requirement.sort_key` orders each framework in its own
clause order (ISO 27799 9.2 before 18.1.4, DPP1 to DPP6, CIS 1.16 after 1.4).
"""

from __future__ import annotations

import re
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

    def sort_key(self) -> tuple[int, tuple[tuple[int, int | str], ...]]:
        """The framework's own order: numbers compare as numbers (``9.2`` < ``18.1.4``,
        ``1.4`` < ``1.16``), principles before sections (``DPP6`` < ``s33``)."""
        parts: list[tuple[int, int | str]] = []
        for token in re.findall(r"\d+|[A-Za-z]+", self.ref):
            parts.append((0, int(token)) if token.isdigit() else (1, token.lower()))
        if self.framework is Framework.CAP_486 and not self.ref.startswith("DPP"):
            parts.insert(0, (1, "~"))  # sections after the principles
        return list(Framework).index(self.framework), tuple(parts)


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

DPP1 = _cap486("DPP1", "Purpose and manner of collection of personal data")
DPP2 = _cap486("DPP2(2)", "Personal data not kept longer than necessary")
DPP3 = _cap486("DPP3", "Use of personal data")
DPP4 = _cap486("DPP4(1)", "Security: protected against unauthorised or accidental access")
DPP4_LOCATION = _cap486("DPP4(1)(b)", "Security: the physical location where the data is stored")
DPP4_EQUIPMENT = _cap486(
    "DPP4(1)(c)", "Security: measures incorporated into the equipment that stores the data"
)
DPP4_PERSONS = _cap486(
    "DPP4(1)(d)", "Security: integrity, prudence and competence of persons having access"
)
DPP4_TRANSMISSION = _cap486("DPP4(1)(e)", "Security: secure transmission of the data")
DPP5 = _cap486("DPP5", "Information to be generally available (openness)")
DPP6 = _cap486("DPP6", "Access to personal data (and its correction)")
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
    (ISO_LEGISLATION, ISO_PII, DPP4_LOCATION, S33),
)

KEY_ENABLED = Control("key-enabled", "KMS keys are enabled", (ISO_KEY_MANAGEMENT, DPP4))
KEY_ROTATION = Control(
    "key-rotation",
    "Symmetric KMS keys rotate automatically, at least yearly",
    (ISO_KEY_MANAGEMENT, DPP4_EQUIPMENT, CIS_KEY_ROTATION),
)
KEY_SPEC = Control(
    "key-spec",
    "KMS keys have the declared spec and usage",
    (ISO_CRYPTO_POLICY, ISO_KEY_MANAGEMENT, DPP4_EQUIPMENT),
)
KEY_POLICY_ROOT_ADMIN_ONLY = Control(
    "key-policy-root-admin-only",
    "Key policies give the account root administration only, no cryptographic use",
    (ISO_KEY_MANAGEMENT, ISO_PRIVILEGED_ACCESS, DPP4_PERSONS),
)

BUCKET_ENCRYPTION = Control(
    "bucket-encryption",
    "S3 buckets default to SSE-KMS under a customer-managed key (SSE-S3 on the access-log "
    "bucket only)",
    (ISO_CRYPTO_POLICY, ISO_KEY_MANAGEMENT, ISO_PII, DPP4_EQUIPMENT),
)
BUCKET_VERSIONING = Control(
    "bucket-versioning",
    "S3 buckets keep versions",
    (ISO_BACKUP, ISO_RECORDS, DPP4_EQUIPMENT),
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
    (ISO_TRANSFER, ISO_NETWORK_SERVICES, ISO_CRYPTO_POLICY, DPP4_TRANSMISSION, CIS_S3_DENY_HTTP),
)
BUCKET_SSE_KMS_PUTS = Control(
    "bucket-sse-kms-puts",
    "The shard bucket refuses puts that are not SSE-KMS under the records key",
    (ISO_CRYPTO_POLICY, ISO_PII, DPP4_EQUIPMENT),
)
BUCKET_ACCESS_LOGGING = Control(
    "bucket-access-logging",
    "S3 buckets log server access to the access-log bucket",
    (ISO_EVENT_LOGGING, DPP4_PERSONS, CIS_TRAIL_BUCKET_LOGGING),
)
AUDIT_BUCKET_OBJECT_LOCK = Control(
    "audit-bucket-object-lock",
    "The trail bucket locks objects in COMPLIANCE mode for the audit retention",
    (ISO_LOG_PROTECTION, ISO_RECORDS, DPP2, DPP4_PERSONS),
)
AUDIT_BUCKET_LIFECYCLE = Control(
    "audit-bucket-lifecycle",
    "The trail bucket's lifecycle expires objects only after the audit retention, expires "
    "noncurrent versions and aborts abandoned uploads",
    (ISO_LOG_PROTECTION, ISO_RECORDS, DPP2, DPP4),
)

TRAIL_LOGGING = Control(
    "trail-logging",
    "CloudTrail is logging",
    (ISO_EVENT_LOGGING, DPP4_PERSONS, CIS_TRAIL_ALL_REGIONS),
)
TRAIL_ALL_REGIONS = Control(
    "trail-all-regions",
    "CloudTrail is multi-region and records global service events",
    (ISO_EVENT_LOGGING, ISO_ADMIN_LOGS, DPP4_PERSONS, CIS_TRAIL_ALL_REGIONS),
)
TRAIL_MANAGEMENT_EVENTS = Control(
    "trail-management-events",
    "CloudTrail records every management event, reads and writes",
    (ISO_EVENT_LOGGING, ISO_ADMIN_LOGS, DPP4_PERSONS, CIS_TRAIL_ALL_REGIONS),
)
TRAIL_LOG_FILE_VALIDATION = Control(
    "trail-log-file-validation",
    "CloudTrail validates its log files",
    (ISO_LOG_PROTECTION, DPP4_PERSONS, CIS_TRAIL_VALIDATION),
)
TRAIL_ENCRYPTION = Control(
    "trail-encryption",
    "CloudTrail logs are encrypted with a customer-managed KMS key",
    (ISO_LOG_PROTECTION, ISO_CRYPTO_POLICY, DPP4_EQUIPMENT, CIS_TRAIL_KMS),
)
TRAIL_DATA_EVENTS = Control(
    "trail-data-events",
    "CloudTrail records data events (reads and writes) on the data stores",
    (ISO_EVENT_LOGGING, DPP3, DPP4_PERSONS, CIS_S3_WRITE_EVENTS, CIS_S3_READ_EVENTS),
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
    (ISO_CRYPTO_POLICY, ISO_KEY_MANAGEMENT, ISO_PII, DPP4_EQUIPMENT),
)
TABLE_POINT_IN_TIME_RECOVERY = Control(
    "table-point-in-time-recovery",
    "DynamoDB tables have point-in-time recovery",
    (ISO_BACKUP, ISO_RECORDS, DPP4_EQUIPMENT, FSBP_DYNAMODB_PITR),
)
BACKUP_PLAN_COVERAGE = Control(
    "backup-plan-coverage",
    "An AWS Backup vault under a customer key with a vault lock, and a plan backing up "
    "every table, the record and audit buckets and messaging's database and media bucket "
    "for each data class's retention",
    (ISO_BACKUP, ISO_RECORDS, ISO_KEY_MANAGEMENT, DPP2, DPP4_EQUIPMENT),
)
TABLE_DELETION_PROTECTION = Control(
    "table-deletion-protection",
    "DynamoDB tables have deletion protection",
    (ISO_RECORDS, DPP4_EQUIPMENT, FSBP_DYNAMODB_DELETION),
)

MFA_REQUIRED = Control(
    "mfa-required",
    "Cognito requires MFA of every user",
    (ISO_SECURE_LOGON, ISO_SECRET_AUTHENTICATION, DPP4_PERSONS),
)
APP_CLIENT_SIGN_IN = Control(
    "app-client-sign-in",
    "Cognito app clients sign in with SRP or refresh only, access tokens at most 15 minutes",
    (ISO_SECURE_LOGON, ISO_SECRET_AUTHENTICATION, DPP4_PERSONS),
)
PASSWORD_POLICY = Control(
    "password-policy",
    "Cognito passwords meet the baseline",
    (ISO_PASSWORDS, DPP4_PERSONS),
)
REGISTRATION_ATTRIBUTES = Control(
    "registration-attributes",
    "Cognito carries the registration attributes, the registration number immutable",
    (ISO_USER_ACCESS, DPP4_PERSONS),
)
COGNITO_ROLE_GROUPS = Control(
    "role-groups",
    "Cognito has exactly the platform's role groups",
    (ISO_USER_ACCESS, ISO_PRIVILEGED_ACCESS, DPP4_PERSONS),
)
FEDERATION = Control(
    "federation",
    "Federated identity providers are the phase's, and only those",
    (ISO_USER_ACCESS, ISO_SECURE_LOGON, DPP4_PERSONS),
)
GRANTING_ATTRIBUTES_NOT_USER_WRITABLE = Control(
    "granting-attributes-not-user-writable",
    "No Cognito app client lets its users write an attribute that grants anything "
    "(registration number, institution, specialty, roles)",
    (ISO_ACCESS_PROVISIONING, ISO_PRIVILEGED_ACCESS, DPP4_PERSONS),
)
INTAKE_CLIENT_CREDENTIALS_ONLY = Control(
    "intake-client-credentials-only",
    "Community-care intake: the intake scope is defined by its resource server and granted "
    "only to the clinic systems' confidential clients, which have the client-credentials "
    "flow and nothing else",
    (ISO_USER_ACCESS, ISO_ACCESS_PROVISIONING, DPP4),
)
PROVIDERS_RELEASE_PLACEMENT = Control(
    "providers-release-placement",
    "Each identity provider releases what placing its users needs, through an app client "
    "allowed to write it",
    (ISO_USER_REGISTRATION, ISO_ACCESS_PROVISIONING, DPP4_PERSONS),
)
REGISTRATION_TRIGGERS = Control(
    "registration-triggers",
    "Sign-ups are checked against the register and tokens get claims by the stack's triggers",
    (ISO_USER_REGISTRATION, ISO_USER_ACCESS, DPP4_PERSONS),
)
THREAT_PROTECTION = Control(
    "threat-protection",
    "Cognito threat protection is enforced",
    (ISO_SECURE_LOGON, DPP4),
)

API_TLS13_ONLY = Control(
    "api-tls13-only",
    "The API accepts TLS 1.3 only",
    (
        ISO_TRANSFER,
        ISO_NETWORK_SERVICES,
        ISO_PUBLIC_NETWORK_SERVICES,
        ISO_TRANSACTIONS,
        DPP4_TRANSMISSION,
    ),
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
    (ISO_NETWORK_SERVICES, ISO_AVAILABILITY),
)
API_NO_DATA_TRACE = Control(
    "api-no-data-trace",
    "The API never logs request or response bodies",
    (ISO_EVENT_LOGGING, ISO_PII, DPP2, DPP4),
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
    (ISO_EVENT_LOGGING, ISO_LOG_PROTECTION, DPP2, DPP4_EQUIPMENT),
)

AUDIT_LEDGER_INTEGRITY = Control(
    "audit-ledger-integrity",
    "The audit ledger verifies against its signed tree heads: no entry modified, deleted, "
    "reordered or forked",
    (ISO_EVENT_LOGGING, ISO_LOG_PROTECTION, ISO_RECORDS, DPP3, DPP4_PERSONS),
)

# --- messaging (infra/components/messaging.py) -------------------------------------------------

DATABASE_ENCRYPTION = Control(
    "database-encryption",
    "The homeserver's database is encrypted at rest under the messaging CMK",
    (ISO_CRYPTO_POLICY, ISO_KEY_MANAGEMENT, ISO_PII, DPP4_EQUIPMENT, FSBP_RDS_ENCRYPTION),
)
DATABASE_NOT_PUBLIC = Control(
    "database-not-public",
    "The homeserver's database is not publicly accessible",
    (ISO_NETWORK_CONTROLS, ISO_ACCESS_RESTRICTION, DPP4, FSBP_RDS_PUBLIC),
)
DATABASE_TLS_ONLY = Control(
    "database-tls-only",
    "The homeserver's database refuses connections without TLS (rds.force_ssl)",
    (ISO_TRANSFER, ISO_NETWORK_SERVICES, ISO_CRYPTO_POLICY, DPP4_TRANSMISSION),
)
LOAD_BALANCER_TLS13_ONLY = Control(
    "load-balancer-tls13-only",
    "The messaging load balancers listen on HTTPS with a TLS 1.3-only policy",
    (
        ISO_TRANSFER,
        ISO_PUBLIC_NETWORK_SERVICES,
        ISO_CRYPTO_POLICY,
        DPP4_TRANSMISSION,
        FSBP_ELB_TLS_POLICY,
    ),
)
HOMESERVER_FEDERATION_CLOSED = Control(
    "homeserver-federation-closed",
    "The homeserver federates with no other server and takes no open registration",
    # Federation would copy rooms' messages to servers the hub does not run, wherever they
    # are (a disclosure, a location, a transfer); open registration would give accounts to
    # people the hub never registered as doctors.
    (
        ISO_NETWORK_CONTROLS,
        ISO_TRANSFER,
        ISO_USER_REGISTRATION,
        ISO_PII,
        DPP3,
        DPP4_LOCATION,
        DPP4_PERSONS,
        S33,
    ),
)

CONTROLS: tuple[Control, ...] = tuple(
    value for value in dict(globals()).values() if isinstance(value, Control)
)


# Where the project meets the principles that no deployment check can evidence: a report
# says this under the principle instead of leaving it blank or padding it with checks.
BEYOND_DEPLOYMENT: dict[Requirement, str] = {
    DPP1: (
        "Collection is the service's: a referral or share names its legal basis (referral "
        "for care with the patient informed or consenting, or emergency), decided by Cedar "
        "policies and refused without one (docs/referrals.md; tests/app/referrals)."
    ),
    DPP3: (
        "Use is limited to the patient's consultation group, decided per request by Cedar "
        "(tests/app/test_authorization_matrix.py); the checks below evidence that every use "
        "is recorded, the record cannot be rewritten unnoticed and the homeserver discloses "
        "no message to a server outside the hub."
    ),
    DPP5: (
        "Openness is organisational (the privacy policy statement); this deployment "
        "publishes its API document (docs/api.md) and its controls (this report)."
    ),
    DPP6: (
        "Data access requests are answered from the audit ledger's export and the records "
        "service (hub audit export); no deployment setting evidences it."
    ),
}


def requirements_of(controls: Iterable[Control]) -> tuple[Requirement, ...]:
    """The requirements ``controls`` evidence, each once, by framework in its clause order."""
    wanted = {r for control in controls for r in control.requirements}
    return tuple(sorted(wanted, key=Requirement.sort_key))
