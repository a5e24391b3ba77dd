"""DynamoDB item helpers shared by the service's repositories.

``serialize``/``deserialize`` convert between plain Python values and DynamoDB's typed
attribute maps (``None`` attributes are left out; binary values come back as ``bytes``).
``query_page`` reads one page of a partition for a listing that the client pages through
(``after`` is the sort key to continue after: the caller turns it into an opaque cursor).
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


def query_page(
    client: Any,
    table_name: str,
    pk: str,
    *,
    limit: int,
    after: str | None = None,
    filter_expression: str | None = None,
    filter_values: Mapping[str, Any] | None = None,
    filter_names: Mapping[str, str] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` items of ``pk`` after the sort key ``after``, strongly consistent, and
    the sort key to continue after (``None`` once the partition is exhausted).

    A filter applies after DynamoDB's ``Limit``, so a page may hold fewer items than
    ``limit`` (even none) and still be followed by more: callers page until the returned
    position is ``None``, never until a short page.
    """
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}, **serialize(filter_values or {})},
        "ConsistentRead": True,
        "Limit": limit,
    }
    if filter_expression:
        kwargs["FilterExpression"] = filter_expression
    if filter_names:
        kwargs["ExpressionAttributeNames"] = dict(filter_names)
    if after is not None:
        kwargs["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": after}}
    page = client.query(**kwargs)
    last = page.get("LastEvaluatedKey")
    return [deserialize(i) for i in page["Items"]], (str(last["sk"]["S"]) if last else None)
