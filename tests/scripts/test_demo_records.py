"""The records walk-through (scripts/demo_records.py) through the doctor's client, against a
real HTTP API on moto behind the local API gateway.

The walk-through runs end to end on the session's walk-through platform
(``infra.standalone_platform``: the session's moto server, the platform's own seeding, the
API served through the local API gateway built from the program's declaration, with API
Gateway's and Lambda's caps). Its doctors sign in with SRP and the TOTP challenge
(``hubclient.auth``) and store the walk-through's 50 MiB imaging file (50 MiB + 17 bytes:
13 client shards of 4 MiB, the last partial) sealed on the device, put straight to S3
through presigned URLs: twelve times what the gateway would carry, so the run itself shows
the content never went through it. The 1 GiB file is the script's ``--large-mib 1024``,
run on demand (README), not in the suite.
``main`` exits 0 only when every step ended as the walk-through expects, so the removed
member's 403, the shredded version's 410 and the byte-for-byte comparisons are each checked
by the run itself; the test also checks them in the outcome.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from walkthrough_testkit import Platform, load_script

from infra.standalone_platform import STANDALONE_STACK

IMAGING_BYTES = 50 * (1 << 20) + 17  # the walk-through's 50 MiB, the last of 13 shards partial

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
        state_dir=platform.state_dir,
    )
    results = outcome.results
    assert results["unsupported_type"] == "415"
    assert results["invalid_fhir"] == "422"
    assert results["upload_bundle"] == results["upload_imaging"] == "ok"
    assert results["group_records"] == "ok"
    assert results["member_bundle"] == results["member_imaging"] == "ok"
    assert results["removed_member"] == results["removed_member_imaging"] == "403"
    assert results["shredded_version"] == "410"
    assert results["latest_after_shred"] == "ok"
    facts = outcome.facts
    assert facts["member_bundle_matches"] and facts["member_imaging_matches"]
    assert facts["latest_after_shred_matches"]
    # No request to the API carried record content above its caps, nor the image.
    assert 0 < facts["largest_request"] < min(IMAGING_BYTES, 4 << 20)
    # The invalid bundle's error names the element, never the value the document carried.
    assert "birthDate" in facts["invalid_fhir_message"]
    assert "SYNTHETIC-not-a-date" not in facts["invalid_fhir_message"]
    assert any(f"{IMAGING_BYTES} bytes, every shard verified" in line for line in lines)
    # Every doctor signed in with SRP and TOTP: their authenticators are enrolled.
    assert len(json.loads(platform.authenticators.read_text())) >= 3


def test_a_step_that_does_not_end_as_expected_fails_the_walkthrough(demo: ModuleType) -> None:
    from hubclient.errors import ApiError

    walk = demo.Walkthrough(None, [], "pt-x", 0, Path("."), say=lambda _: None)
    with pytest.raises(demo.WalkthroughFailed, match="expected a refusal"):
        walk.step("removed_member", "removed member reads", lambda: b"content", refused=403)

    def refused() -> None:
        raise ApiError(500, "record_integrity_failure", "no")

    with pytest.raises(demo.WalkthroughFailed, match="HTTP 500"):
        walk.step("member_imaging", "member opens", refused)


def test_main_reads_local_json_and_exits_zero(
    demo: ModuleType, walkthrough_platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.main(
        [
            "--state-dir",
            str(walkthrough_platform.state_dir),
            "--stack",
            STANDALONE_STACK,
            "--api",
            walkthrough_platform.api,
            "--imaging-mib",
            "0.25",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "asks for the key of the FHIR bundle again (next request): refused, HTTP 403" in out
    assert "opens version 1: refused, HTTP 410" in out
    assert "Walk-through complete" in out
