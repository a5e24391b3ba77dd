"""HTTP routes of the audit ledger: entries, proofs, the signed head, the public key, export.

Every route depends on :data:`~app.access.auth.CurrentPrincipal`. Reading entries is a
Cedar decision (``QueryAudit``): auditors read the whole log, a clinician only entries
where they are the actor; the read itself is audited. Heads, proofs and the public key
hold hashes and signatures only and are open to every authenticated principal; an
inclusion proof carries the entry itself only for someone allowed to read it.

Hashes and signatures are base64 (standard alphabet); entries are returned both parsed
and as their canonical bytes (base64), so a client can recompute the leaf hash.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import PlainTextResponse, StreamingResponse

from app.access.auth import ACCESS_DENIED, CurrentPrincipal, Gate
from app.access.engine import Action
from app.access.entities import principal_entity, simple_entity, uid
from app.access.gate import AccessGate
from app.errors import Forbidden, HubError, InvalidRequest, error_body
from app.identity.principal import Principal
from app.ledger.checkpoint import SignedTreeHead, trail_head_proof
from app.ledger.entries import AuditEntry, timestamp_ms
from app.ledger.errors import InvalidEntry, LedgerBusy, LedgerVerificationError, NodeNotFound
from app.ledger.fhir import audit_event_resource
from app.ledger.merkle import leaf_hash
from app.ledger.service import EntryQuery, Ledger, NoSignedHead, RangeTooWide
from app.openapi import ErrorDoc, errors, ok_example
from app.wiring import provided

router = APIRouter(prefix="/audit", tags=["audit"])


def install_ledger_error_handlers(app: FastAPI) -> None:
    """Any route whose audited action could not get a sequence number (other writers kept
    taking the tail) answers 503 ``ledger_busy`` with ``Retry-After``: nothing was stored,
    the request may be repeated."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    @app.exception_handler(LedgerBusy)
    async def _busy(_request: Request, exc: LedgerBusy) -> JSONResponse:
        return JSONResponse(
            error_body("ledger_busy", str(exc)), status_code=503, headers={"Retry-After": "1"}
        )


# What any audited route can answer through that handler (app.main documents it).
LEDGER_BUSY = ErrorDoc(503, "ledger_busy", str(LedgerBusy()))

LedgerDep = Annotated[Ledger, Depends(provided(Ledger))]


class PemResponse(PlainTextResponse):
    media_type = "application/x-pem-file"


class NdjsonResponse(StreamingResponse):
    media_type = "application/fhir+ndjson"


class LedgerUnavailable(HubError):
    status_code = 503
    code = "ledger_unavailable"
    message = "No signed tree head is available yet."


# Hashes and signatures of the examples (synthetic: not of any real log).
_HASH = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
_HEAD = {
    "format": "health-hub/ledger/v1",
    "origin": "phase1-specialist",
    "size": 42,
    "root": _HASH,
    "timestamp_ms": 1795599000000,
    "signature": "MEUCIQD...",
    "key_id": "arn:aws:kms:ap-east-1:123456789012:key/0000-example",
    "algorithm": "ECDSA_SHA_256",
}
_ENTRY = {
    "version": 1,
    "sequence": 7,
    "timestamp_ms": 1795599000000,
    "actor": {"sub": "0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab", "roles": ["doctor"]},
    "action": "read",
    "resource": {"type": "group", "id": "6addad601b9440cda5d9323d0823423b"},
    "outcome": "success",
    "reason": "member-views-open-group",
    "request_id": "req-7",
}
NO_HEAD = LedgerUnavailable
BAD_PROOF = InvalidRequest("No such leaf or tree size.", code="invalid_proof_request")
# a trail number beyond the ledger's trails (hub:capacity.ledgerTrails): _check_trail
NO_TRAIL = InvalidRequest("This ledger has fewer trails.", code="invalid_proof_request")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class AuditScope:
    """What the caller may read: everything, or only entries where they are the actor."""

    def __init__(self, principal: Principal, everything: bool):
        self.principal = principal
        self.everything = everything

    def may_read(self, entry: AuditEntry) -> bool:
        return self.everything or entry.actor.sub == self.principal.sub


_AUDIT_LOG = uid("Service", "audit-log")


def _reads_whole_log(who: Principal, gate: AccessGate) -> bool:
    """Whether Cedar lets ``who`` query everyone's entries (a probe: not audited)."""
    decision = gate.authorizer.decide(
        uid("User", who.sub),
        Action.QUERY_AUDIT,
        _AUDIT_LOG,
        [principal_entity(who), simple_entity("Service", "audit-log")],
        {"own_entries_only": False},
    )
    return bool(decision.allowed)


def audit_scope(who: CurrentPrincipal, gate: Gate) -> AuditScope:
    """Decide ``QueryAudit`` for the whole log, else for the caller's own entries (403 if
    neither); the granted read is audited."""
    whole = _reads_whole_log(who, gate)
    allowed = gate.check(
        who,
        Action.QUERY_AUDIT,
        _AUDIT_LOG,
        [simple_entity("Service", "audit-log")],
        context={"own_entries_only": not whole},
    )
    gate.record(allowed)
    return AuditScope(who, whole)


