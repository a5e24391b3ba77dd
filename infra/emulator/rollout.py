"""Rollout state: which release each phase runs, whether it was verified, and the gate.

Kept in ``<state_dir>/rollout.json``. A phase counts as verified only for the exact
deployment that was verified (same release and deploy time as its current record), so
a redeploy after verification needs a new verification. ``promotion_refusal`` is the
gate of ``hub rollout promote``: promoting to phase N needs phase N-1 deployed and
verified with the release being promoted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.emulator.record import DeploymentRecord, now_utc
from infra.stage import STACK_PHASES

ROLLOUT_FILE = "rollout.json"


@dataclass(frozen=True)
class PhaseStatus:
    stack: str
    phase: int
    deployed: bool
    release: str | None
    deployed_at: str | None
    target: str | None
    verified: bool
    verified_at: str | None
    failed_checks: tuple[str, ...]


def load_state(state_dir: Path) -> dict[str, Any]:
    path = Path(state_dir) / ROLLOUT_FILE
    if not path.is_file():
        return {"stacks": {}, "promotions": []}
    data: dict[str, Any] = json.loads(path.read_text())
    data.setdefault("stacks", {})
    data.setdefault("promotions", [])
    return data


def save_state(state_dir: Path, state: dict[str, Any]) -> Path:
    path = Path(state_dir) / ROLLOUT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def record_verification(
    state_dir: Path,
    record: DeploymentRecord,
    *,
    passed: bool,
    failed_checks: list[str],
    report_paths: list[str],
) -> None:
    """Remember that this exact deployment of ``record.stack`` was verified (or failed)."""
    state = load_state(state_dir)
    state["stacks"][record.stack] = {
        "release": record.release,
        "deployed_at": record.deployed_at,
        "verified": passed,
        "verified_at": now_utc(),
        "failed_checks": failed_checks,
        "reports": report_paths,
    }
    save_state(state_dir, state)


def phase_status(stack: str, state_dir: Path) -> PhaseStatus:
    record = DeploymentRecord.load(stack, state_dir)
    entry = load_state(state_dir)["stacks"].get(stack, {})
    deployed = record is not None and record.status == "deployed"
    same_deployment = (
        record is not None
        and entry.get("release") == record.release
        and entry.get("deployed_at") == record.deployed_at
    )
    return PhaseStatus(
        stack=stack,
        phase=STACK_PHASES[stack],
        deployed=deployed,
        release=record.release if record else None,
        deployed_at=record.deployed_at if record else None,
        target=record.target if record else None,
        verified=bool(deployed and same_deployment and entry.get("verified")),
        verified_at=entry.get("verified_at") if same_deployment else None,
        failed_checks=tuple(entry.get("failed_checks", ())) if same_deployment else (),
    )


def previous_stack(stack: str) -> str | None:
    phase = STACK_PHASES[stack]
    return next((s for s, p in STACK_PHASES.items() if p == phase - 1), None)


def promotion_refusal(target: str, state_dir: Path, release: str) -> str | None:
    """Why promoting ``release`` to ``target`` is refused, or None when it may proceed."""
    before = previous_stack(target)
    if before is None:
        return None
    status = phase_status(before, state_dir)
    if not status.deployed:
        return f"{before} (phase {status.phase}) is not deployed; promote to it first"
    if status.release != release:
        return (
            f"{before} runs release {status.release}, not {release}; promote this "
            f"release to {before} first"
        )
    if not status.verified:
        why = f" (failed checks: {', '.join(status.failed_checks)})" if status.failed_checks else ""
        return f"{before} (phase {status.phase}) is not verified for release {release}{why}"
    return None


def record_promotion(state_dir: Path, entry: dict[str, Any]) -> None:
    state = load_state(state_dir)
    state["promotions"].append({"at": now_utc(), **entry})
    save_state(state_dir, state)
