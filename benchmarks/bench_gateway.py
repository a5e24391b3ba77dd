"""Benchmark of the local API gateway's own overhead: ``GET /me``, direct against gateway.

One run, one platform (``infra.standalone_platform`` on a moto server in
this process), one doctor's access token (SRP sign-in), two ways to the same app object:

- **direct**: uvicorn serving the FastAPI app (as ``hub local up --direct`` does, without
  the lifespan, so neither side runs the ledger's background sequencer);
- **gateway**: uvicorn serving the local API gateway built from phase 1's declaration,
  which routes, throttles, runs the Cognito authorizer, builds the REST proxy event and
  invokes the app through Mangum (``app.main.lambda_handler_for``), as ``make run`` does.

Requests are sequential on a kept-alive connection, the two targets alternate round by
round (so drift on the shared machine hits both), and every answer is checked (200, the
same body). The ledger signs heads on demand on both sides (``sign_inline=False``), and
the gateway's stage throttle is raised to the stage maximum: neither is the gateway's
overhead. Target: the gateway adds at most 2 ms at p50.

Run: ``.venv/bin/python -m benchmarks gateway [--requests 400] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

TARGET_P50_OVERHEAD_MS = 2.0
STACK = "phase1-specialist"


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _time(client: Any, headers: dict[str, str], n: int, expected: Any) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get("/me", headers=headers)
        out.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200 or response.json() != expected:
            raise SystemExit(f"unexpected answer {response.status_code}: {response.text}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=400, help="per target per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args(argv)

    import threading

    import httpx
    import uvicorn

    from app.local import local_app
    from app.main import lambda_handler_for
    from infra.config_source import read_stage_file
    from infra.emulator.gateway import LocalGateway, record_from_program
    from infra.local_platform import demo_bearer
    from infra.standalone_platform import standalone_platform

    with standalone_platform(stack=STACK, serve=False) as (doc, _):
        outputs = doc["stacks"][STACK]["outputs"]
        config = read_stage_file(STACK)
        config["hub:capacity"] = {
            **config["hub:capacity"],
            "apiThrottleRateLimit": 10_000,
            "apiThrottleBurstLimit": 5_000,
        }
        record = record_from_program(
            STACK,
            user_pool_id=outputs["userPoolId"],
            user_pool_client_id=outputs["userPoolClientIds"][0],
            endpoint_url=doc["emulatorEndpoint"],
            config=config,
        )
        app = local_app(doc, STACK)
        gateway = LocalGateway(record, lambda_handler_for(app, sign_inline=False))
        gateway_url = gateway.start()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        direct_url = f"http://127.0.0.1:{port}"
        try:
            doctor = next(
                u for u in doc["demoUsers"] if u["stack"] == STACK and u["role"] == "doctor"
            )
            headers = demo_bearer(doc, STACK)(doctor)
            with (
                httpx.Client(base_url=direct_url, timeout=30) as direct,
                httpx.Client(base_url=gateway_url, timeout=30) as through,
            ):
                expected = direct.get("/me", headers=headers).json()
                for client in (direct, through):
                    _time(client, headers, args.warmup, expected)
                results: dict[str, list[float]] = {"direct": [], "gateway": []}
                for _ in range(args.rounds):
                    results["direct"] += _time(direct, headers, args.requests, expected)
                    results["gateway"] += _time(through, headers, args.requests, expected)
        finally:
            gateway.stop()
            server.should_exit = True
            thread.join(timeout=10)

    p50 = {k: statistics.median(v) for k, v in results.items()}
    p99 = {k: _percentile(v, 99) for k, v in results.items()}
    n = len(results["direct"])
    print(f"GET /me, {n} requests per target ({args.rounds} alternating rounds), ms:")
    for name in ("direct", "gateway"):
        print(f"  {name:8s} p50 {p50[name]:.3f}  p99 {p99[name]:.3f}")
    overhead = p50["gateway"] - p50["direct"]
    ratio = p50["gateway"] / p50["direct"]
    verdict = "met" if overhead <= TARGET_P50_OVERHEAD_MS else "MISSED"
    print(
        f"gateway overhead: p50 +{overhead:.3f} ms ({ratio:.2f}x direct), "
        f"p99 +{p99['gateway'] - p99['direct']:.3f} ms; "
        f"target <= {TARGET_P50_OVERHEAD_MS} ms at p50: {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
