"""The Cedar authorizer: policies from ``app/access/policies/*.cedar``, one decision per call.

Guarantees:
- default deny; any ``forbid`` beats every ``permit``;
- every :class:`Decision` names its reason: the ``@id`` of the policies that decided
  (a permit on allow, a forbid on deny) or ``no-permitting-policy``; an evaluation
  error is a deny with reason ``evaluation-error``;
- the policies are parsed and validated against ``hub.cedarschema`` once, at startup
  (a policy that does not type-check stops the service from starting);
- the engine holds no entity state: callers pass the entities of this request, built
  from the store for this request (:mod:`app.access.entities`), so nothing can be
  served from a stale membership.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

import cedarpy

NO_PERMIT = "no-permitting-policy"
EVALUATION_ERROR = "evaluation-error"


class Action(StrEnum):
    VIEW_GROUP = "ViewGroup"
    QUERY_AUDIT = "QueryAudit"
    CREATE_GROUP = "CreateGroup"
    INVITE_MEMBER = "InviteMember"
    SUMMON_EXPERTS = "SummonExperts"
    ACCEPT_INVITATION = "AcceptInvitation"
    LEAVE_GROUP = "LeaveGroup"
    REMOVE_MEMBER = "RemoveMember"
    CLOSE_GROUP = "CloseGroup"
    START_BREAK_GLASS = "StartBreakGlass"
    END_BREAK_GLASS = "EndBreakGlass"
    LIST_BREAK_GLASS = "ListBreakGlass"
    VIEW_PROFILE = "ViewProfile"
    CREATE_RECORD = "CreateRecord"
    VIEW_RECORD = "ViewRecord"
    READ_RECORD = "ReadRecord"
    SHARE_RECORD = "ShareRecord"
    CREATE_RECORD_VERSION = "CreateRecordVersion"
    SHRED_RECORD = "ShredRecord"
    SEND_REFERRAL = "SendReferral"
    VIEW_REFERRAL = "ViewReferral"
    LIST_REFERRALS = "ListReferrals"
    ACCEPT_REFERRAL = "AcceptReferral"
    DECLINE_REFERRAL = "DeclineReferral"
    REDIRECT_REFERRAL = "RedirectReferral"
    CANCEL_REFERRAL = "CancelReferral"
    COMPLETE_REFERRAL = "CompleteReferral"
    VIEW_METRICS = "ViewMetrics"
    LIST_INSTITUTIONS = "ListInstitutions"
    ADMIT_INSTITUTION = "AdmitInstitution"
    UPDATE_INSTITUTION = "UpdateInstitution"
    BIND_ACCOUNT = "BindAccount"
    MAP_PROVIDER = "MapProvider"
    MAP_INTAKE_CLIENT = "MapIntakeClient"
    LIST_AFFILIATIONS = "ListAffiliations"
    SET_AFFILIATION = "SetAffiliation"
    REMOVE_AFFILIATION = "RemoveAffiliation"
    LIST_REGISTRATIONS = "ListRegistrations"
    APPROVE_REGISTRATION = "ApproveRegistration"
    REJECT_REGISTRATION = "RejectRegistration"
    REGISTER_PATIENT = "RegisterPatient"
    FIND_PATIENT = "FindPatient"
    LINK_PATIENT_MRN = "LinkPatientMrn"
    UNLINK_PATIENT_MRN = "UnlinkPatientMrn"
    CORRECT_PATIENT_INDEX = "CorrectPatientIndex"
    OPEN_MESSAGING_SESSION = "OpenMessagingSession"
    SET_NOTIFICATION_PREFERENCE = "SetNotificationPreference"
    RECORD_CONSENT = "RecordConsent"
    WITHDRAW_CONSENT = "WithdrawConsent"
    VIEW_CONSENTS = "ViewConsents"
    UPLOAD_RECORD = "UploadRecord"
    LIST_PATIENT_RECORDS = "ListPatientRecords"
    LIST_GROUP_RECORDS = "ListGroupRecords"
    LIST_OWN_GROUPS = "ListOwnGroups"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...]
    action: Action

    @property
    def reason(self) -> str:
        return ",".join(self.reasons)


def load_policy_text() -> tuple[str, str]:
    """(all policies, schema) as shipped in the package."""
    folder = resources.files("app.access") / "policies"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".cedar"))
    policies = "\n".join((folder / n).read_text(encoding="utf-8") for n in names)
    schema = (folder / "hub.cedarschema").read_text(encoding="utf-8")
    return policies, schema


class PolicyError(RuntimeError):
    """The shipped policies do not validate against the schema."""


class Authorizer:
    def __init__(self, policies: str | None = None, schema: str | None = None):
        shipped_policies, shipped_schema = load_policy_text()
        self.policy_text = policies if policies is not None else shipped_policies
        self.schema_text = schema if schema is not None else shipped_schema
        validation = cedarpy.validate_policies(self.policy_text, self.schema_text)
        if not validation.validation_passed:
            raise PolicyError("; ".join(str(e) for e in validation.errors))
        self._policies = cedarpy.PolicySet.from_str(self.policy_text)

    def decide(
        self,
        principal: Mapping[str, str],
        action: Action,
        resource: Mapping[str, str],
        entities: Sequence[Mapping[str, Any]],
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        request = {
            "principal": dict(principal),
            "action": {"type": "Hub::Action", "id": action.value},
            "resource": dict(resource),
            "context": dict(context or {}),
        }
        result = cedarpy.is_authorized(request, self._policies, [dict(e) for e in entities])
        diagnostics = result.diagnostics
        if diagnostics.errors:
            return Decision(False, (EVALUATION_ERROR,), action)
        names = diagnostics.id_annotations_by_reason
        reasons = tuple(sorted(names.get(r) or r for r in diagnostics.reasons))
        if result.allowed:
            return Decision(True, reasons, action)
        return Decision(False, reasons or (NO_PERMIT,), action)
