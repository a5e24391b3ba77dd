"""The local platform's state on disk: what ``hub local up`` writes and ``hub local down``
removes (the start-up itself is :mod:`infra.local_platform`).

``.hub/local.json`` follows the architecture brief: the emulator endpoint, the API base
URL (null until the sharing service is started by the platform, with a note saying so),
each phase's stack outputs, the demo users (username, password, role, institution)
so a client can sign in through the emulated Cognito, and ``messaging``: the local
homeserver's URL and what a Matrix client needs (server name, account and room alias
forms; the session itself comes from ``POST /messaging/session``). Every user and patient in it is
synthetic; the passwords are generated on each ``local up`` and only work on the local
emulator.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from infra.config_source import read_stage_file
from infra.emulator.record import now_utc
from infra.emulator.seed import SeedResult

LOCAL_FILE = "local.json"
API_NOTE = "The sharing service API was not started (--no-api, or --no-serve)."


def cohort_ids(stack: str) -> list[str]:
    return [str(i["id"]) for i in read_stage_file(stack).get("hub:cohort", [])]


def layer_cohort_ids(stack: str) -> list[str]:
    """The institutions ``stack``'s phase adds to the hub: its cohort (cumulative in the
    stage files) less the cohort of the stack below it."""
    from infra.stage import layer_below

    below = layer_below(stack)
    before = set(cohort_ids(below)) if below else set()
    return [i for i in cohort_ids(stack) if i not in before]


def local_path(state_dir: Path) -> Path:
    return Path(state_dir) / LOCAL_FILE


def write_local_json(
    state_dir: Path,
    *,
    endpoint_url: str,
    stacks: dict[str, Any],
    seeds: list[SeedResult],
    verification: dict[str, Any],
    gaps: dict[str, int],
    status: str = "running",
    api_base_url: str | None = None,
    api_stack: str | None = None,
    api_note: str = API_NOTE,
    messaging: dict[str, Any] | None = None,
    web_url: str | None = None,
    ledger_trails: int = 1,
) -> Path:
    document = {
        "generatedAt": now_utc(),
        "status": status,
        "emulatorEndpoint": endpoint_url,
        "region": "ap-east-1",
        "apiBaseUrl": api_base_url,
        "apiStack": api_stack,
        "apiNote": None if api_base_url else api_note,
        # the web client, served by the API's gateway under /web/ (None when not served)
        "webUrl": web_url,
        "synthetic": True,
        "stacks": stacks,
        # The trails of the hub's audit ledger (infra.emulator.hub.hub_ledger_trails):
        # what the service the platform runs reads as HUB_LEDGER_TRAILS.
        "ledgerTrails": ledger_trails,
        "verification": verification,
        "gapCounts": gaps,
        "demoUsers": [u.to_json() for s in seeds for u in s.users],
        "demoPatients": {s.stack: s.patients for s in seeds},
        "registerEntries": {s.stack: s.register_entries for s in seeds},
        # The homeserver of the API's phase (null: not started); no token in here.
        "messaging": messaging,
    }
    path = local_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    # demo passwords: readable by the operator only
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return path


def read_local_json(state_dir: Path) -> dict[str, Any] | None:
    path = local_path(state_dir)
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def mark_stopped(state_dir: Path) -> None:
    data = read_local_json(state_dir)
    if data is None:
        return
    data["status"] = "stopped"
    data["stoppedAt"] = now_utc()
    local_path(state_dir).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


STATE_ENTRIES = ("deployments", "reports", LOCAL_FILE, "rollout.json", "messaging")


def remove_state(state_dir: Path) -> list[Path]:
    """Remove what the local platform wrote under ``state_dir`` (and nothing else)."""
    removed = []
    for name in STATE_ENTRIES:
        path = Path(state_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(path)
        elif path.exists():
            path.unlink()
            removed.append(path)
    if Path(state_dir).is_dir() and not any(Path(state_dir).iterdir()):
        Path(state_dir).rmdir()
    return removed
