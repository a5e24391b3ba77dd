"""Benchmark of the pilot metrics (app/metrics) and of the referral API (app/referrals).

1. **All metrics over 10^5 and 10^6 ledger entries** of the synthetic pilot workload
   (infra/workload.py), written first as canonical entry bytes to a temporary file (an
   export's ``entries.ndjson`` without the JSON wrapper). Timed: reading and parsing the
   bytes alone (the baseline, measured in the same run), then reading, parsing and
   computing every metric; the metrics' own cost is the difference. Peak memory of the
   computation is measured separately with ``tracemalloc`` (which slows it, so it is not
   timed). The engine is one pass with O(1) work per entry and memory in the samples
   and open state, so time should grow ~10x from 10^5 to 10^6 and memory with the
   number of samples (~ a tenth of the entries), not with the entries.
2. **Referral API latency in-process**: the FastAPI app over a moto server on loopback
   (DynamoDB, Cognito, KMS), real tokens; ``--referrals`` times each of send, view and
   accept; ``GET /me`` (the cheapest authenticated route) is the baseline in the same run.

Run: ``.venv/bin/python -m benchmarks metrics`` (``--sizes 100000 1000000``,
``--referrals 200``, ``--skip-api``).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path

from app.ledger.entries import AuditEntry
from app.metrics.engine import MetricsAccumulator
from infra.workload import WorkloadConfig, generate, ledger_entries


def _write(path: Path, size: int) -> None:
    days = max(1, size // 700 + 1)  # ~700 entries a day at 40 referrals a day
    with path.open("wb") as out:
        for n, entry in enumerate(ledger_entries(generate(WorkloadConfig(days=days)))):
            if n >= size:
                break
            out.write(entry.to_bytes() + b"\n")


def _read(path: Path) -> Iterator[AuditEntry]:
    with path.open("rb") as lines:
        for line in lines:
            yield AuditEntry.from_bytes(line.rstrip(b"\n"))


CHUNK = 50_000


def _chunks(path: Path) -> Iterator[list[AuditEntry]]:
    chunk: list[AuditEntry] = []
    for entry in _read(path):
        chunk.append(entry)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bench_metrics(sizes: Sequence[int]) -> None:
    print("## All metrics over N ledger entries (one pass)")
    print(
        "| N | parse (baseline) | metrics | per entry | metrics / parse | peak memory | samples |"
    )
    print("|---|---|---|---|---|---|---|")
    previous: tuple[int, float, int] | None = None
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "entries.bin"
            _write(path, size)
            # Entries are parsed a chunk at a time outside the clock; only add() and the
            # final roll-up are timed, so the figure is the engine's own cost.
            accumulator = MetricsAccumulator()
            parse = compute = 0.0
            gc.collect()
            started = time.perf_counter()
            for chunk in _chunks(path):
                parsed = time.perf_counter()
                parse += parsed - started
                for entry in chunk:
                    accumulator.add(entry)
                started = time.perf_counter()
                compute += started - parsed
            before = time.perf_counter()
            accumulator.finish()
            compute += time.perf_counter() - before
            samples = sum(len(s) for s in accumulator._samples.values())
            del accumulator
            # Peak memory of the streaming computation, entries parsed one at a time and
            # dropped after use (not timed: tracemalloc slows allocation).
            tracemalloc.start()
            measured = MetricsAccumulator()
            for entry in _read(path):
                measured.add(entry)
            measured.finish()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            del measured
        print(
            f"| {size:,} | {parse:.2f} s | {compute:.2f} s | {compute / size * 1e6:.2f} µs | "
            f"{compute / parse:.2f}x | {peak / 2**20:.1f} MiB | {samples:,} |"
        )
        if previous is not None:
            n0, t0, m0 = previous
            print(
                f"growth x{size / n0:.0f} entries: metrics time x{compute / t0:.1f}, "
                f"peak memory x{peak / m0:.1f}"
            )
        previous = (size, compute, peak)


def _percentiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"


def bench_api(referrals: int) -> None:
    import boto3
    from fastapi.testclient import TestClient

    from app import local
    from app.dependencies import build_operator_institutions, build_services
    from app.identity.affiliations import Institution, InstitutionStatus, InstitutionType
    from app.identity.directory import enrol_user_pool
    from app.identity.register import import_register
    from app.institutions.service import OPERATOR, CohortInstitution
    from app.main import create_app
    from app.settings import Settings
    from infra.emulator.server import start_moto_server, use_emulator_credentials

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    use_emulator_credentials()
    # the one moto start-up: DynamoDB isolation and routing memoisation included
    server, endpoint = start_moto_server()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        session = boto3.session.Session(region_name="ap-east-1")
        cognito = session.client("cognito-idp")
        names = {k: f"bench-{k}" for k in local.TABLE_KEYS}
        local.create_service_tables(session.client("dynamodb"), names)
        pool_id, client_id = local.create_user_pool(cognito, "bench")
        key = session.client("kms").create_key()["KeyMetadata"]["Arn"]
        settings = Settings(
            mode="local",
            table_register=names["register"],
            table_institutions=names["institutions"],
            table_groups=names["groups"],
            table_records=names["records"],
            table_ledger=names["ledger"],
            table_patients=names["patients"],
            cognito_user_pool_id=pool_id,
            cognito_client_id=client_id,
            cognito_issuer=f"https://cognito-idp.ap-east-1.amazonaws.com/{pool_id}",
            records_key_arn=key,
        )
        services = build_services(settings, session=session)
        import_register(
            services.register,
            "Registration No.,Name (English),Name (Chinese),Address,Qualifications\n"
            "M60001,SYNTHETIC ED,合成,1 Bench Road,MB BS (Synthetic)\n"
            "M60002,SYNTHETIC Surgeon,合成,2 Bench Road,MB BS (Synthetic)\n",
            "Registration No.,Name (English),Name (Chinese),Address,Qualifications,Specialty\n"
            "M60002,SYNTHETIC Surgeon,合成,2 Bench Road,FHKAM (Synthetic),General Surgery\n",
        )
        # Institutions and enrolments as data, through the operator channel.
        operator = build_operator_institutions(
            session.client("dynamodb"),
            services.register,
            institutions_table=names["institutions"],
            ledger_table=names["ledger"],
            phase=1,
        )
        alliance = InstitutionType.SPECIALIST_ALLIANCE
        operator.seed(
            OPERATOR,
            [
                CohortInstitution(Institution(i, i, alliance, 1, InstitutionStatus.ADMITTED))
                for i in ("inst-ed", "inst-surg")
            ],
            [],
        )
        password = "Bench-Synthetic-Passw0rd!"
        headers = {}
        for user, reg_no, inst, groups in (
            ("ed", "M60001", "inst-ed", ["doctor"]),
            ("surgeon", "M60002", "inst-surg", ["doctor", "specialist"]),
        ):
            local.create_user(cognito, pool_id, user, password, groups=groups)
            token = local.login(cognito, pool_id, client_id, user, password)["AccessToken"]
            headers[user] = {"Authorization": f"Bearer {token}"}
            attrs = cognito.admin_get_user(UserPoolId=pool_id, Username=user)["UserAttributes"]
            sub = next(a["Value"] for a in attrs if a["Name"] == "sub")
            operator.set_affiliation(OPERATOR, inst, reg_no, tuple(groups), bind_sub=sub)
        enrol_user_pool(
            cognito,
            pool_id,
            services.directory,
            services.register,
            services.institutions.repository,
        )
        timings: dict[str, list[float]] = {"GET /me": [], "send": [], "view": [], "accept": []}
        with TestClient(create_app(settings, services=services)) as client:
            services.ledger.stop()  # no background signing competing with the requests
            # Groups and referrals name patients the index knows (app/patient_index).
            patient_id = client.post(
                "/patients", json={"mrn": "BENCH-1"}, headers=headers["ed"]
            ).json()["patient_id"]
            # ... who consent to sharing with both institutions (consent.cedar).
            client.post(
                f"/patients/{patient_id}/consents",
                json={"institutions": ["inst-ed", "inst-surg"]},
                headers=headers["ed"],
            ).raise_for_status()
            gid = client.post(
                "/groups",
                json={"patient_id": patient_id, "title": "bench"},
                headers=headers["ed"],
            ).json()["group_id"]
            body = {
                "patient_id": patient_id,
                "group_id": gid,
                "target": {"institution": "inst-surg", "specialty": "general surgery"},
                "urgency": "emergency",
                "clinical_question": "Synthetic: acute abdomen, please assess",
                "legal_basis": {"basis": "emergency"},
            }

            def timed(name: str, method: str, path: str, who: str, **kw: object) -> object:
                start = time.perf_counter()
                response = client.request(method, path, headers=headers[who], **kw)  # type: ignore[arg-type]
                timings[name].append(time.perf_counter() - start)
                assert response.status_code < 300, response.text
                return response

            for _ in range(referrals):
                timed("GET /me", "GET", "/me", "ed")
                rid = timed("send", "POST", "/referrals", "ed", json=body).json()["referral_id"]  # type: ignore[attr-defined]
                timed("view", "GET", f"/referrals/{rid}", "surgeon")
                timed("accept", "POST", f"/referrals/{rid}/accept", "surgeon")
                # The surgeon leaves again so the next accept joins afresh.
                client.post(f"/groups/{gid}/leave", headers=headers["surgeon"])
    finally:
        server.stop()
        os.environ.pop("AWS_ENDPOINT_URL", None)
    print(f"## Referral API in-process over moto ({referrals} referrals)")
    base = statistics.median(timings["GET /me"])
    for name, values in timings.items():
        ratio = statistics.median(values) / base
        print(f"{name:8s} {_percentiles(values)} (median x{ratio:.1f} GET /me)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--referrals", type=int, default=200)
    parser.add_argument("--skip-api", action="store_true")
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    bench_metrics(args.sizes)
    if not args.skip_api:
        print()
        bench_api(args.referrals)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
