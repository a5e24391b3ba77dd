"""Benchmark of the referral API on the local platform, through the local API gateway.

One run, one platform (``infra.standalone_platform``: phase 1 on a moto server in this
process, served through the gateway built from phase 1's declaration: routing, throttling,
the Cognito authorizer, the REST proxy event and the app through Mangum, as ``make run``
does). Two seeded doctors sign in as a real client does (SRP, TOTP enrolment): a doctor
refers the seeded patient to a specialist at another institution, who views and accepts;
the specialist then leaves the group so that the next accept joins afresh.

Every request is sequential on a kept-alive connection and every answer is checked. The
baseline, measured in the same run and interleaved with the referral steps, is ``GET /me``
through the same gateway: the cheapest authenticated request. Figures: p50 and p99 per
step and the ratio of each median to the baseline's.

Run: ``.venv/bin/python -m benchmarks referrals [--referrals 200]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

STACK = "phase1-specialist"


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _pick(users: list[Mapping[str, Any]]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(specialist, referring doctor at another institution)."""
    specialist = next(u for u in users if u["role"] == "specialist" and u.get("mchk_reg_no"))
    referrer = next(
        u
        for u in users
        if u["role"] == "doctor"
        and u.get("mchk_reg_no")
        and u["institution"] != specialist["institution"]
    )
    return specialist, referrer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--referrals", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)

    import httpx

    from infra.local_platform import demo_bearer
    from infra.standalone_platform import standalone_platform

    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    timings: dict[str, list[float]] = {"GET /me": [], "send": [], "view": [], "accept": []}
    with standalone_platform(stack=STACK) as (doc, api):
        users = [u for u in doc["demoUsers"] if u["stack"] == STACK]
        patient_id = doc["demoPatients"][STACK][0]["patient_id"]
        specialist, referrer = _pick(users)
        bearer = demo_bearer(doc, STACK)
        as_ed, as_specialist = bearer(referrer), bearer(specialist)
        with httpx.Client(base_url=api, timeout=60) as http:

            def call(name: str | None, method: str, path: str, who: Any, **kw: Any) -> Any:
                start = time.perf_counter()
                response = http.request(method, path, headers=who, **kw)
                elapsed = time.perf_counter() - start
                if response.status_code >= 300:
                    raise SystemExit(f"{method} {path}: HTTP {response.status_code}")
                if name is not None:
                    timings[name].append(elapsed * 1000)
                return response

            gid = call(
                None, "POST", "/groups", as_ed, json={"patient_id": patient_id, "title": "bench"}
            ).json()["group_id"]
            body = {
                "patient_id": patient_id,
                "group_id": gid,
                "target": {
                    "institution": specialist["institution"],
                    "specialty": specialist.get("specialty") or "",
                },
                "urgency": "emergency",
                "clinical_question": "SYNTHETIC: acute abdomen, please assess",
                "legal_basis": {"basis": "emergency"},
            }
            for i in range(args.warmup + args.referrals):

                def named(step: str, measured: bool = i >= args.warmup) -> str | None:
                    return step if measured else None

                call(named("GET /me"), "GET", "/me", as_ed)
                sent = call(named("send"), "POST", "/referrals", as_ed, json=body)
                rid = sent.json()["referral_id"]
                call(named("view"), "GET", f"/referrals/{rid}", as_specialist)
                call(named("accept"), "POST", f"/referrals/{rid}/accept", as_specialist)
                call(None, "POST", f"/groups/{gid}/leave", as_specialist)

    base = statistics.median(timings["GET /me"])
    print(f"## Referral API through the local gateway ({args.referrals} referrals), ms")
    for name, values in timings.items():
        p50 = statistics.median(values)
        print(
            f"{name:8s} p50 {p50:7.1f}  p99 {_percentile(values, 99):7.1f}  "
            f"(median x{p50 / base:.1f} GET /me)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
