"""Walk-through of community-care intake: two institutions' systems submit HL7 v2 (ADT +
ORU), CDA and FHIR for one synthetic patient, who lands as one patient with one set of
records, read in one consultation group by doctors of both institutions.

1. A doctor of institution A registers the patient by HKID and A's MRN (the documented
   path: intake never registers) and records the patient's consent to sharing with A
   and B.
2. Each institution's clinic management system gets an access token from the pool
   domain's token endpoint (client-credentials grant, HTTP Basic with its secret) and
   submits through the API gateway: A sends ADT^A01 and ORU^R01 (found by A's MRN), B a
   CDA discharge summary (found by HKID; B's MRN is linked) and a FHIR R4 observation.
   A doctor's token is refused on the intake route and a machine token on a doctor's
   route (401, by the gateway); a malformed message is a 422 naming the field; a patient
   the index does not know is a 422.
3. A's doctor opens a group and invites B's doctor; each shares their institution's
   records into it; each reads the other institution's records through the group.
4. The patient withdraws consent for B: B's doctor is refused the group and the records
   on the next request (403 ``consent_required``); B's doctor breaks the glass and reads
   again, the ledger entry flagged ``consent_override=break_glass``.

Usage, with ``hub local up`` running (``make run``; the API stack must have intake on):
    .venv/bin/python scripts/demo_interop.py [--stack phase3-private-practice]
or without it: ``--standalone`` (phase 2 on a private moto server).

Every step prints ``--> <what>: HTTP <status>``; an unexpected status stops the walk with
exit status 1. Everything is synthetic; no patient content is printed.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "tests" / "app" / "interop" / "testdata"
# The synthetic patient of the samples (tests/app/interop/testdata/manifest.json): a
# well-formed HKID (valid check digit) no one holds, and each institution's MRN.
HKID = "XC2415928"
MRN_A = "CA0661125"
# (sample, media type) per institution: A's system sends HL7 v2, B's CDA and FHIR.
SUBMISSIONS_A = (("adt_a01.hl7", "application/hl7-v2"), ("oru_r01.hl7", "application/hl7-v2"))
SUBMISSIONS_B = (
    ("discharge_summary.cda.xml", "application/cda+xml"),
    ("observation_r4.fhir-in.json", "application/fhir+json; fhirVersion=4.0"),
)


class WalkthroughFailed(RuntimeError):
    """A step answered with another status than the walk-through expects."""


@dataclass
class Outcome:
    statuses: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, str] = field(default_factory=dict)  # step -> body of a 4xx
    patient_id: str = ""
    group_id: str = ""
    records: dict[str, list[str]] = field(default_factory=dict)  # institution -> ids
    sources: list[str] = field(default_factory=list)
    flagged: str = ""


def client_token(token_url: str, client_id: str, secret: str) -> str:
    """An access token on the client-credentials grant, as a clinic system gets one."""
    import httpx

    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = httpx.post(
        token_url,
        data={"grant_type": "client_credentials", "scope": "hub-intake/records.write"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def hub_stacks(doc: Mapping[str, Any], stack: str) -> list[str]:
    """The stacks of ``doc`` up to ``stack``'s phase: the core and the layers below it."""
    from infra.stage import STACK_PHASES

    top = STACK_PHASES.get(stack, 1)
    return [s for s, phase in STACK_PHASES.items() if phase <= top and s in doc["stacks"]]


