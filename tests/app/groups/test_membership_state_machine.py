"""Property tests of the membership state machine (hypothesis RuleBasedStateMachine).

The machine drives :mod:`app.groups.membership` with arbitrary sequences of invite,
add, accept, leave, remove and close for a handful of doctors, alongside a plain
model of what should happen. Invariants checked after every step:

- the shipped Cedar policies let exactly the ACTIVE members of an OPEN group view it
  (a closed group keeps its memberships for history, and no one gets in);
- (separately) a group entity sliced to the principal and target decides every group
  action exactly as the full entity does, for arbitrary membership states;
- every accepted change increases the membership's version by one and is recorded;
  refused changes raise ``InvalidTransition`` and change nothing;
- nothing is forgotten: joined/left/removed times, once set, survive until a fresh
  invitation starts a new membership period, and the history only grows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from app.access.engine import Action, Authorizer
from app.access.entities import principal_entity, uid
from app.groups import membership as sm
from app.groups.entities import group_entity
from app.groups.membership import (
    ConsultationGroup,
    GroupStatus,
    InvalidTransition,
    MemberRole,
    Membership,
    MembershipState,
)
from app.identity.principal import Principal

DOCTORS = ["M40001", "M40002", "M40003"]
LEAD = "M40000"
AUTHORIZER = Authorizer()
SLICE_ACTIONS = [
    Action.VIEW_GROUP,
    Action.INVITE_MEMBER,
    Action.ACCEPT_INVITATION,
    Action.LEAVE_GROUP,
    Action.REMOVE_MEMBER,
    Action.CLOSE_GROUP,
]


def principal(reg_no: str) -> Principal:
    return Principal(
        sub=f"sub-{reg_no}",
        username=reg_no,
        institution="inst",
        roles=frozenset({"doctor"}),
        reg_no=reg_no,
    )


class MembershipMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.group = ConsultationGroup(
            group_id="g1",
            patient_id="pt-1",
            patient_ref="pref:1",
            institution="inst",
            title="t",
            purpose="",
            status=GroupStatus.OPEN,
            created_by=LEAD,
            created_at=self.now,
        )
        lead, _ = sm.invite(
            self.group,
            None,
            reg_no=LEAD,
            role=MemberRole.LEAD,
            institution="inst",
            actor=LEAD,
            at=self.now,
            direct=True,
        )
        self.members: dict[str, Membership] = {LEAD: lead}
        # The model: expected state per doctor (None: never invited).
        self.expected: dict[str, MembershipState | None] = {d: None for d in DOCTORS}
        self.expected[LEAD] = MembershipState.ACTIVE
        self.history: list[sm.MembershipChange] = []

    def tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now

    def attempt(self, doctor: str, change: object, allowed: bool) -> None:
        before = self.members.get(doctor)
        try:
            membership, record = change()  # type: ignore[operator]
        except InvalidTransition:
            assert not allowed, f"refused a legal change for {doctor}"
            assert self.members.get(doctor) == before
            return
        assert allowed, f"accepted an illegal change for {doctor}: {record.event}"
        assert membership.version == (before.version + 1 if before else 1)
        assert record.from_state == (before.state if before else None)
        assert record.to_state == membership.state
        self.members[doctor] = membership
        self.history.append(record)

    @rule(doctor=st.sampled_from(DOCTORS), direct=st.booleans())
    def invite(self, doctor: str, direct: bool) -> None:
        state = self.expected[doctor]
        allowed = self.group.status is GroupStatus.OPEN and state not in sm.CURRENT
        self.attempt(
            doctor,
            lambda: sm.invite(
                self.group,
                self.members.get(doctor),
                reg_no=doctor,
                role=MemberRole.MEMBER,
                institution="inst",
                actor=LEAD,
                at=self.tick(),
                direct=direct,
            ),
            allowed,
        )
        if allowed:
            self.expected[doctor] = MembershipState.ACTIVE if direct else MembershipState.INVITED

    @rule(doctor=st.sampled_from(DOCTORS))
    def accept(self, doctor: str) -> None:
        allowed = (
            self.group.status is GroupStatus.OPEN
            and self.expected[doctor] is MembershipState.INVITED
        )
        self.attempt(
            doctor, lambda: sm.accept(self.group, self.members.get(doctor), at=self.tick()), allowed
        )
        if allowed:
            self.expected[doctor] = MembershipState.ACTIVE

    @rule(doctor=st.sampled_from([*DOCTORS, LEAD]))
    def leave(self, doctor: str) -> None:
        allowed = self.group.status is GroupStatus.OPEN and self.expected[doctor] in sm.CURRENT
        self.attempt(
            doctor, lambda: sm.leave(self.group, self.members.get(doctor), at=self.tick()), allowed
        )
        if allowed:
            self.expected[doctor] = MembershipState.LEFT

    @rule(doctor=st.sampled_from(DOCTORS))
    def remove(self, doctor: str) -> None:
        allowed = self.group.status is GroupStatus.OPEN and self.expected[doctor] in sm.CURRENT
        self.attempt(
            doctor,
            lambda: sm.remove(self.group, self.members.get(doctor), actor=LEAD, at=self.tick()),
            allowed,
        )
        if allowed:
            self.expected[doctor] = MembershipState.REMOVED

    @rule()
    def close(self) -> None:
        if self.group.status is GroupStatus.OPEN:
            self.group = sm.close(self.group, actor=LEAD, at=self.tick())
            assert self.group.closed_at is not None
        else:
            try:
                sm.close(self.group, actor=LEAD, at=self.tick())
            except InvalidTransition:
                pass
            else:
                raise AssertionError("closed a closed group")

    @invariant()
    def states_match_the_model(self) -> None:
        for doctor, state in self.expected.items():
            assert (self.members[doctor].state if doctor in self.members else None) == state

    @invariant()
    def times_are_kept(self) -> None:
        for m in self.members.values():
            if m.state is MembershipState.ACTIVE:
                assert m.joined_at is not None
            if m.state is MembershipState.LEFT:
                assert m.left_at is not None
            if m.state is MembershipState.REMOVED:
                assert m.removed_at is not None and m.removed_by == LEAD
            assert m.invited_at is not None

    @invariant()
    def history_accounts_for_every_version(self) -> None:
        for doctor, m in self.members.items():
            recorded = [c for c in self.history if c.reg_no == doctor]
            # The lead's creation is not replayed here; every other version is a change.
            assert len(recorded) == m.version - (1 if doctor == LEAD else 0)

    @invariant()
    def cedar_grants_view_exactly_to_active_members_of_an_open_group(self) -> None:
        entity = group_entity(self.group, self.members.values())
        for doctor in [*DOCTORS, LEAD]:
            p = principal(doctor)
            decision = AUTHORIZER.decide(
                uid("User", p.sub),
                Action.VIEW_GROUP,
                uid("Group", "g1"),
                [principal_entity(p), entity],
                # consent in force: this property is about membership
                {"break_glass_patients": [], "target": "", "consent_active": True},
            )
            m = self.members.get(doctor)
            should = self.group.status is GroupStatus.OPEN and m is not None and m.has_access
            assert decision.allowed == should, (doctor, decision)


MembershipMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=15, deadline=None
)
TestMembershipStateMachine = MembershipMachine.TestCase


@settings(max_examples=200, deadline=None)
@given(
    states=st.lists(
        st.tuples(st.sampled_from(list(MembershipState)), st.sampled_from(list(MemberRole))),
        min_size=4,
        max_size=4,
    ),
    status=st.sampled_from(list(GroupStatus)),
    who=st.sampled_from([*DOCTORS, LEAD, "M49999"]),
    target=st.sampled_from(["", *DOCTORS, LEAD]),
    action=st.sampled_from(SLICE_ACTIONS),
)
def test_sliced_group_entities_decide_like_full_ones(
    states: list[tuple[MembershipState, MemberRole]],
    status: GroupStatus,
    who: str,
    target: str,
    action: Action,
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    group = ConsultationGroup(
        group_id="g1",
        patient_id="pt-1",
        patient_ref="pref:1",
        institution="inst",
        title="t",
        purpose="",
        status=status,
        created_by=LEAD,
        created_at=now,
    )
    memberships = [
        Membership("g1", reg_no, role, state, "inst", LEAD, now)
        for reg_no, (state, role) in zip([LEAD, *DOCTORS], states, strict=True)
    ]
    p = principal(who)
    decisions = [
        AUTHORIZER.decide(
            uid("User", p.sub),
            action,
            uid("Group", "g1"),
            [principal_entity(p), entity],
            {"break_glass_patients": [], "target": target, "consent_active": True},
        )
        for entity in (
            group_entity(group, memberships),
            group_entity(group, memberships, slice_for=(who, target)),
        )
    ]
    assert decisions[0] == decisions[1]
