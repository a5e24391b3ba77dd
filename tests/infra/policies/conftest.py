"""Fixtures for the policy-pack tests: each stack's program is run once per session.

The phase stacks are one hub: phase 1's is the core and phases 2 and 3 are layers over
it. ``captured_stacks["hub"]`` is the core with phase 2's layer on top (every resource
the hub has once phase 2 is deployed), for tests that mutate core and layer resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from infra.config_source import read_stage_file
from infra.mockrun import DeclaredResource, run_program
from infra.stage import STACK_PHASES


@dataclass(frozen=True)
class CapturedStack:
    stack: str
    resources: list[DeclaredResource]
    config: dict[str, Any]


@pytest.fixture(scope="session")
def captured_stacks() -> dict[str, CapturedStack]:
    """What the mock runtime captured for each phase stack, from its stage file."""
    captured = {}
    for stack in STACK_PHASES:
        config = read_stage_file(stack)
        run = run_program(stack, config=config)
        captured[stack] = CapturedStack(stack, run.resources, config)
    phase2 = captured["phase2-hospital-authority"]
    captured["hub"] = CapturedStack(
        "hub", captured["phase1-specialist"].resources + phase2.resources, phase2.config
    )
    return captured
