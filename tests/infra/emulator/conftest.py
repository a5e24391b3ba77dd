"""Fixtures for emulator tests: inventories of what an account holds on the emulator,
and cached clients per account (``fresh_account`` is in ``tests/infra/conftest.py``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import boto3
import pytest

_clients: dict[tuple[str, str, str | None], Any] = {}


def _client(service: str, endpoint: str) -> Any:
    # One client per account: tests switch accounts by changing the credentials in the
    # environment, and boto3's default session would keep the first ones.
    key = (service, endpoint, os.environ.get("AWS_ACCESS_KEY_ID"))
    if key not in _clients:
        _clients[key] = boto3.session.Session().client(
            service, endpoint_url=endpoint, region_name="ap-east-1"
        )
    return _clients[key]


def _inventory(endpoint: str) -> dict[str, int]:
    """How many of each kind of resource the current account holds on the emulator."""
    kms = _client("kms", endpoint)
    keys = [k["KeyId"] for k in kms.list_keys()["Keys"]]
    apigw = _client("apigateway", endpoint)
    apis = apigw.get_rest_apis()["items"]
    return {
        "buckets": len(_client("s3", endpoint).list_buckets()["Buckets"]),
        "enabled_keys": sum(
            kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "Enabled" for k in keys
        ),
        "aliases": len([a for a in kms.list_aliases()["Aliases"] if "hub-" in a["AliasName"]]),
        "tables": len(_client("dynamodb", endpoint).list_tables()["TableNames"]),
        "user_pools": len(
            _client("cognito-idp", endpoint).list_user_pools(MaxResults=60)["UserPools"]
        ),
        "roles": len(_client("iam", endpoint).list_roles()["Roles"]),
        "functions": len(_client("lambda", endpoint).list_functions()["Functions"]),
        "rest_apis": len(apis),
        "deployments": sum(len(apigw.get_deployments(restApiId=a["id"])["items"]) for a in apis),
        "authorizers": sum(len(apigw.get_authorizers(restApiId=a["id"])["items"]) for a in apis),
        "log_groups": len(_client("logs", endpoint).describe_log_groups()["logGroups"]),
        "trails": len(_client("cloudtrail", endpoint).describe_trails()["trailList"]),
        "topics": len(_client("sns", endpoint).list_topics()["Topics"]),
        "subscriptions": len(_client("sns", endpoint).list_subscriptions()["Subscriptions"]),
        "web_acls": len(_client("wafv2", endpoint).list_web_acls(Scope="REGIONAL")["WebACLs"]),
    }


Inventory = Callable[[str], dict[str, int]]


@pytest.fixture
def inventory() -> Inventory:
    """Counts of each kind of resource the current account holds on the emulator."""
    return _inventory


@pytest.fixture
def aws_client() -> Callable[[str, str], Any]:
    """``aws_client(service, endpoint)``: a cached boto3 client for the current account."""
    return _client
