"""Session fixtures for infrastructure tests that need a live (emulated) deployment.

``deployed_stacks`` deploys all three phase stacks once per session through the
emulator onto the session moto server and returns ``{stack: DeploymentRecord}``. The
emulator tests and the post-deploy verification tests share it, so the suite pays
for one deploy of each stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.emulator import DeploymentRecord, deploy
from infra.stage import STACK_PHASES


@pytest.fixture(scope="session")
def hub_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory (``.hub`` equivalent) of the session's deployments."""
    return tmp_path_factory.mktemp("hub-state")


@pytest.fixture(scope="session")
def deployed_stacks(
    moto_endpoint: str, aws_backend: Any, hub_state_dir: Path
) -> dict[str, DeploymentRecord]:
    """All three phase stacks, deployed once per session onto the session moto server
    (under ``--aws-backend=localstack``, the services LocalStack covers onto LocalStack)."""
    return {
        stack: deploy(
            stack,
            endpoint_url=moto_endpoint,
            endpoints=aws_backend.endpoints,
            state_dir=hub_state_dir,
        )
        for stack in STACK_PHASES
    }
