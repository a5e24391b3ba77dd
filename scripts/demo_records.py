"""Walk-through on the local platform: upload, share, open, revoke and shred patient records.

A demo doctor signs in through the emulated Cognito, opens a consultation group for a
synthetic patient and summons experts into it; two of them accept. The doctor uploads a
synthetic FHIR R4B Bundle (and retries it with the same Idempotency-Key: same record, no
copy) and a 4 MiB synthetic imaging file (``application/dicom``: a DICOM preamble and
random bytes, streamed) and shares both into the group. 4 MiB is about the most a record
can be through API Gateway and Lambda: binary bodies travel base64-encoded in the 6 MB
Lambda event (``--imaging-mib`` above that is refused with 413 through the gateway; larger
content is the subject of the sealed-uploads issue). A member
opens both and the bytes match what was uploaded (SHA-256 and length). The doctor removes
the other member, whose very next request is refused (403). The doctor adds a corrected
version of the bundle and crypto-shreds version 1: it is gone (410) while version 2 still
opens. Along the way, an unsupported content type (415) and an invalid FHIR document (422,
whose error names the element, never the patient's data) are refused.

Usage, with ``hub local up`` running (``make run``; it writes ``.hub/local.json`` and serves
the API through the local API gateway at http://127.0.0.1:8000/v1):
    .venv/bin/python scripts/demo_records.py [--stack phase3-private-practice] [--api URL]
        [--imaging-mib 4]

Every step prints ``--> <what>: HTTP <status>``; a step whose status is not the expected one
stops the walk-through with exit status 1. Everything is synthetic. Sign-in is a real
client's: SRP, then the TOTP challenge (authenticator secrets kept in
``<state-dir>/demo-authenticators.json``). Downloads ask for the record's media type
(``Accept``): API Gateway returns binary content as bytes only to a client that does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MIB = 1 << 20
# Through API Gateway and Lambda: 4 MiB of binary is 5.6 MB base64, inside the 6 MB event.
DEFAULT_IMAGING_MIB = 4
FHIR = "application/fhir+json"
DICOM = "application/dicom"
SYNTHETIC_MARK = "SYNTHETIC"


class WalkthroughFailed(RuntimeError):
    """A step answered with another status than the walk-through expects."""


# -- synthetic content ------------------------------------------------------------------------


def synthetic_bundle(patient_id: str, *, glucose: float = 5.4) -> dict[str, Any]:
    """A FHIR R4B collection Bundle: the patient, one lab result and its report (synthetic)."""
    patient_ref = f"Patient/{patient_id}"
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Patient",
                    "id": patient_id,
                    "identifier": [{"system": "urn:hub:synthetic-patient", "value": patient_id}],
                    "name": [{"family": SYNTHETIC_MARK, "given": ["Demo"]}],
                    "gender": "unknown",
                },
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Observation",
                    "id": "glucose-1",
                    "status": "final",
                    "code": {
                        "coding": [
                            {"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}
                        ]
                    },
                    "subject": {"reference": patient_ref},
                    "effectiveDateTime": "2026-01-02T08:30:00+08:00",
                    "valueQuantity": {
                        "value": glucose,
                        "unit": "mmol/L",
                        "system": "http://unitsofmeasure.org",
                        "code": "mmol/L",
                    },
                },
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "DiagnosticReport",
                    "id": "chem-panel-1",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
                    "subject": {"reference": patient_ref},
                    "issued": "2026-01-02T09:00:00+08:00",
                    "result": [{"reference": "Observation/glucose-1"}],
                    "conclusion": "Synthetic demo report.",
                },
            },
        ],
    }


@dataclass
class SyntheticImaging:
    """``size`` bytes of synthetic imaging: the 128-byte DICOM preamble, ``DICM``, then random
    bytes. Generated chunk by chunk while it is sent; the digest is known once it has been."""

    size: int
    chunk_size: int = MIB
    sha256: Any = field(default_factory=hashlib.sha256)

    def chunks(self) -> Iterator[bytes]:
        header = (b"\x00" * 128 + b"DICM")[: self.size]
        sent = 0
        pending = header
        while sent < self.size:
            if not pending:
                pending = os.urandom(min(self.chunk_size, self.size - sent))
            self.sha256.update(pending)
            sent += len(pending)
            yield pending
            pending = b""


# -- the walk-through -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the walk-through observed (for tests and the closing summary)."""

    statuses: dict[str, int] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


