"""Tamper with one stored audit-ledger entry on the local emulator (demonstration only).

Rewrites entry ``--index`` of a stack's ledger table in place, keeping it a valid,
canonical entry (its outcome and reason are changed, as an administrator hiding a
refusal would), so only the Merkle tree and the signed heads can give it away. Then
``hub audit verify --live`` fails at that index.

    .venv/bin/python scripts/ledger_tamper.py --index 3 [--stack phase3-private-practice]

It refuses to run against anything but the local platform's emulator endpoint
(``.hub/local.json``). The equivalent boto3 call is printed, for the README walk-through.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.ledger.entries import AuditEntry  # noqa: E402
from app.ledger.store import entry_key  # noqa: E402


def tampered(raw: bytes) -> bytes:
    """The same entry with its outcome flipped and a plausible reason: still canonical."""
    data = AuditEntry.from_bytes(raw).to_dict()
    denied = data["outcome"] != "success"
    data["outcome"] = "success" if denied else "denied"
    data["reason"] = "member-views-open-group" if denied else "no-permitting-policy"
    return AuditEntry.from_dict(data).to_bytes()


def tamper_entry(dynamodb: Any, table: str, index: int) -> tuple[bytes, bytes]:
    """Rewrite entry ``index`` in place; returns (before, after)."""
    item = dynamodb.get_item(TableName=table, Key=entry_key(index), ConsistentRead=True)
    if "Item" not in item:
        raise SystemExit(f"no entry {index} in {table}")
    before = bytes(item["Item"]["entry"]["B"])
    after = tampered(before)
    dynamodb.update_item(
        TableName=table,
        Key=entry_key(index),
        UpdateExpression="SET #e = :e",
        ExpressionAttributeNames={"#e": "entry"},
        ExpressionAttributeValues={":e": {"B": after}},
    )
    return before, after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--stack", default="phase3-private-practice")
    parser.add_argument("--state-dir", default=".hub")
    args = parser.parse_args(argv)
    local = json.loads((Path(args.state_dir) / "local.json").read_text())
    endpoint = local["emulatorEndpoint"]
    if not endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        raise SystemExit("refusing: this only tampers with the local emulator")
    table = local["stacks"][args.stack]["outputs"]["tableNames"]["ledger"]
    import boto3

    from infra.emulator.server import default_emulator_credentials

    default_emulator_credentials()
    dynamodb = boto3.client("dynamodb", region_name="ap-east-1", endpoint_url=endpoint)
    before, after = tamper_entry(dynamodb, table, args.index)
    print(f"entry {args.index} of {table}:\n  before {before.decode()}\n  after  {after.decode()}")
    key = entry_key(args.index)
    print(
        "boto3 equivalent: boto3.client('dynamodb', endpoint_url='"
        + endpoint
        + "', region_name='ap-east-1').update_item(TableName='"
        + table
        + f"', Key={key}, UpdateExpression='SET #e = :e', "
        "ExpressionAttributeNames={'#e': 'entry'}, ExpressionAttributeValues={':e': {'B': <new>}})"
    )
    print(f"now run: hub audit verify --live --stack {args.stack}  (fails at {args.index})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
