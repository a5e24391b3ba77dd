"""DynamoDB item helpers shared by the service's repositories.

``serialize``/``deserialize`` convert between plain Python values and DynamoDB's typed
attribute maps (``None`` attributes are left out; binary values come back as ``bytes``).
``query_partition`` reads one whole partition with a strongly consistent, paginated query,
which is how the groups, break-glass and records repositories load an aggregate in one
read: it follows ``LastEvaluatedKey`` until the partition ends, so no item is ever dropped
at a page boundary (1 MB, or ``page_size`` items).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

_ser = TypeSerializer()
_de = TypeDeserializer()


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items() if v is not None}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in item.items():
        value = _de.deserialize(v)
        out[k] = value.value if isinstance(value, Binary) else value  # type: ignore[attr-defined]
    return out


def query_partition(
    client: Any, table_name: str, pk: str, *, page_size: int | None = None
) -> list[dict[str, Any]]:
    """Every item under ``pk``, deserialized, in sort-key order, from strongly consistent
    reads of as many pages as the partition takes.

    Args:
        page_size: the most items one page may hold (DynamoDB's ``Limit``); None leaves
            pages at DynamoDB's 1 MB. Only the number of round trips depends on it.
    """
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": True,
    }
    if page_size is not None:
        kwargs["Limit"] = page_size
    while True:
        page = client.query(**kwargs)
        items.extend(deserialize(i) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
