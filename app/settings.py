"""The sharing service's configuration: one settings class, read from ``HUB_*`` variables.

Guarantees: outside local mode (``HUB_MODE=aws``) the service refuses to start with an
insecure or missing value (no https issuer, no Cognito pool or client, the built-in
audit hashing key, a missing table name, a missing record setting: shard bucket, records
key or records table, a registration cache longer than five minutes, a token leeway over
a minute), rather than start without part of itself. Local mode (``HUB_MODE=local``)
accepts development defaults so ``hub local up`` and the tests need no secrets, and may
run without record storage (the record routes then answer 503).

Messaging (``HUB_MATRIX_*``) is on when ``HUB_MATRIX_HOMESERVER_URL`` is set, and off
otherwise (the messaging routes then answer 503). In local mode the application service
tokens come from the registration file the local platform writes
(``HUB_MATRIX_REGISTRATION_FILE``); outside it only from Secrets Manager
(``HUB_MATRIX_APPSERVICE_SECRET_ARN``), over https.

AWS endpoints are not configured here: boto3 honours ``AWS_ENDPOINT_URL``, so the same
code talks to AWS, moto or LocalStack.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from botocore.config import Config

# Only for local mode; a deployment must set its own (see ``refuse_insecure_defaults``).
LOCAL_AUDIT_HASH_KEY = "local-development-only-audit-hash-key"
MAX_REGISTRATION_CACHE_SECONDS = 300
MAX_TOKEN_LEEWAY_SECONDS = 60
MAX_SHARDS_PER_VERSION = 2048
REGION = "ap-east-1"


class Mode(StrEnum):
    AWS = "aws"
    LOCAL = "local"


class InsecureSettings(ValueError):
    """A setting that is acceptable only in local mode was found in a deployment."""


class Settings(BaseSettings):
    """Everything the service reads from its environment (prefix ``HUB_``)."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore", frozen=True)

    mode: Mode = Mode.AWS
    phase: int = Field(default=1, ge=1, le=3)
    stack: str = "local"
    # Phase 3's self-registration with proof (POST /registrations); the stage's
    # features.selfRegistration. Which institutions are admitted is not configuration:
    # it is data in the institutions table (app/identity/affiliations.py).
    self_registration: bool = False

    table_register: str = ""
    table_groups: str = ""
    table_records: str = ""
    table_ledger: str = ""
    table_institutions: str = ""
    # The patient index (app/patients, app/patient_index; issue 20).
    table_patients: str = ""

    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""
    # The app client federated (identity-provider) users sign in through, where one exists.
    cognito_federated_client_id: str = ""
    # Cognito (and moto) put https://cognito-idp.<region>.amazonaws.com/<pool id> in `iss`.
    cognito_issuer: str = ""
    # Derived when empty: <AWS_ENDPOINT_URL>/<pool>/.well-known/jwks.json on an emulator,
    # else <issuer>/.well-known/jwks.json.
    cognito_jwks_url: str = ""

    shard_bucket: str = ""
    records_key_arn: str = ""
    signing_key_arn: str = ""
    checkpoint_bucket: str = ""
    # Trails the audit ledger spreads entries over (hub:capacity.ledgerTrails; docs/ledger.md):
    # each gap-free with its own tree, one signed ledger checkpoint over all of them.
    ledger_trails: int = Field(default=1, ge=1, le=64)

    # Keys the HMAC that turns patient ids into opaque references in audit events. A
    # deployment leaves it unset and names the audit CMK instead: the key is then generated
    # by KMS once and kept sealed in the ledger table (app/audit/hash_key.py).
    audit_hash_key: SecretStr = SecretStr(LOCAL_AUDIT_HASH_KEY)
    audit_key_arn: str = ""
    registration_cache_seconds: int = Field(default=60, ge=0)
    token_leeway_seconds: int = Field(default=30, ge=0)
    # The app client's declared access-token validity (infra/components/identity.py, 15
    # minutes); the deployment sets it from the declared client. Tokens issued longer ago
    # are refused even while unexpired, whatever lifetime the issuer gave them.
    max_token_age_seconds: int = Field(default=15 * 60, ge=60, le=24 * 3600)
    break_glass_max_minutes: int = Field(default=240, ge=1, le=240)

    # Record storage (app/records). A version's manifest item must stay under DynamoDB's
    # 400 KB item limit, hence the cap on shards per version (see refuse_insecure_defaults).
    max_record_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1)
    shard_size: int = Field(default=1024 * 1024, ge=16, le=64 * 1024 * 1024)
    # Shards a client seals (upload sessions): larger than the service's own, so a GiB is
    # 256 presigned PUTs and 256 HeadObject checks rather than 1024 of each; a client
    # holds about 2 x (2 + parallelism) of them at once.
    client_shard_size: int = Field(default=4 * 1024 * 1024, ge=16, le=64 * 1024 * 1024)
    upload_parallelism: int = Field(default=8, ge=1, le=32)
    orphan_grace_seconds: int = Field(default=6 * 3600, ge=0)
    # Attempts per AWS call (first try included), for every client the service makes
    # (aws_config): botocore's legacy default gives DynamoDB 10 attempts, up to ~25 s of
    # backoff, beyond what a request may spend under API Gateway's 29 s.
    aws_max_attempts: int = Field(default=5, ge=1, le=10)
    # Content the service itself receives or sends in one request (POST .../records,
    # GET .../content) stays within what API Gateway and Lambda carry: a 6 MB synchronous
    # Lambda payload holds 4 MiB of binary once base64-encoded (x 4/3 = 5.6 MB), with room
    # for the event around it. Larger records go through upload sessions and download
    # tickets (sealed and opened on the client, shards straight to and from S3).
    max_inline_record_bytes: int = Field(default=4 * 1024 * 1024, ge=1, le=4 * 1024 * 1024)
    # Presigned shard URLs live this long (PUT and GET). An old URL yields only
    # ciphertext, whose key the service no longer hands to someone it refuses.
    presign_seconds: int = Field(default=300, ge=1, le=900)
    # An upload session must commit this long after it starts; the orphan sweeper never
    # reclaims a session that can still commit (checked below).
    upload_session_seconds: int = Field(default=4 * 3600, ge=60, le=24 * 3600)

    # Messaging (app/messaging): the homeserver the hub governs as room authority.
    # Where the hub calls it with the application service token (empty: messaging off).
    matrix_homeserver_url: str = ""
    # What doctors' clients are told to use (empty: the same as the hub's).
    matrix_client_url: str = ""
    matrix_server_name: str = "hub.local"
    # Where the homeserver pushes transactions (the hub's private application service path).
    matrix_appservice_url: str = ""
    # Local mode: the registration YAML the local platform wrote (holds both tokens).
    matrix_registration_file: str = ""
    # A deployment: a Secrets Manager secret {"as_token": ..., "hs_token": ...}.
    matrix_appservice_secret_arn: str = ""
    matrix_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # A doctor with no Matrix device seen for this long is off-line: their invitations and
    # summons also go out through SNS (email or SMS, their preference).
    messaging_online_window_seconds: int = Field(default=300, ge=0, le=86400)

    # The outbox dispatcher (app/outbox.py, app/notifications).
    notification_topic_arn: str = ""
    security_topic_arn: str = ""
    outbox_dead_letter_queue_url: str = ""
    outbox_max_attempts: int = Field(default=5, ge=1, le=20)
    outbox_retry_base_seconds: int = Field(default=30, ge=0, le=3600)
    # The hub's own device for record cards (local mode: where its keys persist).
    messaging_bot_store: str = ""

    @model_validator(mode="after")
    def refuse_insecure_defaults(self) -> Settings:
        problems: list[str] = []
        if self.registration_cache_seconds > MAX_REGISTRATION_CACHE_SECONDS:
            problems.append(
                f"HUB_REGISTRATION_CACHE_SECONDS must be <= {MAX_REGISTRATION_CACHE_SECONDS}"
            )
        if -(-self.max_record_bytes // self.shard_size) > MAX_SHARDS_PER_VERSION:
            problems.append(
                f"HUB_MAX_RECORD_BYTES / HUB_SHARD_SIZE must be <= {MAX_SHARDS_PER_VERSION} "
                "shards per version (the manifest item must fit DynamoDB's item limit)"
            )
        if -(-self.max_record_bytes // self.client_shard_size) > MAX_SHARDS_PER_VERSION:
            problems.append(
                f"HUB_MAX_RECORD_BYTES / HUB_CLIENT_SHARD_SIZE must be <= "
                f"{MAX_SHARDS_PER_VERSION} shards per version"
            )
        if self.upload_session_seconds + self.presign_seconds > self.orphan_grace_seconds:
            problems.append(
                "HUB_UPLOAD_SESSION_SECONDS + HUB_PRESIGN_SECONDS must be <= "
                "HUB_ORPHAN_GRACE_SECONDS (the sweeper must never reclaim a session that "
                "can still commit)"
            )
        if self.token_leeway_seconds > MAX_TOKEN_LEEWAY_SECONDS:
            problems.append(f"HUB_TOKEN_LEEWAY_SECONDS must be <= {MAX_TOKEN_LEEWAY_SECONDS}")
        if self.mode is Mode.AWS:
            for name in (
                "table_register",
                "table_groups",
                "table_ledger",
                # Institutions, affiliations and enrolments decide who may act at all.
                "table_institutions",
                # Record storage (app/records): a deployment without it would start and
                # answer 503 on every record route instead of failing its deploy.
                "table_records",
                # Groups, records and referrals name patients the index knows.
                "table_patients",
                "shard_bucket",
                "records_key_arn",
                "cognito_user_pool_id",
                "cognito_client_id",
                "cognito_issuer",
                # The audit ledger's tree heads are signed and archived (app/ledger).
                "signing_key_arn",
                "checkpoint_bucket",
            ):
                if not getattr(self, name):
                    problems.append(f"HUB_{name.upper()} is required outside local mode")
            if self.cognito_issuer and not self.cognito_issuer.startswith("https://"):
                problems.append("HUB_COGNITO_ISSUER must be an https URL outside local mode")
            if self.cognito_jwks_url and not self.cognito_jwks_url.startswith("https://"):
                problems.append("HUB_COGNITO_JWKS_URL must be an https URL outside local mode")
            key = self.audit_hash_key.get_secret_value()
            if not self.audit_key_arn and (key == LOCAL_AUDIT_HASH_KEY or len(key) < 32):
                problems.append(
                    "HUB_AUDIT_KEY_ARN (preferred) or HUB_AUDIT_HASH_KEY (a secret of at "
                    "least 32 characters) must be set outside local mode"
                )
            if self.matrix_homeserver_url:
                for name in ("matrix_homeserver_url", "matrix_client_url"):
                    url = getattr(self, name)
                    if url and not url.startswith("https://"):
                        problems.append(
                            f"HUB_{name.upper()} must be an https URL outside local mode"
                        )
                if not self.matrix_appservice_secret_arn:
                    problems.append(
                        "HUB_MATRIX_APPSERVICE_SECRET_ARN is required with messaging outside "
                        "local mode"
                    )
                if self.matrix_registration_file:
                    problems.append(
                        "HUB_MATRIX_REGISTRATION_FILE is for local mode only (tokens come "
                        "from Secrets Manager)"
                    )
        if problems:
            raise InsecureSettings("; ".join(problems))
        return self

    @property
    def messaging_enabled(self) -> bool:
        return bool(self.matrix_homeserver_url)

    def uses_sealed_audit_hash_key(self) -> bool:
        """True when the audit hashing key comes from KMS rather than the environment."""
        key = self.audit_hash_key.get_secret_value()
        return bool(self.audit_key_arn) and (key == LOCAL_AUDIT_HASH_KEY or len(key) < 32)

    def aws_config(self, **options: Any) -> Config:
        """The botocore configuration of the service's AWS clients (``options``: more
        of ``Config``'s, e.g. ``max_pool_connections``). Retries are botocore's
        ``standard`` mode (exponential backoff with jitter, throttling retried) with at
        most ``aws_max_attempts`` attempts, never the legacy mode's per-service defaults."""
        from botocore.config import Config

        return Config(
            retries={"mode": "standard", "total_max_attempts": self.aws_max_attempts}, **options
        )

    def jwks_url(self) -> str:
        if self.cognito_jwks_url:
            return self.cognito_jwks_url
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "").rstrip("/")
        if endpoint:
            return f"{endpoint}/{self.cognito_user_pool_id}/.well-known/jwks.json"
        return f"{self.cognito_issuer.rstrip('/')}/.well-known/jwks.json"
