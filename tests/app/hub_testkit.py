"""Shared pieces of the service tests: synthetic people, the register generator, the
fake clocks, the Hub handle and the world builder. Fixtures live in conftest.py."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.dependencies import Services
from app.identity.principal import Principal
from app.settings import Settings

ADMITTED = ("harbour-cardiac-alliance", "kowloon-neuro-alliance")
INST_A, INST_B = ADMITTED
# A private clinic admitted in the test hub (phase 3): self-registration claims it.
CLINIC = "sai-kung-medical-centre"
NOT_ADMITTED = "peak-family-clinic"
PASSWORD = "Synthetic-Passw0rd-2026!"
PATIENT = "pt-synthetic-000042"
# Register entries no account holds yet (general register, active): self-registration
# and affiliation tests each take fresh ones. Names as the register shows them.
SPARE_NUMBERS = tuple((f"M4{n:04d}", f"SYNTHETIC Applicant {n}") for n in range(1, 400))
# Every patient the service tests name in a group, record or referral: registered in the
# patient index (as an MRN of INST_A) when the session's hub starts.
INDEXED_PATIENTS = (
    PATIENT,
    "pt-synthetic-000099",
    "pt-synthetic-000123",
    "pt-synthetic-000321",
    "pt-synthetic-000555",
    "pt-synthetic-000777",
    "pt-synthetic-rec-bg1",
)


@dataclass
class Person:
    """A synthetic user: Cognito account and (optionally) a register entry; ``token`` and
    ``id_token`` come from an SRP sign-in with the TOTP challenge, as a real client's."""

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
        # break-glass tests outside the matrix use their own doctor, so no grant leaks
        Person("dr-bg-audit", ("doctor",), INST_B, "M20015"),
        Person("ops-admin", ("platform_admin",), INST_A),
        Person("inst-admin", ("institution_admin",), INST_A),
        Person("clinic-admin", ("institution_admin",), CLINIC),
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
    for reg_no, name in SPARE_NUMBERS:
        g.writerow(
            [
                reg_no,
                name,
                "合成申請人",
                "1 Example Road, Hong Kong",
                "MB BS (Synthetic U)",
                "active",
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
    app: Any
    clock: FakeClock
    monotonic: FakeMonotonic
    cognito: Any
    dynamodb: Any
    pool_id: str
    client_id: str
    people: dict[str, Person] = field(default_factory=dict)
    # The TOTP secrets each person enrolled at their first (SRP) sign-in.
    authenticator: Any = None
    operator: Any = None  # the operator-channel InstitutionService
    # The scripted homeserver the room authority talks to, and the application
    # service's registration (its hs_token is how the homeserver calls the hub).
    homeserver: Any = None
    registration: Any = None
    _principals: dict[str, Principal] = field(default_factory=dict)
    _spare: int = 0

    def spare_number(self) -> tuple[str, str]:
        """A register entry (number, name) no test has used yet."""
        self._spare += 1
        return SPARE_NUMBERS[self._spare - 1]

    def sub_of(self, username: str) -> str:
        user = self.cognito.admin_get_user(UserPoolId=self.pool_id, Username=username)
        return next(str(a["Value"]) for a in user["UserAttributes"] if a["Name"] == "sub")

    def new_account(self, username: str, **attributes: str) -> str:
        """A fresh pool account, enrolled nowhere; returns its access token."""
        from app import local

        local.create_user(self.cognito, self.pool_id, username, PASSWORD, groups=(), **attributes)
        return self._sign_in(username)

    def _sign_in(self, username: str) -> str:
        """An access token from an SRP sign-in with the TOTP challenge, as a client's."""
        from app import local

        tokens = local.login(
            self.cognito,
            self.pool_id,
            self.client_id,
            username,
            PASSWORD,
            authenticator=self.authenticator,
        )
        return str(tokens["AccessToken"])

    def enrol(
        self, username: str, institution: str, roles: tuple[str, ...], reg_no: str | None = None
    ) -> None:
        """Bind a native account and affiliate it, as the operator CLI does."""
        from app.identity.affiliations import staff_member
        from app.institutions.service import OPERATOR

        sub = self.sub_of(username)
        self.operator.set_affiliation(
            OPERATOR, institution, reg_no or staff_member(sub), roles, bind_sub=sub
        )

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.people[username].token}"}

    def signed_in_headers(self, username: str) -> dict[str, str]:
        """A token from a new SRP sign-in, for a server that checks the token's age on the
        real clock (``max_token_age_seconds``, 15 minutes): the session's tokens were
        minted when the session started, which can be longer ago on a slow run."""
        return self.bearer(self._sign_in(username))

    def principal(self, username: str) -> Principal:
        if username not in self._principals:
            self._principals[username] = self.services.authenticator.authenticate(
                self.people[username].token
            )
        return self._principals[username]

    def audit_entries(self, start: int = 0) -> list[dict[str, Any]]:
        """Every ledger entry from ``start``, in log order, read from DynamoDB (each as its
        canonical JSON object plus ``leaf_index``)."""
        from app.ledger.entries import AuditEntry

        rows = self.services.ledger.read_range(start, 2**40)
        return [{**AuditEntry.from_bytes(raw).to_dict(), "leaf_index": seq} for seq, raw in rows]

    def audit_entry(self, receipt: dict[str, Any]) -> dict[str, Any]:
        """The ledger entry a response's ``audit_receipt`` points at."""
        from app.ledger.entries import AuditEntry

        index = int(receipt["position"])
        raw = self.services.ledger.table.entries([index])[index]
        return {**AuditEntry.from_bytes(raw).to_dict(), "leaf_index": index}

    def ledger_size(self) -> int:
        """The number of stored entries (the next sequence number)."""
        table = self.services.ledger.table
        head = table.read_head()
        return table.find_tail(head.size if head else 0)


@dataclass
class World:
    """An open group G for patient PATIENT owned by INST_A, in a known state, plus a
    closed group C and break-glass grants; and for the institution routes: a signed-up
    account enrolled nowhere (its token), a registration pending at CLINIC, and a spare
    affiliation at INST_A (a register number with no account)."""

    group_id: str
    closed_group_id: str
    live_grant_id: str
    expired_grant_id: str
    # Referrals of PATIENT from dr-lead (INST_A) to dr-other-inst (M20005, INST_B) by name:
    # one pending, sent from G; one accepted, sent from another group of PATIENT (so
    # dr-other-inst joined that group, never G).
    referral_id: str = ""
    accepted_referral_id: str = ""
    applicant_token: str = ""
    registration_id: str = ""
    spare_reg_no: str = ""


def register_patients(hub: Hub, patient_ids: tuple[str, ...] = INDEXED_PATIENTS) -> None:
    """Register ``patient_ids`` in the patient index (each with its id as INST_A's MRN),
    through the service as a clinician of INST_A would; already registered ones are kept."""
    index = hub.services.patients
    for patient_id in patient_ids:
        if not index.is_registered(patient_id):
            index.register(
                hub.principal("dr-lead"), hkid=None, mrn=patient_id, patient_id=patient_id
            )


# The institutions every indexed patient has consented to share with (recorded when the
# session's hub starts), so the tests that are not about consent open groups and read
# shared records as before; tests/app/consent covers patients without it.
CONSENTED_INSTITUTIONS = (*ADMITTED, CLINIC)


def consent_patients(
    hub: Hub,
    patient_ids: tuple[str, ...] = INDEXED_PATIENTS,
    institutions: tuple[str, ...] = CONSENTED_INSTITUTIONS,
) -> None:
    """Record each patient's indefinite consent to sharing with ``institutions``, through
    the service as a clinician of INST_A records the patient's decision; patients who
    already have a consent in force for an institution keep it."""
    consents = hub.services.consents
    for patient_id in patient_ids:
        missing = [i for i in institutions if not consents.consent_decision(patient_id, i).allowed]
        if missing:
            consents.grant(
                hub.principal("dr-lead"), patient_id, institutions=missing, valid_until=None
            )


def build_group(hub: Hub) -> str:
    """Open group for PATIENT owned by INST_A: lead active, dr-member active,
    dr-removed removed, dr-invitee invited. Returns its id."""
    g = hub.services.groups
    p = hub.principal
    state, _ = g.create(p("dr-lead"), PATIENT, "Synthetic case review", "second opinion")
    gid = state.group.group_id
    for who in ("dr-member", "dr-removed"):
        g.invite(p("dr-lead"), gid, p(who).reg_no or "", _member_role())
        g.accept(p(who), gid)
    g.remove(p("dr-lead"), gid, p("dr-removed").reg_no or "")
    g.invite(p("dr-lead"), gid, p("dr-invitee").reg_no or "", _member_role())
    return gid


def start_grant(hub: Hub, username: str) -> str:
    grant, _ = hub.services.break_glass.start(
        hub.principal(username), PATIENT, "Synthetic emergency: unconscious on arrival", 60
    )
    return grant.grant_id


def send_referral(hub: Hub, gid: str, username: str = "dr-lead", **changes: Any) -> str:
    """A referral of PATIENT from ``username`` in group ``gid`` to M20005 at INST_B."""
    from app.referrals.lifecycle import LegalBasis, PatientNotice, Target, Urgency
    from app.referrals.service import ReferralRequest

    request = ReferralRequest(
        patient_id=PATIENT,
        target=Target(institution=INST_B, specialty="cardiology", practitioner="M20005"),
        urgency=Urgency.URGENT,
        question="Synthetic question: exertional chest pain, please assess for angiography.",
        legal_basis=LegalBasis.REFERRAL_FOR_CARE,
        patient_notice=PatientNotice.INFORMED,
        group_id=gid,
    )
    for key, value in changes.items():
        request = replace(request, **{key: value})
    referrals = hub.services.referrals
    assert referrals is not None
    referral, _ = referrals.send(hub.principal(username), request)
    return referral.referral_id


def build_referrals(hub: Hub, gid: str) -> tuple[str, str]:
    """(pending, accepted) referrals in group ``gid`` (see :class:`World`)."""
    referrals = hub.services.referrals
    assert referrals is not None
    pending = send_referral(hub, gid)
    other, _ = hub.services.groups.create(hub.principal("dr-lead"), PATIENT, "Referred on", "")
    accepted = send_referral(hub, other.group.group_id)
    referrals.accept(hub.principal("dr-other-inst"), accepted)
    return pending, accepted


def applicant(hub: Hub) -> str:
    """A new signed-up account with no enrolment; returns its access token."""
    import uuid

    return hub.new_account(f"applicant-{uuid.uuid4().hex[:8]}")


def pending_registration(hub: Hub) -> str:
    """A new applicant's registration, pending at CLINIC; returns its id."""
    from app.identity.principal import Applicant

    token = applicant(hub)
    who = hub.services.authenticator.applicant(token)
    reg_no, name = hub.spare_number()
    account, _ = hub.services.institutions.submit(
        Applicant(who.sub, who.username), reg_no, name, CLINIC, None
    )
    return account.registration_id or ""


def spare_affiliation(hub: Hub) -> str:
    """A register number affiliated with INST_A (no account); returns the number."""
    from app.institutions.service import OPERATOR

    reg_no, _ = hub.spare_number()
    hub.operator.set_affiliation(OPERATOR, INST_A, reg_no, ("doctor",))
    return reg_no


def switch_intake(hub: Hub, stack: str, client_ids: list[str] | None) -> None:
    """Write ``stack``'s layer switch listing ``client_ids`` as its clinic systems, as the
    layer's deploy does (infra/components/layer_switch.py), at the hub's own phase so
    nothing else changes; ``None`` deletes the switch, as the layer's destroy does."""
    from app.identity.affiliations import LAYER_PARTITION

    table = hub.settings.table_institutions
    key = {"pk": {"S": LAYER_PARTITION}, "sk": {"S": stack}}
    if client_ids is None:
        hub.dynamodb.delete_item(TableName=table, Key=key)
        return
    item = {
        **key,
        "phase": {"N": str(hub.settings.phase)},
        "communityCareIntake": {"BOOL": True},
        "intakeClientIds": {"L": [{"S": c} for c in client_ids]},
    }
    hub.dynamodb.put_item(TableName=table, Item=item)


def build_world(hub: Hub) -> World:
    g = hub.services.groups
    p = hub.principal
    gid = build_group(hub)
    closed, _ = g.create(p("dr-lead"), "pt-synthetic-000099", "Closed case", "")
    cid = closed.group.group_id
    g.invite(p("dr-lead"), cid, p("dr-closed").reg_no or "", _member_role())
    g.accept(p("dr-closed"), cid)
    g.close(p("dr-lead"), cid)
    world = World(
        gid,
        cid,
        start_grant(hub, "dr-bg-live"),
        start_grant(hub, "dr-bg-expired"),
        *build_referrals(hub, gid),
        applicant(hub),
        pending_registration(hub),
        spare_affiliation(hub),
    )
    hub.services.ledger.integrate()  # a signed head for the audit routes
    return world


def _member_role() -> Any:
    from app.groups.membership import MemberRole

    return MemberRole.MEMBER


GATEWAY_STACK = "phase1-specialist"


def gateway_stage_config(**capacity: int) -> dict[str, Any]:
    """Phase 1's stage file; ``capacity`` overrides keys of ``hub:capacity``."""
    from infra.config_source import read_stage_file

    config = read_stage_file(GATEWAY_STACK)
    config["hub:capacity"] = {**config["hub:capacity"], **capacity}
    return config


def gateway_record(hub: Hub, **capacity: int) -> Any:
    """Phase 1 as the program declares it, its user pool bound to the session's pool."""
    from infra.emulator.gateway import record_from_program

    return record_from_program(
        GATEWAY_STACK,
        user_pool_id=hub.pool_id,
        user_pool_client_id=hub.client_id,
        endpoint_url=hub.endpoint,
        config=gateway_stage_config(**capacity),
    )


@dataclass
class Gateway:
    """The session's gateway: the server, an HTTP client on its stage, and what reached
    the function (so a test can show a refusal happened before the app)."""

    server: Any  # infra.emulator.gateway.LocalGateway
    client: Any  # httpx.Client on the stage's base URL
    record: Any  # the DeploymentRecord it was built from
    events: list[dict[str, Any]] = field(default_factory=list)


# Path ids in no format the service issues (tests/app/test_clear_errors.py and the
# record routes' twin): each must be a 4xx with the error body, never a 500.
ODD_IDS = ["caf\u00e9", "%E2%9C%93", "\u6e2c\u8a66", "%00"]


def assert_refused_clearly(response: Any, where: str) -> None:
    assert 400 <= response.status_code < 500, (where, response.status_code, response.text)
    assert set(response.json()["error"]) == {"code", "message"}, where
