"""The homeserver configuration the project generates for Synapse (pure: no files, no I/O).

:func:`homeserver_config` turns a :class:`HomeserverSettings` into Synapse's
``homeserver.yaml`` as a dict. Whatever the settings, the result guarantees:

- **closed federation**: no ``federation`` listener resource, so no other server can
  reach this one; ``federation_domain_whitelist: []``, so Synapse refuses to send to or
  accept from any remote server; no trusted key servers; rooms never published over
  federation;
- **no open registration**: ``enable_registration: false``, no registration shared
  secret, no guest access; accounts are created only by the hub's application service
  in its exclusive namespace (:mod:`app.messaging.appservice`);
- **no public room directory** and no alias creation by users (the application service is
  exempt: it owns the ``#grp-`` aliases);
- **rooms and invitations only from the hub**: the policy module
  (:mod:`app.messaging.synapse_policy`) refuses room creation and invitations by anyone
  but the hub's user, and all third-party invitations;
- **no unrecorded upload**: the policy module reports every media upload to the hub's
  application service (the first registration file names where, and the homeserver's
  token) and refuses it unless the hub recorded it;
- **encrypted rooms**: every new room gets ``m.room.encryption`` (Megolm) whoever creates
  it, as well as the hub's own explicit initial state;
- **no outbound connections**: no URL previews, no push gateways, no phone-home
  statistics, no key server, no metrics listener; profile and user directory lookups
  limited to users who share a room;
- **media retention**: local media expires after ``media_retention_days`` (clinical
  content belongs in the hub's record store, not in chat uploads);
- **media on S3 only where asked**: the media store is the data directory unless the
  settings name an :class:`EmulatedMediaBucket` (the restore drill: the provider the
  deployment uses, against the emulator's S3 on loopback, so no outbound connection);
- **rate limits** from one of two profiles: ``standard`` (Synapse's defaults, tightened
  for login and registration) or ``test`` (high limits for benchmarks and tests on
  loopback only; :class:`HomeserverSettings` refuses it on a non-loopback listener).

TLS: locally the listener is plain HTTP on loopback; in AWS the load balancer terminates
TLS 1.3 in front of the homeserver (declared by the infrastructure, not here).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from app.messaging.identifiers import MatrixNames

RateLimitProfile = Literal["standard", "test"]
DEFAULT_SERVER_NAME = "hub.local"
SIGNING_KEY_ID = "a_hub"
POLICY_MODULE = "app.messaging.synapse_policy.HubRoomPolicy"
_SECRET = re.compile(r"^[A-Za-z0-9_\-]{32,}$")


class InvalidHomeserverSettings(ValueError):
    """A homeserver setting that would weaken the guarantees in this module's docstring."""


@dataclass(frozen=True)
class EmulatedMediaBucket:
    """Media in an S3 bucket of the emulator, through ``synapse-s3-storage-provider``
    configured as in a deployment (:func:`deployed_homeserver_config`), plus the
    emulator's loopback endpoint and fake credentials. Refuses any other endpoint: a
    local homeserver makes no outbound connection."""

    bucket: str
    region: str
    endpoint_url: str
    access_key_id: str
    secret_access_key: str

    def __post_init__(self) -> None:
        host = urlsplit(self.endpoint_url).hostname or ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise InvalidHomeserverSettings("the emulated media bucket must be on loopback")


