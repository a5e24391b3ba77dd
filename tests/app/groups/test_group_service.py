"""Consultation group behaviour beyond the matrix: summon, history, outbox, atomicity."""

from __future__ import annotations

from typing import Any

import pytest
from hub_testkit import PATIENT, Hub, build_group

from app.errors import Conflict, InvalidRequest
from app.groups.membership import MemberRole, MembershipState


def members(hub: Hub, gid: str) -> dict[str, Any]:
    state = hub.services.groups._repo.load(gid)
    assert state is not None
    return {m.reg_no: m for m in state[1]}


def test_summon_invites_only_eligible_specialists_and_emits_notifications(hub: Hub) -> None:
    gid = build_group(hub)
    r = hub.client.post(
        f"/groups/{gid}/summon",
        json={"specialties": ["Cardiology"], "count": 5},
        headers=hub.headers("dr-lead"),
    )
    assert r.status_code == 201, r.text
    invited = {e["reg_no"] for e in r.json()["invited"]}
    # M30003 is suspended, M30004 works at an institution not admitted in this phase.
    assert invited == {"M30001", "M30002"}
    current = members(hub, gid)
    assert {current[n].role for n in invited} == {MemberRole.INVITED_EXPERT}
    assert {current[n].state for n in invited} == {MembershipState.INVITED}
    outbox = hub.services.groups._repo.outbox(hub.clock().date().isoformat())
    notices = {
        (o["recipient"], o["kind"]) for o in outbox if o.get("group_id") == gid and "recipient" in o
    }
    assert {n for n in notices if n[1] == "expert_summoned"} == {
        ("M30001", "expert_summoned"),
        ("M30002", "expert_summoned"),
    }
    # Ordinary invitations notify too (the world's group invited three doctors).
    assert {n for n in notices if n[1] == "invitation"} == {
        ("M20002", "invitation"),
        ("M20003", "invitation"),
        ("M20006", "invitation"),
    }
    # The ledger records the summon as a share of the group (who was invited is in the
    # group's history and outbox above: entries hold no free-form details).
    entry = hub.audit_entry(r.json()["audit_receipt"])
    assert (entry["action"], entry["resource"]["type"], entry["resource"]["id"]) == (
        "share",
        "group",
        gid,
    )
    assert (entry["reason"], entry["outcome"]) == ("lead-manages-open-group", "success")
    # Everyone eligible is now invited: a second summon finds no one.
    again = hub.client.post(
        f"/groups/{gid}/summon",
        json={"specialties": ["cardiology"], "count": 5},
        headers=hub.headers("dr-lead"),
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "no_specialist_available"


def test_summon_excludes_the_requester_and_respects_count(hub: Hub) -> None:
    groups = hub.services.groups
    state, _ = groups.create(hub.principal("sp-cardio-a"), PATIENT, "Specialist-led", "")
    gid = state.group.group_id
    chosen, _ = groups.summon(hub.principal("sp-cardio-a"), gid, ["cardiology", "neurology"], 1)
    assert [e.reg_no for e in chosen] == ["M30002"]
    chosen, _ = groups.summon(hub.principal("sp-cardio-a"), gid, ["cardiology", "neurology"], 5)
    assert [e.reg_no for e in chosen] == ["M30005"]


def test_history_is_kept_and_nothing_is_deleted(hub: Hub) -> None:
    gid = build_group(hub)
    hub.client.post(f"/groups/{gid}/leave", headers=hub.headers("dr-member"))
    left = members(hub, gid)["M20002"]
    assert left.state is MembershipState.LEFT
    assert left.joined_at is not None and left.left_at is not None
    removed = members(hub, gid)["M20003"]
    assert removed.state is MembershipState.REMOVED and removed.removed_by == "M20001"
    events = [(h["reg_no"], h["event"]) for h in hub.services.groups._repo.history(gid)]
    assert sorted(events) == sorted(
        [
            ("M20001", "add"),
            ("M20002", "invite"),
            ("M20002", "accept"),
            ("M20002", "leave"),
            ("M20003", "invite"),
            ("M20003", "accept"),
            ("M20003", "remove"),
            ("M20006", "invite"),
        ]
    )
    # A removed doctor may be invited afresh; the old period stays in the history.
    hub.services.groups.invite(hub.principal("dr-lead"), gid, "M20003", MemberRole.MEMBER)
    again = members(hub, gid)["M20003"]
    assert again.state is MembershipState.INVITED and again.version == removed.version + 1
    assert len(hub.services.groups._repo.history(gid)) == len(events) + 1


def FailingAudit(real: Any) -> Any:
    """The real ledger trail, pointed at a ledger table that does not exist: the entry's
    write fails inside the same transaction as the membership change."""
    from app.ledger.store import LedgerTable
    from app.ledger.trail import LedgerTrail

    trail = LedgerTrail(LedgerTable(real.table.client, "no-such-ledger-table"))
    trail._observed(7)  # a plausible position, so the failure is the transaction's own
    return trail


def test_membership_change_and_audit_event_commit_together(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    gid = build_group(hub)
    history_before = len(hub.services.groups._repo.history(gid))
    monkeypatch.setattr(hub.services.groups, "_audit", FailingAudit(hub.services.audit))
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        hub.services.groups.invite(hub.principal("dr-lead"), gid, "M20012", MemberRole.MEMBER)
    assert "M20012" not in members(hub, gid)
    assert len(hub.services.groups._repo.history(gid)) == history_before


def test_a_stale_change_writes_neither_membership_nor_audit_event(hub: Hub) -> None:
    gid = build_group(hub)
    groups = hub.services.groups
    stale = groups._repo.load(gid)
    assert stale is not None
    hub.client.post(f"/groups/{gid}/leave", headers=hub.headers("dr-member"))
    # Replay a leave decided on the state read before the first leave committed.
    from app.groups import membership as sm

    member = next(m for m in stale[1] if m.reg_no == "M20002")
    change = sm.leave(stale[0], member, at=hub.clock())
    allowed = groups._decide(hub.principal("dr-member"), sm_action("LEAVE_GROUP"), _state(stale))
    size_before = hub.ledger_size()
    with pytest.raises(Conflict):
        groups._commit(gid, allowed, [change])
    # No entry was added by the refused commit (the ledger's tail did not move for it).
    stale_entries = [
        e
        for e in hub.audit_entries(size_before)
        if e["action"] == "leave" and e["actor"]["mchk_reg_no"] == "M20002"
    ]
    assert stale_entries == []
    assert members(hub, gid)["M20002"].version == member.version + 1


def sm_action(name: str) -> Any:
    from app.access.engine import Action

    return getattr(Action, name)


def _state(loaded: Any) -> Any:
    from app.groups.service import GroupState

    return GroupState(*loaded)


def test_invitees_must_be_registered_hub_doctors_of_admitted_institutions(hub: Hub) -> None:
    gid = build_group(hub)
    for reg_no in ("M29999", "M20008", "M20009", "M77777"):
        r = hub.client.post(
            f"/groups/{gid}/invitations",
            json={"reg_no": reg_no},
            headers=hub.headers("dr-lead"),
        )
        assert r.status_code == 422, reg_no
        assert r.json()["error"]["code"] == "invitee_not_eligible"


def test_direct_add_only_within_the_owning_institution(hub: Hub) -> None:
    gid = build_group(hub)
    r = hub.client.post(
        f"/groups/{gid}/invitations",
        json={"reg_no": "M20005", "direct": True},
        headers=hub.headers("dr-lead"),
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invite_required"
    r = hub.client.post(
        f"/groups/{gid}/invitations",
        json={"reg_no": "M20012", "direct": True},
        headers=hub.headers("dr-lead"),
    )
    assert r.status_code == 201 and r.json()["membership"]["state"] == "active"
    assert hub.client.get(f"/groups/{gid}", headers=hub.headers("dr-target")).status_code == 200


def test_no_second_lead_and_no_double_invitation(hub: Hub) -> None:
    gid = build_group(hub)
    with pytest.raises(InvalidRequest):
        hub.services.groups.invite(hub.principal("dr-lead"), gid, "M20012", MemberRole.LEAD)
    r = hub.client.post(
        f"/groups/{gid}/invitations", json={"reg_no": "M20006"}, headers=hub.headers("dr-lead")
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_member_or_invited"


def test_lead_cannot_remove_self_but_can_leave(hub: Hub) -> None:
    gid = build_group(hub)
    r = hub.client.delete(f"/groups/{gid}/members/M20001", headers=hub.headers("dr-lead"))
    assert r.status_code == 403
    assert "lead-leaves-rather-than-removes-self" in r.json()["error"]["message"]


def test_unknown_group_is_404_and_audited(hub: Hub) -> None:
    unknown = "0" * 32  # well formed (uuid hex), never issued
    r = hub.client.get(f"/groups/{unknown}", headers=hub.headers("dr-lead"))
    assert r.status_code == 404
    assert any(
        e["resource"] == {"type": "group", "id": unknown}
        and e["reason"] == "group-not-found"
        and e["outcome"] == "denied"
        for e in hub.audit_entries(max(0, hub.ledger_size() - 50))
    )
