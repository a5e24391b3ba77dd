"""End-to-end record storage benchmark: a 64 MiB upload and download against moto on loopback.

What one "upload" is here: the record store's data path (``app.records.shards.ShardStore``
and ``app.crypto.envelope.ShardedEnvelope``, as the service wires them): KMS
``GenerateDataKey`` with the record's encryption context on the moto server, sealing 1 MiB
shards with AES-256-GCM while they are put to the versioned shard bucket with bounded
parallelism (SSE-KMS and ``ChecksumSHA256`` on every put), then the manifest committed to the
records table with a conditional write. One "download": read the manifest, KMS ``Decrypt``,
parallel shard gets, verify and decrypt every shard; the plaintext is compared with what was
uploaded (outside the timed region).

To split crypto from transport, the same run also measures, on the same bytes, round-robin:

- transport only (null crypto): the same ``ShardStore.put_all`` / parallel gets of the
  plaintext cut into the same shards, with the same parallelism, and the same manifest write
  (upload) or read (download), but no KMS call and no sealing;
- crypto only: seal and open of the same bytes with the in-memory key provider and a null
  sink (no S3, no KMS), i.e. the data plane's own cost.

Reported: medians over ``--rounds`` rounds, MiB/s, and the crypto share of the end-to-end
time, estimated two ways: (end-to-end - transport only) / end-to-end, which is what adding
encryption costs in wall time (sealing overlaps the puts, so it can be below the crypto-only
time), and crypto only / end-to-end, the CPU-bound work in isolation. moto keeps objects in
memory and runs in this process (a thread, as in the tests), so "transport" here is loopback
HTTP plus moto's request handling, which competes with sealing for the same cores; on AWS,
S3 latency dominates instead.

With ``--http`` it also times the same upload and download through the API
(``POST /patients/{id}/records``, ``GET /records/{id}/content``) of an in-process uvicorn
server on a one-phase platform on the same moto (``infra.standalone_platform``),
to show what HTTP, authorization, idempotency hashing and the audit ledger add.

Run: ``.venv/bin/python -m benchmarks records`` (options: ``--size-mib``, ``--rounds``,
``--parallelism``, ``--http``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1 << 20
REGION = "ap-east-1"


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Emulated:
    """The moto server and the AWS resources the record store needs on it."""

    endpoint: str
    server: Any
    s3: Any
    kms: Any
    dynamodb: Any
    bucket: str
    key_arn: str
    table: str


def start_emulator() -> Emulated:
    import boto3
    from botocore.config import Config

    from infra.emulator.server import start_moto_server, use_emulator_credentials

    use_emulator_credentials()
    server, endpoint = start_moto_server()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    session = boto3.session.Session(region_name=REGION)
    # The service's S3 pool must allow its parallel puts (botocore's default is 10).
    s3 = session.client("s3", config=Config(max_pool_connections=32))
    kms = session.client("kms")
    dynamodb = session.client("dynamodb")
    bucket = f"bench-shards-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key_arn = kms.create_key(Description="bench records key")["KeyMetadata"]["Arn"]
    table = f"bench-records-{uuid.uuid4().hex[:8]}"
    from app.local import create_service_tables

    create_service_tables(dynamodb, {"records": table})
    return Emulated(endpoint, server, s3, kms, dynamodb, bucket, key_arn, table)


@dataclass
class Timings:
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.seconds.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])


def _shards_of(data: bytes, shard_size: int) -> Iterator[Any]:
    from app.crypto.envelope import SealedShard

    view = memoryview(data)
    for index, start in enumerate(range(0, max(len(data), 1), shard_size)):
        yield SealedShard(index, bytes(view[start : start + shard_size]))


class RecordStoreBench:
    """One record's upload and download through the store, and the baselines."""

    def __init__(self, emu: Emulated, data: bytes, shard_size: int, parallelism: int):
        from app.crypto.envelope import ShardedEnvelope
        from app.crypto.kms import InMemoryDataKeyProvider, KmsDataKeyProvider
        from app.records.shards import ShardStore

        self.emu = emu
        self.data = data
        self.digest = hashlib.sha256(data).digest()
        self.shard_size = shard_size
        self.parallelism = parallelism
        self.store = ShardStore(emu.s3, emu.bucket, emu.key_arn, parallelism)
        self.envelope = ShardedEnvelope(
            KmsDataKeyProvider(emu.kms, emu.key_arn),
            shard_size=shard_size,
            parallelism=parallelism,
        )
        self.local_envelope = ShardedEnvelope(
            InMemoryDataKeyProvider(), shard_size=shard_size, parallelism=parallelism
        )
        self.key_seconds = 0.0

    # -- end to end -----------------------------------------------------------------------

    def upload(self) -> tuple[str, Any]:
        from app.crypto.envelope import RecordContext
        from app.records.shards import new_upload_id

        record_id = f"rec-{uuid.uuid4().hex}"
        context = RecordContext(record_id, "pt-bench-000001", 1, "bench-institution")
        upload_id = new_upload_id()
        start = time.perf_counter()
        stream = self.envelope.seal(context, self.data, len(self.data))  # GenerateDataKey
        self.key_seconds = time.perf_counter() - start
        stored = self.store.put_all(upload_id, stream)
        self._commit(record_id, stream.manifest.to_bytes(), stored)
        return record_id, (context, stored)

    def download(self, record_id: str, handle: Any) -> None:
        context, _ = handle
        manifest, stored = self._read(record_id)
        by_index = {i: s for i, s in enumerate(stored)}
        digest = hashlib.sha256()
        start = time.perf_counter()
        # Decrypt (KMS) and the manifest checks happen here, before any shard is fetched.
        chunks = self.envelope.open(manifest, lambda i: self.store.get(by_index[i]), context)
        self.key_seconds = time.perf_counter() - start
        for chunk in chunks:
            digest.update(chunk)
        if digest.digest() != self.digest:
            raise AssertionError("downloaded plaintext differs from the upload")

    # -- transport only (null crypto) -----------------------------------------------------

    def raw_upload(self) -> tuple[str, Any]:
        from app.records.shards import new_upload_id

        record_id = f"raw-{uuid.uuid4().hex}"
        stored = self.store.put_all(new_upload_id(), _shards_of(self.data, self.shard_size))
        self._commit(record_id, b"{}", stored)
        return record_id, stored

    def raw_download(self, record_id: str) -> None:
        _, stored = self._read(record_id)
        digest = hashlib.sha256()
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            for chunk in pool.map(self.store.get, stored):
                digest.update(chunk or b"")
        if digest.digest() != self.digest:
            raise AssertionError("raw download differs from the upload")

    # -- crypto only ----------------------------------------------------------------------

    def seal_only(self) -> tuple[Any, list[bytes], Any]:
        from app.crypto.envelope import RecordContext

        context = RecordContext(f"rec-{uuid.uuid4().hex}", "pt-bench-000001", 1, "bench")
        stream = self.local_envelope.seal(context, self.data, len(self.data))
        shards = [s.ciphertext for s in stream]  # held, as a null sink would drop them
        return stream.manifest, shards, context

    def open_only(self, sealed: tuple[Any, list[bytes], Any]) -> None:
        manifest, shards, context = sealed
        for _chunk in self.local_envelope.open(manifest, shards.__getitem__, context):
            pass

    # -- manifest item --------------------------------------------------------------------

    def _commit(self, record_id: str, manifest: bytes, stored: list[Any]) -> None:
        self.emu.dynamodb.put_item(
            TableName=self.emu.table,
            Item={
                "pk": {"S": f"RECORD#{record_id}"},
                "sk": {"S": "VERSION#0000000001"},
                "manifest": {"B": manifest},
                "shards": {"L": [{"S": s.key} for s in stored]},
                "versions": {"L": [{"S": s.version_id or ""} for s in stored]},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def _read(self, record_id: str) -> tuple[bytes, list[Any]]:
        from app.records.shards import StoredShard

        item = self.emu.dynamodb.get_item(
            TableName=self.emu.table,
            Key={"pk": {"S": f"RECORD#{record_id}"}, "sk": {"S": "VERSION#0000000001"}},
            ConsistentRead=True,
        )["Item"]
        stored = [
            StoredShard(k["S"], v["S"] or None)
            for k, v in zip(item["shards"]["L"], item["versions"]["L"], strict=True)
        ]
        return bytes(item["manifest"]["B"]), stored

    def forget(self, stored: list[Any]) -> None:
        """Delete a round's objects so moto's memory does not grow with the rounds."""
        self.store.delete(stored)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def run_store(emu: Emulated, size: int, rounds: int, shard_size: int, parallelism: int) -> Timings:
    bench = RecordStoreBench(emu, os.urandom(size), shard_size, parallelism)
    timings = Timings()
    # Warm-up: connection pools, moto's first-request setup, thread pools.
    rid, handle = bench.upload()
    bench.download(rid, handle)
    bench.forget(handle[1])
    for _ in range(rounds):
        # Round-robin, so drift in the shared machine's load hits every variant alike.
        seconds, (rid, handle) = _timed(bench.upload)
        timings.add("upload", seconds)
        timings.add("upload_key", bench.key_seconds)
        seconds, _ = _timed(bench.download, rid, handle)
        timings.add("download", seconds)
        timings.add("download_key", bench.key_seconds)
        bench.forget(handle[1])

        seconds, (raw_id, raw_stored) = _timed(bench.raw_upload)
        timings.add("raw_upload", seconds)
        seconds, _ = _timed(bench.raw_download, raw_id)
        timings.add("raw_download", seconds)
        bench.forget(raw_stored)

        seconds, sealed = _timed(bench.seal_only)
        timings.add("seal_only", seconds)
        seconds, _ = _timed(bench.open_only, sealed)
        timings.add("open_only", seconds)
        del sealed
    return timings


def report_store(timings: Timings, size: int) -> None:
    mib = size / MIB

    def line(label: str, name: str, rate: bool = True) -> None:
        t = timings.median(name)
        tail = f"  {mib / t:8.1f} MiB/s" if rate else ""
        print(f"  {label:<46} {t * 1000:9.1f} ms{tail}")

    print(f"\n== record store, {mib:.0f} MiB, medians of {len(timings.seconds['upload'])} ==")
    line("upload (KMS + seal + S3 puts + manifest)", "upload")
    line("  of which KMS GenerateDataKey + HKDF", "upload_key", rate=False)
    line("  transport only (same puts, no crypto)", "raw_upload")
    line("  crypto only (seal, in-memory KMS, null sink)", "seal_only")
    line("download (manifest + KMS + S3 gets + open)", "download")
    line("  of which KMS Decrypt + manifest checks", "download_key", rate=False)
    line("  transport only (same gets, no crypto)", "raw_download")
    line("  crypto only (open, in-memory KMS)", "open_only")
    print("  share of end-to-end time (medians):")
    for direction, crypto in (("upload", "seal_only"), ("download", "open_only")):
        total = timings.median(direction)
        transport = timings.median(f"raw_{direction}")
        key = timings.median(f"{direction}_key")
        added = max(total - transport, 0.0)
        print(
            f"    {direction:<8} transport {transport / total:5.1%} | crypto {added / total:5.1%} "
            f"(e2e - transport; KMS round trip {key / total:4.1%}) | "
            f"crypto alone, unpipelined: {timings.median(crypto) / total:5.1%}"
        )


# -- through the HTTP API ------------------------------------------------------------------


def run_http(emu: Emulated, size: int, rounds: int) -> Timings:
    """The same upload and download through the API of a one-phase platform on this moto."""
    import httpx

    from infra.local_platform import demo_bearer
    from infra.standalone_platform import standalone_platform

    timings = Timings()
    data = os.urandom(size)
    expected = hashlib.sha256(data).digest()
    with standalone_platform(emu.endpoint) as (doc, api):
        stack = next(iter(doc["stacks"]))
        doctor = next(u for u in doc["demoUsers"] if u["role"] == "doctor")
        headers = demo_bearer(doc, stack)(doctor)
        patient_id = doc["demoPatients"][stack][0]["patient_id"]
        with httpx.Client(base_url=api, timeout=600) as http:
            for n in range(rounds + 1):
                start = time.perf_counter()
                response = http.post(
                    f"/patients/{patient_id}/records",
                    content=data,
                    headers={
                        **headers,
                        "Content-Type": "application/dicom",
                        "Idempotency-Key": f"bench-{uuid.uuid4().hex}",
                    },
                )
                upload_s = time.perf_counter() - start
                response.raise_for_status()
                record_id = response.json()["record_id"]
                start = time.perf_counter()
                digest = hashlib.sha256()
                with http.stream("GET", f"/records/{record_id}/content", headers=headers) as got:
                    got.raise_for_status()
                    for chunk in got.iter_bytes():
                        digest.update(chunk)
                download_s = time.perf_counter() - start
                if digest.digest() != expected:
                    raise AssertionError("HTTP download differs from the upload")
                if n:  # the first round warms up
                    timings.add("http_upload", upload_s)
                    timings.add("http_download", download_s)
    return timings


def report_http(timings: Timings, store: Timings, size: int) -> None:
    mib = size / MIB
    print(f"\n== through the HTTP API (uvicorn on loopback), {mib:.0f} MiB ==")
    for name, base in (("http_upload", "upload"), ("http_download", "download")):
        t = timings.median(name)
        print(
            f"  {name:<44} {t * 1000:9.1f} ms  {mib / t:8.1f} MiB/s  "
            f"({t / store.median(base):.2f}x the store's {base})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks records", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shard-mib", type=float, default=1.0)
    parser.add_argument(
        "--parallelism", type=int, default=8, help="S3 and seal/open parallelism (service: 8)"
    )
    parser.add_argument("--http", action="store_true", help="also time the HTTP API")
    args = parser.parse_args(argv)
    size = args.size_mib * MIB
    shard_size = int(args.shard_mib * MIB)

    print(
        f"record storage end to end against moto on loopback; {os.cpu_count()} CPUs; "
        f"shard {shard_size // 1024} KiB; parallelism {args.parallelism}"
    )
    print(f"load average at start: {_load()}")
    emu = start_emulator()
    try:
        store = run_store(emu, size, args.rounds, shard_size, args.parallelism)
        report_store(store, size)
        if args.http:
            report_http(run_http(emu, size, args.rounds), store, size)
    finally:
        emu.server.stop()
    print(f"load average at end: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
