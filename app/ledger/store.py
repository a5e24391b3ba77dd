"""Durable storage of the audit ledger in DynamoDB: entries, tree nodes, the signed head.

Every item lives in the ledger table (``pk``/``sk`` strings) under a ``LEDGER#`` prefix
(the interim ``AUDITLOG#`` store is gone; ``CONFIG#`` holds the sealed hash key):

====================================  ==================  ==================================
pk                                    sk                  attributes
====================================  ==================  ==================================
``LEDGER#ENTRY#<seq >> 10, 8 digits>``  ``<seq, 12 digits>``  ``entry`` (canonical bytes), ``seq``
``LEDGER#NODE#<level>#<index >> 10>``   ``<index, 12 d.>``   ``hash`` (32 bytes)
``LEDGER#HEAD``                        ``CURRENT``           the latest signed tree head
``LEDGER#BY#<facet>#<value>``          ``<ts ms>#<seq>``     ``entry``, ``seq`` (query index)
``LEDGER#CHECKPOINT``                  ``CURRENT``           the latest signed ledger checkpoint
====================================  ==================  ==================================

That is trail 0, the ledger's first (and, before trails, only) sequence. Further trails
(:data:`MAX_TRAILS` at most, ``hub:ledgerTrails``) keep the same layout under
``LEDGER#T<trail, 3 digits>#`` (``LEDGER#T001#ENTRY#...``, ``LEDGER#T001#HEAD``...), each
gap-free and its own RFC 9162 tree; their query index rows share trail 0's keys, with
``#<trail, 3 digits>`` after the sort key and a ``trail`` attribute.

Entries are grouped 1024 to a partition, nodes 1024 per level and partition, so a read
touches few partitions and no partition grows without bound.

What this module guarantees:

- **Append-only entries, gap-free sequence numbers.** An entry for sequence ``n`` is
  written only with ``attribute_not_exists(pk)`` (never overwritten), and only by a
  writer that has *observed* entry ``n - 1`` (read it, written it, or seen its write
  collide). Entries are never deleted (the service role has no ``DeleteItem`` on this
  table), so when ``n`` exists ``n - 1`` exists: by induction the stored sequence
  numbers are always exactly ``0 .. k-1``. In a transaction the writer also adds a
  ``ConditionCheck`` that ``n - 1`` exists, so even a wrong hint cannot commit a gap.
- **Append-only by construction**: the ledger code issues PutItem (entries, nodes and
  index rows), conditional PutItem (head), GetItem, BatchGetItem, Query and
  TransactWriteItems (Put + ConditionCheck) only; never DeleteItem or BatchWriteItem.
- **O(log n) proofs**: :class:`DynamoNodeStore` implements
  :class:`~app.ledger.merkle.NodeStore`; a proof or root reads its O(log n) nodes in
  one ``BatchGetItem`` (100 keys per call) and never reads the whole log.
- **No fork**: the head moves only by a conditional write naming the size it replaces
  (:meth:`LedgerTable.advance_head`), and tree nodes are a pure function of immutable
  entries, so two sequencers racing compute identical nodes and only one head wins.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from app.ledger.checkpoint import LedgerCheckpoint, SignedTreeHead
from app.ledger.errors import LedgerError, NodeNotFound
from app.ledger.merkle import NodeId

ENTRY_PREFIX = "LEDGER#ENTRY#"
NODE_PREFIX = "LEDGER#NODE#"
INDEX_PREFIX = "LEDGER#BY#"
HEAD_KEY = {"pk": {"S": "LEDGER#HEAD"}, "sk": {"S": "CURRENT"}}
CHECKPOINT_KEY = {"pk": {"S": "LEDGER#CHECKPOINT"}, "sk": {"S": "CURRENT"}}
# Trails a ledger may have (hub:ledgerTrails); the verifier looks for every one of them.
MAX_TRAILS = 64
PARTITION_BITS = 10
# The day index spreads a day's rows over this many partition keys (``<day>#<seq % 8>``):
# a DynamoDB partition takes at most 1,000 write units a second, and one key per day would
# cap the whole ledger there. Rows written before the split stay under ``<day>``.
DAY_SHARDS = 8
_BATCH_GET = 100
# Idempotent puts in flight at once when the sequencer writes nodes and index rows (about
# 6.5 items per entry): at ~5 ms a PutItem, 32 keep integration above 1,000 entries a
# second on DynamoDB (8 stopped near 250). The service's client pools as many connections.
PARALLEL_WRITES = 32


def trail_prefix(trail: int) -> str:
    """``LEDGER#`` for trail 0 (the layout from before trails), ``LEDGER#T<nnn>#`` after."""
    if not 0 <= trail < MAX_TRAILS:
        raise ValueError(f"trail must be in [0, {MAX_TRAILS})")
    return "LEDGER#" if trail == 0 else f"LEDGER#T{trail:03d}#"


