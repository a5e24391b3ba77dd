"""The authorization matrix: every route crossed with every kind of principal.

The expected statuses are one table (below), read as data. Each cell is a request with
a real Cognito access token (SRP sign-in) from the moto server, made twice: to the app
served directly and through the local API gateway built from the program's declaration
(``api``). Through the gateway the anonymous and malformed columns are refused by the
Cognito authorizer with API Gateway's own 401 before the function runs. A cell that
expects success on a route that changes state runs against a freshly built world;
refusals run against the shared world and must leave it unchanged (checked after the
matrix).

The homeserver is a caller too (column ``hs``): it presents its ``hs_token``, not a
Cognito token. The table gives what the app answers it directly, which is the private
path it reaches the application service routes on (an internal load balancer in AWS);
through the public API gateway the Cognito authorizer refuses its token on every route
(API Gateway's own 401), so the application service is not reachable from the internet.

Principals (columns; the two-letter code heads the column in MATRIX):
  an anonymous        no Authorization header
  mf malformed        a bearer value that is not a JWT
  nm non_member       registered doctor, group's institution, not in the group
  mb member           active member (from another institution)
  ld lead             the group's creator
  iv invitee          invited, not yet accepted
  rm removed          was a member, removed by the lead
  cm closed_member    active member of a group that has been closed (targets that group)
  oi other_inst       registered doctor of another admitted institution, not in the group
  na not_admitted     registered doctor whose institution is not admitted in this phase
  wr wrong_role       platform_admin: operations, no clinical access
  ia inst_admin       institution_admin of the group's institution
  ur unregistered     doctor whose number is not on the register
  su suspended        doctor whose registration is suspended
  bl bg_live          break-glass grant for the group's patient, within its time box
  be bg_expired       the same kind of grant, after it expired
  au auditor          auditor role
  ap applicant        a signed-up account enrolled nowhere (self-registration's applicant)
  hs homeserver       the Matrix homeserver, with the application service's hs_token

Institution routes act on INST_A (the group's institution) unless named: the world holds
a spare affiliation there (a register number with no account) and a registration pending
at CLINIC, a private clinic whose admin is not in the matrix.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hub_testkit import CLINIC, INST_A, INST_B, PATIENT, Hub, World

from app.main import PUBLIC_PATHS
from app.patients.hkid import compute_check_digit

MATRIX = """
route          an  mf  nm  mb  ld  iv  rm  cm  oi  na  wr  ia  ur  su  bl  be  au  ap  hs
me            401 401 200 200 200 200 200 200 200 403 200 200 403 403 200 200 200 403 401
create_group  401 401 201 201 201 201 201 201 201 403 403 403 403 403 201 201 403 403 401
get_group     401 401 403 200 200 403 403 403 403 403 403 403 403 403 200 403 403 403 401
my_groups     401 401 200 200 200 200 200 200 200 403 403 403 403 403 200 200 403 403 401
invitations   401 401 200 200 200 200 200 200 200 403 403 403 403 403 200 200 403 403 401
invite        401 401 403 403 201 403 403 403 403 403 403 403 403 403 403 403 403 403 401
summon        401 401 403 403 201 403 403 403 403 403 403 403 403 403 403 403 403 403 401
accept        401 401 403 403 403 200 403 403 403 403 403 403 403 403 403 403 403 403 401
leave         401 401 403 200 200 200 403 403 403 403 403 403 403 403 403 403 403 403 401
remove_member 401 401 403 403 200 403 403 403 403 403 403 200 403 403 403 403 403 403 401
close         401 401 403 403 200 403 403 403 403 403 403 403 403 403 403 403 403 403 401
bg_start      401 401 201 201 201 201 201 201 201 403 403 403 403 403 201 201 403 403 401
bg_list       401 401 200 200 200 200 200 200 200 403 403 403 403 403 200 200 403 403 401
bg_end        401 401 404 404 404 404 404 404 404 403 404 404 403 403 200 409 404 403 401
audit_entries 401 401 200 200 200 200 200 200 200 403 403 403 403 403 200 200 200 403 401
audit_export  401 401 403 403 403 403 403 403 403 403 403 403 403 403 403 403 200 403 401
audit_head    401 401 200 200 200 200 200 200 200 403 200 200 403 403 200 200 200 403 401
audit_pubkey  401 401 200 200 200 200 200 200 200 403 200 200 403 403 200 200 200 403 401
audit_incl    401 401 200 200 200 200 200 200 200 403 200 200 403 403 200 200 200 403 401
audit_cons    401 401 200 200 200 200 200 200 200 403 200 200 403 403 200 200 200 403 401
ref_send      401 401 403 201 201 403 403 403 403 403 403 403 403 403 403 403 403 403 401
ref_list      401 401 200 200 200 200 200 200 200 403 403 403 403 403 200 200 403 403 401
ref_get       401 401 403 200 200 403 403 403 200 403 403 403 403 403 403 403 403 403 401
ref_fhir      401 401 403 200 200 403 403 403 200 403 403 403 403 403 403 403 403 403 401
ref_letter    401 401 403 200 200 403 403 403 200 403 403 403 403 403 403 403 403 403 401
ref_accept    401 401 403 403 403 403 403 403 200 403 403 403 403 403 403 403 403 403 401
ref_decline   401 401 403 403 403 403 403 403 200 403 403 403 403 403 403 403 403 403 401
ref_redirect  401 401 403 403 403 403 403 403 200 403 403 403 403 403 403 403 403 403 401
ref_cancel    401 401 403 403 200 403 403 403 403 403 403 403 403 403 403 403 403 403 401
ref_complete  401 401 403 403 200 403 403 403 200 403 403 403 403 403 403 403 403 403 401
metrics_own   401 401 403 403 403 403 403 403 403 403 403 200 403 403 403 403 200 403 401
metrics_all   401 401 403 403 403 403 403 403 403 403 403 403 403 403 403 403 200 403 401
inst_list     401 401 200 200 200 200 200 200 200 403 200 200 403 403 200 200 200 403 401
inst_admit    401 401 403 403 403 403 403 403 403 403 201 403 403 403 403 403 403 403 401
inst_update   401 401 403 403 403 403 403 403 403 403 200 403 403 403 403 403 403 403 401
aff_list      401 401 403 403 403 403 403 403 403 403 200 200 403 403 403 403 403 403 401
aff_set       401 401 403 403 403 403 403 403 403 403 200 200 403 403 403 403 403 403 401
aff_remove    401 401 403 403 403 403 403 403 403 403 200 200 403 403 403 403 403 403 401
reg_submit    401 401 403 403 403 403 403 403 403 403 403 403 403 403 403 403 403 201 401
reg_own       401 401 200 200 200 200 200 200 200 200 200 200 200 200 200 200 200 404 401
reg_list      401 401 403 403 403 403 403 403 403 403 200 200 403 403 403 403 403 403 401
reg_approve   401 401 403 403 403 403 403 403 403 403 200 403 403 403 403 403 403 403 401
reg_reject    401 401 403 403 403 403 403 403 403 403 200 403 403 403 403 403 403 403 401
pt_register   401 401 201 201 201 201 201 201 201 403 403 201 403 403 201 201 403 403 401
pt_lookup     401 401 200 404 200 200 200 404 404 403 403 200 403 403 404 404 403 403 401
pt_link       401 401 201 201 201 201 201 201 201 403 403 201 403 403 201 201 403 403 401
pt_unlink     401 401 403 403 403 403 403 403 403 403 403 200 403 403 403 403 403 403 401
pt_correct    401 401 403 403 403 403 403 403 403 403 403 200 403 403 403 403 403 403 401
pt_hkid       401 401 403 403 403 403 403 403 403 403 403 200 403 403 403 403 403 403 401
cs_grant      401 401 201 201 201 201 201 201 201 403 403 201 403 403 201 201 403 403 401
cs_withdraw   401 401 404 404 404 404 404 404 404 403 403 404 403 403 404 404 403 403 401
cs_read       401 401 200 200 200 200 200 200 200 403 403 200 403 403 200 200 403 403 401
intake_submit 401 401 401 401 401 401 401 401 401 401 401 401 401 401 401 401 401 401 401
msg_session   401 401 200 200 200 200 200 200 200 403 403 403 403 403 200 200 403 403 401
notif_pref    401 401 200 200 200 200 200 200 200 403 403 403 403 403 200 200 403 403 401
as_txn        401 403 403 403 403 403 403 403 403 403 403 403 403 403 403 403 403 403 200
as_ping       401 403 403 403 403 403 403 403 403 403 403 403 403 403 403 403 403 403 200
as_upload     401 403 403 403 403 403 403 403 403 403 403 403 403 403 403 403 403 403 200
"""

CODES = dict(
    zip(
        [
            "an",
            "mf",
            "nm",
            "mb",
            "ld",
            "iv",
            "rm",
            "cm",
            "oi",
            "na",
            "wr",
            "ia",
            "ur",
            "su",
            "bl",
            "be",
            "au",
            "ap",
            "hs",
        ],
        [
            "anonymous",
            "malformed",
            "non_member",
            "member",
            "lead",
            "invitee",
            "removed",
            "closed_member",
            "other_inst",
            "not_admitted",
            "wrong_role",
            "inst_admin",
            "unregistered",
            "suspended",
            "bg_live",
            "bg_expired",
            "auditor",
            "applicant",
            "homeserver",
        ],
        strict=True,
    )
)

USERS = {
    "non_member": "dr-outsider",
    "member": "dr-member",
    "lead": "dr-lead",
    "invitee": "dr-invitee",
    "removed": "dr-removed",
    "closed_member": "dr-closed",
    "other_inst": "dr-other-inst",
    "not_admitted": "dr-not-admitted",
    "wrong_role": "ops-admin",
    "inst_admin": "inst-admin",
    "unregistered": "dr-unregistered",
    "suspended": "dr-suspended",
    "bg_live": "dr-bg-live",
    "bg_expired": "dr-bg-expired",
    "auditor": "auditor-1",
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {gid}, {reg_no}, {grant} are filled from the world
    body: Callable[[Hub], dict[str, Any]] | None = None
    mutates: bool = True


ROUTES: dict[str, Route] = {
    "me": Route("GET", "/me", mutates=False),
    "create_group": Route(
        "POST",
        "/groups",
        lambda h: {"patient_id": "pt-synthetic-000777", "title": "New case"},
        mutates=False,  # a new group leaves the world's group as it was
    ),
    "get_group": Route("GET", "/groups/{gid}", mutates=False),
    # Listings: each item is filtered by its own decision (tests/app/records/
    # test_doctor_client.py checks what each kind of member sees).
    "my_groups": Route("GET", "/groups?limit=5", mutates=False),
    "invitations": Route("GET", "/invitations", mutates=False),
    "invite": Route(
        "POST", "/groups/{gid}/invitations", lambda h: {"reg_no": "M20012", "role": "member"}
    ),
    "summon": Route(
        "POST", "/groups/{gid}/summon", lambda h: {"specialties": ["cardiology"], "count": 1}
    ),
    "accept": Route("POST", "/groups/{gid}/accept"),
    "leave": Route("POST", "/groups/{gid}/leave"),
    "remove_member": Route("DELETE", "/groups/{gid}/members/M20002"),
    "close": Route("POST", "/groups/{gid}/close"),
    "bg_start": Route(
        "POST",
        "/break-glass",
        lambda h: {
            "patient_id": "pt-synthetic-000555",
            "justification": "Synthetic emergency: collapsed in clinic",
            "minutes": 30,
        },
        mutates=False,  # a grant for another patient changes nothing the matrix reads
    ),
    "bg_list": Route("GET", "/break-glass", mutates=False),
    "bg_end": Route("POST", "/break-glass/{grant}/end"),
    # Audit reads change nothing the matrix reads (they append their own audit entry).
    "audit_entries": Route("GET", "/audit/entries", mutates=False),
    "audit_export": Route("GET", "/audit/export?end=5", mutates=False),
    "audit_head": Route("GET", "/audit/head", mutates=False),
    "audit_pubkey": Route("GET", "/audit/public-key", mutates=False),
    "audit_incl": Route("GET", "/audit/proof/inclusion?index=0", mutates=False),
    "audit_cons": Route("GET", "/audit/proof/consistency?first=1&second=2", mutates=False),
    # Referrals ({rid}: the world's pending referral from G to dr-other-inst by name;
    # {arid}: the one dr-other-inst accepted, from another group of the patient).
    "ref_send": Route(
        "POST",
        "/referrals",
        lambda h: {
            "patient_id": PATIENT,
            "group_id": "{gid}",
            "target": {"institution": INST_B, "specialty": "cardiology", "practitioner": "M20005"},
            "urgency": "urgent",
            "clinical_question": "Synthetic question: please assess",
            "legal_basis": {"basis": "referral_for_care", "patient": "informed"},
        },
        mutates=False,  # a new referral leaves the world's referrals as they were
    ),
    "ref_list": Route("GET", "/referrals", mutates=False),
    "ref_get": Route("GET", "/referrals/{rid}", mutates=False),
    "ref_fhir": Route("GET", "/referrals/{rid}/fhir", mutates=False),
    "ref_letter": Route("GET", "/referrals/{rid}/letter", mutates=False),
    "ref_accept": Route("POST", "/referrals/{rid}/accept"),
    "ref_decline": Route("POST", "/referrals/{rid}/decline", lambda h: {"reason": "no_capacity"}),
    "ref_redirect": Route(
        "POST",
        "/referrals/{rid}/redirect",
        lambda h: {"target": {"institution": INST_A, "specialty": "cardiology"}},
    ),
    "ref_cancel": Route("POST", "/referrals/{rid}/cancel"),
    "ref_complete": Route("POST", "/referrals/{arid}/complete"),
    # Metrics: an institution admin asks for their own institution, an auditor for any.
    "metrics_own": Route("GET", f"/metrics?institution={INST_A}", mutates=False),
    "metrics_all": Route("GET", "/metrics", mutates=False),
    # Institutions as data. Reads and renames change nothing the matrix reads; admitting
    # creates a new institution each time.
    "inst_list": Route("GET", "/institutions", mutates=False),
    "inst_admit": Route(
        "POST",
        "/institutions",
        lambda h: {
            "id": f"matrix-{uuid.uuid4().hex[:12]}",
            "name": "Matrix Alliance (synthetic)",
            "type": "specialist_alliance",
        },
        mutates=False,
    ),
    "inst_update": Route(
        "PATCH",
        f"/institutions/{INST_A}",
        lambda h: {"name": f"{INST_A} (synthetic)"},
        mutates=False,
    ),
    "aff_list": Route("GET", f"/institutions/{INST_A}/affiliations", mutates=False),
    "aff_set": Route(
        "PUT",
        f"/institutions/{INST_A}/affiliations/{{spare}}",
        lambda h: {"roles": ["doctor"]},
        mutates=False,  # the spare affiliation already holds exactly this
    ),
    "aff_remove": Route("DELETE", f"/institutions/{INST_A}/affiliations/{{spare}}"),
    "reg_submit": Route("POST", "/registrations", lambda h: _registration_claim(h)),
    "reg_own": Route("GET", "/registrations/me", mutates=False),
    "reg_list": Route("GET", f"/registrations?institution={INST_A}", mutates=False),
    "reg_approve": Route("POST", "/registrations/{regid}/approve"),
    "reg_reject": Route("POST", "/registrations/{regid}/reject", lambda h: {"reason": "other"}),
    # Messaging: a doctor's session and notification channel (Cognito), and the
    # homeserver's application service routes (its hs_token). A session or a channel
    # changes nothing the matrix reads; the transaction pushes no events.
    "msg_session": Route("POST", "/messaging/session", lambda h: {}, mutates=False),
    "notif_pref": Route(
        "PUT", "/notifications/preference", lambda h: {"channel": "email"}, mutates=False
    ),
    "as_txn": Route(
        "PUT", "/_matrix/app/v1/transactions/txn-matrix", lambda h: {"events": []}, mutates=False
    ),
    "as_ping": Route("POST", "/_matrix/app/v1/ping", lambda h: {}, mutates=False),
    "as_upload": Route(
        "POST",
        "/_matrix/app/unstable/org.hub/uploads",
        lambda h: {"upload_id": "matrix-upload-1", "user_id": "@doc-m20001:hub.local", "size": 1},
        mutates=False,
    ),
}


def _registration_claim(hub: Hub) -> dict[str, Any]:
    reg_no, name = hub.spare_number()
    return {"reg_no": reg_no, "name": name, "institution": CLINIC}


def _fresh_mrn() -> str:
    return f"MX-{uuid.uuid4().hex[:12]}"


def _linked_mrn(hub: Hub) -> str:
    """An MRN of INST_A linked to a new patient (what an INST_A admin may unlink/correct)."""
    mrn = _fresh_mrn()
    hub.services.patients.register(hub.principal("inst-admin"), hkid=None, mrn=mrn)
    return mrn


def _fresh_hkid() -> str:
    digits = f"{secrets.randbelow(10**6):06d}"
    return f"Z{digits}{compute_check_digit('Z', digits)}"


# Patient index routes (app/patient_index). Each call names a fresh MRN or HKID, so none
# depends on another; the index is not part of the world the matrix reads. {PATIENT} is
# registered with its id as INST_A's MRN (hub_testkit.register_patients): found by INST_A's
# staff, unknown to INST_B's (an MRN is scoped by its institution).
ROUTES.update(
    {
        "pt_register": Route("POST", "/patients", lambda h: {"mrn": _fresh_mrn()}, mutates=False),
        "pt_lookup": Route("POST", "/patients/lookup", lambda h: {"mrn": PATIENT}, mutates=False),
        "pt_link": Route(
            "POST", f"/patients/{PATIENT}/mrn-links", lambda h: {"mrn": _fresh_mrn()}, mutates=False
        ),
        "pt_unlink": Route(
            "POST",
            "/patients/mrn-links/unlink",
            lambda h: {"mrn": _linked_mrn(h), "reason": "mrn_retired"},
            mutates=False,
        ),
        "pt_correct": Route(
            "POST",
            "/patients/mrn-links/correct",
            lambda h: {"mrn": _linked_mrn(h), "patient_id": PATIENT, "reason": "wrong_patient"},
            mutates=False,
        ),
        "pt_hkid": Route(
            "POST",
            "/patients/pt-synthetic-000099/hkid-corrections",
            lambda h: {"hkid": _fresh_hkid(), "reason": "data_entry_error"},
            mutates=False,
        ),
    }
)

# Sharing-consent routes (app/patient_consent): recorded by the institution's clinicians
# and admins for a patient the index knows. Granting adds one more consent to a patient
# who already has them (the world's groups are unaffected); the withdrawal names a
# consent that does not exist, so an allowed caller gets 404 and nothing is withdrawn
# (tests/app/consent withdraw real ones).
NO_CONSENT = "cs-" + "0" * 32
ROUTES.update(
    {
        "cs_grant": Route(
            "POST",
            "/patients/pt-synthetic-000099/consents",
            lambda h: {"institutions": [INST_A]},
            mutates=False,
        ),
        "cs_withdraw": Route(
            "POST",
            f"/patients/pt-synthetic-000099/consents/{NO_CONSENT}/withdraw",
            lambda h: {},
            mutates=False,
        ),
        "cs_read": Route("GET", "/patients/pt-synthetic-000099/consents", mutates=False),
    }
)

# Community-care intake (app/intake): only a clinic system's client-credentials token with
# the intake scope passes; every account's token, whatever its role, is refused (401).
# The machine side is tested in tests/app/intake.
ROUTES["intake_submit"] = Route("POST", "/intake/messages", lambda h: {}, mutates=False)

# The break-glass grant lasts 60 minutes; "expired" is checked four hours later.
EXPIRED_SHIFT = timedelta(hours=4, minutes=1)


def parse_matrix() -> list[tuple[str, str, int]]:
    lines = [line.split() for line in MATRIX.strip().splitlines()]
    header = lines[0][1:]
    cells = []
    for row in lines[1:]:
        route, statuses = row[0], row[1:]
        assert len(statuses) == len(header), route
        cells.extend((route, CODES[who], int(s)) for who, s in zip(header, statuses, strict=True))
    return cells


CELLS = parse_matrix()


def _template(route: Route) -> str:
    """The route's path as the OpenAPI document names it."""
    return (
        route.path.split("?")[0]
        .replace("{gid}", "{group_id}")
        .replace("{grant}", "{grant_id}")
        .replace("/members/M20002", "/members/{reg_no}")
        .replace("{rid}", "{referral_id}")
        .replace("{arid}", "{referral_id}")
        .replace(f"/institutions/{INST_A}", "/institutions/{institution_id}")
        .replace("{spare}", "{reg_no}")
        .replace("{regid}", "{registration_id}")
        .replace(f"/patients/{PATIENT}/", "/patients/{patient_id}/")
        .replace("/patients/pt-synthetic-000099/", "/patients/{patient_id}/")
        .replace("txn-matrix", "{txn_id}")
        .replace(f"/consents/{NO_CONSENT}/", "/consents/{consent_id}/")
    )


