"""The records walk-through (scripts/demo_records.py) against a real HTTP API on moto.

The walk-through runs end to end through ``standalone_platform`` (the session's moto server,
the platform's own seeding, the API served through the local API gateway built from the
program's declaration), signing in with SRP and the TOTP challenge, with a 3 MiB + 17 byte
imaging file (within Lambda's 6 MB event once base64-encoded; the default is 4 MiB).
``main`` exits 0 only when every step answered with the status the walk-through expects,
so the removed member's 403, the shredded version's 410 and the byte-for-byte comparisons
are each checked by the run itself; the test also checks them in the outcome.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from walkthrough_testkit import Platform, load_script

from app.local import AuthenticatorApp
from infra.standalone_platform import STANDALONE_STACK

IMAGING_BYTES = 3 * (1 << 20) + 17  # several shards and a partial last one

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    return load_script("demo_records")


def test_walkthrough_end_to_end(demo: ModuleType, walkthrough_platform: Platform) -> None:
    platform = walkthrough_platform
    lines: list[str] = []
    outcome = demo.run(
        platform.doc,
        STANDALONE_STACK,
        platform.api,
        IMAGING_BYTES,
        say=lines.append,
        authenticator=AuthenticatorApp(platform.authenticators),
    )
    statuses = outcome.statuses
    assert statuses["unsupported_type"] == 415
    assert statuses["invalid_fhir"] == 422
    assert statuses["upload_bundle"] == statuses["upload_imaging"] == 201
    assert statuses["retry_bundle"] == 201  # the same record, replayed (checked by the run)
    assert statuses["member_bundle"] == statuses["member_imaging"] == 200
    assert statuses["removed_member"] == statuses["removed_member_imaging"] == 403
    assert statuses["shredded_version"] == 410
    assert statuses["latest_after_shred"] == 200
    facts = outcome.facts
    assert facts["member_bundle_matches"] and facts["member_imaging_matches"]
    assert facts["latest_after_shred_matches"]
    # The invalid bundle's error names the element, never the value the document carried.
    assert "birthDate" in facts["invalid_fhir_message"]
    assert "SYNTHETIC-not-a-date" not in facts["invalid_fhir_message"]
    assert any(f"{IMAGING_BYTES} bytes, sha256 matches" in line for line in lines)


def test_a_step_with_an_unexpected_status_fails_the_walkthrough(demo: ModuleType) -> None:
    class Answer:
        status_code = 200
        headers = {"content-type": "application/json"}

        def json(self) -> dict[str, Any]:
            return {"error": {"code": "x", "message": "y"}}

    walk = demo.Walkthrough(None, lambda user: {}, [], "pt-x", 0, say=lambda _: None)
    with pytest.raises(demo.WalkthroughFailed, match="expected HTTP 403, got 200"):
        walk.step("removed_member", "removed member reads", Answer(), 403)


def test_main_reads_local_json_and_exits_zero(
    demo: ModuleType, walkthrough_platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.main(
        [
            "--state-dir",
            str(walkthrough_platform.state_dir),
            "--stack",
            STANDALONE_STACK,
            "--imaging-mib",
            "0.25",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "opens the FHIR bundle again (next request): HTTP 403" in out
    assert "opens version 1: HTTP 410" in out
    assert "Walk-through complete" in out
