"""Walk-through on the local platform: an emergency doctor refers to surgery, surgery
accepts in the group, the letter is produced, and the metrics report shows the decision.

1. An emergency doctor signs in, opens a consultation group for a synthetic patient.
2. A referral without a legal basis is refused (422, audited).
3. The doctor refers the patient to the surgical specialty of another institution, as an
   emergency (legal basis: emergency), naming the team.
4. A surgeon of that institution signs in, finds it in the inbox, reads the question,
   and accepts: on the next request the surgeon reads the patient's group.
5. The referral letter (PDF) and its FHIR form are written to ``--out`` (owner-readable
   only: they carry the clinical question).
6. ``hub metrics report --live`` runs over the ledger and the decision time is printed
   from it (seconds here: the surgeon decides at once).

Usage, with ``hub local up`` running (``make run``):
    .venv/bin/python scripts/demo_referrals.py [--stack phase3-private-practice] [--api URL]
        [--out .hub/referrals-demo]
or without it: ``--standalone`` (a small one-phase platform on a private moto server).

Every step prints ``--> <what>: HTTP <status>``; an unexpected status stops the walk with
exit status 1. Everything is synthetic.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SURGICAL = ("general surgery", "orthopaedics and traumatology")
QUESTION = (
    "SYNTHETIC: fall from ladder, closed deformity of the left distal radius, "
    "neurovascularly intact; please assess for reduction and fixation."
)


class WalkthroughFailed(RuntimeError):
    """A step answered with another status than the walk-through expects."""


@dataclass
class Outcome:
    statuses: dict[str, int] = field(default_factory=dict)
    referral_id: str = ""
    letter: Path | None = None
    report: Path | None = None
    decision_seconds: float | None = None


def _pick(users: list[Mapping[str, Any]]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(surgeon, emergency doctor): a surgical specialist, and a doctor elsewhere."""
    specialists = [u for u in users if u["role"] == "specialist" and u.get("mchk_reg_no")]
    surgeon = next(
        (u for s in SURGICAL for u in specialists if u.get("specialty") == s),
        specialists[0] if specialists else None,
    )
    if surgeon is None:
        raise WalkthroughFailed("the platform has no specialist to refer to")
    doctors = [u for u in users if u["role"] == "doctor" and u.get("mchk_reg_no")]
    referrer = next(
        (u for u in doctors if u["institution"] != surgeon["institution"]),
        next(u for u in doctors if u["username"] != surgeon["username"]),
    )
    return surgeon, referrer


