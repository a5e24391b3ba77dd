"""Make moto's DynamoDB serialise requests, as DynamoDB's isolation guarantees would.

moto's ``transact_write_items`` checks conditions and writes item by item, restores a
deep copy of each table when a condition fails, and does not lock: under concurrent
requests (the threaded moto server) a transaction's partial writes are visible to
readers, two conditional puts on one key can both succeed, and a rollback can undo
another request's committed write. Real DynamoDB makes a transaction atomic and
serializable with respect to other writes, and a conditional put atomic.

:func:`serialize_moto_dynamodb` wraps every data-plane method of moto's DynamoDB
backend in one re-entrant lock, process-wide and idempotent, so the emulator honours
the guarantees the audit ledger's gap-free sequencing relies on
(``docs/ledger.md``). It changes no result of a single-threaded run. This is an
emulator gap made explicit, not hidden: without the patch, concurrent-writer tests
against moto can lose writes that DynamoDB would never lose.

It also makes a transaction's rollback cost what the transaction touches, not what the
tables hold. moto snapshots every table a transaction names with ``copy.deepcopy``
before writing and puts the copies back when the transaction is cancelled, so each
transaction on the audit ledger's table (which only grows) cost a copy of the whole
ledger: the test suite and the benchmarks slowed quadratically with the entries they
wrote. Under the lock above nothing else runs during a transaction, so snapshotting only
the items it names (and the table's stream position) and restoring those on
cancellation gives the same results, as the tests show on cancelled, duplicate-key and
failed-condition transactions.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

_METHODS = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_get_items",
    "transact_write_items",
)
_LOCK = threading.RLock()


def serialize_moto_dynamodb() -> bool:
    """Install the lock; returns False when moto is not importable (nothing to do)."""
    try:
        from moto.dynamodb.models import DynamoDBBackend
    except ImportError:
        return False
    if getattr(DynamoDBBackend, "_hub_serialized", False):
        return True
    _scope_transaction_rollback(DynamoDBBackend)
    for name in _METHODS:
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            continue
        setattr(DynamoDBBackend, name, _locked(original))
    DynamoDBBackend._hub_serialized = True  # type: ignore[attr-defined]
    return True


def _locked(method: Any) -> Any:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


# --- transactions snapshot the items they touch, not whole tables ------------------------

_SCOPED = threading.local()


class _TableCopiesSkipped:
    """Stands in for the ``copy`` module inside moto's DynamoDB models: while a transaction
    runs under :func:`_scope_transaction_rollback`, a deep copy of a whole ``Table`` is the
    table itself (its items are snapshotted one by one instead); every other copy is real.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        if getattr(_SCOPED, "active", False) and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _scope_transaction_rollback(backend_class: Any) -> None:
    import moto.dynamodb.models as models

    setattr(models, "copy", _TableCopiesSkipped())  # noqa: B010 (a module attribute moto reads)
    original = backend_class.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshots = _snapshot_items(self, transact_items)
        _SCOPED.active = True
        try:
            original(self, transact_items)
        except BaseException:
            _restore_items(snapshots)
            raise
        finally:
            _SCOPED.active = False

    backend_class.transact_write_items = transact_write_items


def _snapshot_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[Any]:
    """(table, hash key, range key, had the hash key, the item's deep copy or None, the
    stream's length) for every item the transaction names, in order."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    snapshots = []
    for entry in transact_items:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue  # moto refuses it before writing anything
        op = next(iter(entry.values()))
        table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        if table is None:
            continue
        key = op.get("Item") if "Item" in op else op.get("Key")
        if not isinstance(key, dict) or table.hash_key_attr not in key:
            continue
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in key:
                continue
            range_key = DynamoType(key[table.range_key_attr])
        had_hash = hash_key in table.items
        if range_key is None:
            current = table.items.get(hash_key) if had_hash else None
        else:
            current = table.items[hash_key].get(range_key) if had_hash else None
        stream = table.stream_shard
        snapshots.append(
            (
                table,
                hash_key,
                range_key,
                had_hash,
                copy.deepcopy(current),
                len(stream.items) if stream is not None else None,
            )
        )
    return snapshots


def _restore_items(snapshots: list[Any]) -> None:
    """Put every snapshotted item back as it was, last first (so a key named twice ends as
    it was before the transaction), and cut the streams back to where they were."""
    for table, hash_key, range_key, had_hash, item, stream_length in reversed(snapshots):
        if range_key is None:
            if item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
        else:
            if item is None:
                table.items.get(hash_key, {}).pop(range_key, None)
                if not had_hash and not table.items.get(hash_key, True):
                    table.items.pop(hash_key, None)
            else:
                table.items[hash_key][range_key] = item
        if stream_length is not None and table.stream_shard is not None:
            del table.stream_shard.items[stream_length:]
