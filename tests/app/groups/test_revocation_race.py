"""Revocation race: reads hammer a group while a member leaves (or is removed).

The property: once the leave (or remove) call has returned, no read that *starts*
afterwards succeeds. Reads that started before may succeed or fail: they raced the
change. Each read records its start time and outcome; the check is exact, not
statistical, and requires that some reads really did overlap the change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hub_testkit import Hub, build_group

from app.groups.membership import MemberRole

READERS = 4
READS_AFTER = 5  # each reader keeps going this many reads past the revocation


def race(
    hub: Hub, gid: str, reader: str, revoke: Callable[[], Any]
) -> tuple[list[tuple[float, int]], float]:
    done_at: list[float] = []
    stop = threading.Event()
    outcomes: list[tuple[float, int]] = []
    lock = threading.Lock()
    headers = hub.headers(reader)

    def read_loop() -> None:
        after = 0
        while not stop.is_set() and after < READS_AFTER:
            started = time.monotonic()
            code = hub.client.get(f"/groups/{gid}", headers=headers).status_code
            with lock:
                outcomes.append((started, code))
            if done_at and started > done_at[0]:
                after += 1

    with ThreadPoolExecutor(READERS) as pool:
        futures = [pool.submit(read_loop) for _ in range(READERS)]
        time.sleep(0.3)  # let reads get going: they must overlap the change
        response = revoke()
        assert response.status_code == 200, response.text
        done_at.append(time.monotonic())
        for f in futures:
            f.result(timeout=60)
        stop.set()
    return outcomes, done_at[0]


def check(outcomes: list[tuple[float, int]], returned_at: float) -> None:
    before = [code for started, code in outcomes if started < returned_at]
    after = [code for started, code in outcomes if started > returned_at]
    assert 200 in before, "no read succeeded before the change: the race did not happen"
    assert len(after) >= READERS * READS_AFTER
    stale = [code for code in after if code == 200]
    assert stale == [], f"{len(stale)} reads succeeded after the change had returned"
    assert set(after) == {403}


def test_no_read_succeeds_after_leave_returned(hub: Hub) -> None:
    gid = build_group(hub)
    outcomes, returned_at = race(
        hub,
        gid,
        "dr-member",
        lambda: hub.client.post(f"/groups/{gid}/leave", headers=hub.headers("dr-member")),
    )
    check(outcomes, returned_at)


def test_no_read_succeeds_after_removal_returned(hub: Hub) -> None:
    gid = build_group(hub)
    hub.services.groups.invite(hub.principal("dr-lead"), gid, "M20013", MemberRole.MEMBER)
    hub.services.groups.accept(hub.principal("dr-racer"), gid)
    outcomes, returned_at = race(
        hub,
        gid,
        "dr-racer",
        lambda: hub.client.delete(f"/groups/{gid}/members/M20013", headers=hub.headers("dr-lead")),
    )
    check(outcomes, returned_at)


def test_no_read_succeeds_after_close_returned(hub: Hub) -> None:
    gid = build_group(hub)
    outcomes, returned_at = race(
        hub,
        gid,
        "dr-member",
        lambda: hub.client.post(f"/groups/{gid}/close", headers=hub.headers("dr-lead")),
    )
    check(outcomes, returned_at)
