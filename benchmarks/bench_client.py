"""Records sealed on the doctor's device: a 1 GiB upload through the client against a plain
parallel put of the same bytes to the same moto server, and the service's own CPU per
uploaded GiB against the path where the service seals.

Three processes, so that each cost lands where it belongs: the moto server (objects
spilled to disk, ``MOTO_S3_DEFAULT_KEY_BUFFER_SIZE=1``, so 1 GiB rounds do not sit in
memory), the API (uvicorn, ``app.main.create_app`` on a one-phase platform seeded by the
emulator's own seeding), and this process, the client. Per round, in rotating order:

- **plain**: the file cut into parts of the client's shard size (4 MiB), put with boto3
  ``put_object`` from ``parallelism`` threads to a bucket of the same moto (no sealing,
  botocore's default checksum): what any client pays to move these bytes;
- **client**: ``HubClient.upload``: session, sealing (AES-256-GCM, CRC64NVME), URL batches,
  parallel presigned PUTs, commit (manifest check, HeadObject of every shard), the content
  digest; the API process's CPU time over the upload, and this process's peak RSS growth
  (``VmHWM`` reset through ``/proc/self/clear_refs`` before the upload);
- **service-sealed**: the same file streamed to ``POST /patients/{id}/records`` (the API
  started with its inline cap lifted for the benchmark only: deployed, that path takes
  4 MiB), the API process's CPU time.

Reported: medians, MiB/s, this process's CPU seconds per GiB for both (what bounds the
ratio on busy cores), the moto server's CPU per GiB for both (it shares the cores, and the
client path also makes it answer the API's calls), client/plain throughput (target >=
0.8x; also the median of each round's own ratio, the two runs of a round being a few
seconds apart, so less exposed to the load drifting between rounds), RSS growth (target
<= 64 MiB), API CPU seconds per GiB for both paths and their ratio. The load average is
printed: the machine is shared.

Run: ``.venv/bin/python -m benchmarks client`` (options: ``--size-mib`` (1024),
``--rounds`` (3), ``--parallelism`` (6, the client's default)).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final

MIB = 1 << 20
REGION: Final = "ap-east-1"
STACK = "phase1-specialist"
CLIENT_SHARD = 4 * MIB  # HUB_CLIENT_SHARD_SIZE's default: what a session's shards are
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """This process's CPU seconds (user + system, all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({process.returncode})")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


# -- the child processes -------------------------------------------------------------------


def serve_moto(port: int) -> None:
    from infra.emulator.server import start_moto_server

    start_moto_server(port)  # the one harness: DynamoDB isolation, routing memoised
    while True:
        time.sleep(3600)


def serve_api(settings_path: str, port: int) -> None:
    import logging

    import boto3
    import uvicorn

    from app.dependencies import build_services
    from app.identity.directory import enrol_user_pool
    from app.main import create_app
    from app.settings import Settings

    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    raw = json.loads(Path(settings_path).read_text())
    inline = raw.pop("max_inline_record_bytes")
    # Benchmark only: lift the inline cap past its validated bound (4 MiB, what Lambda
    # carries) to measure the service-sealed path on the same file.
    settings = Settings(**raw).model_copy(update={"max_inline_record_bytes": inline})
    services = build_services(settings)
    cognito = boto3.client("cognito-idp", region_name=REGION)
    enrol_user_pool(
        cognito,
        settings.cognito_user_pool_id,
        services.directory,
        services.register,
        services.institutions.repository,
    )
    uvicorn.run(create_app(settings, services=services), host="127.0.0.1", port=port,
                log_level="warning")  # fmt: skip


# -- the platform --------------------------------------------------------------------------


@dataclass
class Platform:
    endpoint: str
    api_url: str
    api_pid: int
    moto_pid: int
    bucket: str
    plain_bucket: str
    token: str
    patient_id: str


