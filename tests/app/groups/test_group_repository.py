"""The groups table's queries read every page: a group, its history, a day's outbox.

Each repository here holds two items per page, so a single-page read would return two;
the answers must equal what the default (one 1 MB page, enough here) repository reads.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub_testkit import Hub, build_group

from app.dynamo import serialize
from app.groups.repository import GroupRepository
from app.outbox import outbox_item


def small_pages(hub: Hub) -> GroupRepository:
    return GroupRepository(hub.dynamodb, hub.settings.table_groups, page_size=2)


def test_group_and_history_cross_page_boundaries(hub: Hub) -> None:
    gid = build_group(hub)  # lead, two invited and accepted, one removed, one invited
    repo, default = small_pages(hub), hub.services.groups._repo

    history = repo.history(gid)
    assert len(history) == 7
    assert history == default.history(gid)
    assert sorted(h["event"] for h in history) == sorted(
        ["add", "invite", "accept", "invite", "accept", "remove", "invite"]
    )

    loaded = repo.load(gid)
    assert loaded is not None and loaded == default.load(gid)
    assert len(loaded[1]) == 4  # META and four memberships: three pages


def test_a_days_outbox_crosses_page_boundaries(hub: Hub) -> None:
    # A day no other test writes to, so the expected events are exactly these.
    start = datetime(2031, 7, 15, 9, 0, tzinfo=UTC)
    written = [
        outbox_item("invitation", start + timedelta(minutes=i), {"recipient": f"M2{i:04d}"})
        for i in range(5)
    ]
    for item in written:
        hub.dynamodb.put_item(TableName=hub.settings.table_groups, Item=serialize(item))

    events = small_pages(hub).outbox("2031-07-15")
    assert [e["recipient"] for e in events] == [f"M2{i:04d}" for i in range(5)]
    assert events == hub.services.groups._repo.outbox("2031-07-15")
