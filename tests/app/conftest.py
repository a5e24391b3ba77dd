"""The service under test, once per session: moto tables, a Cognito pool, real tokens.

Everything is created once (pool, users, logins, register import) so the matrix and
attack tests stay fast. The domain clock and the cache clock are fakes the tests can
move; token time checks keep the real clock, since moto signs with the real time.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from app import local
from app.dependencies import Services, build_services
from app.identity.directory import enrol_user_pool
from app.identity.principal import Principal
from app.identity.register import import_register
from app.main import create_app
from app.settings import Settings

ADMITTED = ("harbour-cardiac-alliance", "kowloon-neuro-alliance")
INST_A, INST_B = ADMITTED
NOT_ADMITTED = "peak-family-clinic"
PASSWORD = "Synthetic-Passw0rd-2026!"
PATIENT = "pt-synthetic-000042"


@dataclass
class Person:
    """A synthetic user: Cognito account and (optionally) a register entry."""

    username: str
    groups: tuple[str, ...]
    institution: str
    reg_no: str | None = None
    register_status: str | None = "active"  # None: not on the register
    specialties: tuple[str, ...] = ()
    token: str = ""
    id_token: str = ""


PEOPLE: dict[str, Person] = {
    p.username: p
    for p in [
        Person("dr-lead", ("doctor",), INST_A, "M20001"),
        Person("dr-member", ("doctor",), INST_B, "M20002"),
        Person("dr-removed", ("doctor",), INST_A, "M20003"),
        Person("dr-outsider", ("doctor",), INST_A, "M20004"),
        Person("dr-other-inst", ("doctor",), INST_B, "M20005"),
        Person("dr-invitee", ("doctor",), INST_A, "M20006"),
        Person("dr-closed", ("doctor",), INST_B, "M20007"),
        Person("dr-not-admitted", ("doctor",), NOT_ADMITTED, "M20008"),
        Person("dr-suspended", ("doctor",), INST_A, "M20009", "suspended"),
        Person("dr-unregistered", ("doctor",), INST_A, "M29999", None),
        Person("dr-bg-live", ("doctor",), INST_B, "M20010"),
        Person("dr-bg-expired", ("doctor",), INST_B, "M20011"),
        Person("dr-target", ("doctor",), INST_A, "M20012"),
        Person("dr-racer", ("doctor",), INST_B, "M20013"),
        Person("dr-stale", ("doctor",), INST_A, "M20014"),
        Person("ops-admin", ("platform_admin",), INST_A),
        Person("inst-admin", ("institution_admin",), INST_A),
        Person("auditor-1", ("auditor",), INST_A),
        Person(
            "sp-cardio-a", ("doctor", "specialist"), INST_A, "M30001", "active", ("cardiology",)
        ),
        Person(
            "sp-cardio-b", ("doctor", "specialist"), INST_B, "M30002", "active", ("cardiology",)
        ),
        Person(
            "sp-cardio-susp",
            ("doctor", "specialist"),
            INST_A,
            "M30003",
            "suspended",
            ("cardiology",),
        ),
        Person(
            "sp-cardio-far",
            ("doctor", "specialist"),
            NOT_ADMITTED,
            "M30004",
            "active",
            ("cardiology",),
        ),
        Person("sp-neuro", ("doctor", "specialist"), INST_B, "M30005", "active", ("neurology",)),
    ]
}


def synthetic_register(people: list[Person]) -> tuple[str, str]:
    """General and specialist register CSVs in the published-list format (synthetic)."""
    general, specialist = io.StringIO(), io.StringIO()
    g = csv.writer(general)
    s = csv.writer(specialist)
    g.writerow(
        [
            "Registration No.",
            "Name (English)",
            "Name (Chinese)",
            "Address",
            "Qualifications",
            "Status",
        ]
    )
    s.writerow(
        [
            "Registration No.",
            "Name (English)",
            "Name (Chinese)",
            "Address",
            "Qualifications",
            "Specialty",
        ]
    )
    for n, p in enumerate(people):
        if p.reg_no is None or p.register_status is None:
            continue
        g.writerow(
            [
                p.reg_no,
                f"SYNTHETIC Doctor {n}",
                "合成醫生",
                f"{n} Example Road, Hong Kong",
                "MB BS (Synthetic U); MRCP (Synthetic)",
                p.register_status,
            ]
        )
        for sp in p.specialties:
            s.writerow(
                [
                    p.reg_no,
                    f"SYNTHETIC Doctor {n}",
                    "合成醫生",
                    f"{n} Example Road, Hong Kong",
                    "FHKAM (Synthetic)",
                    sp,
                ]
            )
    return general.getvalue(), specialist.getvalue()


class FakeClock:
    """Real time plus an offset the tests can move."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FakeMonotonic:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@dataclass