class Walkthrough:
    def __init__(
        self,
        http: Any,
        bearer: Callable[[Mapping[str, Any]], dict[str, str]],
        users: list[dict[str, Any]],
        patient_id: str,
        imaging_bytes: int,
        say: Callable[[str], None] = print,
    ):
        self.http = http
        self.bearer = bearer
        self.users = users
        self.patient_id = patient_id
        self.imaging_bytes = imaging_bytes
        self.say = say
        self.outcome = Outcome()

    def step(
        self, name: str, title: str, response: Any, expected: int, *, streamed: bool = False
    ) -> Any:
        self.say(f"--> {title}: HTTP {response.status_code}")
        self.outcome.statuses[name] = response.status_code
        body: Any = None
        # A streamed 200 has been consumed already; anything else was read whole.
        if not (streamed and response.status_code == 200) and "json" in response.headers.get(
            "content-type", ""
        ):
            body = response.json()
        if response.status_code != expected:
            raise WalkthroughFailed(
                f"{title}: expected HTTP {expected}, got {response.status_code}: {body}"
            )
        return body

    def run(self) -> Outcome:
        lead = next(u for u in self.users if u["role"] == "doctor")
        as_lead = self.bearer(lead)
        me = self.step("me", f"{lead['username']} signs in; GET /me", self.get("/me", as_lead), 200)
        self.say(f"    {me['reg_no']} at {me['institution']}")

        group_id, members = self.open_group(lead, as_lead)
        (keeper, as_keeper), (leaver, as_leaver) = members

        self.refusals(as_lead)
        bundle = json.dumps(synthetic_bundle(self.patient_id)).encode()
        bundle_id = self.upload_bundle(as_lead, bundle)
        imaging = SyntheticImaging(self.imaging_bytes)
        imaging_id = self.upload_imaging(as_lead, imaging)

        for record_id, label in ((bundle_id, "FHIR bundle"), (imaging_id, "imaging")):
            self.step(
                f"share_{label}",
                f"POST /records/{record_id}/share ({label} into the group)",
                self.http.post(
                    f"/records/{record_id}/share", json={"group_id": group_id}, headers=as_lead
                ),
                201,
            )

        record = self.step(
            "member_metadata",
            f"{keeper['username']} reads GET /records/{imaging_id}",
            self.get(f"/records/{imaging_id}", as_keeper),
            200,
        )
        self.say(
            f"    {record['category']}, {record['versions'][0]['content_type']}, "
            f"{record['versions'][0]['length']} bytes, shared into {len(record['shares'])} group"
        )
        self.open_and_compare(
            "member_bundle", keeper, as_keeper, bundle_id, hashlib.sha256(bundle), len(bundle)
        )
        self.open_and_compare(
            "member_imaging",
            keeper,
            as_keeper,
            imaging_id,
            imaging.sha256,
            imaging.size,
            accept=DICOM,
        )
        self.open_and_compare(
            "leaver_before", leaver, as_leaver, bundle_id, hashlib.sha256(bundle), len(bundle)
        )

        self.step(
            "remove",
            f"lead removes {leaver['mchk_reg_no']} from the group",
            self.http.delete(
                f"/groups/{group_id}/members/{leaver['mchk_reg_no']}", headers=as_lead
            ),
            200,
        )
        refused = self.step(
            "removed_member",
            f"{leaver['username']} opens the FHIR bundle again (next request)",
            self.get(f"/records/{bundle_id}/content", as_leaver),
            403,
        )
        self.say(f"    {refused['error']['code']}: {refused['error']['message']}")
        self.step(
            "removed_member_imaging",
            f"{leaver['username']} opens the imaging file",
            self.get(f"/records/{imaging_id}/content", as_leaver),
            403,
        )

        self.shred(as_lead, keeper, as_keeper, bundle_id)
        self.say("Walk-through complete: every step answered as expected.")
        return self.outcome

    # -- pieces ---------------------------------------------------------------------------

    def get(self, path: str, headers: dict[str, str]) -> Any:
        return self.http.get(path, headers=headers)

    def open_group(
        self, lead: Mapping[str, Any], as_lead: dict[str, str]
    ) -> tuple[str, list[tuple[Mapping[str, Any], dict[str, str]]]]:
        group = self.step(
            "group",
            "POST /groups",
            self.http.post(
                "/groups",
                json={"patient_id": self.patient_id, "title": "Synthetic imaging review"},
                headers=as_lead,
            ),
            201,
        )
        group_id = group["group_id"]
        self.say(f"    group {group_id} for patient {self.patient_id}")
        specialties = sorted({u["specialty"] for u in self.users if u.get("specialty")})[:3]
        summoned = self.step(
            "summon",
            f"POST /groups/{group_id}/summon {specialties}",
            self.http.post(
                f"/groups/{group_id}/summon",
                json={"specialties": specialties, "count": 2},
                headers=as_lead,
            ),
            201,
        )
        invited = [e["reg_no"] for e in summoned["invited"]]
        by_reg = {u.get("mchk_reg_no"): u for u in self.users}
        for extra in self.users:
            # Top up with a direct invitation when summon found fewer than two experts.
            if len(invited) >= 2:
                break
            reg_no = extra.get("mchk_reg_no")
            if extra is lead or not reg_no or reg_no in invited or extra["role"] != "doctor":
                continue
            self.step(
                f"invite_{reg_no}",
                f"POST /groups/{group_id}/invitations {reg_no}",
                self.http.post(
                    f"/groups/{group_id}/invitations", json={"reg_no": reg_no}, headers=as_lead
                ),
                201,
            )
            invited.append(reg_no)
        members: list[tuple[Mapping[str, Any], dict[str, str]]] = []
        for reg_no in invited[:2]:
            user = by_reg[reg_no]
            headers = self.bearer(user)
            self.step(
                f"accept_{reg_no}",
                f"{user['username']} ({reg_no}) accepts",
                self.http.post(f"/groups/{group_id}/accept", headers=headers),
                200,
            )
            members.append((user, headers))
        return str(group_id), members

    def refusals(self, as_lead: dict[str, str]) -> None:
        path = f"/patients/{self.patient_id}/records"
        body = b"<html>not a record</html>"
        refused = self.step(
            "unsupported_type",
            f"POST {path} as text/html (refused)",
            self.http.post(path, content=body, headers={**as_lead, "Content-Type": "text/html"}),
            415,
        )
        self.say(f"    {refused['error']['code']}")
        broken = synthetic_bundle(self.patient_id)
        broken["entry"][0]["resource"]["birthDate"] = "SYNTHETIC-not-a-date"
        refused = self.step(
            "invalid_fhir",
            f"POST {path} with an invalid FHIR bundle (refused)",
            self.http.post(
                path, content=json.dumps(broken).encode(), headers={**as_lead, "Content-Type": FHIR}
            ),
            422,
        )
        message = refused["error"]["message"]
        self.say(f"    {message}")
        if "SYNTHETIC-not-a-date" in message:
            raise WalkthroughFailed("the FHIR error message echoed document content")
        self.outcome.facts["invalid_fhir_message"] = message

    def upload_bundle(self, as_lead: dict[str, str], bundle: bytes) -> str:
        path = f"/patients/{self.patient_id}/records"
        headers = {
            **as_lead,
            "Content-Type": f"{FHIR}; charset=utf-8",
            "Idempotency-Key": f"demo-bundle-{uuid.uuid4().hex}",
            "X-Record-Category": "laboratory",
            "X-Record-Title": "Synthetic chemistry panel",
        }
        created = self.step(
            "upload_bundle",
            f"POST {path} (FHIR Bundle, {len(bundle)} bytes)",
            self.http.post(path, content=bundle, headers=headers),
            201,
        )
        record_id = str(created["record_id"])
        self.say(f"    record {record_id} version {created['latest_version']}")
        self.say_receipt(created)
        # A client that lost the answer retries with the same key: same record, no copy.
        retried = self.http.post(path, content=bundle, headers=headers)
        again = self.step("retry_bundle", f"POST {path} again, same Idempotency-Key", retried, 201)
        replayed = retried.headers.get("Idempotent-Replayed") == "true"
        self.say(f"    record {again['record_id']}, Idempotent-Replayed: {str(replayed).lower()}")
        if again["record_id"] != record_id or not replayed:
            raise WalkthroughFailed("a retry with the same Idempotency-Key stored a copy")
        return record_id

    def upload_imaging(self, as_lead: dict[str, str], imaging: SyntheticImaging) -> str:
        mib = imaging.size / MIB
        created = self.step(
            "upload_imaging",
            f"POST /patients/{self.patient_id}/records (imaging, {mib:.0f} MiB, streamed)",
            self.http.post(
                f"/patients/{self.patient_id}/records",
                content=imaging.chunks(),
                headers={
                    **as_lead,
                    "Content-Type": DICOM,
                    "Content-Length": str(imaging.size),
                    "Idempotency-Key": f"demo-imaging-{uuid.uuid4().hex}",
                    "X-Record-Category": "imaging",
                    "X-Record-Title": "Synthetic chest CT",
                },
            ),
            201,
        )
        self.say(f"    record {created['record_id']}, sha256 {imaging.sha256.hexdigest()[:16]}...")
        self.say_receipt(created)
        return str(created["record_id"])

    def say_receipt(self, body: Mapping[str, Any]) -> None:
        receipt = body.get("audit_receipt")
        if receipt:
            self.say(f"    audit receipt {receipt['event_id']} at {receipt['position']}")

    def open_and_compare(
        self,
        name: str,
        user: Mapping[str, Any],
        headers: dict[str, str],
        record_id: str,
        expected: Any,
        length: int,
        version: int | None = None,
        accept: str = FHIR,
    ) -> None:
        query = f"?version={version}" if version else ""
        digest = hashlib.sha256()
        received = 0
        title = f"{user['username']} opens GET /records/{record_id}/content{query}"
        with self.http.stream(
            "GET", f"/records/{record_id}/content{query}", headers={**headers, "Accept": accept}
        ) as response:
            if response.status_code == 200:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    received += len(chunk)
            else:
                response.read()
            self.step(name, title, response, 200, streamed=True)
        matches = digest.digest() == expected.digest() and received == length
        self.say(f"    {received} bytes, sha256 {'matches' if matches else 'DIFFERS'}")
        self.outcome.facts[f"{name}_matches"] = matches
        if not matches:
            raise WalkthroughFailed(f"{title}: the bytes differ from what was uploaded")

    def shred(
        self,
        as_lead: dict[str, str],
        keeper: Mapping[str, Any],
        as_keeper: dict[str, str],
        bundle_id: str,
    ) -> None:
        corrected = json.dumps(synthetic_bundle(self.patient_id, glucose=5.1)).encode()
        added = self.step(
            "new_version",
            f"POST /records/{bundle_id}/versions (corrected bundle)",
            self.http.post(
                f"/records/{bundle_id}/versions",
                content=corrected,
                headers={
                    **as_lead,
                    "Content-Type": FHIR,
                    "Idempotency-Key": f"demo-v2-{uuid.uuid4().hex}",
                },
            ),
            201,
        )
        self.say(f"    version {added['version']['version']}")
        shredded = self.step(
            "shred",
            f"DELETE /records/{bundle_id}/versions/1 (reason entered_in_error)",
            self.http.request(
                "DELETE",
                f"/records/{bundle_id}/versions/1",
                json={"reason": "entered_in_error"},
                headers=as_lead,
            ),
            200,
        )
        self.say(f"    version 1 is {shredded['version']['status']}")
        gone = self.step(
            "shredded_version",
            f"{keeper['username']} opens version 1",
            self.get(f"/records/{bundle_id}/content?version=1", as_keeper),
            410,
        )
        self.say(f"    {gone['error']['code']}: {gone['error']['message']}")
        self.open_and_compare(
            "latest_after_shred",
            keeper,
            as_keeper,
            bundle_id,
            hashlib.sha256(corrected),
            len(corrected),
            version=2,
        )