def run(
    doc: Mapping[str, Any],
    stack: str,
    api: str,
    out: Path,
    say: Callable[[str], None] = print,
    authenticators: Path | None = None,
) -> Outcome:
    import httpx

    from infra.local_platform import demo_bearer

    users = [u for u in doc["demoUsers"] if u["stack"] == stack]
    patient_id = doc["demoPatients"][stack][0]["patient_id"]
    surgeon, referrer = _pick(users)
    # The demo users' authenticator app: users who enrolled TOTP in an earlier walk-through
    # answer the SOFTWARE_TOKEN_MFA challenge from the secrets it kept.
    bearer = demo_bearer(doc, stack, authenticators)
    outcome = Outcome()
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)

    with httpx.Client(base_url=api, timeout=60) as http:

        def step(
            name: str, what: str, expected: int, method: str, path: str, who: Any, **kw: Any
        ) -> Any:
            response = http.request(method, path, headers=who, **kw)
            say(f"--> {what}: HTTP {response.status_code}")
            outcome.statuses[name] = response.status_code
            if response.status_code != expected:
                raise WalkthroughFailed(f"{what}: expected {expected}, got {response.status_code}")
            return response

        as_ed, as_surgeon = bearer(referrer), bearer(surgeon)
        say(f"    emergency doctor {referrer['mchk_reg_no']} at {referrer['institution']}")
        group = step(
            "group",
            "POST /groups",
            201,
            "POST",
            "/groups",
            as_ed,
            json={"patient_id": patient_id, "title": "ED case"},
        ).json()
        gid = group["group_id"]
        body = {
            "patient_id": patient_id,
            "group_id": gid,
            "target": {
                "institution": surgeon["institution"],
                "specialty": surgeon.get("specialty") or "",
                "team": "acute-surgical-team",
            },
            "urgency": "emergency",
            "clinical_question": QUESTION,
        }
        refused = step(
            "no_basis",
            "POST /referrals without a legal basis (refused)",
            422,
            "POST",
            "/referrals",
            as_ed,
            json=body,
        )
        say(f"    {refused.json()['error']['code']}")
        sent = step(
            "send",
            f"POST /referrals to {body['target']['specialty']} at "
            f"{surgeon['institution']} (emergency)",
            201,
            "POST",
            "/referrals",
            as_ed,
            json={**body, "legal_basis": {"basis": "emergency"}},
        ).json()
        rid = outcome.referral_id = sent["referral_id"]
        say(f"    referral {rid}, audit receipt at {sent['audit_receipt']['position']}")
        say(f"    receiving specialist {surgeon['mchk_reg_no']} ({surgeon.get('specialty')})")
        step(
            "group_before",
            "specialist reads the group before accepting",
            403,
            "GET",
            f"/groups/{gid}",
            as_surgeon,
        )
        inbox = step(
            "inbox", "GET /referrals (the specialist's inbox)", 200, "GET", "/referrals", as_surgeon
        )
        if rid not in [r["referral_id"] for r in inbox.json()["referrals"]]:
            raise WalkthroughFailed("the referral is not in the surgeon's inbox")
        step(
            "view",
            "GET /referrals/{id} (with the clinical question)",
            200,
            "GET",
            f"/referrals/{rid}",
            as_surgeon,
        )
        accepted = step(
            "accept", "specialist accepts", 200, "POST", f"/referrals/{rid}/accept", as_surgeon
        ).json()
        step(
            "group_after",
            "specialist reads the group (next request)",
            200,
            "GET",
            f"/groups/{gid}",
            as_surgeon,
        )
        letter = step(
            "letter",
            "GET /referrals/{id}/letter",
            200,
            "GET",
            f"/referrals/{rid}/letter",
            # As through API Gateway: a binary body comes back as bytes only when asked for.
            {**as_surgeon, "Accept": "application/pdf"},
        )
        outcome.letter = out / f"referral-{rid}.pdf"
        outcome.letter.write_bytes(letter.content)
        os.chmod(outcome.letter, 0o600)
        say(f"    letter: {outcome.letter} ({len(letter.content)} bytes, application/pdf)")
        fhir = step(
            "fhir", "GET /referrals/{id}/fhir", 200, "GET", f"/referrals/{rid}/fhir", as_surgeon
        )
        fhir_path = out / f"referral-{rid}.fhir.json"
        fhir_path.write_text(json.dumps(fhir.json(), indent=2))
        os.chmod(fhir_path, 0o600)
        say(f"    FHIR ServiceRequest + Task: {fhir_path}")
        say(f"    sent {sent['created_at']}, accepted {accepted['accepted_at']}")

    from app.metrics.engine import DECISION, compute_metrics
    from infra.metrics_cli import live_entries
    from infra.metrics_report import write_report

    outputs = doc["stacks"][stack]["outputs"]
    report = compute_metrics(
        live_entries(stack, outputs["tableNames"]["ledger"], doc["emulatorEndpoint"], out)
    )
    outcome.report, _ = write_report(report, out / "metrics", source=f"ledger of {stack}")
    say(f"--> hub metrics report --live: {outcome.report}")
    decisions = report.find(DECISION)
    if not decisions:
        raise WalkthroughFailed("the report shows no referral decision")
    outcome.decision_seconds = decisions[0].p99 * 3600 if decisions[0].count == 1 else None
    row = decisions[0]
    say(
        f"    referral decision time: n={row.count}, median {row.p50 * 3600:.1f} s, "
        f"p90 {row.p90 * 3600:.1f} s"
    )
    say("Walk-through complete: every step answered as expected.")
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Referrals walk-through")
    parser.add_argument("--state-dir", default=".hub")
    parser.add_argument("--stack", default="phase3-private-practice")
    parser.add_argument("--api", help="API base URL (default: apiBaseUrl or 127.0.0.1:8000)")
    parser.add_argument("--out", default=None, help="where the letter and report go")
    parser.add_argument("--standalone", action="store_true", help="no `hub local up` needed")
    args = parser.parse_args(argv)
    try:
        if args.standalone:
            from infra.standalone_platform import standalone_platform

            with standalone_platform() as (doc, api):
                stack = next(iter(doc["stacks"]))
                run(doc, stack, api, Path(args.out or ".hub/referrals-demo"))
            return 0
        path = Path(args.state_dir) / "local.json"
        if not path.is_file():
            print(
                f"demo_referrals: {path} not found: start the platform (make run) first",
                file=sys.stderr,
            )
            return 2
        doc = json.loads(path.read_text())
        api = args.api or doc.get("apiBaseUrl") or "http://127.0.0.1:8000"
        run(
            doc,
            args.stack,
            api,
            Path(args.out or Path(args.state_dir) / "referrals-demo"),
            authenticators=Path(args.state_dir) / "demo-authenticators.json",
        )
        return 0
    except WalkthroughFailed as failed:
        print(f"walk-through failed: {failed}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
