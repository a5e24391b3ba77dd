"""The report history: every report kept, content-addressed, signed, diffed with the last.

A report's JSON document (the verification with its header) is encoded canonically
(sorted keys, no spaces, ASCII) and named by its SHA-256: ``<digest>.json`` under
``<history>/<scope>/`` (``scope`` is the stack, or ``hub``). Beside it:

- ``<digest>.sig.json``: the signature, made with the stack's ledger signing key in KMS
  (``ECC_NIST_P256``, ``ECDSA_SHA_256``, the key and algorithm the ledger signs its tree
  heads with) over the text below, with the key id and its public key (PEM);
- ``<digest>.diff.json``: what changed since the previous report of the scope;
- ``index.jsonl``: one line per report, oldest first (digest, time, verdict, previous).

The signed text is ASCII, one field per line, each ending in ``\\n``::

    health-hub/compliance-report/v1
    <scope>
    <sha256 of the canonical report, hex>

It cannot be mistaken for a ledger checkpoint (those start ``health-hub/ledger/v1``).
Anyone can check it offline: ``openssl dgst -sha256 -verify public-key.pem -signature
<(base64 -d ...)`` over that text, or :func:`verify_kept`.

With an archive (the stack's Object Lock audit bucket, in AWS and on the emulator) the
report and its signature are also put there under ``compliance-reports/<scope>/``;
COMPLIANCE retention then keeps them for the audit retention period.

Guarantees: a kept report is never overwritten (the same digest is the same bytes); a
report whose signing failed is still kept, and its ``.sig.json`` says why it is
unsigned, never pretends.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNED_FORMAT = "health-hub/compliance-report/v1"
ALGORITHM = "ECDSA_SHA_256"
ARCHIVE_PREFIX = "compliance-reports/"
INDEX = "index.jsonl"


class ReportSigner(Protocol):
    """Signs with a P-256 key (:class:`app.ledger.checkpoint.KmsHeadSigner` is one)."""

    key_id: str

    def sign(self, message: bytes) -> bytes: ...

    def public_key_pem(self) -> bytes: ...


@dataclass(frozen=True)
class Archive:
    """The Object Lock bucket the reports are also put in."""

    s3: Any
    bucket: str


@dataclass(frozen=True)
class Kept:
    scope: str
    digest: str
    path: Path
    signature_path: Path
    signed: bool
    signature_error: str | None
    previous: str | None
    previous_generated_at: str | None
    diff: dict[str, Any]
    archived: tuple[str, ...]  # object keys in the archive bucket
    archive_error: str | None

    def history(self) -> dict[str, Any]:
        """What a rendered report shows of its place in the history."""
        return {
            "digest": self.digest,
            "previous": self.previous,
            "previous_generated_at": self.previous_generated_at,
            "diff": self.diff,
            "signed": self.signed,
            "signature_error": self.signature_error,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.history(),
            "scope": self.scope,
            "path": str(self.path),
            "signature": str(self.signature_path),
            "archived": list(self.archived),
            "archive_error": self.archive_error,
        }


def canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def signed_message(scope: str, digest: str) -> bytes:
    if "\n" in scope or not scope.isascii() or not scope:
        raise ValueError("scope must be one non-empty ASCII line")
    return f"{SIGNED_FORMAT}\n{scope}\n{digest}\n".encode("ascii")


def _index(directory: Path) -> list[dict[str, Any]]:
    path = directory / INDEX
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _checks(document: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """(check id, resource) -> status of a stack report, or of every stack of a hub one."""
    out: dict[tuple[str, str], str] = {}
    reports = document.get("stacks") if "stacks" in document else [document]
    for report in reports or []:
        prefix = f"{report.get('stack')}: " if "stacks" in document else ""
        for check in report.get("checks", []):
            out[(str(check["id"]), prefix + str(check["resource"]))] = str(check["status"])
    return out


def _contexts(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    reports = document.get("stacks") if "stacks" in document else [document]
    return {str(r.get("stack")): r.get("context") or {} for r in reports or []}


def diff_reports(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """Checks that changed status, appeared or went; release changes per stack."""
    if old is None:
        return {}
    before, after = _checks(old), _checks(new)
    changed = [
        {"check": k[0], "resource": k[1], "from": before[k], "to": after[k]}
        for k in sorted(before.keys() & after.keys())
        if before[k] != after[k]
    ]
    added = [
        {"check": k[0], "resource": k[1], "status": after[k]}
        for k in sorted(after.keys() - before.keys())
    ]
    removed = [
        {"check": k[0], "resource": k[1], "status": before[k]}
        for k in sorted(before.keys() - after.keys())
    ]
    header: dict[str, list[Any]] = {}
    old_contexts, new_contexts = _contexts(old), _contexts(new)
    for stack, context in new_contexts.items():
        previous = old_contexts.get(stack, {})
        for field_ in ("release", "deployed_release", "account_id", "target"):
            if previous.get(field_) != context.get(field_):
                header[f"{stack} {field_}"] = [previous.get(field_), context.get(field_)]
    return {"changed": changed, "added": added, "removed": removed, "header": header}


def keep(
    document: Mapping[str, Any],
    scope: str,
    history_dir: Path,
    *,
    signer: ReportSigner | None = None,
    archive: Archive | None = None,
) -> Kept:
    """Keep ``document`` in the history of ``scope``; sign, diff and archive it."""
    data = canonical(document)
    digest = hashlib.sha256(data).hexdigest()
    directory = Path(history_dir) / scope
    directory.mkdir(parents=True, exist_ok=True)
    entries = [e for e in _index(directory) if e.get("digest") != digest]
    previous = entries[-1] if entries else None
    previous_document = None
    if previous is not None:
        previous_path = directory / f"{previous['digest']}.json"
        if previous_path.is_file():
            previous_document = json.loads(previous_path.read_text())
    diff = diff_reports(previous_document, document)

    path = directory / f"{digest}.json"
    if not path.exists():
        path.write_bytes(data)
    signature: dict[str, Any] = {
        "format": SIGNED_FORMAT,
        "scope": scope,
        "digest": digest,
        "algorithm": ALGORITHM,
    }
    signature_error = None
    if signer is None:
        signature_error = "no signing key: the deployment names no ledger signing key"
    else:
        try:
            signature.update(
                key_id=signer.key_id,
                signature=base64.b64encode(signer.sign(signed_message(scope, digest))).decode(),
                public_key_pem=signer.public_key_pem().decode("ascii"),
            )
        except Exception as error:
            # any refusal (no kms:Sign, the emulator gone) leaves the report kept unsigned,
            # and its signature file says why
            signature_error = f"{type(error).__name__}: {error}"
    if signature_error:
        signature["unsigned"] = signature_error
    signature_path = directory / f"{digest}.sig.json"
    signature_path.write_text(json.dumps(signature, indent=2, sort_keys=True) + "\n")
    (directory / f"{digest}.diff.json").write_text(
        json.dumps(diff, indent=2, sort_keys=True) + "\n"
    )
    if previous is None or previous.get("digest") != digest:
        with (directory / INDEX).open("a", encoding="utf-8") as index:
            index.write(
                json.dumps(
                    {
                        "digest": digest,
                        "generated_at": document.get("generated_at"),
                        "passed": document.get("passed"),
                        "previous": previous["digest"] if previous else None,
                    },
                    sort_keys=True,
                )
                + "\n"
            )

    archived: list[str] = []
    archive_error = None
    if archive is not None:
        try:
            for name, body in (
                (f"{digest}.json", data),
                (f"{digest}.sig.json", signature_path.read_bytes()),
            ):
                key = f"{ARCHIVE_PREFIX}{scope}/{name}"
                archive.s3.put_object(
                    Bucket=archive.bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/json",
                    ChecksumAlgorithm="SHA256",
                )
                archived.append(key)
        except Exception as error:
            # the local copy stands; the failure to archive is reported, not hidden
            archive_error = f"{type(error).__name__}: {error}"
    return Kept(
        scope=scope,
        digest=digest,
        path=path,
        signature_path=signature_path,
        signed=signature_error is None,
        signature_error=signature_error,
        previous=previous["digest"] if previous else None,
        previous_generated_at=previous.get("generated_at") if previous else None,
        diff=diff,
        archived=tuple(archived),
        archive_error=archive_error,
    )


def history_of(history_dir: Path, scope: str) -> list[dict[str, Any]]:
    """The index of ``scope``'s kept reports, oldest first."""
    return _index(Path(history_dir) / scope)


def verify_kept(report_path: Path, public_key_pem: bytes | None = None) -> bool:
    """Whether a kept report's bytes match their name and its signature verifies (with
    ``public_key_pem``, else the key recorded beside it: that checks integrity only)."""
    report_path = Path(report_path)
    data = report_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if report_path.name != f"{digest}.json":
        return False
    signature = json.loads(report_path.with_name(f"{digest}.sig.json").read_text())
    if "signature" not in signature or signature.get("digest") != digest:
        return False
    pem = public_key_pem or str(signature["public_key_pem"]).encode("ascii")
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(
            base64.b64decode(signature["signature"]),
            signed_message(str(signature["scope"]), digest),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        return False
    return True
