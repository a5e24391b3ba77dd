"""Load test through the deployed request path: locust against the local platform's gateway.

The platform runs in a child process (``infra.standalone_platform``: moto, the seeded
register, demo users and patients, and the app behind the local API gateway built from
the declared REST API of ``--stack``, with its authorizer, throttle and inline ledger
signing, as on Lambda). Locust runs here, as a library (its gevent patches stay in this
process), headless, with simulated doctors at rising concurrency. Each simulated doctor
signs in once (SRP, then the TOTP challenge, as ``app.local.login`` does; timed as
``sign-in``), opens a consultation group for a synthetic patient and uploads a small
synthetic FHIR bundle to it, then loops over a weighted mix:

====================================  ======  ==============================================
task                                  weight  request
====================================  ======  ==============================================
record read (metadata)                4       ``GET /records/{id}``
record read (content)                 2       ``GET /records/{id}/content``
group view                            2       ``GET /groups/{id}``
small upload                          1       ``POST /patients/{pid}/records`` (~1.5 KB)
group created                         1       ``POST /groups``
audit read (own entries)              1       ``GET /audit/entries?actor=<sub>&limit=20``
====================================  ======  ==============================================

with no think time (each simulated doctor is a closed loop: the figure is capacity, not a
model of human pacing; docs/capacity.md converts it). Per step: requests per second, p50,
p95, p99 (ms) and errors, overall and per task; the saturation point is the last step
whose throughput rose by at least 10 % over the previous one with errors under 1 %.

Run: ``.venv/bin/python -m benchmarks load [--users 1,2,4,8,16] [--step-seconds 30]``
(needs the bench extra: ``pip install -c constraints.txt -e '.[bench]'`` for locust).
The machine is shared: quote the figures with its load (printed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STACK = "phase3-private-practice"
FHIR = "application/fhir+json"


# --- the platform, in a child process -------------------------------------------------------


def serve(state: Path, stack: str, sign_inline: bool = True, trails: int | None = None) -> int:
    """Start the platform, sign every demo doctor in once (enrolling TOTP), write the
    document, then serve until stdin closes (the parent's end)."""
    from app.local import AuthenticatorApp
    from infra.local_platform import demo_bearer
    from infra.standalone_platform import standalone_platform

    with standalone_platform(
        stack=stack, gateway=True, sign_inline=sign_inline, ledger_trails=trails
    ) as (doc, _url):
        secrets = state.with_suffix(".authenticators.json")
        bearer = demo_bearer(doc, stack, AuthenticatorApp(secrets))
        doctors = [u for u in doc["demoUsers"] if u.get("role") == "doctor"]
        for user in doctors:
            bearer(user)  # enrols the authenticator: later sign-ins answer the TOTP challenge
        doc["authenticators"] = str(secrets)
        doc["stack"] = stack
        state.write_text(json.dumps(doc))
        sys.stdin.read()
    return 0


# --- the load, in this process ---------------------------------------------------------------


def _bundle(patient_id: str) -> bytes:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "demo_records.py"
    spec = importlib.util.spec_from_file_location("_demo_records", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return json.dumps(module.synthetic_bundle(patient_id)).encode()


def _percentiles(entry: Any) -> dict[str, float]:
    return {
        "p50": float(entry.get_response_time_percentile(0.50) or 0),
        "p95": float(entry.get_response_time_percentile(0.95) or 0),
        "p99": float(entry.get_response_time_percentile(0.99) or 0),
    }


def drive(doc: dict[str, Any], steps: Sequence[int], step_seconds: float) -> list[dict[str, Any]]:
    import base64
    import itertools
    import uuid

    import gevent  # type: ignore[import-untyped]
    from locust import HttpUser, between, events, task
    from locust.env import Environment

    from app.local import AuthenticatorApp, login

    stack = doc["stack"]
    outputs = doc["stacks"][stack]["outputs"]
    doctors = [u for u in doc["demoUsers"] if u.get("role") == "doctor"]
    patients = [p["patient_id"] for p in doc["demoPatients"][stack]]
    authenticator = AuthenticatorApp(doc["authenticators"])
    bundle_for = {p: _bundle(p) for p in patients}
    picks = itertools.count()

    import boto3

    cognito = boto3.client(
        "cognito-idp", region_name="ap-east-1", endpoint_url=doc["emulatorEndpoint"]
    )

    class Doctor(HttpUser):
        wait_time = between(0, 0)
        host = doc["apiBaseUrl"]

        def on_start(self) -> None:
            n = next(picks)
            user = doctors[n % len(doctors)]
            self.patient = patients[n % len(patients)]
            start = time.perf_counter()
            error: Exception | None = None
            try:
                tokens = login(
                    cognito,
                    outputs["userPoolId"],
                    outputs["userPoolClientIds"][0],
                    user["username"],
                    user["password"],
                    authenticator=authenticator,
                )
            except Exception as exc:  # counted as a failed sign-in, then this user stops
                error = exc
            self.environment.events.request.fire(
                request_type="COGNITO",
                name="sign-in",
                response_time=(time.perf_counter() - start) * 1000,
                response_length=0,
                exception=error,
                context={},
            )
            if error is not None:
                self.stop()
                return
            token = tokens["AccessToken"]
            claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
            self.sub = claims["sub"]
            self.auth = {"Authorization": f"Bearer {token}"}
            self.group_id = self._create_group()
            self.record_id = self._upload()

        def _create_group(self) -> str | None:
            with self.client.post(
                "/groups",
                json={"patient_id": self.patient, "title": "Load test review"},
                headers=self.auth,
                name="POST /groups",
                catch_response=True,
            ) as r:
                if r.status_code != 201:
                    r.failure(f"{r.status_code}")
                    return None
                return str(r.json()["group_id"])

        def _upload(self) -> str | None:
            with self.client.post(
                f"/patients/{self.patient}/records",
                data=bundle_for[self.patient],
                headers={
                    **self.auth,
                    "Content-Type": f"{FHIR}; charset=utf-8",
                    "Idempotency-Key": f"load-{uuid.uuid4().hex}",
                    "X-Record-Category": "laboratory",
                    "X-Record-Title": "Synthetic chemistry panel",
                },
                name="POST /patients/{pid}/records",
                catch_response=True,
            ) as r:
                if r.status_code != 201:
                    r.failure(f"{r.status_code}")
                    return None
                return str(r.json()["record_id"])

        def _get(self, path: str, name: str, **headers: str) -> None:
            with self.client.get(
                path, headers={**self.auth, **headers}, name=name, catch_response=True
            ) as r:
                if r.status_code != 200:
                    r.failure(f"{r.status_code}")

        @task(4)
        def read_record(self) -> None:
            if self.record_id:
                self._get(f"/records/{self.record_id}", "GET /records/{id}")

        @task(2)
        def read_content(self) -> None:
            if self.record_id:
                self._get(
                    f"/records/{self.record_id}/content",
                    "GET /records/{id}/content",
                    Accept=FHIR,
                )

        @task(2)
        def view_group(self) -> None:
            if self.group_id:
                self._get(f"/groups/{self.group_id}", "GET /groups/{id}")

        @task(1)
        def upload(self) -> None:
            self._upload()

        @task(1)
        def new_group(self) -> None:
            self._create_group()

        @task(1)
        def audit_read(self) -> None:
            self._get(f"/audit/entries?actor={self.sub}&limit=20", "GET /audit/entries")

    env = Environment(user_classes=[Doctor], events=events)
    runner = env.create_local_runner()
    results = []
    for users in steps:
        runner.start(users, spawn_rate=max(1, users))
        while runner.user_count < users:
            gevent.sleep(0.1)
        gevent.sleep(min(3.0, step_seconds / 5))  # sign-ins and first uploads settle
        signed = env.stats.get("sign-in", "COGNITO")
        sign_in: dict[str, float] = {"count": signed.num_requests, "failures": signed.num_failures}
        sign_in.update(_percentiles(signed) if signed.num_requests else {})
        env.stats.reset_all()
        started = time.time()
        gevent.sleep(step_seconds)
        elapsed = time.time() - started
        total = env.stats.total
        per_task = {
            name: {
                "requests": e.num_requests,
                "failures": e.num_failures,
                **_percentiles(e),
            }
            for (name, _method), e in env.stats.entries.items()
        }
        errors = {f"{e.name}: {e.error}": e.occurrences for e in env.stats.errors.values()}
        results.append(
            {
                "users": users,
                "seconds": elapsed,
                "requests": total.num_requests,
                "failures": total.num_failures,
                "rps": total.num_requests / elapsed,
                **_percentiles(total),
                "per_task": per_task,
                "sign_in": sign_in,
                "errors": errors,
                "load_average": os.getloadavg()[0],
            }
        )
    runner.quit()
    return results


def _saturation(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    best = results[0]
    for previous, step in itertools.pairwise(results):
        ok = step["failures"] <= 0.01 * max(1, step["requests"])
        if ok and step["rps"] >= 1.10 * previous["rps"]:
            best = step
        else:
            break
    return best


def _report(results: Sequence[dict[str, Any]], stack: str, trails: int) -> None:
    print(
        f"load through the local gateway ({stack}, {trails} ledger trail"
        f"{'s' if trails > 1 else ''}), closed loop, no think time:"
    )
    print("  users    req/s    p50 ms   p95 ms   p99 ms   errors   load avg")
    for r in results:
        print(
            f"  {r['users']:>5} {r['rps']:>8.1f} {r['p50']:>9.0f} {r['p95']:>8.0f} "
            f"{r['p99']:>8.0f} {r['failures']:>8} {r['load_average']:>10.1f}"
        )
    sat = _saturation(results)
    print(
        f"  saturation: {sat['rps']:.1f} req/s at {sat['users']} users "
        f"(p50 {sat['p50']:.0f} ms, p99 {sat['p99']:.0f} ms)"
    )
    last = results[-1]
    print(f"  per task at {last['users']} users (requests, failures, p50/p95/p99 ms):")
    for name, t in sorted(last["per_task"].items()):
        print(
            f"    {name:<32} {t['requests']:>6} {t['failures']:>4}  "
            f"{t['p50']:.0f}/{t['p95']:.0f}/{t['p99']:.0f}"
        )
    for r in results:
        s = r["sign_in"]
        if s["count"]:
            print(
                f"  sign-ins (SRP + TOTP) of the users added for the {r['users']}-user step: "
                f"{s['count']}, {s['failures']} failed, p50 {s['p50']:.0f} ms, "
                f"p95 {s['p95']:.0f} ms"
            )
    for r in results:
        for what, count in r["errors"].items():
            print(f"  errors at {r['users']} users: {count} x {what}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", default="1,2,4,8,16", help="concurrency steps")
    parser.add_argument("--step-seconds", type=float, default=30.0, help="measured per step")
    parser.add_argument("--stack", default=STACK, help="whose declared gateway serves")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--no-inline-signing",
        action="store_true",
        help="diagnosis: responses do not integrate and sign a head (Lambda's mode does)",
    )
    parser.add_argument(
        "--trails",
        type=int,
        choices=range(1, 65),
        metavar="N",
        help="the ledger's trails (default: the stage's, hub:capacity.ledgerTrails)",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    steps = [int(u) for u in args.users.split(",")]

    if args.serve:
        return serve(
            args.serve, args.stack, sign_inline=not args.no_inline_signing, trails=args.trails
        )
    if args.drive:
        doc = json.loads(args.drive.read_text())
        results = drive(doc, steps, args.step_seconds)
        print(json.dumps(results))
        return 0

    # The orchestrator: platform in one child, locust (gevent) in another, none here.
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        state = Path(tmp) / "local.json"
        me = [sys.executable, "-m", "benchmarks.bench_load", "--stack", args.stack]
        serve_args = ["--no-inline-signing"] if args.no_inline_signing else []
        if args.trails:
            serve_args += ["--trails", str(args.trails)]
        platform = subprocess.Popen(
            [*me, *serve_args, "--serve", str(state)], stdin=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 600
            while not state.exists():
                if platform.poll() is not None or time.monotonic() > deadline:
                    print("the platform did not start", file=sys.stderr)
                    return 1
                time.sleep(0.5)
            driver = subprocess.run(
                [
                    *me,
                    "--drive",
                    str(state),
                    "--users",
                    args.users,
                    "--step-seconds",
                    str(args.step_seconds),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if driver.returncode != 0:
                print(driver.stderr[-4000:], file=sys.stderr)
                return 1
            results = json.loads(driver.stdout.strip().splitlines()[-1])
            trails = int(json.loads(state.read_text()).get("ledgerTrails") or 1)
        finally:
            if platform.stdin is not None:
                platform.stdin.close()
            try:
                platform.wait(timeout=60)
            except subprocess.TimeoutExpired:
                platform.kill()
    _report(results, args.stack, trails)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