@dataclass(frozen=True)
class HomeserverSettings:
    """What varies between homeservers; everything else is fixed by :func:`homeserver_config`.

    ``macaroon_secret_key`` and ``form_secret`` are random secrets (>= 32 URL-safe
    characters) that the caller generates and keeps; ``appservice_files`` are the
    registration files of the application services this homeserver trusts.
    """

    server_name: str
    bind_address: str
    port: int
    public_baseurl: str
    data_dir: Path
    appservice_files: tuple[Path, ...]
    macaroon_secret_key: str
    form_secret: str
    database: Literal["sqlite3"] = "sqlite3"
    media_retention_days: int = 90
    max_upload_size_mb: int = 50
    rate_limits: RateLimitProfile = "standard"
    media_bucket: EmulatedMediaBucket | None = None

    def __post_init__(self) -> None:
        MatrixNames(self.server_name)  # raises on a bad server name
        if not 0 < self.port < 65536:
            raise InvalidHomeserverSettings(f"port out of range: {self.port}")
        try:
            address = ipaddress.ip_address(self.bind_address)
        except ValueError as exc:
            raise InvalidHomeserverSettings("bind_address must be an IP address") from exc
        if self.rate_limits == "test" and not address.is_loopback:
            raise InvalidHomeserverSettings("the test rate limits are for loopback only")
        if not self.public_baseurl.endswith("/"):
            raise InvalidHomeserverSettings("public_baseurl must end with '/'")
        for name in ("macaroon_secret_key", "form_secret"):
            if not _SECRET.fullmatch(getattr(self, name)):
                raise InvalidHomeserverSettings(f"{name} must be >= 32 random URL-safe characters")
        if not self.appservice_files:
            raise InvalidHomeserverSettings("the hub's application service must be registered")
        if not 1 <= self.media_retention_days <= 3650:
            raise InvalidHomeserverSettings("media_retention_days must be within 1..3650")

    @property
    def database_path(self) -> Path:
        return self.data_dir / "homeserver.db"

    @property
    def media_store_path(self) -> Path:
        return self.data_dir / "media"

    @property
    def signing_key_path(self) -> Path:
        return self.data_dir / "signing.key"

    @property
    def log_config_path(self) -> Path:
        return self.data_dir / "log.yaml"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "homeserver.pid"


def signing_key_file_text(seed: bytes) -> str:
    """Synapse's signing key file (``ed25519 <key id> <unpadded base64 seed>``).

    Only events and federation requests are signed with it; with federation closed it
    never leaves the server, but Synapse refuses to start without one.
    """
    if len(seed) != 32:
        raise InvalidHomeserverSettings("an ed25519 seed is 32 bytes")
    return f"ed25519 {SIGNING_KEY_ID} {base64.b64encode(seed).decode().rstrip('=')}\n"


def log_config(level: str = "WARNING") -> dict[str, Any]:
    """Python logging config for Synapse: stderr only, never event content.

    Synapse logs request lines (paths, not bodies) at INFO; the default here is WARNING.
    """
    return {
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "disable_existing_loggers": False,
    }


def _rate_limits(profile: RateLimitProfile) -> dict[str, Any]:
    if profile == "test":
        generous = {"per_second": 1000, "burst_count": 1000}
        return {
            "rc_message": generous,
            "rc_registration": generous,
            "rc_login": {"address": generous, "account": generous, "failed_attempts": generous},
            "rc_joins": {"local": generous, "remote": generous},
            "rc_joins_per_room": generous,
            "rc_invites": {"per_room": generous, "per_user": generous, "per_issuer": generous},
            "rc_admin_redaction": generous,
            "rc_key_requests": generous,
            "rc_room_creation": generous,
            "rc_3pid_validation": generous,
        }
    return {
        # Synapse's defaults, with login attempts held lower: accounts are created and
        # signed in by the hub's application service, which is not rate limited.
        "rc_login": {
            "address": {"per_second": 0.1, "burst_count": 5},
            "account": {"per_second": 0.1, "burst_count": 5},
            "failed_attempts": {"per_second": 0.05, "burst_count": 3},
        },
        "rc_registration": {"per_second": 0.05, "burst_count": 3},
    }


