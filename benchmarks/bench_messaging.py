"""Messaging benchmark: E2E message delivery and removal on the local Synapse.

One Synapse (SQLite, loopback, the project's configuration with the test rate limits)
and the hub's application service, started once (start-up time reported). For groups
of 5 and 50 doctors (one device each, all joined, every receiver long-polling sync):

1. **Delivery latency**: one member sends ``--messages`` end-to-end encrypted messages
   one after another (each send checks membership, shares the Megolm key when needed,
   encrypts); latency = from calling ``send_text`` to each other member's sync having
   decrypted and verified it. p50/p99 over all (message, receiver) pairs. Baseline in
   the same run and room: the same number of unencrypted events sent with a bare
   client-server PUT and seen in the receivers' raw ``/sync`` (what the server alone
   costs), so the ratio is the price of the E2E client.
2. **Removal**: ``--removals`` times, the hub removes one member (``RoomAuthority.remove``)
   and the sender sends one message at once; time from the removal call to the removed
   member's sync showing the room left (p50/p99), and how many of the messages sent after
   a removal the removed member's device can decrypt from the server's ciphertext
   (must be 0). Each removed member is re-admitted and rejoins before the next round.

Run: ``.venv/bin/python -m benchmarks messaging [--messages 20] [--removals 10]``.
The machine is shared: figures are medians/percentiles of one run, not a lab number.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from app.messaging.e2e import EncryptedMessenger, ReceivedMessage
from app.messaging.local import LocalMessaging

GROUP_SIZES = (5, 50)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Receiver:
    """Long-polls one device's sync and stamps when each message arrives."""

    def __init__(self, device: EncryptedMessenger) -> None:
        self.device = device
        self.arrivals: dict[str, float] = {}
        self._stop = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stop = False
        self.task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while not self._stop:
            for delivery in await self.device.sync(timeout_ms=2000):
                if isinstance(delivery, ReceivedMessage):
                    self.arrivals.setdefault(delivery.event_id, time.monotonic())

    async def stop(self) -> None:
        self._stop = True
        if self.task is not None:
            await self.task


class RawReceiver:
    """The baseline: a bare ``/sync`` long-poll that stamps unencrypted events by id."""

    def __init__(self, base_url: str, token: str, since: str | None = None) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self.arrivals: dict[str, float] = {}
        self._since = since
        self._stop = False
        self.task: asyncio.Task[None] | None = None

    async def prime(self) -> None:
        answer = await self._http.get("/_matrix/client/v3/sync", params={"timeout": "0"})
        self._since = answer.json()["next_batch"]

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while not self._stop:
            params = {"timeout": "2000", "since": self._since or ""}
            body = (await self._http.get("/_matrix/client/v3/sync", params=params)).json()
            now = time.monotonic()
            self._since = body["next_batch"]
            for room in body.get("rooms", {}).get("join", {}).values():
                for event in room.get("timeline", {}).get("events", []):
                    self.arrivals.setdefault(event["event_id"], now)

    async def stop(self) -> None:
        self._stop = True
        if self.task is not None:
            await self.task
        await self._http.aclose()


