"""The messaging walk-through (scripts/demo_messaging.py) against a real HTTP API on moto
and a real Synapse.

The platform is the walk-throughs' one with messaging on (``messaging_platform``: its own
Synapse, the hub's application service and outbox dispatcher, the notification and
security topics); sign-in is SRP with the TOTP challenge, through the local API gateway.
``run`` raises unless every step answers as the walk-through expects; the test checks the
outcome too: the summons reached the off-line expert by SNS and as a room invitation,
the messages were decrypted by the others, the card names the record, the removed
member can read nothing sent after the removal, and the ledger verifies and holds every
step.
"""

from __future__ import annotations

import pytest
from walkthrough_testkit import Platform, load_script

pytestmark = [pytest.mark.integration, pytest.mark.messaging]


def test_walkthrough_end_to_end(messaging_platform: Platform) -> None:
    demo = load_script("demo_messaging")
    lines: list[str] = []
    doc, api = messaging_platform.doc, messaging_platform.api
    stack = next(iter(doc["stacks"]))
    outcome = demo.run(
        doc, stack, api, say=lines.append, authenticators=messaging_platform.authenticators
    )
    s = outcome.statuses
    assert (s["group"], s["invite"], s["summon"], s["share"]) == (201, 201, 201, 201)
    assert s["accept_colleague"] == s["accept_expert"] == s["remove"] == 200
    assert s["session_lead"] == s["session_colleague"] == s["session_expert"] == 200
    assert outcome.notice["MessageAttributes"]["recipient"]["Value"] == outcome.expert
    assert outcome.group_id[:8] in outcome.notice["Message"]
    assert any("new murmur" in body for body in outcome.received["colleague"])
    assert any("echo today" in body for body in outcome.received["lead"])
    assert outcome.card["record_id"] == outcome.record_id
    assert outcome.card["title"] == "Synthetic ward note"
    assert outcome.removed_can_read == [] and outcome.removed_server_status >= 400
    assert outcome.ledger_ok
    assert outcome.ledger_actions["message.send (a doctor's message)"] >= 3
    assert outcome.ledger_actions["room.membership leave"] >= 1
    assert lines[-1] == "Walk-through complete: every step answered as expected."
