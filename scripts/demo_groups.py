"""Walk-through on the local platform: log in, create a group, summon, revoke.

A demo doctor signs in through the emulated Cognito, creates a consultation group for
a synthetic patient, summons specialists with one call, one specialist accepts and can
read the group, the doctor removes them, and their very next request is refused.

Usage, with ``hub local up`` running (it writes ``.hub/local.json`` and serves the API
through the local API gateway at ``apiBaseUrl``, http://127.0.0.1:8000/v1):
    .venv/bin/python scripts/demo_groups.py [--stack phase3-private-practice] [--api URL]

Sign-in is what a real client does against the stack's app client: SRP, then the TOTP
challenge; a first sign-in enrols an authenticator, whose secret the demo keeps in
``<state-dir>/demo-authenticators.json`` (synthetic users only) for the next run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def step(title: str, response: Any) -> Any:
    print(f"--> {title}: HTTP {response.status_code}")
    return response.json()


def main(argv: list[str] | None = None) -> int:
    import httpx

    from app.local import DEFAULT_STACK, read_local_json
    from infra.local_platform import demo_bearer

    parser = argparse.ArgumentParser(description="Consultation group walk-through")
    parser.add_argument("--state-dir", default=".hub")
    parser.add_argument("--stack", default=DEFAULT_STACK)
    parser.add_argument("--api", help="API base URL (default: apiBaseUrl or 127.0.0.1:8000)")
    args = parser.parse_args(argv)

    doc = read_local_json(args.state_dir)
    api = args.api or doc.get("apiBaseUrl") or "http://127.0.0.1:8000/v1"
    users = [u for u in doc["demoUsers"] if u["stack"] == args.stack]
    lead = next(u for u in users if u["role"] == "doctor")
    patient = doc["demoPatients"][args.stack][0]["patient_id"]
    specialties = sorted({u["specialty"] for u in users if u.get("specialty")})[:2]

    bearer = demo_bearer(doc, args.stack, Path(args.state_dir) / "demo-authenticators.json")
    with httpx.Client(base_url=api, timeout=30) as http:
        step("GET /groups without a token", http.get("/groups/x"))
        as_lead = bearer(lead)
        me = step(f"{lead['username']} signs in; GET /me", http.get("/me", headers=as_lead))
        print(f"    {me['reg_no']} at {me['institution']}, roles {me['roles']}")
        group = step(
            "POST /groups",
            http.post(
                "/groups",
                json={"patient_id": patient, "title": "Synthetic case conference"},
                headers=as_lead,
            ),
        )
        gid = group["group_id"]
        print(f"    group {gid}")
        summoned = step(
            f"POST /groups/{gid}/summon {specialties}",
            http.post(
                f"/groups/{gid}/summon",
                json={"specialties": specialties, "count": 2},
                headers=as_lead,
            ),
        )
        for expert in summoned["invited"]:
            print(
                f"    invited {expert['reg_no']} ({expert['specialty']}, {expert['institution']})"
            )
        first = summoned["invited"][0]["reg_no"]
        expert_user = next(u for u in users if u.get("mchk_reg_no") == first)
        as_expert = bearer(expert_user)
        step(
            f"{expert_user['username']} accepts",
            http.post(f"/groups/{gid}/accept", headers=as_expert),
        )
        step(
            f"{expert_user['username']} reads the group",
            http.get(f"/groups/{gid}", headers=as_expert),
        )
        step(
            f"lead removes {first}",
            http.delete(f"/groups/{gid}/members/{first}", headers=as_lead),
        )
        refused = step(
            f"{expert_user['username']} reads again (next request)",
            http.get(f"/groups/{gid}", headers=as_expert),
        )
        print(f"    {refused['error']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
