"""The web client's WebCrypto code and the Python implementation agree, both ways.

The browser's modules (``web/src/crypto/``, ``web/src/ledger/``) run in Node's WebCrypto
through ``web/tools/interop-worker.mjs`` (one JSON request per line); Python is the
service's own ``app.crypto`` and ``app.ledger``. A record sealed by either opens with the
other, byte for byte, and a tampered one is refused by both; a data key wrapped by
either side's HPKE unwraps on the other; a signed tree head and inclusion proof made by
the ledger's code verify in the browser's verifier, and fail on a tampered entry, a
wrong key or a forged signature. (The repository's sealed-record and CT vectors are
checked by ``node --test`` in ``web/test/``; the browser tests repeat the round trip in
Chromium through the real upload and download routes.)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.crypto import _primitives as prim
from app.crypto.context import RecordContext
from app.crypto.envelope import ShardedEnvelope
from app.crypto.errors import InvalidRecord
from app.ledger.checkpoint import checkpoint_message
from app.ledger.merkle import MerkleLog

WEB = Path(__file__).resolve().parents[2] / "web"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js 20+ runs the web client's code")

CONTEXT = RecordContext(
    record_id="rec-interop-1", patient_id="pt1-interop", version=3, institution="hosp-interop"
)
EDK = b"kms-wrapped:" + bytes(range(40))
HANDOVER = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


class Worker:
    """The Node worker: one request per line, one answer per line."""

    def __init__(self) -> None:
        assert NODE is not None
        self._process = subprocess.Popen(
            [NODE, str(WEB / "tools" / "interop-worker.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=WEB,
        )

    def __call__(self, op: str, **request: Any) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"op": op, **request}) + "\n")
        self._process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._process.stdout.readline())
        return answer

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=10)


@pytest.fixture(scope="module")
def node() -> Iterator[Worker]:
    worker = Worker()
    yield worker
    worker.close()


class FixedKey:
    """A key service holding one data key, unwrapped only under its own context."""

    def __init__(self, data_key: bytes, context: RecordContext) -> None:
        self.data_key, self._context = data_key, context.encryption_context()

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        assert dict(context) == self._context
        return self.data_key, EDK

    def decrypt_data_key(self, encrypted_key: bytes, context: Mapping[str, str]) -> bytes:
        if encrypted_key != EDK or dict(context) != self._context:
            raise InvalidRecord()
        return self.data_key


def _record(length: int) -> bytes:
    return os.urandom(length)


# 3 MiB and a bit, in shards of 1 MiB: four shards, the last one short.
LENGTH = 3 * 1024 * 1024 + 12345
SHARD = 1024 * 1024


def test_sealed_by_python_opens_in_the_browser_code(node: Worker) -> None:
    key = FixedKey(os.urandom(32), CONTEXT)
    plaintext = _record(LENGTH)
    manifest, shards = ShardedEnvelope(key, shard_size=SHARD).seal_all(CONTEXT, plaintext)
    answer = node(
        "open",
        manifest=manifest.to_bytes().decode("ascii"),
        context=CONTEXT.encryption_context(),
        data_key=_b64(key.data_key),
        encrypted_data_key=_b64(EDK),
        shards=[_b64(s) for s in shards],
    )
    assert answer["ok"], answer
    assert b"".join(_unb64(p) for p in answer["parts"]) == plaintext

    tampered = list(shards)
    tampered[2] = tampered[2][:100] + bytes([tampered[2][100] ^ 1]) + tampered[2][101:]
    refused = node(
        "open",
        manifest=manifest.to_bytes().decode("ascii"),
        context=CONTEXT.encryption_context(),
        data_key=_b64(key.data_key),
        encrypted_data_key=_b64(EDK),
        shards=[_b64(s) for s in tampered],
    )
    assert not refused["ok"] and refused["error"] == "InvalidRecord"


def test_sealed_by_the_browser_code_opens_with_python(node: Worker) -> None:
    key = FixedKey(os.urandom(32), CONTEXT)
    plaintext = _record(LENGTH)
    sealed = node(
        "seal",
        data_key=_b64(key.data_key),
        encrypted_data_key=_b64(EDK),
        context=CONTEXT.encryption_context(),
        shard_size=SHARD,
        plaintext=_b64(plaintext),
    )
    assert sealed["ok"], sealed
    shards = [_unb64(s) for s in sealed["shards"]]
    assert len(shards) == 4
    manifest = sealed["manifest"].encode("ascii")
    envelope = ShardedEnvelope(key)
    assert envelope.open_all(manifest, lambda i: shards[i], CONTEXT) == plaintext

    # Python refuses what it must: another context, and a shard swapped for another.
    other = RecordContext(
        record_id=CONTEXT.record_id, patient_id="pt1-other", version=3, institution="hosp-interop"
    )
    with pytest.raises(InvalidRecord):
        envelope.open_all(manifest, lambda i: shards[i], other)
    swapped = [shards[1], shards[0], *shards[2:]]
    with pytest.raises(InvalidRecord):
        envelope.open_all(manifest, lambda i: swapped[i], CONTEXT)


def _handover_info(context: RecordContext) -> bytes:
    label = b"hub-data-key/1"
    encoding = prim.context_encoding_v2(
        context.record_id, context.patient_id, context.version, context.institution
    )
    return len(label).to_bytes(4, "big") + label + encoding


def test_a_data_key_wrapped_by_python_unwraps_in_the_browser_code(node: Worker) -> None:
    recipient = node("recipient", id="r1")
    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), _unb64(recipient["public_key"])
    )
    data_key = os.urandom(32)
    wrapped = HANDOVER.encrypt(data_key, public, info=_handover_info(CONTEXT))
    assert len(wrapped) == 65 + 32 + 16
    answer = node("unwrap", id="r1", wrapped=_b64(wrapped), context=CONTEXT.encryption_context())
    assert answer["ok"], answer
    assert _unb64(answer["data_key"]) == data_key

    # bound to the context: the same wrapped key does not unwrap as another version
    other = {**CONTEXT.encryption_context(), "version": "4"}
    refused = node("unwrap", id="r1", wrapped=_b64(wrapped), context=other)
    assert not refused["ok"] and refused["error"] == "InvalidRecord"
    # and to the recipient: another key pair cannot unwrap it
    node("recipient", id="r2")
    refused = node("unwrap", id="r2", wrapped=_b64(wrapped), context=CONTEXT.encryption_context())
    assert not refused["ok"] and refused["error"] == "InvalidRecord"


def test_a_data_key_wrapped_by_the_browser_code_unwraps_with_python(node: Worker) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    data_key = os.urandom(32)
    answer = node(
        "wrap",
        data_key=_b64(data_key),
        public_key=_b64(public),
        context=CONTEXT.encryption_context(),
    )
    assert answer["ok"], answer
    wrapped = _unb64(answer["wrapped"])
    assert HANDOVER.decrypt(wrapped, private, info=_handover_info(CONTEXT)) == data_key


def _signed_ledger(
    entries: list[bytes],
) -> tuple[MerkleLog, dict[str, Any], str, ec.EllipticCurvePrivateKey]:
    log = MerkleLog()
    for entry in entries:
        log.append(entry)
    key = ec.generate_private_key(ec.SECP256R1())
    head = {
        "format": "health-hub/ledger/v1",
        "origin": "phase1-specialist",
        "size": log.size,
        "root": _b64(log.root()),
        "timestamp_ms": 1_790_000_000_123,
        "key_id": "alias/test",
        "algorithm": "ECDSA_SHA_256",
    }
    message = checkpoint_message(head["origin"], log.size, log.root(), head["timestamp_ms"])
    head["signature"] = _b64(key.sign(message, ec.ECDSA(hashes.SHA256())))
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return log, head, pem, key


def test_the_ledger_verifies_in_the_browser_code_and_a_tampered_entry_fails(node: Worker) -> None:
    entries = [json.dumps({"seq": i, "action": "ReadRecord"}).encode() for i in range(13)]
    log, head, pem, _ = _signed_ledger(entries)
    for index in (0, 6, 12):
        answer = node(
            "verify_inclusion",
            canonical=_b64(entries[index]),
            index=index,
            proof=[_b64(p) for p in log.inclusion_proof(index)],
            head=head,
            public_key_pem=pem,
        )
        assert answer == {"ok": True, "verified": True}

    tampered = entries[6].replace(b"ReadRecord", b"ReadRecorX")
    answer = node(
        "verify_inclusion",
        canonical=_b64(tampered),
        index=6,
        proof=[_b64(p) for p in log.inclusion_proof(6)],
        head=head,
        public_key_pem=pem,
    )
    assert answer["ok"] is False and answer["kind"] == "RootMismatch"

    _, _, other_pem, _ = _signed_ledger(entries)  # same tree, another signing key
    answer = node(
        "verify_inclusion",
        canonical=_b64(entries[6]),
        index=6,
        proof=[_b64(p) for p in log.inclusion_proof(6)],
        head=head,
        public_key_pem=other_pem,
    )
    assert answer["ok"] is False and answer["kind"] == "BadSignature"

    forged = {**head, "size": head["size"] + 1}  # a head edited after signing
    answer = node(
        "verify_inclusion",
        canonical=_b64(entries[6]),
        index=6,
        proof=[_b64(p) for p in log.inclusion_proof(6)],
        head=forged,
        public_key_pem=pem,
    )
    assert answer["ok"] is False and answer["kind"] == "BadSignature"
