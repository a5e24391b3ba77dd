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
"""

from __future__ import annotations

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
