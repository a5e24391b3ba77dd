"""The patient index through the API: register, find, link, unlink, correct, and the
refusal of groups and referrals that name a patient the index does not know.

Every test makes its own synthetic HKIDs and MRNs (the session's hub is shared), and the
privacy checks scan the whole patients table and the ledger for them in clear.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest
from hub_testkit import INST_A, INST_B, Hub, send_referral

from app.audit.events import patient_reference
from app.patients import index as core
from app.patients.hkid import compute_check_digit
from app.patients.index_key import ENCRYPTION_CONTEXT as INDEX_KEY_CONTEXT
from app.patients.index_key import ITEM_KEY as INDEX_KEY_ITEM
from app.patients.index_key import load_or_create_index_key
from app.patients.repository import DynamoPatientIndexRepository
from infra.components.keys import PATIENT_INDEX_PURPOSE


def new_hkid() -> str:
    """A synthetic HKID with a valid check digit, as people write it (``Z123456(7)``)."""
    digits = f"{secrets.randbelow(10**6):06d}"
    return f"Z{digits}({compute_check_digit('Z', digits)})"


def wrong_check_digit(hkid: str) -> str:
    check = hkid[-2]
    other = "0" if check != "0" else "1"
    return hkid[:-2] + other + ")"


def new_mrn() -> str:
    return f"MRN-{uuid.uuid4().hex[:10].upper()}"


def register(hub: Hub, who: str = "dr-lead", **body: str) -> Any:
    return hub.client.post("/patients", json=body, headers=hub.headers(who))


def registered(hub: Hub, who: str = "dr-lead", **body: str) -> str:
    r = register(hub, who, **body)
    assert r.status_code == 201, r.text
    return str(r.json()["patient_id"])


def lookup(hub: Hub, who: str, **body: str) -> Any:
    return hub.client.post("/patients/lookup", json=body, headers=hub.headers(who))


def patients_table(hub: Hub) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": hub.settings.table_patients}
    while True:
        page = hub.dynamodb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def compact(hkid: str) -> str:
    return hkid.replace("(", "").replace(")", "")


# -- who may --------------------------------------------------------------------------


def test_anonymous_is_refused(hub: Hub) -> None:
    r = hub.client.post("/patients", json={"mrn": new_mrn()})
    assert r.status_code == 401


@pytest.mark.parametrize("who", ["auditor-1", "ops-admin", "dr-not-admitted"])
def test_non_institution_staff_cannot_register(hub: Hub, who: str) -> None:
    r = register(hub, who, mrn=new_mrn())
    assert r.status_code in (401, 403), r.text


def test_clinicians_cannot_unlink_or_correct_only_their_admin_can(hub: Hub) -> None:
    mrn = new_mrn()
    pid = registered(hub, mrn=mrn)
    other = registered(hub, mrn=new_mrn())
    for path, body in [
        ("/patients/mrn-links/unlink", {"mrn": mrn, "reason": "mrn_retired"}),
        (
            "/patients/mrn-links/correct",
            {"mrn": mrn, "patient_id": other, "reason": "wrong_patient"},
        ),
        (f"/patients/{pid}/hkid-corrections", {"hkid": new_hkid(), "reason": "data_entry_error"}),
    ]:
        r = hub.client.post(path, json=body, headers=hub.headers("dr-lead"))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "access_denied"
    r = lookup(hub, "dr-lead", mrn=mrn)
    assert r.json()["patient_id"] == pid  # nothing changed


# -- one patient across institutions -------------------------------------------------------


def test_two_institutions_meet_on_one_patient_through_the_hkid(hub: Hub) -> None:
    hkid, mrn_a, mrn_b = new_hkid(), new_mrn(), new_mrn()
    pid = registered(hub, "dr-lead", hkid=hkid, mrn=mrn_a)  # INST_A
    assert pid.startswith("pt-")
    # INST_B finds the patient by HKID (written differently) and links its own MRN.
    found = lookup(hub, "dr-member", hkid=compact(hkid).lower())
    assert found.status_code == 200 and found.json()["patient_id"] == pid
    r = hub.client.post(
        f"/patients/{pid}/mrn-links", json={"mrn": mrn_b}, headers=hub.headers("dr-member")
    )
    assert r.status_code == 201, r.text
    assert r.json()["change"] == "mrn_linked"
    assert lookup(hub, "dr-member", mrn=mrn_b).json()["patient_id"] == pid
    # An MRN is scoped by institution: INST_A's number means nothing at INST_B.
    assert lookup(hub, "dr-member", mrn=mrn_a).status_code == 404
    index = hub.services.patients._repo.load()
    assert {link.institution for link in core.links_of(index, pid)} == {INST_A, INST_B}


def test_an_hkid_registers_once(hub: Hub) -> None:
    hkid = new_hkid()
    registered(hub, hkid=hkid)
    again = register(hub, "dr-member", hkid=hkid)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "hkid_already_registered"


def test_a_wrong_check_digit_is_refused_without_echo(hub: Hub) -> None:
    bad = wrong_check_digit(new_hkid())
    r = register(hub, hkid=bad)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_hkid"
    assert compact(bad)[1:7] not in r.text


def test_a_body_without_identifiers_is_refused(hub: Hub) -> None:
    assert register(hub).status_code == 422
    assert lookup(hub, "dr-lead", hkid=new_hkid(), mrn=new_mrn()).status_code == 422


# -- corrections keep history ----------------------------------------------------------


def test_unlink_and_correct_keep_history(hub: Hub) -> None:
    mrn = new_mrn()
    wrong = registered(hub, mrn=mrn)
    right = registered(hub, hkid=new_hkid())
    r = hub.client.post(
        "/patients/mrn-links/correct",
        json={"mrn": mrn, "patient_id": right, "reason": "wrong_patient"},
        headers=hub.headers("inst-admin"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["change"] == "mrn_link_corrected"
    assert lookup(hub, "dr-lead", mrn=mrn).json()["patient_id"] == right
    index = hub.services.patients._repo.load()
    # The wrong patient's history still shows the link it had, now superseded.
    kinds = [e.kind for e in core.history_of(index, wrong)]
    assert kinds == [
        core.EventKind.PATIENT_REGISTERED,
        core.EventKind.MRN_LINKED,
        core.EventKind.MRN_LINK_CORRECTED,
    ]
    superseded = [link for link in index.links if link.patient_id == wrong]
    assert [link.state for link in superseded] == [core.LinkState.SUPERSEDED]
    r = hub.client.post(
        "/patients/mrn-links/unlink",
        json={"mrn": mrn, "reason": "mrn_retired"},
        headers=hub.headers("inst-admin"),
    )
    assert r.status_code == 200 and r.json()["change"] == "mrn_unlinked"
    assert lookup(hub, "dr-lead", mrn=mrn).status_code == 404
    again = hub.client.post(
        "/patients/mrn-links/unlink",
        json={"mrn": mrn, "reason": "mrn_retired"},
        headers=hub.headers("inst-admin"),
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "mrn_not_linked"


def test_hkid_correction_moves_the_lookup_and_keeps_the_old_reference(hub: Hub) -> None:
    old, new = new_hkid(), new_hkid()
    pid = registered(hub, hkid=old)
    r = hub.client.post(
        f"/patients/{pid}/hkid-corrections",
        json={"hkid": new, "reason": "data_entry_error"},
        headers=hub.headers("inst-admin"),
    )
    assert r.status_code == 200, r.text
    assert lookup(hub, "dr-lead", hkid=new).json()["patient_id"] == pid
    assert lookup(hub, "dr-lead", hkid=old).status_code == 404
    event = core.history_of(hub.services.patients._repo.load(), pid)[-1]
    assert event.kind is core.EventKind.HKID_CORRECTED and event.previous_hkid_ref


# -- nothing in clear ------------------------------------------------------------------


def test_no_hkid_or_mrn_in_clear_in_the_table_or_the_ledger(hub: Hub) -> None:
    start = hub.ledger_size()
    hkid, mrn = new_hkid(), new_mrn()
    r = register(hub, hkid=hkid, mrn=mrn)
    assert r.status_code == 201
    pid = r.json()["patient_id"]
    assert compact(hkid) not in r.text and mrn not in r.text
    stored = repr(patients_table(hub))
    for clear in (compact(hkid), hkid, mrn):
        assert clear not in stored
    entries = hub.audit_entries(start)
    text = repr(entries)
    for clear in (compact(hkid), hkid, mrn, pid, "hk1-", "mr1-"):
        assert clear not in text
    (entry,) = [e for e in entries if e["action"] == "create"]
    assert entry["resource"]["patient_ref"] == patient_reference(pid, hub.services.groups._key)
    assert entry["facts"] == {"op": "patient_index.register"}
    assert entry["outcome"] == "success"


def test_the_index_key_is_not_the_audit_key(hub: Hub) -> None:
    index_key = hub.services.patients._index_key
    assert len(index_key) == 32 and index_key != hub.services.groups._key
    # The context the service seals under is the one the key policy and the role grant.
    assert INDEX_KEY_CONTEXT == {"purpose": PATIENT_INDEX_PURPOSE}


def test_a_deployment_seals_the_index_key_with_kms(hub: Hub) -> None:
    import boto3

    kms = boto3.client("kms", region_name="ap-east-1", endpoint_url=hub.endpoint)
    key_arn = kms.create_key(Description="hubtest audit key")["KeyMetadata"]["Arn"]
    table = hub.settings.table_patients
    hub.dynamodb.delete_item(TableName=table, Key=INDEX_KEY_ITEM)
    first = load_or_create_index_key(hub.dynamodb, kms, table, key_arn)
    assert load_or_create_index_key(hub.dynamodb, kms, table, key_arn) == first
    sealed = hub.dynamodb.get_item(TableName=table, Key=INDEX_KEY_ITEM)["Item"]["sealed_key"]
    assert first not in sealed["B"] and len(first) == 32
    # Under the audit hashing key's context it does not unwrap.
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=sealed["B"], EncryptionContext={"purpose": "audit-patient-ref"})
    hub.dynamodb.delete_item(TableName=table, Key=INDEX_KEY_ITEM)


# -- storage -------------------------------------------------------------------------------


def test_the_log_is_read_across_pages(hub: Hub) -> None:
    for _ in range(3):
        registered(hub, mrn=new_mrn())
    repo = hub.services.patients._repo
    paged = DynamoPatientIndexRepository(hub.dynamodb, repo.table_name, page_size=1)
    assert list(paged.events()) == list(repo.events())
    assert paged.load().last_seq == repo.load().last_seq >= 3


def test_a_concurrent_change_writes_nothing(hub: Hub) -> None:
    repo = hub.services.patients._repo
    index = repo.load()
    at = hub.clock()
    _, first = core.register_patient(
        index, patient_id=f"pt-race-{uuid.uuid4().hex}", hkid_ref=None, actor="a", at=at
    )
    _, second = core.register_patient(
        index, patient_id=f"pt-race-{uuid.uuid4().hex}", hkid_ref=None, actor="b", at=at
    )
    repo.append(first)
    with pytest.raises(core.IndexConflict) as raised:
        repo.append(second)  # decided on the same index: its seq is taken
    assert raised.value.code == "concurrent_change"
    assert not repo.is_registered(second.patient_id)
    assert repo.is_registered(first.patient_id)


# -- groups and referrals name indexed patients ------------------------------------------


def test_a_group_for_an_unknown_patient_is_refused_then_created_once_registered(
    hub: Hub,
) -> None:
    mrn = new_mrn()
    unknown = f"pt-{uuid.uuid4().hex}"
    start = hub.ledger_size()
    r = hub.client.post(
        "/groups", json={"patient_id": unknown, "title": "Case"}, headers=hub.headers("dr-lead")
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "unknown_patient"
    (refusal,) = hub.audit_entries(start)
    assert refusal["outcome"] == "denied" and refusal["reason"] == "patient-not-indexed"
    pid = registered(hub, mrn=mrn)
    r = hub.client.post(
        "/groups", json={"patient_id": pid, "title": "Case"}, headers=hub.headers("dr-lead")
    )
    # Known now, but not yet consenting to sharing with INST_A (tests/app/consent).
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"
    r = hub.client.post(
        f"/patients/{pid}/consents", json={"institutions": [INST_A]}, headers=hub.headers("dr-lead")
    )
    assert r.status_code == 201, r.text
    r = hub.client.post(
        "/groups", json={"patient_id": pid, "title": "Case"}, headers=hub.headers("dr-lead")
    )
    assert r.status_code == 201, r.text


def test_an_unauthorised_caller_learns_nothing_about_the_index(hub: Hub) -> None:
    r = hub.client.post(
        "/groups",
        json={"patient_id": f"pt-{uuid.uuid4().hex}", "title": "Case"},
        headers=hub.headers("auditor-1"),
    )
    assert r.status_code == 403  # the policy decides before the index is asked


def test_a_referral_for_an_unknown_patient_is_refused(hub: Hub) -> None:
    from app.errors import HubError

    start = hub.ledger_size()
    with pytest.raises(HubError) as raised:
        send_referral(hub, "", patient_id=f"pt-{uuid.uuid4().hex}", group_id=None)
    assert raised.value.code == "unknown_patient" and raised.value.status_code == 422
    # Refused as a referral, before the group it would open is even attempted.
    (refusal,) = hub.audit_entries(start)
    assert refusal["resource"]["type"] == "referral"
    assert (refusal["outcome"], refusal["reason"]) == ("denied", "patient-not-indexed")
