"""Session fixtures for infrastructure tests that need a live (emulated) deployment.

``deployed_stacks`` deploys all three phase stacks once per session through the
emulator onto the session moto server and returns ``{stack: DeploymentRecord}``. The
emulator tests and the post-deploy verification tests share it, so the suite pays
for one deploy of each stack.

moto keeps one in-process state per account, and every moto server in this process
shares it. ``fresh_account`` switches the process's credentials to an STS-assumed role
in a new account, so a test can deploy, destroy or fail a deploy without touching the
session's ``deployed_stacks`` (account 123456789012).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
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


_accounts = itertools.count(210000000001)


def _switch_account(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    account = str(next(_accounts))
    sts = boto3.session.Session().client("sts", endpoint_url=endpoint, region_name="ap-east-1")
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/hub-emulator-test", RoleSessionName="hub-tests"
    )["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
    return account


@pytest.fixture
def fresh_account(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Credentials for an empty moto account for one test; returns its account id."""
    return _switch_account(moto_endpoint, monkeypatch)


@pytest.fixture(scope="module")
def module_account(moto_endpoint: str) -> Iterator[str]:
    """One empty moto account shared by a module's tests (a new account costs moto a
    few seconds to initialise); yields its account id."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _switch_account(moto_endpoint, monkeypatch)