Scope = Annotated[AuditScope, Depends(audit_scope)]


def _ms(moment: datetime | None, default: int) -> int:
    return timestamp_ms(moment) if moment is not None else default


def _entry_json(index: int, entry: AuditEntry, raw: bytes, trail: int = 0) -> dict[str, Any]:
    return {
        "leaf_index": index,
        "trail": trail,
        "entry": entry.to_dict(),
        "canonical": _b64(raw),
        "leaf_hash": _b64(leaf_hash(raw)),
    }


TrailParam = Annotated[
    int, Query(ge=0, lt=64, description="The trail (0 unless the ledger runs several).")
]


def _check_trail(ledger: Ledger, trail: int) -> None:
    if trail >= ledger.trail_count:
        raise InvalidRequest(
            f"This ledger has {ledger.trail_count} trail(s).", code="invalid_proof_request"
        )


@router.get(
    "/entries",
    responses={
        **errors(
            ACCESS_DENIED,
            InvalidRequest("Bad time range.", code="invalid_time_range"),
            InvalidRequest(
                "Narrow the time range or filter by actor, resource or patient.",
                code="range_too_wide",
            ),
        ),
        **ok_example(
            {
                "entries": [
                    {
                        "leaf_index": 7,
                        "entry": _ENTRY,
                        "canonical": "eyJhY3Rpb24iOiJyZWFkIiwuLi59",
                        "leaf_hash": _HASH,
                    }
                ]
            }
        ),
    },
)
def list_entries(
    scope: Scope,
    ledger: LedgerDep,
    actor: str | None = None,
    resource: Annotated[str | None, Query(description="<type>:<id>, e.g. group:<id>")] = None,
    patient_ref: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Entries covered by the latest signed head, oldest first. Clinicians: own only."""
    if not scope.everything:
        if actor not in (None, scope.principal.sub):
            raise Forbidden("You may read only your own audit entries.", code="access_denied")
        actor = scope.principal.sub
    try:
        query = EntryQuery(
            actor=actor,
            resource=resource,
            patient_ref=patient_ref,
            since_ms=_ms(since, 0),
            until_ms=_ms(until, 2**53 - 1),
            limit=limit,
        )
    except ValueError as exc:
        raise InvalidRequest("Bad time range.", code="invalid_time_range") from exc
    try:
        listed = ledger.entries(query)
    except RangeTooWide as exc:
        raise InvalidRequest(
            "Narrow the time range or filter by actor, resource or patient.",
            code="range_too_wide",
        ) from exc
    return {
        "entries": [
            _entry_json(e.leaf_index, e.entry, e.raw, e.trail)
            for e in listed
            if scope.may_read(e.entry)
        ]
    }


def _head(ledger: Ledger, trail: int = 0) -> SignedTreeHead:
    _check_trail(ledger, trail)
    try:
        return ledger.head(trail)
    except NoSignedHead as exc:
        raise LedgerUnavailable() from exc


@router.get(
    "/head",
    responses={
        **errors(NO_HEAD, NO_TRAIL),
        **ok_example(
            {**_HEAD, "checkpoint": "health-hub/ledger/v1\n...", "public_key": "/audit/public-key"}
        ),
    },
)
def tree_head(who: CurrentPrincipal, ledger: LedgerDep, trail: TrailParam = 0) -> dict[str, Any]:
    """The latest signed tree head of ``trail`` (checkpoint text fields, signature, key
    id); on a ledger of several trails also the latest signed ledger checkpoint (every
    trail's head under one signature and one root)."""
    head = _head(ledger, trail)
    body: dict[str, Any] = {
        **head.to_json(),
        "trail": trail,
        "trails": ledger.trail_count,
        "checkpoint": head.message().decode("ascii"),
        "public_key": "/audit/public-key",
    }
    checkpoint = ledger.ledger_checkpoint()
    if checkpoint is not None:
        body["ledger_checkpoint"] = {
            **checkpoint.to_json(),
            "text": checkpoint.message().decode("ascii"),
        }
    return body


@router.get(
    "/public-key",
    response_class=PemResponse,
    responses={
        **errors(NO_HEAD),
        **ok_example(
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...\n"
            "-----END PUBLIC KEY-----\n",
            media_type="application/x-pem-file",
        ),
    },
)
def public_key(who: CurrentPrincipal, ledger: LedgerDep) -> PemResponse:
    """The signing key's public key (PEM), from KMS ``GetPublicKey``, for offline checks."""
    try:
        pem = ledger.public_key_pem()
    except NoSignedHead as exc:
        raise LedgerUnavailable() from exc
    return PemResponse(pem.decode("ascii"))


@router.get(
    "/proof/inclusion",
    responses={
        **errors(NO_HEAD, BAD_PROOF),
        **ok_example(
            {
                "index": 7,
                "size": 42,
                "leaf_hash": _HASH,
                "proof": [_HASH, _HASH],
                "head": _HEAD,
                "entry": _ENTRY,
                "canonical": "eyJhY3Rpb24iOiJyZWFkIiwuLi59",
            }
        ),
    },
)
def inclusion(
    who: CurrentPrincipal,
    gate: Gate,
    ledger: LedgerDep,
    index: Annotated[int, Query(ge=0)],
    size: Annotated[int | None, Query(ge=1)] = None,
    trail: TrailParam = 0,
) -> dict[str, Any]:
    """The audit path of leaf ``index`` of ``trail`` in the tree of ``size`` (default: the
    size the latest ledger checkpoint lists for the trail when it covers the leaf, else
    the trail head's). On a ledger of several trails, when the trail head at ``size`` is
    the one the latest ledger checkpoint lists, the answer also carries that checkpoint
    and the head's audit path in it: entry -> trail root -> ledger root, one signature."""
    head = _head(ledger, trail)
    checkpoint = ledger.ledger_checkpoint()
    listed = checkpoint.head(trail) if checkpoint is not None else None
    if size is None:
        size = listed.size if listed is not None and listed.size > index else head.size
    try:
        leaf, raw, proof = ledger.inclusion(index, size, trail)
    except (LedgerVerificationError, NodeNotFound) as exc:
        raise InvalidRequest("No such leaf or tree size.", code="invalid_proof_request") from exc
    body: dict[str, Any] = {
        "index": index,
        "trail": trail,
        "size": size,
        "leaf_hash": _b64(leaf),
        "proof": [_b64(p) for p in proof],
        "head": head.to_json(),
    }
    if checkpoint is not None and listed is not None and listed.size == size:
        body["ledger_checkpoint"] = checkpoint.to_json()
        body["trail_head_proof"] = [_b64(p) for p in trail_head_proof(checkpoint.heads, trail)]
    # The entry itself only when it is intact (hashes to the tree's leaf) and the caller
    # may read it; a tampered or missing entry shows as its absence, the proof stands.
    try:
        entry = AuditEntry.from_bytes(raw) if leaf_hash(raw) == leaf else None
    except InvalidEntry:
        entry = None
    if entry is not None and (entry.actor.sub == who.sub or _reads_whole_log(who, gate)):
        body["entry"] = entry.to_dict()
        body["canonical"] = _b64(raw)
    return body


@router.get(
    "/proof/consistency",
    responses={
        **errors(NO_HEAD, InvalidRequest("Bad tree sizes.", code="invalid_proof_request")),
        **ok_example({"first": 40, "second": 42, "proof": [_HASH], "head": _HEAD}),
    },
)
def consistency(
    who: CurrentPrincipal,
    ledger: LedgerDep,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int, Query(ge=0)],
    trail: TrailParam = 0,
) -> dict[str, Any]:
    """The proof that ``trail``'s tree of ``second`` leaves extends its tree of ``first``."""
    head = _head(ledger, trail)
    try:
        proof = ledger.consistency(first, second, trail)
    except (LedgerVerificationError, NodeNotFound) as exc:
        raise InvalidRequest("Bad tree sizes.", code="invalid_proof_request") from exc
    return {
        "first": first,
        "second": second,
        "trail": trail,
        "proof": [_b64(p) for p in proof],
        "head": head.to_json(),
    }


@router.get(
    "/export",
    response_class=NdjsonResponse,
    responses={
        **errors(ACCESS_DENIED, NO_HEAD, NO_TRAIL),
        **ok_example(
            '{"resourceType":"AuditEvent","id":"7",...}\n',
            media_type="application/fhir+ndjson",
        ),
    },
)
def export(
    scope: Scope,
    ledger: LedgerDep,
    start: Annotated[int, Query(ge=0)] = 0,
    end: Annotated[int | None, Query(ge=0)] = None,
    trail: Annotated[
        int | None, Query(ge=0, lt=64, description="One trail only (default: every trail).")
    ] = None,
) -> NdjsonResponse:
    """Entries ``[start, end)`` of every trail (or of ``trail``), trail after trail, as
    FHIR R4 AuditEvent (IHE BALP), NDJSON. Auditors only."""
    if not scope.everything:
        raise Forbidden("Only auditors export the ledger.", code="access_denied")
    numbers = range(ledger.trail_count) if trail is None else [trail]
    stops: list[tuple[int, int]] = []
    for number in numbers:
        if number == 0 or trail is not None:
            head = _head(ledger, number)
        else:
            try:
                head = ledger.head(number)
            except NoSignedHead:
                continue  # a trail nothing was written to yet
        stops.append((number, head.size if end is None else min(end, head.size)))

    def lines() -> Iterator[bytes]:
        # A page of entries at a time: the export never holds the whole log in memory.
        for number, stop in stops:
            at = start
            while at < stop:
                rows = ledger.read_range(at, min(stop, at + 1024), number)
                if not rows:
                    break
                for seq, raw in rows:
                    entry = AuditEntry.from_bytes(raw)
                    resource = audit_event_resource(entry, raw, seq, number)
                    yield json.dumps(resource, sort_keys=True).encode() + b"\n"
                at = rows[-1][0] + 1

    return NdjsonResponse(lines())