def run(
    doc: Mapping[str, Any],
    stack: str,
    api: str,
    imaging_bytes: int = DEFAULT_IMAGING_MIB * MIB,
    say: Callable[[str], None] = print,
    authenticator: Any = None,
) -> Outcome:
    """The walk-through against the API at ``api`` for the platform described by ``doc``."""
    import httpx

    from infra.local_platform import demo_bearer

    users = [u for u in doc["demoUsers"] if u["stack"] == stack]
    patient_id = doc["demoPatients"][stack][0]["patient_id"]
    # Generous timeout: a large upload on a busy laptop emulator takes seconds.
    with httpx.Client(base_url=api, timeout=300) as http:
        walk = Walkthrough(
            http, demo_bearer(doc, stack, authenticator), users, patient_id, imaging_bytes, say
        )
        return walk.run()


def main(argv: list[str] | None = None) -> int:
    from app.local import DEFAULT_STACK, read_local_json
    from infra.standalone_platform import STANDALONE_STACK, standalone_platform

    parser = argparse.ArgumentParser(description="Patient records walk-through")
    parser.add_argument("--state-dir", default=".hub")
    parser.add_argument("--stack", default=DEFAULT_STACK)
    parser.add_argument("--api", help="API base URL (default: apiBaseUrl or 127.0.0.1:8000)")
    parser.add_argument(
        "--imaging-mib",
        type=float,
        default=DEFAULT_IMAGING_MIB,
        help="imaging file size (through the gateway, at most about 4.5 MiB)",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="no `hub local up`: start moto, a one-phase platform and the API in this process",
    )
    args = parser.parse_args(argv)
    imaging_bytes = int(args.imaging_mib * MIB)
    from app.local import AuthenticatorApp

    try:
        if args.standalone:
            with standalone_platform() as (doc, api):
                run(doc, STANDALONE_STACK, api, imaging_bytes)
        else:
            doc = read_local_json(args.state_dir)
            api = args.api or doc.get("apiBaseUrl") or "http://127.0.0.1:8000/v1"
            authenticator = AuthenticatorApp(Path(args.state_dir) / "demo-authenticators.json")
            run(doc, args.stack, api, imaging_bytes, authenticator=authenticator)
    except WalkthroughFailed as failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
