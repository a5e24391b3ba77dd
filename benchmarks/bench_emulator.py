"""Emulator benchmark: deploy plus verify of all three phase stacks, and `hub local up`.

1. Deploy + verify: each run is a fresh Python process (what an operator or a CI job
   pays) that starts moto on loopback, deploys the three stacks through the emulator and
   runs the post-deploy checks on each. Reported: the wall time of the whole process,
   and inside it the deploy and verify times. Baseline measured in the same process:
   the offline preview of the same three stacks (mock runtime, no AWS calls), so the
   ratio shows what creating everything on the emulator costs on top of running the
   program. Target: <= 20 s for deploy + verify.
2. ``hub local up`` as ``make run`` runs it (served: Synapse, the hub's application
   service and outbox dispatcher, the API behind the local gateway): wall time from
   process start to the "ready" summary, parsed from its output; then SIGTERM, which
   stops it as Ctrl-C does. Baseline in the same run: ``--no-messaging`` (everything but
   Synapse and the hub's side of it), so the difference is what messaging adds. Synapse
   starts in the background right after moto and comes up while the stacks deploy.
   Also the CPU seconds of the whole process tree, start to exit, which a loaded shared
   machine distorts far less than wall time. Target: <= 30 s to ready.

Medians over ``--runs`` runs (default 3); ``--local-up-only`` skips part 1. Run:
``.venv/bin/python -m benchmarks emulator``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
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
from infra.emulator.hub import verification_target
from infra.verify import verify_stack
t_verify = time.perf_counter()
# as `hub verify` does: a layer with the core it references
targets = [verification_target(r, state) for r in records]
reports = [verify_stack(view, stage=stage, endpoint_url=url) for view, stage in targets]
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
    data: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    data["wall_s"] = wall
    return data


def _local_up_run(*, messaging: bool) -> tuple[float, float]:
    """Seconds from starting ``hub local up`` (served) to its ready summary, and the CPU
    seconds its process tree used from start to exit (Synapse included: the CLI waits
    for it when it stops). On a shared machine the CPU time is the steadier figure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as state:
        argv = [str(Path(sys.executable).parent / "hub"), "local", "up", "--port", "0"]
        argv += ["--api-port", "0", "--state-dir", state]
        argv += [] if messaging else ["--no-messaging"]
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ready = None
        assert process.stdout is not None
        try:
            for line in process.stdout:
                if ready is None and re.search(r"Local platform ready in", line):
                    ready = time.perf_counter() - start
                if re.search(r"Press Ctrl-C", line):
                    process.terminate()  # SIGTERM: the CLI stops as on Ctrl-C
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if ready is None:
            raise RuntimeError(f"hub local up failed (exit {process.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ready, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks emulator", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-local-up", action="store_true")
    parser.add_argument("--local-up-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.local_up_only:
        _deploy_verify(args.runs)
    if not args.skip_local_up:
        # Interleaved, so both see the same load on a shared machine.
        pairs = [
            (_local_up_run(messaging=True), _local_up_run(messaging=False))
            for _ in range(args.runs)
        ]
        with_messaging = [p[0][0] for p in pairs]
        without = [p[1][0] for p in pairs]
        cpu_with = statistics.median(p[0][1] for p in pairs)
        cpu_without = statistics.median(p[1][1] for p in pairs)
        print(
            f"hub local up (served) to ready, median of {args.runs}: "
            f"{statistics.median(with_messaging):6.1f} s with Synapse  "
            f"(target <= {LOCAL_UP_TARGET_S:.0f} s; runs: "
            f"{', '.join(f'{r:.1f}' for r in with_messaging)})"
        )
        print(
            f"  baseline, --no-messaging:       {statistics.median(without):6.1f} s  "
            f"(runs: {', '.join(f'{r:.1f}' for r in without)}; messaging adds "
            f"{statistics.median(with_messaging) - statistics.median(without):+.1f} s)"
        )
        print(
            f"  CPU seconds, start to exit:     {cpu_with:6.1f} s with Synapse, "
            f"{cpu_without:.1f} s without ({cpu_with / cpu_without:.2f}x)"
        )
    return 0


def _deploy_verify(n: int) -> None:
    runs = [_deploy_verify_run() for _ in range(n)]
    med = {
        k: statistics.median(r[k] for r in runs)
        for k in ("wall_s", "in_process_s", "preview_s", "deploy_s")
    }
    verify_med = statistics.median(r["verify_s"] for r in runs)
    print(
        f"emulated deploy + verify, 3 stacks ({runs[0]['resources']} resources), "
        f"median of {n} fresh processes:"
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


if __name__ == "__main__":
    sys.exit(main())
