"""What Cedar is told when a consultation group is read (``ViewGroup``, ``ListGroupRecords``).

Reading a group shows who treats the patient and which records are shared about them, so
it needs what reading a shared record needs (``consent.cedar``
``viewing-group-needs-patient-consent``): the patient's sharing consent in force for the
reader's institution now, or one of the two recorded exceptions, each flagged in the
read's ledger entry (fact ``consent_override``):

- a live break-glass grant for the patient (``break_glass``);
- the reader joined the group by accepting a referral sent on the ``emergency`` legal
  basis that is still in progress (``emergency_referral``).

Guarantees: every decision on these actions states ``consent_active`` (read strongly
consistent now, so a withdrawal refuses the next read) and, when consent is not in force,
``emergency_groups`` (the group, when the reader holds the emergency basis for it);
the policy tests both with ``has``, so a decision that states neither is refused.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.access.entities import uid
from app.access.gate import Allowed
from app.audit.facts import ConsentOverride, FactKey
from app.consent.model import ConsentRegistry, EmergencyBasis
from app.groups.membership import ConsultationGroup
from app.identity.principal import Principal


class GroupReading:
    """Builds the context of a group read and flags a read allowed without consent."""

    def __init__(self, consents: ConsentRegistry, emergency: EmergencyBasis):
        self._consents = consents
        self._emergency = emergency

    def context(
        self,
        principal: Principal,
        group: ConsultationGroup,
        break_glass_patients: list[str],
    ) -> dict[str, Any]:
        consent_active = self._consents.consent_decision(
            group.patient_id, principal.institution
        ).allowed
        context: dict[str, Any] = {
            "break_glass_patients": break_glass_patients,
            "target": "",
            "consent_active": consent_active,
        }
        if not consent_active:
            # Only asked when it can matter: one more consistent read, for the reader.
            emergency = principal.reg_no is not None and self._emergency.emergency_basis(
                principal.reg_no, group.group_id
            )
            context["emergency_groups"] = (
                [{"__entity": uid("Group", group.group_id)}] if emergency else []
            )
        return context

    @staticmethod
    def flagged(allowed: Allowed, group: ConsultationGroup, context: dict[str, Any]) -> Allowed:
        """The allow event with ``consent_override`` when consent did not cover it."""
        return flag_override(
            allowed,
            consent_active=bool(context.get("consent_active")),
            break_glass=group.patient_ref in context.get("break_glass_patients", []),
            emergency=bool(context.get("emergency_groups")),
        )


def flag_override(
    allowed: Allowed, *, consent_active: bool, break_glass: bool, emergency: bool
) -> Allowed:
    """An access the patient's consent did not cover is allowed only on a recorded
    basis (the policy decided that); the ledger entry names which. Break-glass first:
    it is the broader grant and the one alarmed."""
    if consent_active:
        return allowed
    if break_glass:
        basis = ConsentOverride.BREAK_GLASS
    elif emergency:
        basis = ConsentOverride.EMERGENCY_REFERRAL
    else:
        return allowed
    facts = {**allowed.event.facts, FactKey.CONSENT_OVERRIDE.value: basis.value}
    return Allowed(allowed.decision, replace(allowed.event, facts=facts))
