"""The consultation-group walk-through (scripts/demo_groups.py) through the local API
gateway, signing in with SRP and the TOTP challenge, as ``make run`` serves it."""

from __future__ import annotations

import pytest
from walkthrough_testkit import Platform, load_script

from infra.standalone_platform import STANDALONE_STACK

pytestmark = pytest.mark.integration


def test_groups_walkthrough_through_the_gateway(
    walkthrough_platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = load_script("demo_groups")
    assert walkthrough_platform.api.endswith("/v1")  # the gateway's stage, not the app
    code = demo.main(
        ["--state-dir", str(walkthrough_platform.state_dir), "--stack", STANDALONE_STACK]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith("-->")]
    statuses = [int(line.rsplit("HTTP ", 1)[1]) for line in lines]
    # no token (API Gateway's 401), sign-in and /me, create, summon, accept, read, remove,
    # and the removed expert's very next request refused
    assert statuses == [401, 200, 201, 201, 200, 200, 200, 403], out
    assert "reads again (next request): HTTP 403" in out
    assert walkthrough_platform.authenticators.is_file()  # TOTP enrolled at first sign-in
