"""Demo data for the local platform: a synthetic register and demo users per phase.

For each deployed phase: the register entries of the synthetic population go into the
phase's ``register`` table (stack output ``tableNames``), and every active doctor, an
admin per institution and an auditor get a login in the phase's user pool (admin APIs,
custom attributes ``custom:mchk_reg_no``, ``custom:institution_id``, ``custom:specialty``,
role group, a generated permanent password). Only institutions admitted in that phase are
seeded. Everything is synthetic (``app.identity.synthetic``); re-seeding resets passwords
and never duplicates users or entries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from app.identity.synthetic import (
    SyntheticPopulation,
    generate_password,
    generate_population,
    register_items,
)
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


def seed_stack(
    record: DeploymentRecord, institutions: list[str], ctx: Context, *, seed: int = 2046
) -> SeedResult:
    """Write the register entries and create the demo users of one deployed phase."""
    population = generate_population(institutions, seed=seed)
    table = record.outputs["tableNames"]["register"]
    pool = record.outputs["userPoolId"]
    entries = _write_register(ctx, table, population)
    users = []
    cognito = ctx.client("cognito-idp")
    for doctor in population.users():
        attributes = {
            "email": f"{doctor.username}@{DEMO_EMAIL_DOMAIN}",
            "email_verified": "true",
            "custom:mchk_reg_no": doctor.reg_no,
            "custom:institution_id": doctor.institution_id,
            "custom:specialty": doctor.specialty,
        }
        password = _ensure_user(cognito, pool, doctor.username, attributes, doctor.role)
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
    for staff in population.staff:
        attributes = {
            "email": f"{staff.username}@{DEMO_EMAIL_DOMAIN}",
            "email_verified": "true",
            "custom:institution_id": staff.institution_id,
        }
        password = _ensure_user(cognito, pool, staff.username, attributes, staff.role)
        users.append(
            DemoUser(record.stack, staff.username, password, staff.role, staff.institution_id)
        )
    patients = [asdict(p) for p in population.patients]
    return SeedResult(record.stack, users, entries, patients)


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
        mutable = [a for a in user_attributes if a["Name"] != "custom:mchk_reg_no"]
        cognito.admin_update_user_attributes(
            UserPoolId=pool, Username=username, UserAttributes=mutable
        )
    cognito.admin_set_user_password(
        UserPoolId=pool, Username=username, Password=password, Permanent=True
    )
    cognito.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=group)
    return password
