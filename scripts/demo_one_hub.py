"""Walk-through on the local platform: one hub, a phase 1 specialist and a phase 2 HA doctor
in one consultation group, sharing one record.

The three phase stacks are one hub (phase 1's the core, phases 2 and 3 layers over it):
one user pool, one API. A Hospital Authority doctor (admitted by phase 2's layer) signs
in, opens a consultation group for one of their hospital's synthetic patients and invites
a specialist of a phase 1 alliance by registration number; the specialist signs in to the
same pool through the same API, finds the invitation in their inbox and accepts. The HA
doctor stores a synthetic FHIR bundle and shares it into the group, and records the
patient's consent to sharing with the specialist's alliance (the seed's covers phase 2's
institutions only); the specialist opens the record on their device and the bytes match
(SHA-256). Both use the doctor's client
(``hubclient``, through the records walk-through's steps): the client seals and opens.
Every step prints ``--> <what>: <outcome>``; a step that does not end as expected stops
the walk-through with exit status 1.

Usage, with ``hub local up`` running (it deploys the core and both layers, seeds each
phase's institutions into the one hub, and serves the API at ``apiBaseUrl``):
    .venv/bin/python scripts/demo_one_hub.py [--api URL]

Sign-in is a real client's: SRP, then the TOTP challenge (authenticator secrets kept in
``<state-dir>/demo-authenticators.json``). Everything is synthetic.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CORE = "phase1-specialist"
HA_LAYER = "phase2-hospital-authority"


def _records_walkthrough() -> ModuleType:
    """The records walk-through's steps (scripts/demo_records.py), reused as they are."""
    path = Path(__file__).with_name("demo_records.py")
    spec = importlib.util.spec_from_file_location("demo_records", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("demo_records", module)
    spec.loader.exec_module(module)
    return module


def run(
    doc: Mapping[str, Any],
    api: str,
    say: Callable[[str], None] = print,
    *,
    state_dir: Path | None = None,
) -> Any:
    """The walk-through against the API at ``api`` for the platform ``doc`` describes;
    returns its outcome (``results`` per step, ``facts``). ``state_dir`` keeps the demo
    users' authenticator secrets (a temporary directory when None)."""
    records = _records_walkthrough()
    stacks = doc["stacks"]
    pools = {s: stacks[s]["outputs"]["userPoolId"] for s in (CORE, HA_LAYER)}
    if len(set(pools.values())) != 1:
        raise records.WalkthroughFailed(f"the phases are not one hub: user pools {pools}")
    users = doc["demoUsers"]
    ha_doctor = next(u for u in users if u["stack"] == HA_LAYER and u["role"] == "doctor")
    specialist = next(u for u in users if u["stack"] == CORE and u["role"] == "specialist")
    patient_id = next(
        p["patient_id"]
        for p in doc["demoPatients"][HA_LAYER]
        if p["institution_id"] == ha_doctor["institution"]
    )
    with tempfile.TemporaryDirectory(prefix="demo-one-hub-") as tmp:
        workdir = Path(tmp)
        # One pool: both sign in through the hub's native app client (the core's outputs).
        clients = records.DemoClients(doc, CORE, api, state_dir or workdir, workdir / "clients")
        walk = records.Walkthrough(clients, [ha_doctor, specialist], patient_id, 0, workdir, say)
        as_ha, as_specialist = clients(ha_doctor), clients(specialist)
        for name, user, client in (
            ("me_ha", ha_doctor, as_ha),
            ("me_specialist", specialist, as_specialist),
        ):
            me = walk.step(name, f"{user['username']} signs in (SRP, TOTP); who am I", client.me)
            say(f"    {me['reg_no']} at {me['institution']} ({', '.join(me['roles'])})")
            walk.outcome.facts[f"{name}_institution"] = me["institution"]
        group = walk.step(
            "group",
            "HA doctor opens a consultation group",
            lambda: as_ha.create_group(patient_id, "Synthetic cross-phase consultation"),
        )
        group_id = str(group["group_id"])
        say(f"    group {group_id} for patient {patient_id}")
        reg_no = specialist["mchk_reg_no"]
        walk.step(
            "invite",
            f"HA doctor invites the phase 1 specialist {reg_no}",
            lambda: as_ha.invite(group_id, reg_no),
        )
        inbox = walk.step(
            "inbox",
            f"{specialist['username']}'s inbox",
            lambda: list(as_specialist.invitations()),
        )
        if group_id not in {i["group_id"] for i in inbox}:
            raise records.WalkthroughFailed("the specialist's inbox lacks the invitation")
        walk.step(
            "accept",
            f"{specialist['username']} accepts",
            lambda: as_specialist.accept(group_id),
        )
        bundle = workdir / "bundle.json"
        bundle.write_text(json.dumps(records.synthetic_bundle(patient_id)))
        stored = walk.step(
            "upload",
            f"HA doctor stores a FHIR bundle for patient {patient_id}",
            lambda: as_ha.upload(
                patient_id,
                bundle,
                records.FHIR,
                category="laboratory",
                title="Synthetic chemistry panel",
            ),
        )
        record_id = str(stored["record_id"])
        walk.step(
            "share",
            f"HA doctor shares {record_id[:8]}... into the group",
            lambda: as_ha.share(record_id, group_id),
        )
        # The seed's consent covers the patient's own phase's institutions; reading a record
        # another institution created needs the patient's consent for the reader's (policy
        # reading-shared-record-needs-patient-consent): the HA doctor records it.
        alliance = str(specialist["institution"])
        walk.step(
            "before_consent",
            f"{specialist['username']} opens it before the patient consents (refused)",
            lambda: as_specialist.download(record_id, workdir / "refused"),
            refused=403,
        )
        walk.step(
            "consent",
            f"the patient consents to sharing with {alliance} (recorded by the HA doctor)",
            lambda: as_ha.api.post(
                f"/patients/{patient_id}/consents", {"institutions": [alliance]}
            ),
        )
        walk.open_and_compare(
            "specialist_opens",
            specialist,
            as_specialist,
            record_id,
            hashlib.sha256(bundle.read_bytes()).hexdigest(),
        )
        say("Walk-through complete: one hub, two phases, one group, one record.")
        return walk.outcome


def main(argv: list[str] | None = None) -> int:
    from app.local import read_local_json
    from hubclient.errors import HubClientError

    parser = argparse.ArgumentParser(description="One hub: cross-phase walk-through")
    parser.add_argument("--state-dir", default=".hub")
    parser.add_argument("--api", help="API base URL (default: apiBaseUrl or 127.0.0.1:8000)")
    args = parser.parse_args(argv)
    doc = read_local_json(args.state_dir)
    api = args.api or doc.get("apiBaseUrl") or "http://127.0.0.1:8000/v1"
    records = _records_walkthrough()
    try:
        run(doc, api, state_dir=Path(args.state_dir))
    except (records.WalkthroughFailed, HubClientError) as failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
