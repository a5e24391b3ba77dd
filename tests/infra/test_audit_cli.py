"""``hub audit verify`` on offline exports: exit 0 when intact, 1 on tampering (findings),
2 with one line on input it cannot verify; ``--json`` carries the same verdict. The live
path and ``hub audit export`` against a deployed ledger are tested in
tests/app/ledger/test_ledger_tamper.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from app.ledger.checkpoint import SignedTreeHead, checkpoint_message
from app.ledger.entries import Action, Actor, AuditEntry, Outcome, Resource, ResourceType, Role
from app.ledger.merkle import MerkleLog, leaf_hash
from app.ledger.verify import PUBLIC_KEY_FILE, write_export
from infra.cli import app

SIZE = 6
runner = CliRunner()


def _entry(seq: int, outcome: Outcome = Outcome.SUCCESS) -> bytes:
    return AuditEntry(
        sequence=seq,
        timestamp_ms=1795599000000 + seq,
        actor=Actor("0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab", (Role.DOCTOR,), "M20001"),
        action=Action.READ,
        resource=Resource(ResourceType.GROUP, f"g{seq}"),
        outcome=outcome,
        reason="member-views-open-group",
        request_id=f"req-{seq}",
    ).to_bytes()


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """An intact export: SIZE entries and a signed head after each one."""
    key = ec.generate_private_key(ec.SECP256R1())
    entries = {i: _entry(i) for i in range(SIZE)}
    log = MerkleLog()
    heads = []
    for i in range(SIZE):
        log.append(entries[i])
        size = i + 1
        message = checkpoint_message("cli-test", size, log.root(size), 1000 + size)
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
        heads.append(SignedTreeHead("cli-test", size, log.root(size), 1000 + size, signature, "k"))
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    directory = tmp_path / "export"
    write_export(directory, entries, {i: leaf_hash(e) for i, e in entries.items()}, heads, pem)
    return directory


def verify(*args: str) -> Any:
    return runner.invoke(app, ["audit", "verify", *args])


def test_an_intact_export_verifies(export: Path) -> None:
    result = verify(str(export))
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    document = json.loads(verify(str(export), "--json").stdout)
    assert document["ok"] is True and document["entries_checked"] == SIZE
    assert document["findings"] == [] and document["first_bad_index"] is None


def test_a_tampered_export_is_a_finding_exit_1(export: Path) -> None:
    lines = (export / "entries.ndjson").read_text().splitlines()
    row = json.loads(lines[4])
    row["canonical"] = base64.b64encode(_entry(4, Outcome.DENIED)).decode()
    lines[4] = json.dumps(row)
    (export / "entries.ndjson").write_text("\n".join(lines) + "\n")
    result = verify(str(export), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["first_bad_index"] == 4
    assert "FAILED" in result.stderr and "first bad index: 4" in result.stderr


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert result.stdout == "" and "Traceback" not in result.output
    return str(lines[0])


def test_a_directory_that_is_not_an_export(tmp_path: Path) -> None:
    assert "not an export (no entries.ndjson" in _one_line_error(verify(str(tmp_path)))


@pytest.mark.parametrize(
    "damage",
    ["not json at all", '{"leaf_index": 0}', '{"leaf_index": "x", "canonical": "!!"}'],
)
def test_an_unreadable_export_is_bad_input(export: Path, damage: str) -> None:
    (export / "entries.ndjson").write_text(damage + "\n")
    assert "not a readable export" in _one_line_error(verify(str(export)))


def test_a_malformed_checkpoint_is_bad_input(export: Path) -> None:
    head = sorted((export / "checkpoints").iterdir())[0]
    head.write_text('{"size": "many"}')
    assert "not a readable export" in _one_line_error(verify(str(export)))


def test_a_key_that_is_not_a_p256_public_key(export: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    message = _one_line_error(verify(str(export), "--public-key", str(bad)))
    assert "not an ECDSA P-256 public key" in message


def test_an_export_without_its_key(export: Path) -> None:
    (export / PUBLIC_KEY_FILE).unlink()
    assert "pass --public-key" in _one_line_error(verify(str(export)))


def test_export_and_live_together(export: Path) -> None:
    assert "not both" in _one_line_error(verify(str(export), "--live"))


def test_export_into_a_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("")
    result = runner.invoke(app, ["audit", "export", str(target), "--table", "t", "--bucket", "b"])
    assert "exists and is not a directory" in _one_line_error(result)
