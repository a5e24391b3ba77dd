"""Fixtures for emulator tests that must not disturb the shared session deployment.

moto keeps one in-process state per account, and every moto server in this process
shares it. ``fresh_account`` switches the process's credentials to an STS-assumed role
in a new account, so a test can deploy, destroy or fail a deploy without touching the
session's ``deployed_stacks`` (account 123456789012).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import boto3
import pytest

_accounts = itertools.count(210000000001)


@pytest.fixture
def fresh_account(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Credentials for an empty moto account; yields its account id."""
    account = str(next(_accounts))
    sts = boto3.client("sts", endpoint_url=moto_endpoint, region_name="ap-east-1")
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/hub-emulator-test", RoleSessionName="hub-tests"
    )["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
    yield account
