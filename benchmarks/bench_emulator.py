"""Emulator benchmark: deploy plus verify of all three phase stacks, and `hub local up`.

1. Deploy + verify: each run is a fresh Python process (what an operator or a CI job
   pays) that starts moto on loopback, deploys the three stacks through the emulator and
   runs the post-deploy checks on each. Reported: the wall time of the whole process,
   and inside it the deploy and verify times. Baseline measured in the same process:
   the offline preview of the same three stacks (mock runtime, no AWS calls), so the
   ratio shows what creating everything on the emulator costs on top of running the
   program. Target: <= 20 s for deploy + verify.
2. ``hub local up --no-serve``: wall time from process start to the "ready" summary
   (moto start, deploy, verify, seed, local.json), parsed from its output. ``--no-serve``
   does not start the API (a background uvicorn thread, well under a second to start).
   Target: <= 30 s.

Medians over ``--runs`` runs (default 3). Run: ``.venv/bin/python -m benchmarks emulator``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEPLOY_VERIFY_TARGET_S = 20.0
LOCAL_UP_TARGET_S = 30.0
ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "ap-east-1",
    "PYTHONPATH": str(REPO),
    "COLUMNS": "120",
}

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
t0 = time.perf_counter()
from infra.mockrun import run_program
from infra.stage import STACK_PHASES
from infra.emulator import deploy, start_moto_server
stacks = list(STACK_PHASES)
t_preview = time.perf_counter()
for s in stacks:
    run_program(s)
preview_s = time.perf_counter() - t_preview
server, url = start_moto_server()
state = Path(tempfile.mkdtemp())
t_deploy = time.perf_counter()
records = [deploy(s, endpoint_url=url, state_dir=state) for s in stacks]
deploy_s = time.perf_counter() - t_deploy
from infra.verify import verify_stack
t_verify = time.perf_counter()
reports = [verify_stack(r, endpoint_url=url) for r in records]
verify_s = time.perf_counter() - t_verify
verified = all(r.passed for r in reports)
server.stop()
print(json.dumps({"preview_s": preview_s, "deploy_s": deploy_s, "verify_s": verify_s,
                  "verified": verified, "resources": sum(len(r.resources) for r in records),
                  "in_process_s": time.perf_counter() - t0}))
"""


def _deploy_verify_run() -> dict[str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    data = json.loads(done.stdout.strip().splitlines()[-1])
    data["wall_s"] = wall
    return data


def _local_up_run() -> float:
    with tempfile.TemporaryDirectory() as state:
        start = time.perf_counter()
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "hub"),
                "local",
                "up",
                "--port",
                "0",
                "--no-serve",
                "--state-dir",
                state,
            ],
            cwd=REPO,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = None
        assert process.stdout is not None
        for line in process.stdout:
            if re.search(r"Local platform ready in", line) and ready is None:
                ready = time.perf_counter() - start
        process.wait()
        if process.returncode != 0 or ready is None:
            raise RuntimeError(f"hub local up failed (exit {process.returncode})")
        return ready


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks emulator", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-local-up", action="store_true")
    args = parser.parse_args(argv)

    runs = [_deploy_verify_run() for _ in range(args.runs)]
    med = {
        k: statistics.median(r[k] for r in runs)
        for k in ("wall_s", "in_process_s", "preview_s", "deploy_s")
    }
    verify_med = statistics.median(r["verify_s"] for r in runs)
    print(
        f"emulated deploy + verify, 3 stacks ({runs[0]['resources']} resources), "
        f"median of {args.runs} fresh processes:"
    )
    print(
        f"  wall (process start to exit):   {med['wall_s']:6.1f} s  "
        f"(target <= {DEPLOY_VERIFY_TARGET_S:.0f} s)"
    )
    print(f"  deploy (3 stacks, on moto):     {med['deploy_s']:6.1f} s")
    print(
        f"  verify (3 stacks):              {verify_med:6.1f} s  "
        f"(all passed: {all(r['verified'] for r in runs)})"
    )
    print(f"  deploy + verify:                {med['deploy_s'] + verify_med:6.1f} s")
    print(
        f"  baseline, offline preview:      {med['preview_s']:6.1f} s  "
        f"(deploy / preview = {med['deploy_s'] / med['preview_s']:.1f}x)"
    )
    if not args.skip_local_up:
        ready = [_local_up_run() for _ in range(args.runs)]
        print(
            f"hub local up to ready, median of {args.runs}: "
            f"{statistics.median(ready):6.1f} s  (target <= {LOCAL_UP_TARGET_S:.0f} s; "
            f"runs: {', '.join(f'{r:.1f}' for r in ready)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