def entry_key(seq: int, trail: int = 0) -> dict[str, dict[str, str]]:
    return {
        "pk": {"S": f"{trail_prefix(trail)}ENTRY#{seq >> PARTITION_BITS:08d}"},
        "sk": {"S": f"{seq:012d}"},
    }


def node_key(node: NodeId, trail: int = 0) -> dict[str, dict[str, str]]:
    return {
        "pk": {
            "S": f"{trail_prefix(trail)}NODE#{node.level:02d}#{node.index >> PARTITION_BITS:08d}"
        },
        "sk": {"S": f"{node.index:012d}"},
    }


def head_key(trail: int = 0) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{trail_prefix(trail)}HEAD"}, "sk": {"S": "CURRENT"}}


def index_key(
    facet: str, value: str, timestamp_ms: int, seq: int, trail: int = 0
) -> dict[str, dict[str, str]]:
    suffix = f"#{trail:03d}" if trail else ""
    return {
        "pk": {"S": f"{INDEX_PREFIX}{facet}#{value}"},
        "sk": {"S": f"{timestamp_ms:013d}#{seq:012d}{suffix}"},
    }


class HeadMoved(LedgerError):
    """Another sequencer advanced the head first (the conditional write failed)."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class LedgerTable:
    """Every read and write of one trail's items; a thin layer over a DynamoDB client.

    ``trail`` 0 is the layout from before trails; :meth:`for_trail` gives another trail
    of the same table.
    """

    def __init__(self, client: Any, table_name: str, trail: int = 0):
        self.client = client
        self.table_name = table_name
        self.trail = trail
        self._prefix = trail_prefix(trail)

    def for_trail(self, trail: int) -> LedgerTable:
        return LedgerTable(self.client, self.table_name, trail)

    # -- entries ----------------------------------------------------------------------

    def entry_put(self, seq: int, entry: bytes) -> dict[str, Any]:
        """The ``Put`` that stores entry ``seq`` if (and only if) that slot is free."""
        return {
            "TableName": self.table_name,
            "Item": {**entry_key(seq, self.trail), "entry": {"B": entry}, "seq": {"N": str(seq)}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }

    def previous_exists(self, seq: int) -> dict[str, Any]:
        """The ``ConditionCheck`` that entry ``seq - 1`` exists (``seq`` > 0)."""
        return {
            "TableName": self.table_name,
            "Key": entry_key(seq - 1, self.trail),
            "ConditionExpression": "attribute_exists(pk)",
        }

    def put_entry(self, seq: int, entry: bytes) -> bool:
        """Store entry ``seq``; False if the slot was taken (then ``seq`` exists)."""
        try:
            self.client.put_item(**self.entry_put(seq, entry))
            return True
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def entry_exists(self, seq: int) -> bool:
        got = self.client.get_item(
            TableName=self.table_name,
            Key=entry_key(seq, self.trail),
            ProjectionExpression="seq",
            ConsistentRead=True,
        )
        return "Item" in got

    def read_entries(
        self, start: int, limit: int, *, with_entries: bool = True
    ) -> list[tuple[int, bytes]]:
        """Up to ``limit`` consecutive entries from ``start``, stopping at the first gap.

        Queries one partition at a time (O(limit / 1024 + 1) requests), strongly
        consistent, so a just-acknowledged entry is seen. Without ``with_entries`` only
        the sequence numbers are read (the bytes come back empty).
        """
        out: list[tuple[int, bytes]] = []
        seq = start
        while len(out) < limit:
            partition = seq >> PARTITION_BITS
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk AND sk >= :from",
                "ExpressionAttributeValues": {
                    ":pk": {"S": f"{self._prefix}ENTRY#{partition:08d}"},
                    ":from": {"S": f"{seq:012d}"},
                },
                "ConsistentRead": True,
                "Limit": limit - len(out),
            }
            if not with_entries:
                kwargs["ProjectionExpression"] = "seq"
            page = self.client.query(**kwargs)
            for item in page["Items"]:
                got = int(item["seq"]["N"])
                if got != seq:
                    return out  # a gap or a forged item: the log ends before it
                out.append((got, bytes(item["entry"]["B"]) if with_entries else b""))
                seq += 1
            if "LastEvaluatedKey" in page and len(out) < limit:
                continue
            if seq >> PARTITION_BITS == partition:
                return out  # the partition ended before its last slot: the log's tail
        return out

    def entries(self, seqs: Sequence[int]) -> dict[int, bytes]:
        """The stored entries for ``seqs`` (missing ones absent), by BatchGetItem."""
        keys = [entry_key(s, self.trail) for s in sorted(set(seqs))]
        found: dict[int, bytes] = {}
        for item in self._batch_get(keys, "seq, entry"):
            found[int(item["seq"]["N"])] = bytes(item["entry"]["B"])
        return found

    def find_tail(self, hint: int) -> int:
        """The next free sequence number, searching from ``hint`` (a lower bound).

        Reads forward from the hint's partition one query per partition; with the head
        size as hint the uncovered tail is small, so this is a query or two.
        """
        seq = max(0, hint)
        if seq > 0 and not self.entry_exists(seq - 1):
            # The hint is ahead of the log: the tail is in this partition or an earlier one.
            partition = (seq - 1) >> PARTITION_BITS
            while partition >= 0:
                page = self.client.query(
                    TableName=self.table_name,
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues={
                        ":pk": {"S": f"{self._prefix}ENTRY#{partition:08d}"},
                    },
                    ConsistentRead=True,
                    ScanIndexForward=False,
                    Limit=1,
                    ProjectionExpression="seq",
                )
                if page["Items"]:
                    return int(page["Items"][0]["seq"]["N"]) + 1
                partition -= 1
            return 0
        while True:
            got = self.read_entries(seq, 1 << PARTITION_BITS, with_entries=False)
            if len(got) < 1 << PARTITION_BITS:
                return seq + len(got)
            seq += len(got)

    def _partition_items(self, prefix: str, projection: str) -> dict[int, Any]:
        """Every item under ``prefix<partition>``, by its numeric sort key; partitions are
        read in order, up to the head's and then until one is empty (verification reads
        everything, including items after a gap, on purpose)."""
        head = self.read_head()
        last = (head.size >> PARTITION_BITS) if head else 0
        found: dict[int, Any] = {}
        partition = 0
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"{prefix}{partition:08d}"}},
                "ConsistentRead": True,
                "ProjectionExpression": projection,
                "ExpressionAttributeNames": {"#v": "entry" if "ENTRY" in prefix else "hash"},
            }
            seen = False
            while True:
                page = self.client.query(**kwargs)
                for item in page["Items"]:
                    seen = True
                    found[int(item["sk"]["S"])] = item
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            if not seen and partition >= last:
                return found
            partition += 1

    def all_entries(self) -> dict[int, bytes]:
        """Every stored entry by leaf index (the sort key), gaps and all."""
        items = self._partition_items(f"{self._prefix}ENTRY#", "sk, #v")
        return {k: bytes(v["entry"]["B"]) for k, v in items.items()}

    def all_leaf_hashes(self) -> dict[int, bytes]:
        """Every stored level-0 tree node (leaf hash) by leaf index."""
        items = self._partition_items(f"{self._prefix}NODE#00#", "sk, #v")
        return {k: bytes(v["hash"]["B"]) for k, v in items.items()}

    # -- nodes ------------------------------------------------------------------------

    def write_nodes(self, nodes: Mapping[NodeId, bytes]) -> None:
        """Store tree nodes (idempotent: a node's hash is a function of immutable entries)."""
        requests = [
            {"PutRequest": {"Item": {**node_key(n, self.trail), "hash": {"B": h}}}}
            for n, h in nodes.items()
        ]
        self._batch_write(requests)

    def read_node_hashes(self, ids: Sequence[NodeId]) -> list[bytes]:
        wanted = list(dict.fromkeys(ids))
        found: dict[tuple[str, str], bytes] = {}
        for item in self._batch_get([node_key(n, self.trail) for n in wanted], "pk, sk, #h"):
            found[(item["pk"]["S"], item["sk"]["S"])] = bytes(item["hash"]["B"])
        out = []
        for node in ids:
            key = node_key(node, self.trail)
            h = found.get((key["pk"]["S"], key["sk"]["S"]))
            if h is None:
                raise NodeNotFound(f"no node at level {node.level}, index {node.index}")
            out.append(h)
        return out

    # -- head -------------------------------------------------------------------------

    def read_head(self) -> SignedTreeHead | None:
        got = self.client.get_item(
            TableName=self.table_name, Key=head_key(self.trail), ConsistentRead=True
        )
        if "Item" not in got:
            return None
        return SignedTreeHead.from_json(json.loads(got["Item"]["head"]["S"]))

    def read_heads(self, trails: Iterable[int]) -> dict[int, SignedTreeHead]:
        """The stored head of each of ``trails`` (a trail without one is absent), strongly
        consistent as :meth:`read_head`, in one ``BatchGetItem`` (100 keys a call) rather
        than a ``GetItem`` per trail: the ledger checkpoint and the listings read every
        trail's head."""
        by_pk = {head_key(t)["pk"]["S"]: t for t in trails}
        keys = [head_key(t) for t in by_pk.values()]
        return {
            by_pk[item["pk"]["S"]]: SignedTreeHead.from_json(json.loads(item["head"]["S"]))
            for item in self._batch_get(keys, "pk, #hd")
        }

    def advance_head(self, head: SignedTreeHead, previous_size: int | None) -> None:
        """Replace the head of ``previous_size`` (None: no head yet) by ``head``.

        Raises:
            HeadMoved: if the stored head is not the one named (another sequencer won).
        """
        if previous_size is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "#size = :previous",
                "ExpressionAttributeNames": {"#size": "size"},
                "ExpressionAttributeValues": {":previous": {"N": str(previous_size)}},
            }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    **head_key(self.trail),
                    "size": {"N": str(head.size)},
                    "head": {"S": json.dumps(head.to_json(), sort_keys=True)},
                },
                **condition,
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise HeadMoved("the tree head moved meanwhile") from exc
            raise

    # -- ledger checkpoint (every trail's head; kept on the table, trail independent) ----

    def read_checkpoint(self) -> LedgerCheckpoint | None:
        got = self.client.get_item(
            TableName=self.table_name, Key=CHECKPOINT_KEY, ConsistentRead=True
        )
        if "Item" not in got:
            return None
        return LedgerCheckpoint.from_json(json.loads(got["Item"]["checkpoint"]["S"]))

    def store_checkpoint(self, checkpoint: LedgerCheckpoint) -> bool:
        """Store ``checkpoint`` unless a later one is stored already (False then)."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    **CHECKPOINT_KEY,
                    "timestamp_ms": {"N": str(checkpoint.timestamp_ms)},
                    "checkpoint": {"S": json.dumps(checkpoint.to_json(), sort_keys=True)},
                },
                ConditionExpression="attribute_not_exists(pk) OR #ts < :ts",
                ExpressionAttributeNames={"#ts": "timestamp_ms"},
                ExpressionAttributeValues={":ts": {"N": str(checkpoint.timestamp_ms)}},
            )
            return True
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def trails_present(self, listed: int | None = None) -> list[int]:
        """The ledger's trails, in order: ``0 .. listed-1``, then every further trail (up
        to :data:`MAX_TRAILS`) that holds an entry 0 or a head.

        ``listed`` is how many trails the signed ledger checkpoints list (default: the
        stored checkpoint's, else 1): the authority for which trails exist, so those are
        never probed. A trail beyond them holding anything is one no checkpoint commits
        to (the verifier reports it **omitted**); a gap-free trail that holds anything
        holds entry 0, so its entry 0 and its head are all there is to look for, and
        they are looked for in one batched probe (``BatchGetItem``, 100 keys a call: two
        calls at most), not a ``GetItem`` per trail. The verifier's inventory and the
        metrics', never on the request path."""
        if listed is None:
            stored = self.read_checkpoint()
            listed = stored.trails if stored is not None else 1
        listed = max(1, min(listed, MAX_TRAILS))
        probed: list[dict[str, Any]] = []
        for trail in range(listed, MAX_TRAILS):
            probed += [entry_key(0, trail), head_key(trail)]
        holding = {item["pk"]["S"] for item in self._batch_get(probed, "pk")}
        further = [
            trail
            for trail in range(listed, MAX_TRAILS)
            if {entry_key(0, trail)["pk"]["S"], head_key(trail)["pk"]["S"]} & holding
        ]
        return [*range(listed), *further]

    # -- query index ------------------------------------------------------------------

    def write_index(self, rows: Sequence[tuple[str, str, int, int, bytes]]) -> None:
        """Index rows (facet, value, timestamp ms, seq, entry): idempotent puts."""
        trail = {"trail": {"N": str(self.trail)}} if self.trail else {}
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        **index_key(facet, value, ts, seq, self.trail),
                        "entry": {"B": entry},
                        "seq": {"N": str(seq)},
                        **trail,
                    }
                }
            }
            for facet, value, ts, seq, entry in rows
        ]
        self._batch_write(requests)

    def iter_index(
        self, facet: str, value: str, since_ms: int, until_ms: int, *, page_size: int = 100
    ) -> Iterator[tuple[int, int, bytes]]:
        """(trail, leaf index, entry) indexed under ``facet``/``value`` with
        ``since_ms <= ts < until_ms``, oldest first (every trail's rows, in (timestamp,
        leaf index, trail) order), page after page (``page_size`` items each) for as long
        as the caller keeps reading: a caller that filters further stops when it has
        enough."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"{INDEX_PREFIX}{facet}#{value}"},
                ":lo": {"S": f"{since_ms:013d}#"},
                ":hi": {"S": f"{max(since_ms, until_ms - 1):013d}#~"},
            },
            "Limit": page_size,
        }
        while True:
            page = self.client.query(**kwargs)
            for i in page["Items"]:
                trail = int(i["trail"]["N"]) if "trail" in i else 0
                yield trail, int(i["seq"]["N"]), bytes(i["entry"]["B"])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def query_index(
        self, facet: str, value: str, since_ms: int, until_ms: int, limit: int
    ) -> list[tuple[int, int, bytes]]:
        """The first ``limit`` entries of :meth:`iter_index`."""
        rows = self.iter_index(facet, value, since_ms, until_ms, page_size=limit)
        return list(itertools.islice(rows, limit))

    # -- batching ---------------------------------------------------------------------

    def _batch_get(self, keys: Sequence[Mapping[str, Any]], projection: str) -> Iterator[Any]:
        placeholders = {"#h": "hash", "#hd": "head"}
        tokens = {token.strip() for token in projection.split(",")}
        names = {k: v for k, v in placeholders.items() if k in tokens}
        for start in range(0, len(keys), _BATCH_GET):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": list(keys[start : start + _BATCH_GET]),
                    "ConsistentRead": True,
                    "ProjectionExpression": projection,
                    **({"ExpressionAttributeNames": names} if names else {}),
                }
            }
            for attempt in range(10):
                response = self.client.batch_get_item(RequestItems=request)
                yield from response["Responses"].get(self.table_name, [])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.01 * 2**attempt)
            else:  # pragma: no cover - DynamoDB throttling for a second and more
                raise LedgerError("BatchGetItem kept returning unprocessed keys")

    def _batch_write(self, requests: Sequence[Mapping[str, Any]]) -> None:
        """Idempotent puts, in parallel. Deliberately PutItem, not BatchWriteItem: IAM
        cannot grant BatchWriteItem without also granting its deletes, and the service
        role may never delete from the ledger table."""
        items = [r["PutRequest"]["Item"] for r in requests]
        if len(items) <= 1:
            for item in items:
                self.client.put_item(TableName=self.table_name, Item=item)
            return
        with ThreadPoolExecutor(max_workers=min(PARALLEL_WRITES, len(items))) as pool:
            list(
                pool.map(
                    lambda item: self.client.put_item(TableName=self.table_name, Item=item), items
                )
            )


class DynamoNodeStore:
    """:class:`~app.ledger.merkle.NodeStore` over the ledger table, up to a given size.

    ``tree_size`` is the size of the signed head the store was opened at: every node of
    that tree has been written before the head that makes it visible.
    """

    def __init__(self, table: LedgerTable, size: int):
        self._table = table
        self._size = size

    def tree_size(self) -> int:
        return self._size

    def read_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        return self._table.read_node_hashes(ids)
