"""Faults through the deployed request path: ``python -m benchmarks faults --path http``.

In one process: moto on loopback; a :class:`~infra.emulator.fault_proxy.FaultProxy` in
front of it; the platform of ``phase1-specialist`` (``standalone_platform``: seeded
register, demo doctors and patients) whose service talks to AWS through the proxy, served
through the local API gateway built from the declared REST API, with inline ledger signing
as on Lambda. Simulated doctors (threads) sign in as a real client does (SRP, then the
TOTP challenge: ``app.local.login``) at the start of every phase, then loop over:

- group work: ``POST /groups`` for a synthetic patient, ``GET /groups/{id}``;
- a FHIR record sealed by the service: ``POST /patients/{pid}/records`` with an
  ``Idempotency-Key``; for one in five (each doctor's 1st, 6th, ...) the driver drops the
  2xx answer and sends the same request again (a client whose connection broke after the
  service committed);
- a record sealed on the device through an upload session (``hubclient.HubClient.upload``:
  session, sealed shards to presigned S3 URLs, commit), resumed (``HubClient.resume``) after
  a retryable failure, as the doctor's client does;
- record reads: ``GET /records/{id}``, the content opened and verified on the device
  (``HubClient.download``) for session uploads, ``/content`` with its digest for FHIR;
- an audit read: ``GET /audit/entries?actor=<sub>``.

A clear retryable answer (503 or 429 with ``Retry-After`` and the error schema) is waited
out (``Retry-After``, at most 2 s) and the step tried again. Phases: **baseline** (no
fault), **slow** (each DynamoDB, S3 and KMS call waits 0-50 ms), **refusing** (25 % of
those calls answered with throttling or unavailability by the proxy), **restart** (the
emulator's listener and the proxy's stop for ``--restart-seconds`` mid-phase and come
back: moto's state lives in this process, so it survives, as a real restart of a durable
store would; open connections are dropped, answers in flight lost). During the whole run
a second sequencer (another service instance) appends bursts of 10 entries and integrates
them in a child process that is SIGKILLed at a random moment, mid-integration
(then 3 s of rest before the next).

Then, with no fault: every record whose commit was answered 2xx is read back whole and
verified (else **lost**); every upload session never answered 2xx reads as a clear
``404`` or as a whole verified record (committed, answer lost), anything else is
**partial**; a logical upload stored more than once is **duplicated**; the ledger is
integrated by a restarted sequencer, then ``hub audit verify --live`` runs (the real
command) and every entry must be covered exactly once (leaves ``0 .. n-1``: **gaps**) and
listed by the audit index; every answer the API gave is classified, and a 5xx other than
``503`` with ``Retry-After`` and the error schema, or any answer without the schema, is
**unclear**. All must be zero.

Switch-offs (``--switch-off``): ``idempotency`` (the FHIR uploads carry no
``Idempotency-Key``: the re-sent requests store second records), ``error-mapping`` (AWS
errors are not classified as retryable: they are opaque 500s again).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK = "phase1-specialist"
FHIR = "application/fhir+json"
PHASES = ("baseline", "slow", "refusing", "restart")
BURST = 10  # entries the second sequencer appends before it integrates (and is killed)
SEQUENCER_ACTOR = "5e9a1c2b-7d4f-4e3a-9b8c-0a1b2c3d4e5f"


# --- what the doctors saw ------------------------------------------------------------------


@dataclass
class Tally:
    """Every answer of the API and the storage URLs, by phase; and what was stored."""

    phase: str = "setup"
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    unclear: Counter[str] = field(default_factory=Counter)
    storage: Counter[tuple[str, str]] = field(default_factory=Counter)
    sign_ins: Counter[str] = field(default_factory=Counter)
    # record id: (the doctor, "fhir" or "session", the content sent)
    committed: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    # record id of every upload session started: (the doctor, the content it was for)
    sessions: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)  # title of each logical upload: doctor
    resent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def api_answer(self, response: Any) -> None:
        """Classify an answer of the API (an ``httpx`` response hook)."""
        response.read()
        status = response.status_code
        if status < 300:
            kind = "2xx"
        elif status in (429, 503):
            kind = f"{status} retryable" if _clear(response, True) else f"{status} UNCLEAR"
        elif 400 <= status < 500:
            kind = f"{status} {_code(response)}" if _clear(response, False) else f"{status} UNCLEAR"
        else:
            kind = f"{status} UNCLEAR"
        with self.lock:
            self.answers[(self.phase, kind)] += 1
            if "UNCLEAR" in kind:
                path = response.request.url.path
                self.unclear[f"{response.request.method} {_template(path)} -> {status}"] += 1

    def storage_answer(self, response: Any) -> None:
        with self.lock:
            self.storage[(self.phase, str(response.status_code))] += 1


def _clear(response: Any, retryable: bool) -> bool:
    try:
        error = response.json()["error"]
        schema = set(error) == {"code", "message"}
    except (ValueError, KeyError, TypeError):
        return False
    return schema and (not retryable or bool(response.headers.get("retry-after")))


def _code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def _template(path: str) -> str:
    parts = path.split("/")
    return "/".join("{id}" if len(p) >= 16 and any(c.isdigit() for c in p) else p for p in parts)


class Retryable(Exception):
    def __init__(self, wait: float):
        self.wait = wait


# --- one simulated doctor ------------------------------------------------------------------


class Doctor:
    def __init__(self, n: int, run: Run, user: dict[str, Any], patient: str):
        import httpx

        from hubclient.api import HubApi
        from hubclient.sdk import HubClient

        self.n, self.run, self.user, self.patient = n, run, user, patient
        self.token = ""
        self.sub = ""
        self.started: list[str] = []  # record ids of upload sessions this doctor started
        self.http = httpx.Client(
            base_url=run.api_url,
            timeout=httpx.Timeout(60.0, connect=10.0),
            event_hooks={"response": [run.tally.api_answer, self._session_started]},
        )
        s3 = httpx.Client(
            timeout=httpx.Timeout(60.0, connect=10.0),
            event_hooks={"response": [run.tally.storage_answer]},
        )
        self.home = Path(run.tmp) / f"doctor-{n}"
        self.client = HubClient(HubApi(self.http, self), s3=s3, home=self.home, parallelism=2)
        self.rng = random.Random(n)
        self.records: list[str] = []
        self.fhir_uploads = 0

    def access_token(self) -> str:
        return self.token

    def _session_started(self, response: Any) -> None:
        path = response.request.url.path
        if response.status_code == 201 and path.endswith("/uploads") and "/patients/" in path:
            self.started.append(str(response.json()["record_id"]))

    def sign_in(self) -> None:
        import base64

        from app.local import login

        for _ in range(20):
            try:
                tokens = login(
                    self.run.cognito,
                    self.run.outputs["userPoolId"],
                    self.run.outputs["userPoolClientIds"][0],
                    self.user["username"],
                    self.user["password"],
                    authenticator=self.run.authenticator,
                )
            except Exception as exc:  # the emulator restarting: sign in again shortly
                with self.run.tally.lock:
                    self.run.tally.sign_ins[f"retried ({type(exc).__name__})"] += 1
                time.sleep(0.5)
                continue
            self.token = tokens["AccessToken"]
            claims = json.loads(base64.urlsafe_b64decode(self.token.split(".")[1] + "=="))
            self.sub = claims["sub"]
            with self.run.tally.lock:
                self.run.tally.sign_ins["signed in"] += 1
            return
        raise RuntimeError("sign-in kept failing")

    def step(self, what: Callable[[], Any]) -> Any:
        """``what`` until it answers, waiting out clear retryable answers (the service's
        ``Retry-After`` is 1 s; :class:`~hubclient.errors.ApiError` does not carry it)."""
        from hubclient.errors import ApiError, StorageError

        for _ in range(30):
            try:
                return what()
            except ApiError as exc:
                if exc.status not in (429, 503):
                    raise
                time.sleep(1.0)
            except StorageError:
                time.sleep(0.5)
        raise RuntimeError("a step kept failing with retryable answers")

    def loop(self, until: float) -> None:
        while time.monotonic() < until:
            try:
                self.iteration()
            except Exception as exc:  # counted; the doctor carries on
                with self.run.tally.lock:
                    self.run.tally.unclear[f"step failed: {type(exc).__name__}: {exc}"[:160]] += 1

    def iteration(self) -> None:
        group = self.step(
            lambda: self.client.create_group(self.patient, f"Fault run review {self.n}")
        )
        self.step(lambda: self.client.api.get(f"/groups/{group['group_id']}"))
        self.fhir_upload()
        self.session_upload()
        if self.records:
            rid = self.rng.choice(self.records)
            self.step(lambda: self.client.record(rid))
            self.read_back(rid)
        self.step(lambda: self.client.api.get("/audit/entries", actor=self.sub, limit=20))

    def fhir_upload(self) -> None:
        tag = f"fault-{uuid.uuid4().hex[:12]}"
        body = self.run.bundles[self.patient]
        headers = {
            "Content-Type": f"{FHIR}; charset=utf-8",
            "X-Record-Category": "laboratory",
            "X-Record-Title": tag,
        }
        if self.run.switch_off != "idempotency":
            headers["Idempotency-Key"] = f"fault-{uuid.uuid4().hex}"
        with self.run.tally.lock:
            self.run.tally.tags[tag] = self.n
        self.fhir_uploads += 1
        drop = self.fhir_uploads % 5 == 1  # the 1st, 6th, 11th ... of each doctor

        def send() -> Any:
            return self.client.api.put_record(f"/patients/{self.patient}/records", body, headers)

        record = self.step(send)
        if drop:  # the answer never reached the client: it sends the same request again
            with self.run.tally.lock:
                self.run.tally.resent += 1
            record = self.step(send)
        with self.run.tally.lock:
            self.run.tally.committed[record["record_id"]] = (self.n, "fhir", body)
        self.records.append(record["record_id"])

    def session_upload(self) -> None:
        from hubclient.errors import ApiError, StorageError

        tag = f"fault-{uuid.uuid4().hex[:12]}"
        content = b"%PDF-1.7\n" + os.urandom(self.rng.randrange(2_000, 40_000))
        path = self.home / f"{tag}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        with self.run.tally.lock:
            self.run.tally.tags[tag] = self.n
        record: dict[str, Any] | None = None
        before = set(self.client.pending_uploads())
        for _ in range(30):
            pending = [u for u in self.client.pending_uploads() if u not in before]
            try:
                if pending:
                    record = self.client.resume(pending[0])
                else:
                    record = self.client.upload(
                        self.patient, path, "application/pdf", category="other", title=tag
                    )
                break
            except ApiError as exc:
                if exc.status not in (429, 503):
                    raise
                time.sleep(1.0)
            except StorageError:
                time.sleep(0.5)
        with self.run.tally.lock:
            for rid in self.started:
                self.run.tally.sessions[rid] = (self.n, content)
        self.started.clear()
        if record is None:
            raise RuntimeError("the upload kept failing with retryable answers")
        with self.run.tally.lock:
            self.run.tally.committed[record["record_id"]] = (self.n, "session", content)
        self.records.append(record["record_id"])
        path.unlink()

    def read_back(self, rid: str) -> bytes:
        _, kind, content = self.run.tally.committed[rid]
        if kind == "session":
            out = self.home / f"read-{rid}"
            self.step(lambda: self.client.download(rid, out))
            data = out.read_bytes()
            out.unlink()
        else:
            data = self.step(lambda: self.client.get_content(rid))
            content = json.dumps(json.loads(content), sort_keys=True).encode()
            data = json.dumps(json.loads(data), sort_keys=True).encode()
        if hashlib.sha256(data).digest() != hashlib.sha256(content).digest():
            raise AssertionError(f"record {rid} read back different content")
        return data


# --- the run --------------------------------------------------------------------------------


@dataclass
class Run:
    api_url: str
    outputs: dict[str, Any]
    cognito: Any
    authenticator: Any
    bundles: dict[str, bytes]
    tmp: str
    switch_off: str | None
    tally: Tally = field(default_factory=Tally)


def run(
    users: int, phase_seconds: float, restart_seconds: float, switch_off: str | None, seed: int
) -> dict[str, Any]:
    import boto3

    from app.local import AuthenticatorApp
    from benchmarks.bench_load import _bundle
    from infra.emulator.fault_proxy import FaultProxy
    from infra.emulator.server import default_emulator_credentials, start_moto_server
    from infra.standalone_platform import standalone_platform

    default_emulator_credentials()
    moto, moto_endpoint = start_moto_server()
    moto_port = int(moto_endpoint.rsplit(":", 1)[1])
    proxy = FaultProxy(moto_endpoint, seed=seed)
    proxy.start()
    restore = None
    if switch_off == "error-mapping":
        import app.errors

        restore = app.errors.is_transient_aws_error
        app.errors.is_transient_aws_error = lambda _exc: False
    try:
        with (
            standalone_platform(proxy.endpoint, STACK, gateway=True) as (doc, api_url),
            tempfile.TemporaryDirectory(prefix="bench-faults-http-") as tmp,
        ):
            outputs = doc["stacks"][STACK]["outputs"]
            doctors = [u for u in doc["demoUsers"] if u.get("role") == "doctor"]
            patients = [p["patient_id"] for p in doc["demoPatients"][STACK]]
            session = boto3.session.Session(region_name="ap-east-1")
            run_ = Run(
                api_url=api_url,
                outputs=outputs,
                cognito=session.client("cognito-idp", endpoint_url=proxy.endpoint),
                authenticator=AuthenticatorApp(),
                bundles={p: _bundle(p) for p in patients},
                tmp=tmp,
                switch_off=switch_off,
            )
            team = [
                Doctor(k, run_, doctors[k % len(doctors)], patients[k % len(patients)])
                for k in range(users)
            ]
            kills = SequencerKiller(moto_endpoint, outputs, seed)
            kills.start()
            started = time.monotonic()
            phase_load: dict[str, float] = {}
            for phase in PHASES:
                run_.tally.phase = phase
                for d in team:
                    d.sign_in()
                proxy.set_faults(
                    delay_s=0.05 if phase == "slow" else 0.0,
                    refuse_share=0.25 if phase == "refusing" else 0.0,
                )
                until = time.monotonic() + phase_seconds
                threads = [threading.Thread(target=d.loop, args=(until,)) for d in team]
                for t in threads:
                    t.start()
                if phase == "restart":
                    time.sleep(phase_seconds / 3)
                    moto.stop()
                    proxy.down()
                    time.sleep(restart_seconds)
                    moto, _ = start_moto_server(port=moto_port)
                    proxy.up()
                for t in threads:
                    t.join()
                phase_load[phase] = os.getloadavg()[0]
            proxy.set_faults()
            kills.stop()
            elapsed = time.monotonic() - started
            run_.tally.phase = "checks"
            checks = check(run_, team, doc, moto_endpoint)
            return {
                "users": users,
                "seconds": elapsed,
                "answers": run_.tally.answers,
                "storage": run_.tally.storage,
                "unclear": dict(run_.tally.unclear),
                "sign_ins": dict(run_.tally.sign_ins),
                "injected": dict(proxy.injected),
                "resent": run_.tally.resent,
                "sequencer": kills.report(),
                "load": phase_load,
                **checks,
            }
    finally:
        if restore is not None:
            import app.errors

            app.errors.is_transient_aws_error = restore
        proxy.down()
        moto.stop()


def check(run_: Run, team: list[Doctor], doc: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """After the run, with no fault: the counts of the module docstring."""
    from hubclient.errors import ApiError, RecordIntegrityError

    tally = run_.tally
    for d in team:
        d.sign_in()
    lost = partial = 0
    committed_behind_lost_answer = 0
    for rid, (n, _, _) in list(tally.committed.items()):
        try:
            team[n].read_back(rid)  # read by the doctor who stored it (a member)
        except (ApiError, RecordIntegrityError, AssertionError, RuntimeError):
            lost += 1
    not_found = 0
    for rid, (n, content) in tally.sessions.items():
        if rid in tally.committed:
            continue
        reader = team[n]
        try:
            reader.client.record(rid)
        except ApiError as exc:
            if exc.status == 404:
                not_found += 1
            else:
                partial += 1
            continue
        try:
            out = reader.home / "check"
            reader.client.download(rid, out)
            whole = out.read_bytes() == content
            out.unlink()
        except (ApiError, RecordIntegrityError):
            whole = False
        if whole:
            committed_behind_lost_answer += 1
        else:
            partial += 1
    titles: Counter[str] = Counter()
    listed: set[str] = set()
    for d in team:  # each patient's records, listed by a doctor of one of its groups
        if d.patient not in listed:
            listed.add(d.patient)
            for record in d.client.patient_records(d.patient):
                titles[record["title"]] += 1
    duplicated = sum(n - 1 for t, n in titles.items() if t in tally.tags and n > 1)
    ledger = ledger_checks(doc, endpoint)
    return {
        "committed": len(tally.committed),
        "sessions_uncommitted_not_found": not_found,
        "committed_behind_lost_answer": committed_behind_lost_answer,
        "lost": lost,
        "partial": partial,
        "duplicated": duplicated,
        **ledger,
    }


def ledger_checks(doc: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """A restarted sequencer integrates; then ``hub audit verify --live``, the leaves and
    the index."""
    import boto3

    from app.ledger.entries import AuditEntry
    from app.ledger.service import EntryQuery, build_ledger

    outputs = doc["stacks"][STACK]["outputs"]
    session = boto3.session.Session(region_name="ap-east-1")
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    ledger = build_ledger(
        ddb,
        outputs["tableNames"]["ledger"],
        kms=session.client("kms", endpoint_url=endpoint),
        s3=session.client("s3", endpoint_url=endpoint),
        signing_key_arn=outputs["signingKeyArn"],
        checkpoint_bucket=outputs["auditBucketName"],
        origin=STACK,
    )
    head = ledger.integrate()
    entries = ledger.table.all_entries()
    leaves = ledger.table.all_leaf_hashes()
    size = head.size if head else 0
    gaps = int(sorted(entries) != list(range(len(entries))) or size != len(entries))
    doubled = int(sorted(leaves) != list(range(size)))
    actors: dict[str, set[int]] = {}
    for seq, raw in entries.items():
        actors.setdefault(AuditEntry.from_bytes(raw).actor.sub, set()).add(seq)
    unindexed = 0
    for actor, seqs in actors.items():
        listed = {e.leaf_index for e in ledger.entries(EntryQuery(actor=actor, limit=10**6))}
        unindexed += len(seqs - listed)
    hub = Path(sys.executable).with_name("hub")
    verify = subprocess.run(
        [
            str(hub),
            "audit",
            "verify",
            "--live",
            "--table",
            outputs["tableNames"]["ledger"],
            "--bucket",
            outputs["auditBucketName"],
            "--key-id",
            outputs["signingKeyArn"],
            "--endpoint",
            endpoint,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        got = json.loads(verify.stdout)
        summary = (
            f"ok={got['ok']}, {got['heads_verified']} signed heads, "
            f"{got['consistency_checked']} consistency proofs, "
            f"{got['inclusions_checked']} inclusions, size {got['size']}, "
            f"findings {got['findings'][:3]}"
        )
    except (ValueError, KeyError, TypeError):
        summary = (verify.stdout or verify.stderr)[-400:]
    return {
        "entries": len(entries),
        "gaps": gaps,
        "doubly_integrated": doubled,
        "unindexed": unindexed,
        "verify_exit": verify.returncode,
        "verify": summary,
    }


def report(r: dict[str, Any]) -> int:
    """Print the run; 0 when every count is zero and verify passed."""
    print(
        f"faults through the local gateway ({STACK}, {r['users']} doctors, "
        f"{r['seconds']:.0f} s; load average by phase: "
        + ", ".join(f"{p} {v:.1f}" for p, v in r["load"].items())
        + ")"
    )
    print(f"  injected by the proxy: {r['injected']}")
    print(f"  sign-ins (SRP + TOTP): {r['sign_ins']}")
    print("  API answers by phase:")
    for phase in PHASES:
        got = {k: n for (p, k), n in sorted(r["answers"].items()) if p == phase}
        print(f"    {phase:<9} {got}")
    storage = {f"{p} {k}": n for (p, k), n in sorted(r["storage"].items())}
    print(f"  presigned storage answers (shard PUT/GET): {storage}")
    print(f"  second sequencer, SIGKILLed: {r['sequencer']}")
    print(
        f"  records committed (2xx) {r['committed']}, FHIR requests re-sent after a dropped "
        f"answer {r['resent']}; sessions never answered 2xx: "
        f"{r['sessions_uncommitted_not_found']} read as 404, "
        f"{r['committed_behind_lost_answer']} whole (committed, answer lost)"
    )
    print(
        f"  ledger: {r['entries']} entries; hub audit verify --live exit {r['verify_exit']}: "
        f"{r['verify']}"
    )
    unclear = sum(r["unclear"].values())
    print(
        f"  lost {r['lost']}, duplicated {r['duplicated']}, partial {r['partial']}, "
        f"gaps {r['gaps']}, doubly integrated {r['doubly_integrated']}, "
        f"unindexed {r['unindexed']}, unclear {unclear} {r['unclear'] or ''}"
    )
    bad = r["lost"] + r["duplicated"] + r["partial"] + r["gaps"] + r["doubly_integrated"]
    bad += r["unindexed"] + unclear + (r["verify_exit"] != 0)
    return 0 if bad == 0 else 1


# --- a second sequencer, killed mid-integration ---------------------------------------------


class SequencerKiller:
    """Starts a sequencer process that appends a burst and integrates, and SIGKILLs it at a
    random moment after it began integrating; again and again until stopped."""

    def __init__(self, endpoint: str, outputs: dict[str, Any], seed: int):
        self.endpoint = endpoint
        self.outputs = outputs
        self.rng = random.Random(seed)
        self.outcomes: Counter[str] = Counter()
        self.pause_s = 3.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict[str, int]:
        return dict(self.outcomes)

    def _loop(self) -> None:
        args = [
            sys.executable,
            "-m",
            "benchmarks.faults_http",
            "--sequencer",
            self.endpoint,
            self.outputs["tableNames"]["ledger"],
            self.outputs["auditBucketName"],
            self.outputs["signingKeyArn"],
        ]
        while not self._stop.is_set():
            child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if line != "integrating":
                child.wait()
                self.outcomes["did not reach integration (emulator gone)"] += 1
                continue
            time.sleep(self.rng.random() * 0.4)
            child.send_signal(signal.SIGKILL)
            rest = child.stdout.read()
            child.wait()
            if "integrated" in rest:
                self.outcomes["finished before the kill"] += 1
            else:
                self.outcomes["killed mid-integration"] += 1
            self._stop.wait(self.pause_s)  # another instance dies now and then, not always


def sequencer_child(endpoint: str, table: str, bucket: str, key: str) -> int:
    """The killed sequencer: appends a burst (as another service instance would), says
    ``integrating``, integrates, says ``integrated``."""
    import boto3

    from app.audit.events import AuditEvent, Outcome
    from app.ledger.service import build_ledger

    session = boto3.session.Session(region_name="ap-east-1")
    ledger = build_ledger(
        session.client("dynamodb", endpoint_url=endpoint),
        table,
        kms=session.client("kms", endpoint_url=endpoint),
        s3=session.client("s3", endpoint_url=endpoint),
        signing_key_arn=key,
        checkpoint_bucket=bucket,
        origin=STACK,
    )
    try:
        ledger.trail.append_many(
            [
                AuditEvent(
                    action="ViewGroup",
                    outcome=Outcome.ALLOW,
                    reason="member-views-open-group",
                    actor=SEQUENCER_ACTOR,
                    actor_reg_no="M20001",
                    institution="harbour-cardiac-alliance",
                    resource=f"Group::seq{uuid.uuid4().hex[:12]}",
                    actor_roles=("doctor",),
                )
                for _ in range(BURST)
            ]
        )
    except Exception:  # the emulator is restarting
        return 1
    print("integrating", flush=True)
    ledger.integrate()
    print("integrated", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--sequencer":
        with contextlib.suppress(BrokenPipeError):
            raise SystemExit(sequencer_child(*sys.argv[2:6]))
