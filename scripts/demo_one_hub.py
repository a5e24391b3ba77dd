"""Walk-through on the local platform: one hub, a phase 1 specialist and a phase 2 HA doctor
in one consultation group, sharing one record.

The three phase stacks are one hub (phase 1's the core, phases 2 and 3 layers over it):
one user pool, one API. A Hospital Authority doctor (admitted by phase 2's layer) signs
in, opens a consultation group for one of their hospital's synthetic patients and invites
a specialist of a phase 1 alliance by registration number; the specialist signs in to the
same pool through the same API and accepts. The HA doctor uploads a synthetic FHIR bundle
and shares it into the group; the specialist opens it and the bytes match (SHA-256 and
length). Every step prints ``--> <what>: HTTP <status>``; a step whose status is not the
expected one stops the walk-through with exit status 1.

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
import uuid
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
    authenticator: Any = None,
) -> Any:
    """The walk-through against the API at ``api`` for the platform ``doc`` describes;
    returns its outcome (statuses per step, facts)."""
    import httpx

    from infra.local_platform import demo_bearer

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
    # One pool: both sign in through the hub's native app client (the core's outputs).
    bearer = demo_bearer(doc, CORE, authenticator)
    with httpx.Client(base_url=api, timeout=120) as http:
        walk = records.Walkthrough(http, bearer, [ha_doctor, specialist], patient_id, 0, say)
        as_ha, as_specialist = bearer(ha_doctor), bearer(specialist)
        for name, user, headers in (
            ("me_ha", ha_doctor, as_ha),
            ("me_specialist", specialist, as_specialist),
        ):
            me = walk.step(
                name, f"{user['username']} signs in; GET /me", walk.get("/me", headers), 200
            )
            say(f"    {me['reg_no']} at {me['institution']} ({', '.join(me['roles'])})")
            walk.outcome.facts[f"{name}_institution"] = me["institution"]
        group = walk.step(
            "group",
            "HA doctor: POST /groups",
            http.post(
                "/groups",
                json={"patient_id": patient_id, "title": "Synthetic cross-phase consultation"},
                headers=as_ha,
            ),
            201,
        )
        group_id = group["group_id"]
        say(f"    group {group_id} for patient {patient_id}")
        reg_no = specialist["mchk_reg_no"]
        walk.step(
            "invite",
            f"HA doctor invites the phase 1 specialist {reg_no}",
            http.post(f"/groups/{group_id}/invitations", json={"reg_no": reg_no}, headers=as_ha),
            201,
        )
        walk.step(
            "accept",
            f"{specialist['username']} accepts",
            http.post(f"/groups/{group_id}/accept", headers=as_specialist),
            200,
        )
        bundle = json.dumps(records.synthetic_bundle(patient_id)).encode()
        uploaded = walk.step(
            "upload",
            f"HA doctor: POST /patients/{patient_id}/records (FHIR bundle)",
            http.post(
                f"/patients/{patient_id}/records",
                content=bundle,
                headers={
                    **as_ha,
                    "Content-Type": f"{records.FHIR}; charset=utf-8",
                    "Idempotency-Key": f"one-hub-{uuid.uuid4().hex}",
                    "X-Record-Category": "laboratory",
                    "X-Record-Title": "Synthetic chemistry panel",
                },
            ),
            201,
        )
        record_id = uploaded["record_id"]
        walk.step(
            "share",
            f"HA doctor: POST /records/{record_id}/share (into the group)",
            http.post(f"/records/{record_id}/share", json={"group_id": group_id}, headers=as_ha),
            201,
        )
        walk.open_and_compare(
            "specialist_opens",
            specialist,
            as_specialist,
            record_id,
            hashlib.sha256(bundle),
            len(bundle),
        )
        say("Walk-through complete: one hub, two phases, one group, one record.")
        return walk.outcome


def main(argv: list[str] | None = None) -> int:
    from app.local import AuthenticatorApp, read_local_json

    parser = argparse.ArgumentParser(description="One hub: cross-phase walk-through")
    parser.add_argument("--state-dir", default=".hub")
    parser.add_argument("--api", help="API base URL (default: apiBaseUrl or 127.0.0.1:8000)")
    args = parser.parse_args(argv)
    doc = read_local_json(args.state_dir)
    api = args.api or doc.get("apiBaseUrl") or "http://127.0.0.1:8000/v1"
    authenticator = AuthenticatorApp(Path(args.state_dir) / "demo-authenticators.json")
    records = _records_walkthrough()
    try:
        run(doc, api, authenticator=authenticator)
    except records.WalkthroughFailed as failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
