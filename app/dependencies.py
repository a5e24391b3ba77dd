"""The composition root: builds every service object from settings, once per app.

AWS clients are created here, when the app is created, never at import time; tests
pass their own clients and clock. :func:`app.main.create_app` registers the built
services for the routes (:mod:`app.wiring`); no domain imports this module, which sits
above every domain in the import contract (``[tool.importlinter]`` in pyproject.toml).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.access.auth import Authentication
from app.access.engine import Authorizer
from app.access.gate import AccessGate
from app.audit.events import TransactionalAuditTrail
from app.audit.hash_key import load_or_create_audit_hash_key
from app.breakglass.repository import BreakGlassRepository
from app.breakglass.service import BreakGlassService
from app.consent.repository import DynamoConsentRepository
from app.groups.repository import GroupRepository
from app.groups.service import GroupService
from app.identity.directory import DoctorDirectory
from app.identity.principal import Authenticator, CognitoProfiles, TtlCache
from app.identity.register import RegisterStore
from app.identity.tokens import AccessTokenVerifier, JwksSource, MachineTokenVerifier
from app.institutions.repository import InstitutionRepository
from app.institutions.service import OPERATOR_CHANNEL, InstitutionService
from app.intake.auth import IntakeAuthentication
from app.intake.scopes import INTAKE_WRITE_SCOPE
from app.intake.service import IntakeService
from app.ledger.service import Ledger, build_ledger
from app.ledger.store import LedgerTable
from app.ledger.trail import LedgerTrail
from app.messaging.audit import RoomLedger
from app.messaging.service import DriftReport, RoomAuthority, log_drift
from app.messaging.sessions import MessagingSessions
from app.metrics.service import MetricsService
from app.notifications.cards import HubDevice
from app.notifications.channels import CognitoContacts, SnsNotifier
from app.notifications.handlers import MEMBERSHIP_DRIFT, OutboxHandlers
from app.notifications.preferences import NotificationPreferences
from app.notifications.service import NotificationService
from app.outbox import DeadLetters, OutboxDispatcher, outbox_item, put_outbox_item
from app.patient_consent.service import ConsentService
from app.patient_index.service import PatientIndexService, derived_index_key
from app.patients.index_key import load_or_create_index_key
from app.patients.repository import DynamoPatientIndexRepository
from app.records.service import RecordService, build_record_service
from app.referrals.repository import ReferralRepository
from app.referrals.sealing import ReferralSealer
from app.referrals.service import ReferralService
from app.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    authenticator: Authenticator
    authentication: Authentication
    gate: AccessGate
    groups: GroupService
    break_glass: BreakGlassService
    directory: DoctorDirectory
    register: RegisterStore
    institutions: InstitutionService
    audit: TransactionalAuditTrail
    ledger: Ledger
    enrolled: TtlCache[tuple[str, str, tuple[str, ...]], bool]
    patients: PatientIndexService
    notifications: NotificationService
    dispatcher: OutboxDispatcher
    consents: ConsentService
    intake_authentication: IntakeAuthentication
    intake: IntakeService | None = None
    metrics: MetricsService | None = None
    records: RecordService | None = None
    referrals: ReferralService | None = None
    rooms: RoomAuthority | None = None
    room_ledger: RoomLedger | None = None
    messaging: MessagingSessions | None = None
    # The hub's record-card device (the dispatcher's); closed with the services.
    hub_device: HubDevice | None = None

    def close(self) -> None:
        """Release what holds connections open (the record-card device)."""
        if self.hub_device is not None:
            self.hub_device.close()


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
    homeserver_transport: Any = None,
    dead_letters: DeadLetters | None = None,
) -> Services:
    """Every service of the app from ``settings``.

    Args:
        homeserver_transport: an ``httpx`` transport for the homeserver client (tests
            script the homeserver with it).
        dead_letters: where the outbox dispatcher dead-letters (default: the SQS queue
            of ``HUB_OUTBOX_DEAD_LETTER_QUEUE_URL``, else the log).
    """
    import boto3

    session = session or boto3.session.Session(region_name="ap-east-1")

    from app.ledger.store import PARALLEL_WRITES

    # Bounded retries (Settings.aws_config), as the record service's clients have: the
    # legacy default would let one DynamoDB call back off for ~25 s inside a request.
    bounded = settings.aws_config()
    # The sequencer writes a batch's nodes and index rows PARALLEL_WRITES at a time.
    dynamodb_client = session.client(
        "dynamodb",
        region_name="ap-east-1",
        config=settings.aws_config(max_pool_connections=PARALLEL_WRITES + 8),
    )
    dynamodb = session.resource("dynamodb", region_name="ap-east-1")
    cognito = session.client("cognito-idp", region_name="ap-east-1")

    register = RegisterStore(dynamodb.Table(settings.table_register))
    directory = DoctorDirectory(dynamodb.Table(settings.table_groups))
    affiliations = InstitutionRepository(dynamodb_client, settings.table_institutions)
    repository = GroupRepository(dynamodb_client, settings.table_groups)
    ledger = build_ledger(
        dynamodb_client,
        settings.table_ledger,
        kms=session.client("kms", region_name="ap-east-1", config=bounded),
        s3=session.client("s3", region_name="ap-east-1", config=bounded),
        signing_key_arn=settings.signing_key_arn,
        checkpoint_bucket=settings.checkpoint_bucket,
        origin=settings.stack,
        trails=settings.ledger_trails,
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
    index_repository = DynamoPatientIndexRepository(dynamodb_client, settings.table_patients)
    index_key = _index_key(settings, session, dynamodb_client, hash_key)
    patients = PatientIndexService(index_repository, gate, audit, index_key, hash_key, clock)
    # Consents live in the patients table under their own key prefix (CONSENT#).
    consents = ConsentService(
        DynamoConsentRepository(dynamodb_client, settings.table_patients),
        index_repository,
        gate,
        audit,
        index_key,
        hash_key,
        clock,
    )
    break_glass = BreakGlassService(
        BreakGlassRepository(dynamodb_client, settings.table_groups),
        gate,
        audit,
        hash_key,
        clock,
        settings.break_glass_max_minutes,
    )
    verifier = AccessTokenVerifier(
        issuer=settings.cognito_issuer,
        client_id=settings.cognito_client_id,
        other_client_ids=[settings.cognito_federated_client_id],
        # The layers' clients (phase 2's federated one), asked of the switches for a
        # token from any other client: refused again once the layer is removed.
        layer_client_ids=lambda: affiliations.switches().client_ids,
        jwks=JwksSource(settings.jwks_url(), fetch=jwks_fetch),
        leeway=settings.token_leeway_seconds,
        clock=token_clock,
        max_age=settings.max_token_age_seconds,
    )
    authenticator = Authenticator(
        verifier=verifier,
        profiles=CognitoProfiles(cognito, settings.cognito_user_pool_id),
        register=register,
        affiliations=affiliations,
        cache_seconds=settings.registration_cache_seconds,
        clock=monotonic,
    )
    rooms, room_ledger, messaging = None, None, None
    if settings.messaging_enabled:
        from app.messaging.wiring import build_room_authority

        def drift_alarm(report: DriftReport) -> None:
            log_drift(report)
            drift = report.drift
            payload = {
                "room_id": drift.room_id,
                "user_id": drift.user_id,
                "drift": drift.kind.value,
                "repair": drift.repair.value,
                "repaired": "yes" if report.repaired else "no",
            }
            if drift.group_id:
                payload["group_id"] = drift.group_id
            put_outbox_item(
                dynamodb_client,
                settings.table_groups,
                outbox_item(MEMBERSHIP_DRIFT, clock(), payload),
            )

        rooms = build_room_authority(
            settings,
            dynamodb_client,
            secrets=(aws_clients or {}).get("secretsmanager")
            or (
                session.client("secretsmanager", region_name="ap-east-1")
                if settings.matrix_appservice_secret_arn
                else None
            ),
            transport=homeserver_transport,
            on_drift=drift_alarm,
        )
        room_ledger = RoomLedger(
            audit,
            rooms.directory,
            rooms.names,
            marker_table=settings.table_groups,
            phase=settings.phase,
            clock=clock,
        )
        rooms.set_event_observer(room_ledger)
        messaging = MessagingSessions(rooms, gate, clock)
    # Referrals live in the groups table; their emergency basis is asked by group reads.
    referral_repository = ReferralRepository(dynamodb_client, settings.table_groups)
    groups = GroupService(
        repository,
        gate,
        audit,
        directory,
        register,
        break_glass,
        affiliations,
        hash_key,
        clock,
        patients=patients,
        rooms=rooms,
        consents=consents,
        emergency=referral_repository,
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
            patients=patients,
            consents=consents,
            emergency=referral_repository,
        )
    referrals = None
    if settings.records_key_arn:
        # The clinical question is sealed under the records key (app/referrals/sealing.py).
        from app.crypto.envelope import ShardedEnvelope
        from app.crypto.kms import KmsDataKeyProvider

        kms = (aws_clients or {}).get("kms") or session.client("kms", region_name="ap-east-1")
        referrals = ReferralService(
            referral_repository,
            groups,
            repository,
            records,
            gate,
            audit,
            ReferralSealer(ShardedEnvelope(KmsDataKeyProvider(kms, settings.records_key_arn))),
            directory,
            register,
            # Admission, asked in one place: the institutions table, read now (the same
            # the authenticator reads on every request).
            affiliations.admitted,
            hash_key,
            clock,
            patients=patients,
            consents=consents,
        )
    institutions = InstitutionService(
        affiliations,
        gate,
        audit,
        register,
        clock,
        phase=settings.phase,
        self_registration=settings.self_registration,
        switches=affiliations.switches,
    )
    enrolled: TtlCache[tuple[str, str, tuple[str, ...]], bool] = TtlCache(
        settings.registration_cache_seconds, monotonic
    )
    preferences = NotificationPreferences(dynamodb_client, settings.table_groups)
    contacts = CognitoContacts(cognito, settings.cognito_user_pool_id)
    notifier = None
    if settings.notification_topic_arn and settings.security_topic_arn:
        notifier = SnsNotifier(
            (aws_clients or {}).get("sns") or session.client("sns", region_name="ap-east-1"),
            notification_topic_arn=settings.notification_topic_arn,
            security_topic_arn=settings.security_topic_arn,
        )
    hub_device = None
    if rooms is not None:
        import tempfile
        from pathlib import Path

        # A deployment's function keeps its device while its execution environment
        # lives (a new environment: a new device, see app/notifications/cards.py).
        store = settings.messaging_bot_store or str(Path(tempfile.gettempdir()) / "hub-device")
        hub_device = HubDevice(rooms, Path(store))
    dispatcher = _build_dispatcher(
        settings,
        session,
        aws_clients or {},
        groups=groups,
        repository=repository,
        directory=directory,
        preferences=preferences,
        contacts=contacts,
        notifier=notifier,
        rooms=rooms,
        device=hub_device,
        records=records,
        clock=clock,
        dead_letters=dead_letters,
    )
    # Community-care intake (phase 2's clinic systems): client-credentials tokens of the
    # same pool with the intake scope, mapped to institutions in the institutions table.
    intake_authentication = IntakeAuthentication(
        MachineTokenVerifier(
            issuer=settings.cognito_issuer,
            required_scope=INTAKE_WRITE_SCOPE,
            jwks=JwksSource(settings.jwks_url(), fetch=jwks_fetch),
            leeway=settings.token_leeway_seconds,
            clock=token_clock,
            max_age=settings.max_token_age_seconds,
        ),
        affiliations,
        gate,
    )
    return Services(
        intake_authentication=intake_authentication,
        intake=IntakeService(patients, records) if records is not None else None,
        hub_device=hub_device,
        notifications=NotificationService(
            preferences, gate, clock, notifier=notifier, contacts=contacts
        ),
        dispatcher=dispatcher,
        rooms=rooms,
        room_ledger=room_ledger,
        messaging=messaging,
        records=records,
        referrals=referrals,
        metrics=MetricsService(ledger, gate),
        settings=settings,
        authenticator=authenticator,
        authentication=Authentication(authenticator, gate, directory, enrolled),
        gate=gate,
        groups=groups,
        break_glass=break_glass,
        directory=directory,
        register=register,
        institutions=institutions,
        audit=audit,
        ledger=ledger,
        enrolled=enrolled,
        patients=patients,
        consents=consents,
    )


# The operator channel's ledger trail. The service picks an actor's trail with
# app.ledger.trail.trail_for (a stable hash of the actor, modulo the service's trail
# count) so that load spreads over many actors; the operator is one actor (OPERATOR),
# writing a few entries a day, so the hash has nothing to spread. Trail 0 gives what the
# hash gives one actor, and more: all the operator's entries in one gap-free sequence,
# in order, whatever hub:ledgerTrails was or becomes (the hash would move them when it
# changes); and it is the one trail every ledger has and every service integrates and
# signs (one trail, before the first ledger checkpoint, after the trails are lowered).
# The hash would also need the service's trail count, which this channel is not given
# (a checkpoint lists the trails that exist, not how many the service writes to): with a
# stale count the entries would land on a trail no sequencer integrates, never signed.
OPERATOR_TRAIL = 0


def build_operator_institutions(
    dynamodb_client: Any,
    register: Any,
    *,
    institutions_table: str,
    ledger_table: str,
    phase: int,
    clock: Callable[[], datetime] = utc_now,
) -> InstitutionService:
    """The institutions service as the operator CLI and deploy-time seeding use it: the
    operator channel, acting as :data:`app.institutions.service.OPERATOR`, auditing into
    the deployment's ledger (entries are integrated and signed by the service's
    sequencer, as any other), on trail :data:`OPERATOR_TRAIL`."""
    trail = LedgerTrail(LedgerTable(dynamodb_client, ledger_table, OPERATOR_TRAIL))
    gate = AccessGate(Authorizer(), trail, clock)
    return InstitutionService(
        InstitutionRepository(dynamodb_client, institutions_table),
        gate,
        trail,
        register,
        clock,
        phase=phase,
        self_registration=False,
        channel=OPERATOR_CHANNEL,
    )


def _index_key(settings: Settings, session: Any, dynamodb: Any, hash_key: bytes) -> bytes:
    """The patient index key: sealed by the audit CMK in the patients table when the
    deployment seals its audit key with KMS, else derived from the configured secret."""
    if not settings.table_patients:
        raise ValueError("HUB_TABLE_PATIENTS is required: groups name indexed patients")
    if settings.uses_sealed_audit_hash_key():
        return load_or_create_index_key(
            dynamodb,
            session.client("kms", region_name="ap-east-1"),
            settings.table_patients,
            settings.audit_key_arn,
        )
    return derived_index_key(hash_key)


def _build_dispatcher(
    settings: Settings,
    session: Any,
    aws_clients: Mapping[str, Any],
    *,
    groups: GroupService,
    repository: GroupRepository,
    directory: DoctorDirectory,
    preferences: NotificationPreferences,
    contacts: CognitoContacts,
    notifier: SnsNotifier | None,
    rooms: RoomAuthority | None,
    device: HubDevice | None,
    records: RecordService | None,
    clock: Callable[[], datetime],
    dead_letters: DeadLetters | None,
) -> OutboxDispatcher:
    """The outbox dispatcher over the groups table, with a handler for every kind."""
    from app.groups.membership import MembershipState
    from app.outbox import SqsDeadLetters

    def still_invited(group_id: str, reg_no: str) -> bool:
        loaded = repository.load(group_id)
        if loaded is None:
            return False
        group, memberships = loaded
        mine = next((m for m in memberships if m.reg_no == reg_no), None)
        return (
            group.status.value == "open"
            and mine is not None
            and (mine.state is MembershipState.INVITED)
        )

    handlers = OutboxHandlers(
        notifier=notifier,
        preferences=preferences,
        directory=directory,
        contacts=contacts,
        groups=groups,
        still_invited=still_invited,
        rooms=rooms,
        device=device,
        records=records.card_facts if records is not None else None,
        online_window_s=settings.messaging_online_window_seconds,
        clock=clock,
    )
    if dead_letters is None and settings.outbox_dead_letter_queue_url:
        sqs = aws_clients.get("sqs") or session.client("sqs", region_name="ap-east-1")
        dead_letters = SqsDeadLetters(sqs, settings.outbox_dead_letter_queue_url)
    return OutboxDispatcher(
        repository.outbox_store(),
        handlers.handlers(),
        dead_letters or _LoggedDeadLetters(),
        max_attempts=settings.outbox_max_attempts,
        retry_base_seconds=settings.outbox_retry_base_seconds,
        clock=clock,
        on_dead=handlers.dead_lettered if notifier is not None else None,
    )


class _LoggedDeadLetters:
    """Without a dead-letter queue (local mode): the item stays ``dead`` in the table and a
    warning names it."""

    def send(self, item: Mapping[str, Any], error: str) -> None:
        import logging

        logging.getLogger(__name__).warning(
            "outbox item %s (%s) dead-lettered: %s", item.get("sk"), item.get("kind"), error
        )
