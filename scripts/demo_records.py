"""Walk-through on the local platform: records sealed on the doctor's device, shared,
opened, revoked and shredded, through the doctor's client (``hubclient``).

Every doctor signs in as a real client does, with SRP and then the code of their
authenticator app (the first sign-in enrols one; the demo keeps the secrets of its
synthetic users in ``<state-dir>/demo-authenticators.json``). The lead opens a consultation
group for a synthetic patient and summons experts; two find the invitation in their inbox
and accept. Bad input is refused: an unsupported type (415) and an invalid FHIR document
(422, naming the element, never the patient's data). The lead stores a synthetic FHIR R4B
Bundle (validated by the service, so sent to it) and a 50 MiB synthetic imaging file
(``application/dicom``), which the client seals on this machine and puts straight to
storage through short-lived presigned URLs: the API sees keys, checksums and the manifest,
never the image. Both are shared into the group. A member lists the group's records and
opens both on their machine (every shard verified, the content digest compared, then
compared again with what was sent). The lead removes the other member, whose very next
request for a key is refused (403). The lead stores a corrected version of the bundle and
crypto-shreds version 1: gone (410), version 2 still opens. ``--large-mib 1024`` adds a
1 GiB imaging file, sealed, sent, opened and compared the same way.

Usage, with ``hub local up`` running (``make run``; it writes ``.hub/local.json`` and serves
the API through the local API gateway at http://127.0.0.1:8000/v1, with API Gateway's and
Lambda's caps):
    .venv/bin/python scripts/demo_records.py [--stack phase3-private-practice] [--api URL]
        [--imaging-mib 50] [--large-mib 1024] [--standalone]

``--standalone`` needs no ``hub local up``: one phase on a moto server started in this
process, its API through the same gateway (``infra.standalone_platform``); moto then keeps
objects on disk rather than in memory, so ``--large-mib 1024`` fits a laptop.

Every step prints ``--> <what>: <outcome>``; a step that does not end as the walk-through
expects stops it with exit status 1. At the end it prints the largest request body the API
received: no request to the API carries record content above its caps (4 MiB), and none
carries imaging content at all. Everything is synthetic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MIB = 1 << 20
FHIR = "application/fhir+json"
DICOM = "application/dicom"
SYNTHETIC_MARK = "SYNTHETIC"
API_CAP = 4 * MIB  # HUB_MAX_INLINE_RECORD_BYTES: what one API request may carry


class WalkthroughFailed(RuntimeError):
    """A step did not end as the walk-through expects."""


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


def synthetic_imaging(path: Path, size: int) -> str:
    """Write ``size`` bytes of synthetic imaging (the 128-byte DICOM preamble, ``DICM``,
    then random bytes) to ``path``; returns its SHA-256 (hex)."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        header = (b"\x00" * 128 + b"DICM")[:size]
        out.write(header)
        digest.update(header)
        written = len(header)
        while written < size:
            chunk = os.urandom(min(8 * MIB, size - written))
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return digest.hexdigest()


# -- the walk-through -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the walk-through observed (for tests and the closing summary)."""

    results: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


