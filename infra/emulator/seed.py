"""Demo data for the local platform: a synthetic register, the initial cohort and demo
users per phase, all in the one hub (a layer's record names the core's pool and tables).

For each deployed phase: the stage file's initial cohort and identity-provider mappings
go into the hub's ``institutions`` table (:mod:`infra.cohort`, through the institutions
service's operator channel, so each is a ledger entry); the register entries of the
synthetic population go into its ``register`` table; and every active doctor and an
admin per institution (and, for the core, the hub's auditor and platform admin) get a
login in the hub's user pool
(admin APIs, role group, a generated permanent password, no custom attribute: where a
user works and in which role is their enrolment and affiliation in the institutions
table, written through the same operator channel). Only institutions admitted in that
phase are seeded. The demo patients are registered in the phase's patient index
(``patients`` table; by id only, no HKID or MRN, so they need no index key), each with
an indefinite sharing consent for the phase's admitted institutions. Everything is
synthetic (``app.identity.synthetic``); re-seeding resets passwords and never duplicates
users, entries, enrolments or patients.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from app.dependencies import build_operator_institutions
from app.identity.affiliations import IntakeClient, staff_member
from app.identity.register import RegisterStore
from app.identity.synthetic import (
    SyntheticPopulation,
    SyntheticStaff,
    generate_password,
    generate_population,
    register_items,
)
from app.institutions.service import OPERATOR, InstitutionService
from infra.cohort import initial_cohort
from infra.config_source import read_stage_file, stage_from_config
from infra.emulator.provision import Context, error_code
from infra.emulator.record import DeploymentRecord, now_utc

DEMO_EMAIL_DOMAIN = "demo.hub.example"


@dataclass(frozen=True)
class DemoUser:
    stack: str
    username: str
    password: str
    role: str
    institution: str
    mchk_reg_no: str | None = None
    specialty: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SeedResult:
    stack: str
    users: list[DemoUser]
    register_entries: int
    patients: list[dict[str, Any]]


PLATFORM_ADMIN = "platform-admin"


def seed_stack(
    record: DeploymentRecord,
    institutions: list[str],
    ctx: Context,
    *,
    seed: int = 2046,
    hub_staff: bool | None = None,
) -> SeedResult:
    """Seed the initial cohort, write the register entries and create and enrol the demo
    users of one deployed phase.

    A layer's record names the core's pool and tables (it re-exports the core's outputs),
    so a layer seeds into the one hub: ``institutions`` are then the ones its phase adds
    (:func:`infra.emulator.local.layer_cohort_ids`), its population is drawn with its own
    seed (registration numbers and usernames distinct from the core's), and the hub-wide
    staff (the auditor, the platform admin) are the core's alone. ``hub_staff`` overrides
    that (a standalone platform runs one phase as a hub of its own, layer or not).
    """
    stage, _ = stage_from_config(record.stack, read_stage_file(record.stack))
    population = generate_population(institutions, seed=seed + stage.phase - 1)
    tables = record.outputs["tableNames"]
    pool = record.outputs["userPoolId"]
    entries = _write_register(ctx, tables["register"], population)
    operator = _operator(record, ctx, stage.phase)
    operator.seed(OPERATOR, *initial_cohort(stage))
    # Community-care intake: each clinic system's app client submits for one institution,
    # mapped as data through the operator channel (audited), as an operator would.
    for system in record.outputs.get("intakeClients") or []:
        operator.map_intake_client(
            OPERATOR,
            IntakeClient(
                client_id=str(system["clientId"]),
                institution=str(system["institutionId"]),
                system=str(system["name"]),
            ),
        )
    users = []
    cognito = ctx.client("cognito-idp")
    for doctor in population.users():
        attributes = {
            "email": f"{doctor.username}@{DEMO_EMAIL_DOMAIN}",
            "email_verified": "true",
        }
        password = _ensure_user(cognito, pool, doctor.username, attributes, doctor.role)
        _enrol(
            operator,
            cognito,
            pool,
            doctor.username,
            doctor.institution_id,
            doctor.role,
            doctor.reg_no,
        )
        users.append(
            DemoUser(
                record.stack,
                doctor.username,
                password,
                doctor.role,
                doctor.institution_id,
                doctor.reg_no,
                doctor.specialty or None,
            )
        )
    staff_members = [*population.staff]
    if hub_staff is None:
        hub_staff = not stage.is_layer
    if not hub_staff:
        staff_members = [s for s in staff_members if s.role == "institution_admin"]
    elif institutions:
        staff_members.append(SyntheticStaff(PLATFORM_ADMIN, institutions[0], "platform_admin"))
    for staff in staff_members:
        attributes = {
            "email": f"{staff.username}@{DEMO_EMAIL_DOMAIN}",
            "email_verified": "true",
        }
        password = _ensure_user(cognito, pool, staff.username, attributes, staff.role)
        _enrol(operator, cognito, pool, staff.username, staff.institution_id, staff.role, None)
        users.append(
            DemoUser(record.stack, staff.username, password, staff.role, staff.institution_id)
        )
    patients = [asdict(p) for p in population.patients]
    if "patients" in record.outputs["tableNames"]:
        _register_patients(ctx, record.outputs["tableNames"]["patients"], population)
        _consent_patients(
            ctx, record.outputs["tableNames"]["patients"], population, list(institutions)
        )
    return SeedResult(record.stack, users, entries, patients)


def _operator(record: DeploymentRecord, ctx: Context, phase: int) -> InstitutionService:
    import boto3

    tables = record.outputs["tableNames"]
    dynamodb = ctx.client("dynamodb")
    resource = boto3.resource(
        "dynamodb", region_name=ctx.region, endpoint_url=ctx.endpoint_for("dynamodb")
    )
    return build_operator_institutions(
        dynamodb,
        RegisterStore(resource.Table(tables["register"])),
        institutions_table=tables["institutions"],
        ledger_table=tables["ledger"],
        phase=phase,
    )


def _enrol(
    operator: InstitutionService,
    cognito: Any,
    pool: str,
    username: str,
    institution: str,
    role: str,
    reg_no: str | None,
) -> None:
    """Bind the demo account and affiliate it, as an operator would (audited)."""
    user = cognito.admin_get_user(UserPoolId=pool, Username=username)
    sub = next(str(a["Value"]) for a in user["UserAttributes"] if a["Name"] == "sub")
    member = reg_no or staff_member(sub)
    operator.set_affiliation(OPERATOR, institution, member, (role,), bind_sub=sub)


def _write_register(ctx: Context, table: str, population: SyntheticPopulation) -> int:
    ddb = ctx.client("dynamodb")
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    items = register_items(population.doctors, now_utc())
    for start in range(0, len(items), 25):
        batch = [
            {
                "PutRequest": {
                    "Item": {
                        k: serializer.serialize(v) for k, v in item.items() if v not in ("", [])
                    }
                }
            }
            for item in items[start : start + 25]
        ]
        pending: dict[str, Any] = {table: batch}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return len(items)


def _register_patients(ctx: Context, table: str, population: SyntheticPopulation) -> None:
    """Register every demo patient not yet in the index (groups name indexed patients)."""
    from datetime import UTC, datetime

    from app.patients.index import register_patient
    from app.patients.repository import DynamoPatientIndexRepository

    repository = DynamoPatientIndexRepository(ctx.client("dynamodb"), table)
    index = repository.load()
    events = []
    for patient in population.patients:
        if patient.patient_id in index.patients:
            continue
        index, event = register_patient(
            index,
            patient_id=patient.patient_id,
            hkid_ref=None,
            actor="hub-local-seed",
            at=datetime.now(UTC),
        )
        events.append(event)
    # One transaction per patient (its event and its item): well under DynamoDB's limit.
    for event in events:
        repository.append(event)


def _consent_patients(
    ctx: Context, table: str, population: SyntheticPopulation, institutions: list[str]
) -> None:
    """Record every demo patient's indefinite sharing consent for the phase's admitted
    institutions, where none is in force (opening a group needs it: consent.cedar)."""
    import uuid
    from datetime import UTC, datetime

    from app.consent.model import decide, give_consent
    from app.consent.repository import DynamoConsentRepository

    client = ctx.client("dynamodb")
    repository = DynamoConsentRepository(client, table)
    now = datetime.now(UTC)
    for patient in population.patients:
        stored = repository.consents(patient.patient_id)
        items = [
            repository.new_item(
                patient.patient_id,
                give_consent(
                    consent_id=f"cs-{uuid.uuid4().hex}",
                    patient_ref=patient.patient_id,
                    institution=institution,
                    given_at=now,
                    valid_until=None,
                    recorded_by="hub-local-seed",
                ),
            )
            for institution in institutions
            if not decide(stored, patient.patient_id, institution, now).allowed
        ]
        if items:
            client.transact_write_items(TransactItems=items)


def _ensure_user(
    cognito: Any, pool: str, username: str, attributes: dict[str, str], group: str
) -> str:
    password = generate_password()
    user_attributes = [{"Name": k, "Value": v} for k, v in attributes.items() if v]
    try:
        cognito.admin_create_user(
            UserPoolId=pool,
            Username=username,
            UserAttributes=user_attributes,
            MessageAction="SUPPRESS",
            TemporaryPassword=generate_password(),
        )
    except ClientError as error:
        if error_code(error) != "UsernameExistsException":
            raise
        cognito.admin_update_user_attributes(
            UserPoolId=pool, Username=username, UserAttributes=user_attributes
        )
    cognito.admin_set_user_password(
        UserPoolId=pool, Username=username, Password=password, Permanent=True
    )
    cognito.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=group)
    return password