def test_matrix_covers_every_route_and_principal(hub: Hub) -> None:
    """A new route cannot ship without its row: the OpenAPI document is the route list."""
    # Record routes have their own matrix, with its own completeness check:
    # tests/app/records/test_record_access_matrix.py.
    published = {
        (method.upper(), path)
        for path, operations in hub.client.get("/openapi.json").json()["paths"].items()
        if path not in PUBLIC_PATHS
        for method, operation in operations.items()
        if "records" not in operation.get("tags", [])
    }
    covered = {(r.method, _template(r)) for r in ROUTES.values()}
    assert published == covered
    assert {who for _, who, _ in CELLS} == {
        "anonymous",
        "malformed",
        "applicant",
        "homeserver",
        *USERS,
    }


def _request(hub: Hub, world: World, route_name: str, who: str, client: httpx.Client) -> Any:
    route = ROUTES[route_name]
    gid = world.closed_group_id if who == "closed_member" else world.group_id
    grant = world.expired_grant_id if who == "bg_expired" else world.live_grant_id
    path = route.path.format(
        gid=gid,
        grant=grant,
        rid=world.referral_id,
        arid=world.accepted_referral_id,
        spare=world.spare_reg_no,
        regid=world.registration_id,
    )
    headers: dict[str, str] = {}
    if who == "malformed":
        headers["Authorization"] = "Bearer not.a-jwt"
    elif who == "applicant":
        headers = hub.bearer(world.applicant_token)
    elif who == "homeserver":
        headers["Authorization"] = f"Bearer {hub.registration.hs_token}"
    elif who != "anonymous":
        headers = hub.headers(USERS[who])
    body = route.body(hub) if route.body else None
    if body is not None and body.get("group_id") == "{gid}":
        body = {**body, "group_id": gid}
    if who == "bg_expired":
        hub.clock.offset = EXPIRED_SHIFT
    try:
        return client.request(route.method, path, headers=headers, json=body)
    finally:
        hub.clock.offset = timedelta(0)