@contextmanager
def platform(size: int, workdir: Path) -> Iterator[Platform]:
    import boto3

    from app import local
    from infra.emulator.local import cohort_ids
    from infra.emulator.provision import Context
    from infra.emulator.seed import seed_stack
    from infra.emulator.server import free_port

    env = {**os.environ, **CREDENTIALS, "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": "1"}
    moto_port = free_port()
    endpoint = f"http://127.0.0.1:{moto_port}"
    children: list[subprocess.Popen[bytes]] = []
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", *CREDENTIALS)}
    try:
        moto = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_client", "--serve-moto", str(moto_port)],
            env=env,
        )
        children.append(moto)
        _wait_for(endpoint, moto)
        os.environ.update(CREDENTIALS)
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        session = boto3.session.Session(region_name=REGION)
        prefix = f"bench-client-{uuid.uuid4().hex[:6]}"
        tables = {name: f"{prefix}-{name}" for name in local.TABLE_KEYS}
        local.create_service_tables(session.client("dynamodb"), tables)
        pool_id, client_id = local.create_user_pool(session.client("cognito-idp"), prefix)
        s3 = session.client("s3")
        buckets = {"shards": f"{prefix}-shards", "plain": f"{prefix}-plain"}
        for name in buckets.values():
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(
            Bucket=buckets["shards"], VersioningConfiguration={"Status": "Enabled"}
        )
        audit = f"{prefix}-audit"
        s3.create_bucket(
            Bucket=audit,
            CreateBucketConfiguration={"LocationConstraint": REGION},
            ObjectLockEnabledForBucket=True,
        )
        kms = session.client("kms")
        records_key = kms.create_key(Description="bench records")["KeyMetadata"]["Arn"]
        signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        outputs = {
            "userPoolId": pool_id,
            "userPoolClientIds": [client_id],
            "issuer": f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}",
            "tableNames": tables,
            "shardBucketName": buckets["shards"],
            "recordsKeyArn": records_key,
            "signingKeyArn": signing["KeyMetadata"]["Arn"],
            "auditBucketName": audit,
        }
        seeded = seed_stack(
            SimpleNamespace(stack=STACK, outputs=outputs),  # type: ignore[arg-type]
            cohort_ids(STACK),
            Context(endpoint, REGION),
        )
        doc = {
            "emulatorEndpoint": endpoint,
            "stacks": {STACK: {"phase": 1, "outputs": outputs}},
            "demoUsers": [u.to_json() for u in seeded.users],
        }
        settings = local.settings_from_local_json(doc, STACK)
        raw = json.loads(settings.model_dump_json())
        raw["audit_hash_key"] = settings.audit_hash_key.get_secret_value()
        raw["max_inline_record_bytes"] = size
        settings_path = workdir / "settings.json"
        settings_path.write_text(json.dumps(raw))
        api_port = free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_client", "--serve-api",
             str(settings_path), str(api_port)],
            env={**env, "AWS_ENDPOINT_URL": endpoint},
        )  # fmt: skip
        children.append(api)
        api_url = f"http://127.0.0.1:{api_port}"
        _wait_for(f"{api_url}/health", api)
        doctor = next(u for u in seeded.users if u.role == "doctor")
        tokens = local.login(
            session.client("cognito-idp"), pool_id, client_id, doctor.username, doctor.password
        )
        yield Platform(
            endpoint=endpoint,
            api_url=api_url,
            api_pid=api.pid,
            moto_pid=moto.pid,
            bucket=buckets["shards"],
            plain_bucket=buckets["plain"],
            token=tokens["AccessToken"],
            patient_id=seeded.patients[0]["patient_id"],
        )
    finally:
        for child in reversed(children):
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- the measurements ----------------------------------------------------------------------


def _empty(s3: Any, bucket: str) -> None:
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", [])]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})


