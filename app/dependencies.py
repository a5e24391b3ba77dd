"""Wiring: builds the service objects from settings and exposes them as FastAPI dependencies.

AWS clients are created here, when the app is created, never at import time; tests
pass their own clients and clock. :data:`CurrentPrincipal` is the one typed dependency
every protected route takes: a missing or bad token is a 401 before the handler runs,
a refused registration or institution a 403 (audited).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.access.breakglass import BreakGlassService
from app.access.engine import Authorizer
from app.access.gate import AccessGate
from app.audit.events import TransactionalAuditTrail
from app.audit.hash_key import load_or_create_audit_hash_key
from app.errors import Forbidden, Unauthenticated
from app.groups.repository import GroupRepository
from app.groups.service import GroupService
from app.identity.directory import DoctorDirectory
from app.identity.principal import (
    Authenticator,
    CognitoProfiles,
    Principal,
    PrincipalRefused,
    TtlCache,
)
from app.identity.register import RegisterStore
from app.identity.tokens import AccessTokenVerifier, InvalidToken, JwksSource
from app.ledger.service import Ledger, build_ledger
from app.records.service import RecordService, build_record_service
from app.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    authenticator: Authenticator
    gate: AccessGate
    groups: GroupService
    break_glass: BreakGlassService
    directory: DoctorDirectory
    register: RegisterStore
    audit: TransactionalAuditTrail
    ledger: Ledger
    enrolled: TtlCache[tuple[str, str, tuple[str, ...]], bool]
    records: RecordService | None = None

    def enrol(self, principal: Principal) -> None:
        """Keep the directory current; at most one write per cache window per doctor."""
        if principal.reg_no is None:
            return
        key = (principal.reg_no, principal.institution, principal.specialties)

        def write(k: tuple[str, str, tuple[str, ...]]) -> bool:
            self.directory.enrol(k[0], principal.username, k[1], k[2])
            return True

        self.enrolled.get(key, write)


def build_services(
    settings: Settings,
    *,
    session: Any = None,
    clock: Callable[[], datetime] = utc_now,
    jwks_fetch: Callable[[str], Mapping[str, Any]] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    token_clock: Callable[[], float] = time.time,
    audit: TransactionalAuditTrail | None = None,
    authorizer: Authorizer | None = None,
    aws_clients: Mapping[str, Any] | None = None,
) -> Services:
    import boto3

    session = session or boto3.session.Session(region_name="ap-east-1")
    dynamodb_client = session.client("dynamodb", region_name="ap-east-1")
    dynamodb = session.resource("dynamodb", region_name="ap-east-1")
    cognito = session.client("cognito-idp", region_name="ap-east-1")

    register = RegisterStore(dynamodb.Table(settings.table_register))
    directory = DoctorDirectory(dynamodb.Table(settings.table_groups))
    repository = GroupRepository(dynamodb_client, settings.table_groups)
    ledger = build_ledger(
        dynamodb_client,
        settings.table_ledger,
        kms=session.client("kms", region_name="ap-east-1"),
        s3=session.client("s3", region_name="ap-east-1"),
        signing_key_arn=settings.signing_key_arn,
        checkpoint_bucket=settings.checkpoint_bucket,
        origin=settings.stack,
    )
    audit = audit or ledger.trail
    gate = AccessGate(authorizer or Authorizer(), audit, clock)
    if settings.uses_sealed_audit_hash_key():
        hash_key = load_or_create_audit_hash_key(
            dynamodb_client,
            session.client("kms", region_name="ap-east-1"),
            settings.table_ledger,
            settings.audit_key_arn,
        )
    else:
        hash_key = settings.audit_hash_key.get_secret_value().encode()
    break_glass = BreakGlassService(
        repository,
        dynamodb_client,
        gate,
        audit,
        hash_key,
        clock,
        settings.break_glass_max_minutes,
    )
    verifier = AccessTokenVerifier(
        issuer=settings.cognito_issuer,
        client_id=settings.cognito_client_id,
        jwks=JwksSource(settings.jwks_url(), fetch=jwks_fetch),
        leeway=settings.token_leeway_seconds,
        clock=token_clock,
    )
    authenticator = Authenticator(
        verifier=verifier,
        profiles=CognitoProfiles(cognito, settings.cognito_user_pool_id),
        register=register,
        admitted_institutions=frozenset(settings.admitted_institutions),
        cache_seconds=settings.registration_cache_seconds,
        clock=monotonic,
    )
    groups = GroupService(
        repository,
        gate,
        audit,
        directory,
        register,
        break_glass,
        settings.admitted_institutions,
        hash_key,
        clock,
    )
    records = None
    if settings.shard_bucket and settings.records_key_arn and settings.table_records:
        records = build_record_service(
            settings,
            session,
            aws_clients or {},
            groups=repository,
            gate=gate,
            audit=audit,
            break_glass=break_glass,
            hash_key=hash_key,
            clock=clock,
        )
    return Services(
        records=records,
        settings=settings,
        authenticator=authenticator,
        gate=gate,
        groups=groups,
        break_glass=break_glass,
        directory=directory,
        register=register,
        audit=audit,
        ledger=ledger,
        enrolled=TtlCache(settings.registration_cache_seconds, monotonic),
    )


_bearer = HTTPBearer(auto_error=False, description="A Cognito access token")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def current_principal(
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated()
    try:
        principal = services.authenticator.authenticate(credentials.credentials)
    except InvalidToken as exc:
        raise Unauthenticated() from exc
    except PrincipalRefused as refused:
        institution = refused.profile.institution if refused.profile else None
        services.gate.refuse_principal(refused.token.sub, refused.reason, institution)
        raise Forbidden(f"Access refused ({refused.reason}).", code=refused.reason) from refused
    services.enrol(principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
ServicesDep = Annotated[Services, Depends(get_services)]