class Walkthrough:
    """The walk-through's steps, each through the doctor's client of one demo user."""

    def __init__(
        self,
        client_for: Callable[[Mapping[str, Any]], Any],
        users: list[dict[str, Any]],
        patient_id: str,
        imaging_bytes: int,
        workdir: Path,
        say: Callable[[str], None] = print,
        large_bytes: int = 0,
        largest_request: Callable[[], int] = lambda: 0,
    ):
        self.largest_request = largest_request
        self.client_for = client_for
        self.users = users
        self.patient_id = patient_id
        self.imaging_bytes = imaging_bytes
        self.large_bytes = large_bytes
        self.workdir = workdir
        self.say = say
        self.outcome = Outcome()

    def step(self, name: str, title: str, action: Callable[[], Any], refused: int = 0) -> Any:
        """Run ``action``; it must succeed, or (``refused``) be refused with that status."""
        from hubclient.errors import ApiError

        try:
            result = action()
        except ApiError as error:
            self.say(f"--> {title}: refused, HTTP {error.status} {error.code}")
            self.outcome.results[name] = str(error.status)
            if error.status != refused:
                raise WalkthroughFailed(f"{title}: HTTP {error.status} {error.message}") from None
            return error
        self.say(f"--> {title}: ok")
        self.outcome.results[name] = "ok"
        if refused:
            raise WalkthroughFailed(f"{title}: expected a refusal (HTTP {refused})")
        return result

    def run(self) -> Outcome:
        doctors = [u for u in self.users if u["role"] == "doctor"]
        lead_user = doctors[0]
        lead = self.client_for(lead_user)
        me = self.step("me", f"{lead_user['username']} signs in (SRP, TOTP); who am I", lead.me)
        self.say(f"    {me['reg_no']} at {me['institution']}")

        group_id, (keeper_user, keeper), (leaver_user, leaver) = self.open_group(lead, lead_user)
        self.refusals(lead)

        bundle = self.workdir / "bundle.json"
        bundle.write_text(json.dumps(synthetic_bundle(self.patient_id)))
        stored = self.step(
            "upload_bundle",
            f"upload a FHIR Bundle ({bundle.stat().st_size} bytes, validated by the service)",
            lambda: lead.upload(
                self.patient_id,
                bundle,
                FHIR,
                category="laboratory",
                title="Synthetic chemistry panel",
            ),
        )
        bundle_id = str(stored["record_id"])
        self.say(f"    record {bundle_id} version {stored['latest_version']}")
        imaging_id, imaging_sha = self.upload_imaging(lead, "imaging", self.imaging_bytes)
        large = None
        if self.large_bytes:
            large = self.upload_imaging(lead, "large_imaging", self.large_bytes)

        shared = [(bundle_id, "FHIR bundle"), (imaging_id, "imaging")]
        if large:
            shared.append((large[0], "large imaging"))
        for record_id, label in shared:
            self.step(
                f"share_{label}",
                f"share the {label} into the group",
                lambda r=record_id: lead.share(r, group_id),
            )

        listed = self.step(
            "group_records",
            f"{keeper_user['username']} lists the group's records",
            lambda: list(keeper.group_records(group_id)),
        )
        self.say(f"    {len(listed)} records: " + ", ".join(sorted(r["category"] for r in listed)))
        if {r["record_id"] for r in listed} != {r for r, _ in shared}:
            raise WalkthroughFailed("the group's records are not the ones shared into it")

        bundle_sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
        self.open_and_compare("member_bundle", keeper_user, keeper, bundle_id, bundle_sha)
        self.open_and_compare("member_imaging", keeper_user, keeper, imaging_id, imaging_sha)
        if large:
            self.open_and_compare("member_large", keeper_user, keeper, *large)
        self.open_and_compare("leaver_before", leaver_user, leaver, bundle_id, bundle_sha)

        self.step(
            "remove",
            f"lead removes {leaver_user['mchk_reg_no']} from the group",
            lambda: lead.remove_member(group_id, leaver_user["mchk_reg_no"]),
        )
        for name, record_id, label in (
            ("removed_member", bundle_id, "the FHIR bundle"),
            ("removed_member_imaging", imaging_id, "the imaging file"),
        ):
            self.step(
                name,
                f"{leaver_user['username']} asks for the key of {label} again (next request)",
                lambda r=record_id: leaver.download(
                    r, self.workdir / f"refused-{uuid.uuid4().hex}"
                ),
                refused=403,
            )

        self.shred(lead, keeper_user, keeper, bundle_id)
        largest = self.largest_request()
        self.outcome.facts["largest_request"] = largest
        self.say(
            f"Largest request body the API received: {largest} bytes (cap {API_CAP}); "
            "imaging content sent to the API: none."
        )
        if largest > API_CAP or largest >= self.imaging_bytes:
            raise WalkthroughFailed("a request to the API carried more than the caps allow")
        self.say("Walk-through complete: every step ended as expected.")
        return self.outcome

    # -- pieces ---------------------------------------------------------------------------

    def open_group(self, lead: Any, lead_user: Mapping[str, Any]) -> tuple[str, Any, Any]:
        group = self.step(
            "group",
            "create a consultation group",
            lambda: lead.create_group(self.patient_id, "Synthetic imaging review"),
        )
        group_id = str(group["group_id"])
        self.say(f"    group {group_id} for patient {self.patient_id}")
        specialties = sorted({u["specialty"] for u in self.users if u.get("specialty")})[:3]
        summoned = self.step(
            "summon", f"summon experts {specialties}", lambda: lead.summon(group_id, specialties, 2)
        )
        invited = [e["reg_no"] for e in summoned["invited"]]
        by_reg = {u.get("mchk_reg_no"): u for u in self.users}
        for extra in self.users:
            # Top up with a direct invitation when summon found fewer than two experts.
            if len(invited) >= 2:
                break
            reg_no = extra.get("mchk_reg_no")
            if extra is lead_user or not reg_no or reg_no in invited or extra["role"] != "doctor":
                continue
            self.step(
                f"invite_{reg_no}", f"invite {reg_no}", lambda r=reg_no: lead.invite(group_id, r)
            )
            invited.append(reg_no)
        members = []
        for reg_no in invited[:2]:
            user = by_reg[reg_no]
            client = self.client_for(user)
            inbox = self.step(
                f"inbox_{reg_no}",
                f"{user['username']} signs in; inbox",
                lambda c=client: list(c.invitations()),
            )
            if group_id not in {i["group_id"] for i in inbox}:
                raise WalkthroughFailed(f"{user['username']}'s inbox lacks the invitation")
            self.step(
                f"accept_{reg_no}",
                f"{user['username']} ({reg_no}) accepts",
                lambda c=client: c.accept(group_id),
            )
            members.append((user, client))
        return group_id, members[0], members[1]

    def refusals(self, lead: Any) -> None:
        page = self.workdir / "page.html"
        page.write_text("<html>not a record</html>")
        self.step(
            "unsupported_type",
            "upload text/html (refused)",
            lambda: lead.upload(self.patient_id, page, "text/html"),
            refused=415,
        )
        broken = synthetic_bundle(self.patient_id)
        broken["entry"][0]["resource"]["birthDate"] = "SYNTHETIC-not-a-date"
        path = self.workdir / "broken.json"
        path.write_text(json.dumps(broken))
        refused = self.step(
            "invalid_fhir",
            "upload an invalid FHIR bundle (refused)",
            lambda: lead.upload(self.patient_id, path, FHIR),
            refused=422,
        )
        self.say(f"    {refused.message}")
        if "SYNTHETIC-not-a-date" in refused.message:
            raise WalkthroughFailed("the FHIR error message echoed document content")
        self.outcome.facts["invalid_fhir_message"] = refused.message

    def upload_imaging(self, lead: Any, name: str, size: int) -> tuple[str, str]:
        path = self.workdir / f"{name}.dcm"
        sha = synthetic_imaging(path, size)
        stored = self.step(
            f"upload_{name}",
            f"upload {size / MIB:.0f} MiB of imaging (sealed on this device, shards straight "
            "to storage)",
            lambda: lead.upload(
                self.patient_id, path, DICOM, category="imaging", title="Synthetic chest CT"
            ),
        )
        shards = -(-size // (4 * MIB))
        self.say(f"    record {stored['record_id']}, {shards} shards, sha256 {sha[:16]}...")
        path.unlink()
        return str(stored["record_id"]), sha

    def open_and_compare(
        self,
        name: str,
        user: Mapping[str, Any],
        client: Any,
        record_id: str,
        expected_sha: str,
        version: int | None = None,
    ) -> None:
        out = self.workdir / f"opened-{uuid.uuid4().hex}"
        which = f" version {version}" if version else ""
        result = self.step(
            name,
            f"{user['username']} opens {record_id[:8]}...{which} on their device",
            lambda: client.download(record_id, out, version=version),
        )
        digest = hashlib.sha256()
        with open(out, "rb") as opened:
            while chunk := opened.read(8 * MIB):
                digest.update(chunk)
        out.unlink()
        matches = digest.hexdigest() == expected_sha
        self.say(
            f"    {result.length} bytes, every shard verified, content digest "
            f"{'checked' if result.digest_checked else 'absent'}; sha256 "
            f"{'matches' if matches else 'DIFFERS'} what was sent"
        )
        self.outcome.facts[f"{name}_matches"] = matches
        if not matches:
            raise WalkthroughFailed(f"{name}: the bytes differ from what was uploaded")

    def shred(self, lead: Any, keeper_user: Mapping[str, Any], keeper: Any, bundle_id: str) -> None:
        corrected = self.workdir / "bundle-v2.json"
        corrected.write_text(json.dumps(synthetic_bundle(self.patient_id, glucose=5.1)))
        self.step(
            "new_version",
            "upload a corrected version of the bundle",
            lambda: lead.upload(None, corrected, FHIR, record_id=bundle_id),
        )
        self.step(
            "shred",
            "crypto-shred version 1 (reason entered_in_error)",
            lambda: lead.shred(bundle_id, 1, "entered_in_error"),
        )
        gone = self.step(
            "shredded_version",
            f"{keeper_user['username']} opens version 1",
            lambda: keeper.download(bundle_id, self.workdir / "v1", version=1),
            refused=410,
        )
        self.say(f"    {gone.code}: {gone.message}")
        self.open_and_compare(
            "latest_after_shred",
            keeper_user,
            keeper,
            bundle_id,
            hashlib.sha256(corrected.read_bytes()).hexdigest(),
            version=2,
        )


class DemoClients:
    """The doctor's client of each demo user, signed in with SRP and TOTP (the first
    sign-in enrols an authenticator, whose secret the demo keeps: synthetic users only),
    and a record of the largest request body the API received."""

    def __init__(self, doc: Mapping[str, Any], stack: str, api: str, state_dir: Path, home: Path):
        self.doc = doc
        self.stack = stack
        self.api = api
        self.secrets_path = state_dir / "demo-authenticators.json"
        self.home = home
        self.largest = 0

    def _secrets(self) -> dict[str, str]:
        if self.secrets_path.is_file():
            loaded: dict[str, str] = json.loads(self.secrets_path.read_text())
            return loaded
        return {}

    def _enrol(self, username: str, secret: str) -> None:
        secrets = {**self._secrets(), username: secret}
        self.secrets_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(secrets, out, indent=2, sort_keys=True)

    def __call__(self, user: Mapping[str, Any]) -> Any:
        import httpx

        from hubclient.api import HubApi
        from hubclient.auth import CognitoAuth, TokenSession, totp_now
        from hubclient.sdk import HubClient

        outputs = self.doc["stacks"][self.stack]["outputs"]
        auth = CognitoAuth(
            outputs["userPoolId"],
            outputs["userPoolClientIds"][0],
            api_url=self.api,
            endpoint_url=self.doc["emulatorEndpoint"],
        )
        username = user["username"]

        def enrol(secret: str) -> str:
            self._enrol(username, secret)
            return totp_now(secret)

        tokens = auth.sign_in(
            username,
            user["password"],
            lambda: totp_now(self._secrets()[username]),
            enrol=enrol,
        )

        def measure(request: httpx.Request) -> None:
            self.largest = max(self.largest, len(request.content))

        http = httpx.Client(base_url=self.api, timeout=300, event_hooks={"request": [measure]})
        return HubClient(HubApi(http, TokenSession(tokens, auth=auth)), home=self.home / username)


def run(
    doc: Mapping[str, Any],
    stack: str,
    api: str,
    imaging_bytes: int = 50 * MIB,
    say: Callable[[str], None] = print,
    *,
    state_dir: Path = Path(".hub"),
    large_bytes: int = 0,
) -> Outcome:
    """The walk-through against the API at ``api`` for the platform described by ``doc``."""
    users = [u for u in doc["demoUsers"] if u["stack"] == stack]
    patient_id = doc["demoPatients"][stack][0]["patient_id"]
    with tempfile.TemporaryDirectory(prefix="demo-records-") as tmp:
        workdir = Path(tmp)
        clients = DemoClients(doc, stack, api, state_dir, workdir / "clients")
        walk = Walkthrough(
            clients,
            users,
            patient_id,
            imaging_bytes,
            workdir,
            say,
            large_bytes=large_bytes,
            largest_request=lambda: clients.largest,
        )
        return walk.run()


def main(argv: list[str] | None = None) -> int:
    from app.local import DEFAULT_STACK, read_local_json
    from hubclient.errors import HubClientError
    from infra.standalone_platform import STANDALONE_STACK, standalone_platform

    parser = argparse.ArgumentParser(description="Patient records walk-through")
    parser.add_argument("--state-dir", default=".hub")
    parser.add_argument("--stack", default=DEFAULT_STACK)
    parser.add_argument("--api", help="API base URL (default: apiBaseUrl, else 127.0.0.1:8000/v1)")
    parser.add_argument("--imaging-mib", type=float, default=50, help="imaging file size")
    parser.add_argument(
        "--large-mib", type=float, default=0, help="also a large imaging file (e.g. 1024)"
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="no `hub local up`: start moto, a one-phase platform and the API in this process",
    )
    args = parser.parse_args(argv)
    imaging_bytes = int(args.imaging_mib * MIB)
    large_bytes = int(args.large_mib * MIB)
    try:
        if args.standalone:
            # moto keeps objects in memory unless told to spill them to disk.
            os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", "1")
            with standalone_platform() as (doc, api), tempfile.TemporaryDirectory() as state:
                run(doc, STANDALONE_STACK, api, imaging_bytes, state_dir=Path(state),
                    large_bytes=large_bytes)  # fmt: skip
        else:
            doc = read_local_json(args.state_dir)
            api = args.api or doc.get("apiBaseUrl") or "http://127.0.0.1:8000/v1"
            run(doc, args.stack, api, imaging_bytes, state_dir=Path(args.state_dir),
                large_bytes=large_bytes)  # fmt: skip
    except (WalkthroughFailed, HubClientError) as failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