def homeserver_config(settings: HomeserverSettings) -> dict[str, Any]:
    """Synapse's ``homeserver.yaml`` for these settings (see the module docstring)."""
    config: dict[str, Any] = {
        "server_name": settings.server_name,
        "public_baseurl": settings.public_baseurl,
        "pid_file": str(settings.pid_file),
        "report_stats": False,
        "listeners": [
            {
                "port": settings.port,
                "bind_addresses": [settings.bind_address],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                # The client API only: no "federation" (and no "keys", "media" for
                # remote servers), so no other homeserver has anything to talk to.
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {
            "name": settings.database,
            "args": {"database": str(settings.database_path)},
        },
        "log_config": str(settings.log_config_path),
        "media_store_path": str(settings.media_store_path),
        "signing_key_path": str(settings.signing_key_path),
        "macaroon_secret_key": settings.macaroon_secret_key,
        "form_secret": settings.form_secret,
        # Closed federation.
        "federation_domain_whitelist": [],
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "allow_public_rooms_over_federation": False,
        "allow_public_rooms_without_auth": False,
        # Accounts only through the hub's application service.
        "enable_registration": False,
        "allow_guest_access": False,
        "enable_3pid_changes": False,
        "app_service_config_files": [str(path) for path in settings.appservice_files],
        # Only the application service (exempt) creates aliases; no public directory.
        "alias_creation_rules": [{"action": "deny"}],
        "room_list_publication_rules": [{"action": "deny"}],
        "encryption_enabled_by_default_for_room_type": "all",
        # Who knows whom: only people who share a room.
        "user_directory": {"enabled": True, "search_all_users": False},
        "require_auth_for_profile_requests": True,
        "limit_profile_requests_to_users_who_share_rooms": True,
        "include_profile_data_on_invite": False,
        # No outbound connections.
        "url_preview_enabled": False,
        "push": {"enabled": False, "include_content": False},
        "enable_metrics": False,
        "presence": {"enabled": False},
        # Media.
        "enable_media_repo": True,
        "max_upload_size": f"{settings.max_upload_size_mb}M",
        "media_retention": {
            "local_media_lifetime": f"{settings.media_retention_days}d",
            "remote_media_lifetime": "1d",
        },
        "dynamic_thumbnails": False,
        # Nobody is joined to anything the hub did not decide.
        "auto_join_rooms": [],
        "modules": [
            {
                "module": POLICY_MODULE,
                "config": {
                    "hub_user_id": MatrixNames(settings.server_name).hub_user_id,
                    "registration_file": str(settings.appservice_files[0]),
                },
            }
        ],
    }
    config.update(_rate_limits(settings.rate_limits))
    if settings.media_bucket is not None:
        bucket = settings.media_bucket
        config["media_storage_providers"] = [
            _s3_media_provider(
                bucket.bucket,
                bucket.region,
                endpoint_url=bucket.endpoint_url,
                access_key_id=bucket.access_key_id,
                secret_access_key=bucket.secret_access_key,
            )
        ]
    return config


def _s3_media_provider(bucket: str, region: str, **emulator: str) -> dict[str, Any]:
    """``synapse-s3-storage-provider``: every upload written to the bucket before the
    upload is answered (``store_synchronous``), the local store a cache of it."""
    return {
        "module": S3_STORAGE_PROVIDER,
        "store_local": True,
        "store_remote": True,
        "store_synchronous": True,
        "config": {"bucket": bucket, "region_name": region, **emulator},
    }


# -- the deployed homeserver (ECS Fargate, PostgreSQL on RDS, media on S3) -----------------

S3_STORAGE_PROVIDER = "s3_storage_provider.S3StorageProviderBackend"
CONTAINER_PORT = 8008
# Where the homeserver image's entrypoint (app/messaging/container.py) writes the files
# that hold secrets, from Secrets Manager values ECS injects; never in the declared config.
SECRETS_DIR = "/run/hub"
DATA_DIR = "/data"


@dataclass(frozen=True)
class DeployedHomeserver:
    """What varies for the homeserver a deployment runs; no secret is in here.

    The database password comes from ``PGPASSWORD`` (libpq reads it; ECS injects it from
    the RDS-managed secret); the signing key, macaroon and form secrets and the
    application service tokens are files the image's entrypoint writes under
    ``SECRETS_DIR`` from injected secrets.
    """

    server_name: str
    public_baseurl: str
    database_host: str
    database_name: str
    database_user: str
    media_bucket: str
    region: str
    media_retention_days: int = 90
    max_upload_size_mb: int = 50

    def __post_init__(self) -> None:
        MatrixNames(self.server_name)
        if not self.public_baseurl.startswith("https://") or not self.public_baseurl.endswith("/"):
            raise InvalidHomeserverSettings("public_baseurl must be an https URL ending in '/'")
        if not 1 <= self.media_retention_days <= 3650:
            raise InvalidHomeserverSettings("media_retention_days must be within 1..3650")

    @property
    def appservice_file(self) -> str:
        return f"{SECRETS_DIR}/appservice.yaml"


def deployed_homeserver_config(d: DeployedHomeserver) -> dict[str, Any]:
    """``homeserver.yaml`` for a deployment: the same guarantees as :func:`homeserver_config`
    (closed federation, no open registration, the policy module...), plus PostgreSQL over
    TLS (``sslmode: verify-full`` against the RDS certificate bundle in the image), media
    on S3 through ``synapse-s3-storage-provider`` (the bucket encrypts with SSE-KMS by
    default), plain HTTP on the task's port behind the load balancer that terminates TLS
    1.3 (``x_forwarded``: client addresses from the balancer), logs to stdout, and the
    ``standard`` rate limits."""
    local = HomeserverSettings(
        server_name=d.server_name,
        bind_address="0.0.0.0",  # noqa: S104 - the task's own interface, behind the ALB
        port=CONTAINER_PORT,
        public_baseurl=d.public_baseurl,
        data_dir=Path(DATA_DIR),
        appservice_files=(Path(d.appservice_file),),
        macaroon_secret_key="x" * 32,  # replaced by the path below
        form_secret="x" * 32,
        media_retention_days=d.media_retention_days,
        max_upload_size_mb=d.max_upload_size_mb,
    )
    config = homeserver_config(local)
    del config["macaroon_secret_key"], config["form_secret"], config["log_config"]
    config["macaroon_secret_key_path"] = f"{SECRETS_DIR}/macaroon_secret_key"
    config["form_secret_path"] = f"{SECRETS_DIR}/form_secret"
    config["signing_key_path"] = f"{SECRETS_DIR}/signing.key"
    config["pid_file"] = f"{DATA_DIR}/homeserver.pid"
    config["listeners"][0]["x_forwarded"] = True
    config["database"] = {
        "name": "psycopg2",
        "args": {
            "host": d.database_host,
            "dbname": d.database_name,
            "user": d.database_user,
            "sslmode": "verify-full",
            "sslrootcert": "/etc/ssl/certs/rds-global-bundle.pem",
            "cp_min": 2,
            "cp_max": 10,
        },
    }
    config["media_storage_providers"] = [_s3_media_provider(d.media_bucket, d.region)]
    return config


def federation_problems(config: Mapping[str, Any]) -> list[str]:
    """Why a ``homeserver.yaml`` would let other servers federate (empty: closed).

    Closed means: no listener serves the ``federation`` (or ``openid``) resource, the
    federation whitelist is present and empty, no trusted key servers, and public rooms
    are not offered over federation. Fails closed: a missing whitelist is open
    federation (Synapse federates with everyone by default).
    """
    problems: list[str] = []
    listeners = config.get("listeners")
    for listener in listeners if isinstance(listeners, list) else []:
        resources = listener.get("resources", []) if isinstance(listener, Mapping) else []
        names = {n for r in resources if isinstance(r, Mapping) for n in r.get("names", [])}
        served = sorted(names & {"federation", "openid"})
        if served:
            problems.append(f"a listener serves {', '.join(served)}")
    whitelist = config.get("federation_domain_whitelist")
    if whitelist is None:
        problems.append("federation_domain_whitelist is unset (federation with every server)")
    elif whitelist != []:
        problems.append(f"federation_domain_whitelist allows {whitelist}")
    if config.get("trusted_key_servers", [{"server_name": "matrix.org"}]) != []:
        problems.append("trusted_key_servers is not empty (or unset: matrix.org)")
    if config.get("allow_public_rooms_over_federation") is not False:
        problems.append("allow_public_rooms_over_federation is not false")
    if config.get("enable_registration") is not False:
        problems.append("enable_registration is not false")
    return problems
