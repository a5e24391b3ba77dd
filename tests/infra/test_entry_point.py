"""The Pulumi entry point (``infra/__main__.py``) reads the engine's config and declares."""

from __future__ import annotations

import runpy
from pathlib import Path

import pulumi
import pytest

from infra.config_source import pulumi_config_strings, read_stage_file
from infra.mockrun import PreviewMocks, StackNotDeployed, _reset_pulumi_runtime, run_program
from infra.stage import CORE_STACK, RegionRefused

ENTRY = Path(__file__).resolve().parents[2] / "infra" / "__main__.py"


def run_entry_point(
    stack: str, config: dict[str, object], mocks: PreviewMocks | None = None
) -> PreviewMocks:
    mocks = mocks or PreviewMocks()
    _reset_pulumi_runtime()
    pulumi.runtime.set_mocks(mocks, project="hub", stack=stack, preview=False)
    pulumi.runtime.set_all_config(pulumi_config_strings(config))

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(ENTRY), run_name="__main__")

    program()
    return mocks


def test_entry_point_declares_the_stack_from_engine_config() -> None:
    """A layer's entry point reads the core through its StackReference."""
    core = run_program(CORE_STACK).outputs
    mocks = run_entry_point(
        "phase2-hospital-authority",
        read_stage_file("phase2-hospital-authority"),
        PreviewMocks(references={CORE_STACK: core}, stack="phase2-hospital-authority"),
    )
    types = {a.typ for a in mocks.captured}
    assert "aws:cognito/identityProvider:IdentityProvider" in types
    assert "aws:wafv2/webAcl:WebAcl" not in types  # the core's web ACL guards the one API
    assert "aws:cognito/userPool:UserPool" not in types  # the core's pool is used
    providers = [a for a in mocks.captured if a.typ.startswith("aws:cognito/identityProvider")]
    assert {p.inputs["userPoolId"] for p in providers} == {core["userPoolId"]}


def test_a_layer_without_its_core_is_refused_before_declaring() -> None:
    mocks = PreviewMocks(stack="phase2-hospital-authority")  # no core deployed
    with pytest.raises(StackNotDeployed, match="deploy phase1-specialist first"):
        run_program("phase2-hospital-authority", mocks=mocks)
    assert mocks.captured == []


def test_entry_point_refuses_other_regions_before_declaring() -> None:
    config = dict(read_stage_file("phase1-specialist"))
    config["aws:region"] = "eu-central-1"
    mocks = PreviewMocks()
    with pytest.raises(RegionRefused):
        run_entry_point("phase1-specialist", config, mocks)
    assert mocks.captured == []