@pytest.mark.parametrize(("route_name", "who", "expected"), CELLS)
def test_authorization_matrix(
    hub: Hub,
    world: World,
    api: httpx.Client,
    request: pytest.FixtureRequest,
    route_name: str,
    who: str,
    expected: int,
) -> None:
    if expected < 300 and ROUTES[route_name].mutates:
        world = request.getfixturevalue("fresh_world")
    through_gateway = api is not hub.client
    if through_gateway and who in ("malformed", "homeserver"):
        expected = 401  # not a Cognito token: the public path's authorizer refuses it
    response = _request(hub, world, route_name, who, api)
    assert response.status_code == expected, response.text
    # API Gateway's own refusal, not ours: no Cognito token, or (intake) a token without
    # the method's authorization scope, which only a clinic system's token carries.
    gateway_refuses = who in ("anonymous", "malformed", "homeserver") or (
        route_name == "intake_submit"
    )
    if through_gateway and gateway_refuses:
        assert response.json() == {"message": "Unauthorized"}
    elif expected >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
        assert PATIENT not in response.text


def test_refusals_left_the_shared_world_unchanged(hub: Hub, world: World) -> None:
    state = hub.services.groups._repo.load(world.group_id)
    assert state is not None
    group, members = state
    assert group.status.value == "open"
    assert {(m.reg_no, m.state.value) for m in members} == {
        ("M20001", "active"),
        ("M20002", "active"),
        ("M20003", "removed"),
        ("M20006", "invited"),
    }
    referrals = hub.services.referrals
    assert referrals is not None
    pending = referrals._repo.load(world.referral_id)
    accepted = referrals._repo.load(world.accepted_referral_id)
    assert pending is not None and accepted is not None
    assert (pending.referral.status.value, pending.referral.version) == ("requested", 1)
    assert (accepted.referral.status.value, accepted.referral.version) == ("accepted", 2)
    assert len(pending.history) == 1 and len(accepted.history) == 2


