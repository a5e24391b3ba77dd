"""The referral's free text, sealed: the clinical question and a decline note.

Free text typed by a clinician about a patient is patient content. It is sealed with
the sealed-record format (:class:`app.crypto.envelope.ShardedEnvelope`, a fresh KMS data
key from the records key per text) before it is stored, so the groups table holds only
ciphertext; it is opened only for a request Cedar has allowed to view the referral,
and it never enters the ledger, a log line or an error message.

The KMS encryption context is the records key's required shape: ``record_id`` =
``referral.<referral id>.<field>`` (a namespace no record id can take: record ids are
UUID hex), the keyed patient reference, version 1 and the referring institution. A
sealed field that does not open (tampered, or moved to another referral or field) is
the one opaque :class:`~app.crypto.errors.InvalidRecord`.
"""

from __future__ import annotations

from enum import StrEnum

from app.crypto.context import RecordContext
from app.crypto.envelope import ShardedEnvelope
from app.crypto.errors import InvalidRecord


class SealedField(StrEnum):
    QUESTION = "question"
    NOTE = "note"


class ReferralSealer:
    def __init__(self, envelope: ShardedEnvelope):
        self._envelope = envelope

    @staticmethod
    def _context(
        referral_id: str, patient_ref: str, institution: str, field: SealedField
    ) -> RecordContext:
        return RecordContext(f"referral.{referral_id}.{field.value}", patient_ref, 1, institution)

    def seal(
        self, text: str, *, referral_id: str, patient_ref: str, institution: str, field: SealedField
    ) -> dict[str, bytes]:
        """The stored attributes (``<field>_manifest``, ``<field>_shard``) for ``text``."""
        data = text.encode("utf-8")
        if not data or len(data) > self._envelope.shard_size:
            raise ValueError("sealed referral text must be 1 byte to one shard long")
        context = self._context(referral_id, patient_ref, institution, field)
        stream = self._envelope.seal(context, data, len(data))
        shards = [shard.ciphertext for shard in stream]
        return {
            f"{field.value}_manifest": stream.manifest.to_bytes(),
            f"{field.value}_shard": shards[0],
        }

    def open(
        self,
        sealed: dict[str, bytes],
        *,
        referral_id: str,
        patient_ref: str,
        institution: str,
        field: SealedField,
    ) -> str | None:
        """The text of ``field``, or None when the referral has none.

        Raises:
            InvalidRecord: the sealed bytes do not open under this referral's context.
        """
        manifest = sealed.get(f"{field.value}_manifest")
        shard = sealed.get(f"{field.value}_shard")
        if manifest is None and shard is None:
            return None
        if manifest is None or shard is None:
            raise InvalidRecord()
        context = self._context(referral_id, patient_ref, institution, field)
        data = self._envelope.open_all(manifest, lambda i: shard if i == 0 else None, context)
        return data.decode("utf-8")