async def wait_until(condition: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not met in time")
        await asyncio.sleep(0.005)  # the receivers' long-polls run meanwhile


async def run_group(
    messaging: LocalMessaging, size: int, messages: int, removals: int
) -> dict[str, Any]:
    authority = messaging.authority
    reg_nos = [f"ZZ{size}{i:04d}" for i in range(size)]
    group = uuid.uuid4().hex
    room_id = authority.create_group_room(group, reg_nos).room_id
    sessions = [authority.open_session(r) for r in reg_nos]
    devices = [EncryptedMessenger(s) for s in sessions]
    setup = time.monotonic()
    for device in devices:
        await device.start()
        await device.join(room_id)
    sender, others = devices[0], devices[1:]
    # Warm-up: the first send shares the room key with every device (Olm sessions).
    warm = await sender.send_text(room_id, "warm-up")
    receivers = [Receiver(d) for d in others]
    for receiver in receivers:
        receiver.start()
    await wait_until(lambda: all(warm in r.arrivals for r in receivers))
    setup_s = time.monotonic() - setup

    e2e: list[float] = []
    for i in range(messages):
        started = time.monotonic()
        event_id = await sender.send_text(room_id, f"synthetic message {i}")
        await wait_until(lambda event_id=event_id: all(event_id in r.arrivals for r in receivers))
        e2e.extend(r.arrivals[event_id] - started for r in receivers)

    # Baseline: unencrypted events through the server alone, same room, same receivers.
    for receiver in receivers:
        await receiver.stop()
    raw = [RawReceiver(messaging.base_url, s.access_token) for s in sessions[1:]]
    for receiver in raw:
        await receiver.prime()
        receiver.start()
    plain: list[float] = []
    async with httpx.AsyncClient(
        base_url=messaging.base_url,
        headers={"Authorization": f"Bearer {sessions[0].access_token}"},
        timeout=30,
    ) as bare:
        for i in range(messages):
            started = time.monotonic()
            answer = await bare.put(
                f"/_matrix/client/v3/rooms/{quote(room_id)}/send/org.example.bench/{uuid.uuid4().hex}",
                json={"n": i},
            )
            event_id = answer.json()["event_id"]
            await wait_until(lambda event_id=event_id: all(event_id in r.arrivals for r in raw))
            plain.extend(r.arrivals[event_id] - started for r in raw)
    for receiver in raw:
        await receiver.stop()

    # Removal: from the hub's decision to the member's sync losing the room.
    for receiver in receivers:
        receiver.start()
    lost: list[float] = []
    readable_after = 0
    for round_ in range(removals):
        index = round_ % len(others)
        removed, reg_no = others[index], reg_nos[index + 1]
        removed.left_rooms.pop(room_id, None)
        started = time.monotonic()
        authority.remove(group, reg_no)
        after = await sender.send_text(room_id, f"after removal {round_}")
        await wait_until(lambda removed=removed: room_id in removed.left_rooms)
        lost.append(removed.left_rooms[room_id] - started)
        served = messaging.client.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(after)}"
        )
        if isinstance(removed.open_event(room_id, served), ReceivedMessage):
            readable_after += 1
        authority.admit(group, reg_no)
        await wait_until(lambda removed=removed: room_id in removed.invited_rooms)
        await receivers[index].stop()
        await removed.join(room_id)
        receivers[index].start()

    for receiver in receivers:
        await receiver.stop()
    for device in devices:
        await device.close()
    return {
        "size": size,
        "setup_s": setup_s,
        "e2e": e2e,
        "plain": plain,
        "lost": lost,
        "readable_after": readable_after,
        "removals": removals,
    }


def report(result: dict[str, Any]) -> None:
    e2e, plain, lost = result["e2e"], result["plain"], result["lost"]
    ms = 1000.0
    print(f"\ngroup of {result['size']} (setup: joins + first key share {result['setup_s']:.1f} s)")
    print(
        f"  E2E delivery, send -> member's sync   p50 {percentile(e2e, 50) * ms:7.1f} ms"
        f"   p99 {percentile(e2e, 99) * ms:7.1f} ms   ({len(e2e)} samples)"
    )
    print(
        f"  baseline, unencrypted bare PUT/sync   p50 {percentile(plain, 50) * ms:7.1f} ms"
        f"   p99 {percentile(plain, 99) * ms:7.1f} ms   ({len(plain)} samples)"
    )
    ratio = percentile(e2e, 50) / percentile(plain, 50)
    print(f"  ratio E2E / baseline (p50)            {ratio:.2f}x")
    print(
        f"  removal -> member loses the room      p50 {percentile(lost, 50) * ms:7.1f} ms"
        f"   p99 {percentile(lost, 99) * ms:7.1f} ms   ({len(lost)} removals)"
    )
    print(
        f"  messages after removal the removed member could decrypt: "
        f"{result['readable_after']} of {result['removals']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--removals", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(GROUP_SIZES))
    args = parser.parse_args(argv)
    # nio logs every key it is still waiting for; the figures are the output here.
    logging.getLogger("nio").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as data:
        messaging = LocalMessaging(Path(data), rate_limits="test")
        started = time.monotonic()
        with messaging:
            print(
                f"Synapse ready in {messaging.homeserver.started_in_s:.2f} s "
                f"(with the application service endpoint: {time.monotonic() - started:.2f} s)"
            )
            results = [
                asyncio.run(run_group(messaging, size, args.messages, args.removals))
                for size in args.sizes
            ]
    for result in results:
        report(result)
    failed = any(r["readable_after"] for r in results)
    return 1 if failed else 0
