"""The outbox: notification events committed with the change they announce.

An outbox item (``pk = "OUTBOX#<yyyy-mm-dd>"``, ``sk = "<iso time>#<uuid>"``, status
``pending``) is written in the same ``TransactWriteItems`` as its change (an invitation,
a summons, a break-glass alarm), so a notification exists exactly when its change
committed. A later feature delivers them; :func:`read_outbox` reads one day's events,
every page of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.dynamo import query_partition


def outbox_item(kind: str, at: datetime, payload: Mapping[str, str]) -> dict[str, Any]:
    return {
        "pk": f"OUTBOX#{at.date().isoformat()}",
        "sk": f"{at.isoformat()}#{uuid.uuid4().hex}",
        "kind": kind,
        "status": "pending",
        "created_at": at.isoformat(),
        **payload,
    }


def read_outbox(
    client: Any, table_name: str, day: str, *, page_size: int | None = None
) -> list[dict[str, Any]]:
    """Every outbox event of ``day`` (``yyyy-mm-dd``), oldest first."""
    return query_partition(client, table_name, f"OUTBOX#{day}", page_size=page_size)