def intake_systems(doc: Mapping[str, Any], stack: str) -> dict[str, dict[str, str]]:
    """institution -> {clientId, secret, tokenUrl}: what the hub's operators hand each
    clinic system's vendor (the secret read from the pool with operator credentials)."""
    import boto3

    from infra.emulator.cognito_token import local_token_url
    from infra.emulator.server import REGION, default_emulator_credentials

    default_emulator_credentials()
    outputs = doc["stacks"][stack]["outputs"]
    # The hub's intake clients are the layers' (phase 2's, and those phase 3's adds), all
    # on the core's one pool: every stack's up to this one.
    clients = [
        client
        for name in hub_stacks(doc, stack)
        for client in doc["stacks"][name]["outputs"].get("intakeClients") or []
    ]
    if not clients or not outputs.get("intakeDomain"):
        raise WalkthroughFailed(f"{stack} has no community-care intake (phase 2 and later)")
    cognito = boto3.client("cognito-idp", region_name=REGION, endpoint_url=doc["emulatorEndpoint"])
    token_url = local_token_url(doc["emulatorEndpoint"], outputs["intakeDomain"])
    systems = {}
    for system in clients:
        described = cognito.describe_user_pool_client(
            UserPoolId=outputs["userPoolId"], ClientId=system["clientId"]
        )["UserPoolClient"]
        systems[system["institutionId"]] = {
            "clientId": system["clientId"],
            "secret": described["ClientSecret"],
            "tokenUrl": token_url,
        }
    return systems


