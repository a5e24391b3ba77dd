"""DynamoDB item helpers shared by the service's repositories.

``serialize``/``deserialize`` convert between plain Python values and DynamoDB's typed
attribute maps (``None`` attributes are left out; binary values come back as ``bytes``).
``query_partition`` reads one whole partition with a strongly consistent, paginated query,
which is how the groups and records repositories load an aggregate in one read.
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


def query_partition(client: Any, table_name: str, pk: str) -> list[dict[str, Any]]:
    """Every item under ``pk``, deserialized, from strongly consistent reads."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**kwargs)
        items.extend(deserialize(i) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