def plain_put(p: Platform, path: Path, part: int, parallelism: int) -> tuple[float, float, float]:
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3", region_name=REGION, endpoint_url=p.endpoint,
        config=Config(max_pool_connections=2 * parallelism),
    )  # fmt: skip
    size = path.stat().st_size
    prefix = uuid.uuid4().hex

    def put(index: int) -> None:
        with open(path, "rb") as source:
            source.seek(index * part)
            body = source.read(part)
        s3.put_object(Bucket=p.plain_bucket, Key=f"{prefix}/{uuid.uuid4().hex}", Body=body)

    cpu, moto = _own_cpu(), _cpu_seconds(p.moto_pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(parallelism) as pool:
        list(pool.map(put, range(-(-size // part))))
    seconds = time.perf_counter() - started
    return seconds, _own_cpu() - cpu, _cpu_seconds(p.moto_pid) - moto


@dataclass
class ClientRun:
    seconds: float
    api_cpu: float
    rss_growth_mib: float
    own_cpu: float
    moto_cpu: float


def client_upload(p: Platform, path: Path, parallelism: int, home: Path) -> ClientRun:
    import httpx

    from hubclient.api import HubApi
    from hubclient.auth import StaticToken
    from hubclient.sdk import HubClient

    client = HubClient(
        HubApi(httpx.Client(base_url=p.api_url, timeout=300), StaticToken(p.token)),
        home=home,
        parallelism=parallelism,
    )
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before_rss = _status_kib("VmRSS")
    cpu = _cpu_seconds(p.api_pid)
    own, moto = _own_cpu(), _cpu_seconds(p.moto_pid)
    started = time.perf_counter()
    record = client.upload(p.patient_id, path, "application/dicom", category="imaging")
    seconds = time.perf_counter() - started
    api_cpu = _cpu_seconds(p.api_pid) - cpu
    own_cpu = _own_cpu() - own
    moto_cpu = _cpu_seconds(p.moto_pid) - moto
    growth = (_status_kib("VmHWM") - before_rss) / 1024
    assert record["versions"][0]["length"] == path.stat().st_size
    return ClientRun(seconds, api_cpu, growth, own_cpu, moto_cpu)


def service_sealed_upload(p: Platform, path: Path) -> tuple[float, float]:
    import httpx

    size = path.stat().st_size

    def body() -> Iterator[bytes]:
        with open(path, "rb") as source:
            while chunk := source.read(MIB):
                yield chunk

    cpu = _cpu_seconds(p.api_pid)
    started = time.perf_counter()
    r = httpx.post(
        f"{p.api_url}/patients/{p.patient_id}/records",
        content=body(),
        headers={
            "Authorization": f"Bearer {p.token}",
            "Content-Type": "application/dicom",
            "Content-Length": str(size),
        },
        timeout=600,
    )
    seconds = time.perf_counter() - started
    if r.status_code != 201:
        raise RuntimeError(f"service-sealed upload: HTTP {r.status_code} {r.text[:200]}")
    return seconds, _cpu_seconds(p.api_pid) - cpu


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=6)  # the client's default
    parser.add_argument("--serve-moto", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-api", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_moto:
        serve_moto(args.serve_moto)
        return 0
    if args.serve_api:
        serve_api(args.serve_api[0], int(args.serve_api[1]))
        return 0

    import boto3

    size = args.size_mib * MIB
    gib = size / (1 << 30)
    print(f"client-sealed upload of {args.size_mib} MiB, {args.rounds} rounds, parallelism "
          f"{args.parallelism}; load average {_load()}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        workdir = Path(tmp)
        path = workdir / "synthetic.dcm"
        with open(path, "wb") as out:
            out.write(b"\0" * 128 + b"DICM")
            written = 132
            while written < size:
                chunk = os.urandom(min(8 * MIB, size - written))
                out.write(chunk)
                written += len(chunk)
        with platform(size, workdir) as p:
            s3 = boto3.client("s3", region_name=REGION, endpoint_url=p.endpoint)
            part = CLIENT_SHARD  # the plain put moves the same bytes in the same object size
            runs: dict[str, list[Any]] = {"plain": [], "client": [], "service": []}
            steps: dict[str, Callable[[], Any]] = {
                "plain": lambda: plain_put(p, path, part, args.parallelism),
                "client": lambda: client_upload(p, path, args.parallelism, workdir / "home"),
                "service": lambda: service_sealed_upload(p, path),
            }
            order = list(steps)
            # Warm up (imports, connection pools, first allocations): not measured.
            warm = workdir / "warm.dcm"
            warm.write_bytes(os.urandom(2 * MIB))
            client_upload(p, warm, args.parallelism, workdir / "home")
            plain_put(p, warm, part, args.parallelism)
            for n in range(args.rounds):
                for name in order[n % 3 :] + order[: n % 3]:
                    runs[name].append(steps[name]())
                    _empty(s3, p.plain_bucket)
                    _empty(s3, p.bucket)
                client = runs["client"][-1]
                print(
                    f"  round {n + 1}: plain {runs['plain'][-1][0]:.2f} s (CPU "
                    f"{runs['plain'][-1][1]:.2f} s), client "
                    f"{client.seconds:.2f} s (CPU {client.own_cpu:.2f} s, API CPU "
                    f"{client.api_cpu:.2f} s, RSS +"
                    f"{client.rss_growth_mib:.1f} MiB, moto CPU {client.moto_cpu:.2f} s vs "
                    f"{runs['plain'][-1][2]:.2f} s for plain), service-sealed "
                    f"{runs['service'][-1][0]:.2f} s (API CPU {runs['service'][-1][1]:.2f} s); "
                    f"load {_load()}"
                )
    plain = _median([r[0] for r in runs["plain"]])
    plain_cpu = _median([r[1] for r in runs["plain"]]) / gib
    client_own_cpu = _median([r.own_cpu for r in runs["client"]]) / gib
    client_s = _median([r.seconds for r in runs["client"]])
    rss = max(r.rss_growth_mib for r in runs["client"])
    client_cpu = _median([r.api_cpu for r in runs["client"]]) / gib
    service_s = _median([r[0] for r in runs["service"]])
    service_cpu = _median([r[1] for r in runs["service"]]) / gib
    mib = size / MIB
    print(f"plain parallel put      {plain:7.2f} s  {mib / plain:7.1f} MiB/s")
    paired = _median(
        [pl[0] / cl.seconds for pl, cl in zip(runs["plain"], runs["client"], strict=True)]
    )
    print(f"client (sealed, put)    {client_s:7.2f} s  {mib / client_s:7.1f} MiB/s  "
          f"{plain / client_s:.2f}x plain (target >= 0.8x); median of the rounds' own "
          f"ratios {paired:.2f}x")  # fmt: skip
    print(f"this process's CPU per GiB: client {client_own_cpu:.2f} s, plain put "
          f"{plain_cpu:.2f} s ({client_own_cpu / max(plain_cpu, 1e-9):.2f}x: sealing, "
          "checksums, the URL batches; what bounds the ratio when the cores are busy)")  # fmt: skip
    moto_plain = _median([r[2] for r in runs["plain"]]) / gib
    moto_client = _median([r.moto_cpu for r in runs["client"]]) / gib
    print(f"moto server CPU per GiB: client {moto_client:.2f} s, plain put {moto_plain:.2f} s "
          "(the emulator shares the cores: the client path also makes it answer the API's "
          "session, key and HeadObject calls)")  # fmt: skip
    print(f"client peak RSS growth  {rss:7.1f} MiB (largest of {args.rounds}; target <= 64 MiB)")
    print(f"service-sealed upload   {service_s:7.2f} s  {mib / service_s:7.1f} MiB/s")
    print(f"API CPU per GiB: client-sealed {client_cpu:.2f} s, service-sealed "
          f"{service_cpu:.2f} s ({service_cpu / max(client_cpu, 1e-9):.0f}x less with the "
          "client sealing)")  # fmt: skip
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
