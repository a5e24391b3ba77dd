"""The emulator's DynamoDB transactions: cancelled ones leave every item as it was, and
their rollback snapshots the items named, never whole tables.

moto's own rollback deep-copies each table a transaction names; the emulator replaces it
with item snapshots (``infra/emulator/dynamodb_isolation.py``). These tests pin the results
a cancelled transaction must have (the same as moto's whole-table copies gave) and that
no table is copied any more, whatever its size.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.emulator.dynamodb_isolation import serialize_moto_dynamodb

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dynamodb(moto_endpoint: str) -> Any:
    serialize_moto_dynamodb()
    return boto3.client("dynamodb", region_name="ap-east-1", endpoint_url=moto_endpoint)


@pytest.fixture
def table(dynamodb: Any) -> Iterator[str]:
    name = f"isolation-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    yield name
    dynamodb.delete_table(TableName=name)


def _items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return sorted(
        (item for page in pages for item in page["Items"]),
        key=lambda i: (i["pk"]["S"], i["sk"]["S"]),
    )


def _put(table: str, pk: str, sk: str, **extra: str) -> dict[str, Any]:
    item = {"pk": {"S": pk}, "sk": {"S": sk}, **{k: {"S": v} for k, v in extra.items()}}
    return {"Put": {"TableName": table, "Item": item}}


def _stream_records(dynamodb: Any, table: str, endpoint: str) -> int:
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", region_name="ap-east-1", endpoint_url=endpoint)
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return len(streams.get_records(ShardIterator=iterator)["Records"])


def test_a_cancelled_transaction_leaves_every_item_and_the_stream_as_they_were(
    dynamodb: Any, table: str, moto_endpoint: str
) -> None:
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "v": {"S": "old"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "v": {"S": "old"}})
    before, records_before = (
        _items(dynamodb, table),
        _stream_records(dynamodb, table, moto_endpoint),
    )

    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(
            TransactItems=[
                _put(table, "a", "1", v="new"),  # an overwrite, written before the failure
                _put(table, "c", "1", v="new"),  # a new item under a new hash key
                _put(table, "a", "2", v="new"),  # a new item beside an existing one
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"S": "new"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "zz"}, "sk": {"S": "1"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _items(dynamodb, table) == before
    assert _stream_records(dynamodb, table, moto_endpoint) == records_before


def test_a_cancelled_transaction_restores_deleted_items_and_nested_attributes(
    dynamodb: Any, table: str
) -> None:
    """A Delete before the failure comes back, and an update inside a map attribute (moto
    mutates the stored item in place) is undone: the snapshot is a deep copy."""
    for pk in ("a", "b"):
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": pk}, "sk": {"S": "1"}, "v": {"S": "old"}, "m": {"M": {}}},
        )
    before = _items(dynamodb, table)
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                        "UpdateExpression": "SET v = :v, m.#k = :v",
                        "ExpressionAttributeNames": {"#k": "nested"},
                        "ExpressionAttributeValues": {":v": {"S": "new"}},
                    }
                },
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "zz"}, "sk": {"S": "1"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert _items(dynamodb, table) == before


def test_a_transaction_naming_one_key_twice_is_refused_and_changes_nothing(
    dynamodb: Any, table: str
) -> None:
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "v": {"S": "old"}})
    before = _items(dynamodb, table)
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                _put(table, "n", "1", v="x"),
                _put(table, "a", "1"),
                _put(table, "a", "1"),
            ]
        )
    assert _items(dynamodb, table) == before


def test_a_committed_transaction_writes_everything(dynamodb: Any, table: str) -> None:
    dynamodb.transact_write_items(
        TransactItems=[_put(table, "a", "1", v="x"), _put(table, "b", "2", v="y")]
    )
    assert [(i["pk"]["S"], i["v"]["S"]) for i in _items(dynamodb, table)] == [
        ("a", "x"),
        ("b", "y"),
    ]


def test_no_table_is_copied_whatever_it_holds(
    dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.table import Table

    for n in range(50):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "bulk"}, "sk": {"S": f"{n:04d}"}})
    copied: list[str] = []
    real = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            copied.append(value.name)
        return real(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    dynamodb.transact_write_items(TransactItems=[_put(table, "t", "1")])
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                _put(table, "t", "2"),
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "zz"}, "sk": {"S": "1"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert copied == []
    assert len(_items(dynamodb, table)) == 51