def run(
    doc: Mapping[str, Any],
    stack: str,
    api: str,
    say: Callable[[str], None] = print,
    authenticators: Path | None = None,
) -> Outcome:
    import httpx

    from infra.local_platform import demo_bearer

    systems = intake_systems(doc, stack)
    # Each layer seeds the institutions its phase adds: the doctors are the hub's up to
    # this stack.
    users = [u for u in doc["demoUsers"] if u["stack"] in hub_stacks(doc, stack)]
    doctors = [u for u in users if u["role"] in ("doctor", "specialist") and u.get("mchk_reg_no")]
    inst_a, inst_b = sorted(systems)[:2]
    doctor_a = next(u for u in doctors if u["institution"] == inst_a)
    doctor_b = next(u for u in doctors if u["institution"] == inst_b)
    bearer = demo_bearer(doc, stack, authenticators)
    outcome = Outcome()

    with httpx.Client(base_url=api, timeout=60) as http:

        def step(
            name: str, what: str, expected: int, method: str, path: str, who: Any, **kw: Any
        ) -> Any:
            response = http.request(method, path, headers=who, **kw)
            say(f"--> {what}: HTTP {response.status_code}")
            outcome.statuses[name] = response.status_code
            if response.status_code >= 400:
                outcome.refusals[name] = response.text
            if response.status_code != expected:
                raise WalkthroughFailed(f"{what}: expected {expected}, got {response.status_code}")
            return response

        as_a, as_b = bearer(doctor_a), bearer(doctor_b)
        say(f"    doctor A {doctor_a['mchk_reg_no']} at {inst_a}")
        say(f"    doctor B {doctor_b['mchk_reg_no']} at {inst_b}")
        found = http.post("/patients/lookup", headers=as_a, json={"hkid": HKID})
        if found.status_code == 200:
            patient_id = found.json()["patient_id"]
            say("--> POST /patients/lookup (registered by an earlier run): HTTP 200")
        else:
            patient_id = step(
                "register",
                "POST /patients (HKID and A's MRN)",
                201,
                "POST",
                "/patients",
                as_a,
                json={"hkid": HKID, "mrn": MRN_A},
            ).json()["patient_id"]
        outcome.patient_id = patient_id
        step(
            "consent",
            f"POST /patients/{{id}}/consents ({inst_a}, {inst_b})",
            201,
            "POST",
            f"/patients/{patient_id}/consents",
            as_a,
            json={"institutions": [inst_a, inst_b]},
        )

        machine = {
            inst: {
                "Authorization": f"Bearer {client_token(s['tokenUrl'], s['clientId'], s['secret'])}"
            }
            for inst, s in systems.items()
            if inst in (inst_a, inst_b)
        }
        say("--> POST <pool domain>/oauth2/token (client_credentials, each system): HTTP 200")
        hl7 = "application/hl7-v2"
        adt = (SAMPLES / "adt_a01.hl7").read_bytes()
        step(
            "doctor_on_intake",
            "POST /intake/messages with a doctor's token (refused)",
            401,
            "POST",
            "/intake/messages",
            {**as_a, "Content-Type": hl7},
            content=adt,
        )
        step(
            "machine_on_groups",
            "GET /groups with a clinic system's token (refused)",
            401,
            "GET",
            "/groups",
            machine[inst_a],
        )
        broken = adt.replace(b"|19800101|", b"|1980-01-01|")
        bad = step(
            "malformed",
            "POST /intake/messages, a malformed birth date (refused)",
            422,
            "POST",
            "/intake/messages",
            {**machine[inst_a], "Content-Type": hl7},
            content=broken,
        )
        say(f"    {bad.json()['error']['message']}")
        stranger = adt.replace(b"CA0661125", b"CA0000001").replace(b"XC241592(8)", b"A123456(3)")
        step(
            "unknown_patient",
            "POST /intake/messages for a patient the index does not know (refused)",
            422,
            "POST",
            "/intake/messages",
            {**machine[inst_a], "Content-Type": hl7},
            content=stranger,
        )
        for inst, submissions in ((inst_a, SUBMISSIONS_A), (inst_b, SUBMISSIONS_B)):
            for sample, media_type in submissions:
                filed = step(
                    f"intake_{sample}",
                    f"POST /intake/messages ({inst}: {sample})",
                    201,
                    "POST",
                    "/intake/messages",
                    # The FHIR sample carries no identifier of its own: the key files it once
                    # (the others are keyed on MSH-10 and ClinicalDocument/id).
                    {
                        **machine[inst],
                        "Content-Type": media_type,
                        "Idempotency-Key": f"demo-{sample}",
                    },
                    content=(SAMPLES / sample).read_bytes(),
                ).json()
                if filed["patient_id"] != patient_id:
                    raise WalkthroughFailed(f"{sample} was filed under another patient")
                outcome.records.setdefault(inst, []).append(filed["record_id"])
                outcome.sources.append(filed["source_record_id"])
                linked = " (MRN linked)" if filed["mrn_linked"] else ""
                say(f"    {filed['source_format']} -> record {filed['record_id'][:8]}{linked}")
        # A clinic system retries on a timeout: the same message is filed once.
        repeat = step(
            "resubmitted",
            f"POST /intake/messages ({inst_a}: adt_a01.hl7 again, a retry)",
            201,
            "POST",
            "/intake/messages",
            {**machine[inst_a], "Content-Type": hl7},
            content=adt,
        )
        if repeat.headers.get("idempotent-replayed") != "true" or (
            repeat.json()["record_id"] != outcome.records[inst_a][0]
        ):
            raise WalkthroughFailed("a resubmitted message was filed again")
        say("    Idempotent-Replayed: the first filing's ids, nothing filed again")

        group = step(
            "group",
            "POST /groups",
            201,
            "POST",
            "/groups",
            as_a,
            json={"patient_id": patient_id, "title": "Shared care review"},
        ).json()
        gid = outcome.group_id = group["group_id"]
        step(
            "invite",
            f"POST /groups/{{gid}}/invitations ({doctor_b['mchk_reg_no']})",
            201,
            "POST",
            f"/groups/{gid}/invitations",
            as_a,
            json={"reg_no": doctor_b["mchk_reg_no"]},
        )
        step("accept", "POST /groups/{gid}/accept", 200, "POST", f"/groups/{gid}/accept", as_b)
        for inst, who in ((inst_a, as_a), (inst_b, as_b)):
            for record_id in outcome.records[inst]:
                step(
                    f"share_{record_id}",
                    f"POST /records/{{id}}/share ({inst})",
                    201,
                    "POST",
                    f"/records/{record_id}/share",
                    who,
                    json={"group_id": gid},
                )
        listed = step(
            "group_records",
            "GET /groups/{gid}/records (B's doctor)",
            200,
            "GET",
            f"/groups/{gid}/records",
            as_b,
        ).json()
        every = {r for ids in outcome.records.values() for r in ids}
        if {r["record_id"] for r in listed["records"]} != every:
            raise WalkthroughFailed("the group does not list both institutions' records")
        for inst, who in ((inst_a, as_b), (inst_b, as_a)):
            for record_id in outcome.records[inst]:
                opened = step(
                    f"read_{record_id}",
                    f"GET /records/{{id}}/content ({inst}'s record, the other's doctor)",
                    200,
                    "GET",
                    f"/records/{record_id}/content",
                    who,
                )
                if json.loads(opened.content)["resourceType"] != "Bundle":
                    raise WalkthroughFailed("a canonical record is not a FHIR Bundle")

        consents = step(
            "consents",
            "GET /patients/{id}/consents",
            200,
            "GET",
            f"/patients/{patient_id}/consents",
            as_a,
        ).json()
        for consent in consents["consents"]:
            actor = consent["provision"]["actor"][0]["reference"]["identifier"]["value"]
            if actor == inst_b and consent["status"] == "active":
                step(
                    "withdraw",
                    f"POST /patients/{{id}}/consents/{{cs}}/withdraw ({inst_b})",
                    200,
                    "POST",
                    f"/patients/{patient_id}/consents/{consent['identifier'][0]['value']}/withdraw",
                    as_a,
                    json={},
                )
        record_a = outcome.records[inst_a][0]
        refused = step(
            "group_after_withdrawal",
            "GET /groups/{gid} (B's doctor, consent withdrawn: refused)",
            403,
            "GET",
            f"/groups/{gid}",
            as_b,
        )
        say(f"    {refused.json()['error']['code']}")
        step(
            "read_after_withdrawal",
            "GET /records/{id}/content (B's doctor, A's record: refused)",
            403,
            "GET",
            f"/records/{record_a}/content",
            as_b,
        )
        since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
        grant = step(
            "break_glass",
            "POST /break-glass (B's doctor)",
            201,
            "POST",
            "/break-glass",
            as_b,
            json={
                "patient_id": patient_id,
                "justification": "SYNTHETIC: collapsed in clinic, history needed now",
                "minutes": 30,
            },
        ).json()
        read = step(
            "read_break_glass",
            "GET /records/{id}/content (B's doctor under break-glass)",
            200,
            "GET",
            f"/records/{record_a}/content",
            as_b,
        )
        entries = step(
            "audit_entries",
            "GET /audit/entries (B's doctor's own entries since the grant)",
            200,
            "GET",
            "/audit/entries",
            as_b,
            # The caller's own entries (a clinician reads only theirs) since the grant.
            params={"since": since, "limit": 500},
        ).json()
        outcome.flagged = next(
            (
                str(e["entry"]["facts"]["consent_override"])
                for e in reversed(entries["entries"])
                if e["entry"]["outcome"] == "success"
                and "consent_override" in e["entry"].get("facts", {})
            ),
            "",
        )
        if outcome.flagged != "break_glass" or not read.content:
            raise WalkthroughFailed("the break-glass read is not flagged in the ledger")
        say("    the read's ledger entry: consent_override=break_glass")
        step(
            "end_break_glass",
            "POST /break-glass/{id}/end",
            200,
            "POST",
            f"/break-glass/{grant['grant_id']}/end",
            as_b,
        )
    say("Walk-through complete: every step answered as expected.")
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Community-care intake walk-through")
    parser.add_argument("--stack", default="phase3-private-practice")
    parser.add_argument("--api", default=None, help="the API base URL (default: local.json)")
    parser.add_argument("--state-dir", default=".hub")
    parser.add_argument("--standalone", action="store_true", help="no `hub local up` needed")
    args = parser.parse_args(argv)
    try:
        if args.standalone:
            from infra.standalone_platform import standalone_platform

            stack = "phase2-hospital-authority"
            with standalone_platform(stack=stack) as (doc, api):
                run(doc, stack, api)
            return 0
        path = Path(args.state_dir) / "local.json"
        if not path.exists():
            print(f"demo_interop: {path} not found: run `make run` first", file=sys.stderr)
            return 2
        doc = json.loads(path.read_text(encoding="utf-8"))
        run(
            doc,
            args.stack,
            args.api or doc["apiBaseUrl"],
            authenticators=Path(args.state_dir) / "demo-authenticators.json",
        )
        return 0
    except WalkthroughFailed as failed:
        print(f"demo_interop: {failed}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
