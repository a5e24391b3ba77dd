"""Ledger entries as FHIR R4 AuditEvent resources, after IHE Basic Audit Log Patterns (BALP).

One entry becomes one ``AuditEvent`` (shape validated with ``fhir.resources.R4B``):

- ``type`` is the RESTful-operation type (``audit-event-type#rest``) with a
  ``restful-interaction`` subtype (``create``, ``read``, ``update``, ``delete``,
  ``search-type``), except logins (DICOM ``110114`` User Authentication / ``110122``
  Login) and exports (DICOM ``110106`` Export);
- ``meta.profile`` names the BALP profile: ``IHE.BasicAudit.<Create|Read|Update|Delete|
  Query>``, or the patient-specific ``IHE.BasicAudit.Patient<...>`` when the entry
  names a patient (then an entity with object role ``1`` Patient is added, identified
  by the keyed patient reference, never by a patient id);
- ``outcome`` ``0`` (success) or ``4`` (denied / minor failure), ``outcomeDesc`` the
  policy reason code; ``agent`` the actor (Cognito ``sub``, Medical Council number,
  institution, roles) as requestor; ``source`` the hub; the resource acted on as an
  entity; the ledger position and leaf hash ride in ``entity.detail`` so a SIEM can
  ask for the inclusion proof, and so do an entry's coded facts (``fact-<key>``).

Like the ledger itself: identifiers, codes and hashes only.
"""

from __future__ import annotations

import base64
from typing import Any

from app.ledger._hashing import leaf_hash
from app.ledger.entries import Action, AuditEntry, Outcome

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
OBJECT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
HUB = "urn:health-hub"

# ledger action -> (BALP profile stem, FHIR action code, restful interaction)
_REST: dict[Action, tuple[str, str, str]] = {
    Action.CREATE: ("Create", "C", "create"),
    Action.READ: ("Read", "R", "read"),
    Action.QUERY: ("Query", "E", "search-type"),
    Action.UPDATE: ("Update", "U", "update"),
    Action.SHARE: ("Update", "U", "update"),
    Action.REVOKE: ("Update", "U", "update"),
    Action.JOIN: ("Update", "U", "update"),
    Action.LEAVE: ("Update", "U", "update"),
    Action.BREAK_GLASS: ("Update", "U", "update"),
    Action.DENY: ("Read", "R", "read"),
    Action.SHRED: ("Delete", "D", "delete"),
}


def _type_and_profile(entry: AuditEntry) -> tuple[dict[str, Any], list[dict[str, Any]], str, str]:
    action = entry.action
    if action in (Action.LOGIN, Action.LOGOUT):
        code, display = ("110122", "Login") if action is Action.LOGIN else ("110123", "Logout")
        return (
            {"system": DCM, "code": "110114", "display": "User Authentication"},
            [{"system": DCM, "code": code, "display": display}],
            "E",
            "",
        )
    if action is Action.EXPORT:
        return ({"system": DCM, "code": "110106", "display": "Export"}, [], "R", "")
    stem, fhir_action, interaction = _REST[action]
    patient = "Patient" if entry.resource.patient_ref else ""
    return (
        {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"},
        [{"system": INTERACTION, "code": interaction}],
        fhir_action,
        f"{BALP}{patient}{stem}",
    )


def audit_event_resource(
    entry: AuditEntry, raw: bytes, leaf_index: int, trail: int = 0
) -> dict[str, Any]:
    """The FHIR R4 AuditEvent (as JSON) for one ledger entry (of ``trail``: trail 0's
    events are as before trails; others carry a ``ledger-trail`` detail and an id
    ``ledger-<trail>-<leaf index>``)."""
    event_type, subtype, action, profile = _type_and_profile(entry)
    actor = entry.actor
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP",
                    "display": "information recipient",
                }
            ]
        },
        "who": {"identifier": {"system": f"{HUB}/sub", "value": actor.sub}},
        "requestor": True,
        "role": [{"coding": [{"system": f"{HUB}/role", "code": r.value}]} for r in actor.roles],
    }
    if actor.mchk_reg_no:
        agent["altId"] = actor.mchk_reg_no
    if actor.institution_id:
        agent["location"] = {
            "identifier": {"system": f"{HUB}/institution", "value": actor.institution_id}
        }
    if not agent["role"]:
        del agent["role"]
    entities: list[dict[str, Any]] = [
        {
            "what": {
                "identifier": {
                    "system": f"{HUB}/{entry.resource.type.value}",
                    "value": entry.resource.id,
                }
            },
            "type": {"system": OBJECT_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            "detail": [
                {"type": "ledger-leaf-index", "valueString": str(leaf_index)},
                *([{"type": "ledger-trail", "valueString": str(trail)}] if trail else []),
                {"type": "ledger-leaf-hash", "valueBase64Binary": _b64(leaf_hash(raw))},
                {"type": "request-id", "valueString": entry.request_id},
                # Coded facts (format 2; app/audit/facts.py): codes, never content.
                *({"type": f"fact-{k}", "valueString": v} for k, v in sorted(entry.facts.items())),
            ],
        }
    ]
    if entry.resource.patient_ref:
        entities.append(
            {
                "what": {
                    "identifier": {
                        "system": f"{HUB}/patient-ref",
                        "value": entry.resource.patient_ref,
                    }
                },
                "type": {"system": OBJECT_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"ledger-{trail}-{leaf_index}" if trail else f"ledger-{leaf_index}",
        "type": event_type,
        "action": action,
        "recorded": entry.timestamp.isoformat().replace("+00:00", "Z"),
        "outcome": "0" if entry.outcome is Outcome.SUCCESS else "4",
        "outcomeDesc": entry.reason,
        "agent": [agent],
        "source": {
            "observer": {"display": "Health Collaboration Hub sharing service"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    }
    if subtype:
        resource["subtype"] = subtype
    if profile:
        resource["meta"] = {"profile": [profile]}
    return resource


def validate(resource: dict[str, Any]) -> None:
    """Parse with the FHIR R4B model; raises ``pydantic.ValidationError`` if misshapen."""
    from fhir.resources.R4B.auditevent import AuditEvent

    AuditEvent.model_validate(resource)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