class Hub:
    endpoint: str
    settings: Settings
    services: Services
    client: TestClient
    clock: FakeClock
    monotonic: FakeMonotonic
    cognito: Any
    dynamodb: Any
    pool_id: str
    client_id: str
    people: dict[str, Person] = field(default_factory=dict)
    _principals: dict[str, Principal] = field(default_factory=dict)

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.people[username].token}"}

    def principal(self, username: str) -> Principal:
        if username not in self._principals:
            self._principals[username] = self.services.authenticator.authenticate(
                self.people[username].token
            )
        return self._principals[username]

    def audit_events(self) -> list[dict[str, Any]]:
        store: Any = self.services.audit
        return list(store.events_on(self.clock().date().isoformat()))


@pytest.fixture(scope="session")
def hub(moto_endpoint: str) -> Iterator[Hub]:
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
    try:
        session = boto3.session.Session(region_name="ap-east-1")
        dynamodb = session.client("dynamodb")
        cognito = session.client("cognito-idp")
        prefix = f"hubtest-{uuid.uuid4().hex[:6]}"
        names = {k: f"{prefix}-{k}" for k in local.TABLE_KEYS}
        local.create_service_tables(dynamodb, names)
        pool_id, client_id = local.create_user_pool(cognito, prefix)
        settings = Settings(
            mode="local",
            phase=1,
            stack="test",
            admitted_institutions=ADMITTED,
            table_register=names["register"],
            table_groups=names["groups"],
            table_records=names["records"],
            table_ledger=names["ledger"],
            cognito_user_pool_id=pool_id,
            cognito_client_id=client_id,
            cognito_issuer=f"https://cognito-idp.ap-east-1.amazonaws.com/{pool_id}",
            registration_cache_seconds=60,
        )
        clock, monotonic = FakeClock(), FakeMonotonic()
        services = build_services(settings, session=session, clock=clock, monotonic=monotonic)
        people = {k: Person(**{**v.__dict__}) for k, v in PEOPLE.items()}
        general, specialist = synthetic_register(list(people.values()))
        import_register(services.register, general, specialist)
        for p in people.values():
            local.create_user(
                cognito,
                pool_id,
                p.username,
                PASSWORD,
                groups=p.groups,
                reg_no=p.reg_no,
                institution=p.institution,
            )
            tokens = local.login(cognito, pool_id, client_id, p.username, PASSWORD)
            p.token, p.id_token = tokens["AccessToken"], tokens["IdToken"]
        enrol_user_pool(cognito, pool_id, services.directory, services.register)
        app = create_app(settings, services=services)
        with TestClient(app) as client:
            yield Hub(
                endpoint=moto_endpoint,
                settings=settings,
                services=services,
                client=client,
                clock=clock,
                monotonic=monotonic,
                cognito=cognito,
                dynamodb=dynamodb,
                pool_id=pool_id,
                client_id=client_id,
                people=people,
            )
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved


@dataclass
class World:
    """An open group G for patient PATIENT owned by INST_A, in a known state, plus a
    closed group C and break-glass grants."""

    group_id: str
    closed_group_id: str
    live_grant_id: str
    expired_grant_id: str


def build_world(hub: Hub) -> World:
    g = hub.services.groups
    p = hub.principal
    state, _ = g.create(p("dr-lead"), PATIENT, "Synthetic case review", "second opinion")
    gid = state.group.group_id
    for who in ("dr-member", "dr-removed"):
        g.invite(p("dr-lead"), gid, p(who).reg_no or "", _member_role())
        g.accept(p(who), gid)
    g.remove(p("dr-lead"), gid, p("dr-removed").reg_no or "")
    g.invite(p("dr-lead"), gid, p("dr-invitee").reg_no or "", _member_role())
    closed, _ = g.create(p("dr-lead"), "pt-synthetic-000099", "Closed case", "")
    cid = closed.group.group_id
    g.invite(p("dr-lead"), cid, p("dr-closed").reg_no or "", _member_role())
    g.accept(p("dr-closed"), cid)
    g.close(p("dr-lead"), cid)
    bg = hub.services.break_glass
    live, _ = bg.start(p("dr-bg-live"), PATIENT, "Synthetic emergency: unconscious on arrival", 60)
    expired, _ = bg.start(p("dr-bg-expired"), PATIENT, "Synthetic emergency: transfer", 60)
    return World(gid, cid, live.grant_id, expired.grant_id)


def _member_role() -> Any:
    from app.groups.membership import MemberRole

    return MemberRole.MEMBER


@pytest.fixture(scope="session")
def world(hub: Hub) -> World:
    """Shared world: only tests that expect a refusal (no state change) may use it."""
    return build_world(hub)


@pytest.fixture
def fresh_world(hub: Hub) -> World:
    return build_world(hub)