def test_refusals_left_the_institution_data_unchanged(hub: Hub, world: World) -> None:
    repository = hub.services.institutions.repository
    pending = repository.pending_one(world.registration_id)
    assert pending is not None and pending.institution == CLINIC
    account = repository.account(pending.sub)
    assert account is not None and account.status.value == "pending"
    institution, affiliation = repository.standing(INST_A, world.spare_reg_no)
    assert institution is not None and institution.admitted
    assert affiliation is not None and affiliation.active and affiliation.roles == ("doctor",)
    applicant = hub.services.authenticator.applicant(world.applicant_token)
    assert repository.account(applicant.sub) is None


def test_every_matrix_response_was_held_to_the_api_document(
    request: pytest.FixtureRequest,
) -> None:
    """The contract check (tests/app/api_contract.py) saw every route of the matrix, with
    refusals and successes: the document lists every status the matrix provoked (a
    violation fails the cell itself)."""
    from api_contract import CONTRACT

    cells = [i for i in request.session.items if i.name.startswith("test_authorization_matrix[")]
    if len(cells) < len(CELLS) * 2:
        pytest.skip("the whole matrix did not run in this session")
    seen = {(method, path) for method, path, _status, _code in CONTRACT.seen}
    statuses = {status for _m, _p, status, _c in CONTRACT.seen}
    for route in ROUTES.values():
        assert (route.method, _template(route)) in seen, (route.method, _template(route))
    assert {200, 201, 401, 403, 404, 409} <= statuses
