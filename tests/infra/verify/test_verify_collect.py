"""Collection helpers: absent configuration, unreadable reads, plain data."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from infra.verify.clients import ClientFactory
from infra.verify.collect import (
    SELECTIONS_NOT_READ,
    Targets,
    collect,
    fetch,
    plain,
    unreadable_reason,
)


def _raise(error: Exception) -> Any:
    def call() -> Any:
        raise error

    return call


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "GetThing")


def test_absent_configuration_is_none() -> None:
    assert fetch(_raise(_client_error("NoSuchBucketPolicy")), "NoSuchBucketPolicy") is None


def test_other_errors_are_unreadable_with_the_reason() -> None:
    value = fetch(_raise(_client_error("AccessDenied")), "NoSuchBucketPolicy")
    assert unreadable_reason(value) == "AccessDenied: no"
    down = fetch(_raise(EndpointConnectionError(endpoint_url="http://127.0.0.1:9")))
    assert "EndpointConnectionError" in str(unreadable_reason(down))


def test_responses_become_plain_data() -> None:
    response = {
        "ResponseMetadata": {"RequestId": "x"},
        "Trail": {"Name": "t", "When": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
    }
    assert fetch(lambda: response, pick="Trail") == {
        "Name": "t",
        "When": "2026-01-01T00:00:00+00:00",
    }
    assert plain([b"abc", (1, 2)]) == ["abc", [1, 2]]
    assert unreadable_reason({"Name": "t"}) is None


@pytest.mark.integration
def test_an_unreachable_endpoint_fails_checks_instead_of_aborting() -> None:
    quick = Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2)
    with socket.socket() as closed:
        # bound but not listening: connections to it are refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        clients = ClientFactory(endpoint_url=f"http://127.0.0.1:{port}", config=quick)
        snapshot = collect(clients, Targets(keys={"records": "arn:aws:kms:ap-east-1:1:key/x"}))
    assert unreadable_reason(snapshot["keys"]["records"]["metadata"])


def _stubbed_backup(*, selections: bool) -> tuple[ClientFactory, Stubber, list[str]]:
    """A client factory whose backup client answers from a Stubber (botocore's own), and
    the operations it was asked for, in order."""
    clients = ClientFactory(
        endpoint_url="http://127.0.0.1:9", config=Config(retries={"max_attempts": 1})
    )
    backup = clients("backup")  # cached: collect gets this very client
    asked: list[str] = []
    backup.meta.events.register(
        "provide-client-params.backup", lambda model, **_: asked.append(model.name)
    )
    stub = Stubber(backup)
    stub.add_response("list_backup_plans", {"BackupPlansList": [{"BackupPlanId": "p1"}]})
    stub.add_response(
        "get_backup_plan",
        {
            "BackupPlan": {
                "BackupPlanName": "hub",
                "Rules": [{"RuleName": "daily", "TargetBackupVaultName": "vault"}],
            }
        },
        {"BackupPlanId": "p1"},
    )
    if selections:
        stub.add_response(
            "list_backup_selections",
            {"BackupSelectionsList": [{"SelectionId": "s1"}]},
            {"BackupPlanId": "p1"},
        )
        stub.add_response(
            "get_backup_selection",
            {
                "BackupSelection": {
                    "SelectionName": "all",
                    "IamRoleArn": "arn:aws:iam::123456789012:role/backup",
                    "Resources": [TABLE_ARN],
                }
            },
            {"BackupPlanId": "p1", "SelectionId": "s1"},
        )
    stub.add_response(
        "describe_backup_vault", {"BackupVaultName": "vault"}, {"BackupVaultName": "vault"}
    )
    return clients, stub, asked


TABLE_ARN = "arn:aws:dynamodb:ap-east-1:123456789012:table/hub-records"


def test_real_aws_reads_each_plans_selections() -> None:
    clients, stub, asked = _stubbed_backup(selections=True)
    with stub:
        snapshot = collect(clients, Targets(backup_vault="vault"))
        stub.assert_no_pending_responses()
    assert "ListBackupSelections" in asked and "GetBackupSelection" in asked
    assert snapshot["backup"]["plans"][0]["selected"] == [TABLE_ARN]


def test_the_emulator_is_not_asked_for_selections_it_does_not_have() -> None:
    """moto answers ListBackupSelections with NotImplemented (and a server-side traceback
    per attempt): where the record's gap says so, the selections are not asked for."""
    clients, stub, asked = _stubbed_backup(selections=False)
    with stub:
        snapshot = collect(clients, Targets(backup_vault="vault", backup_selections=False))
        stub.assert_no_pending_responses()
    assert "ListBackupSelections" not in asked and "GetBackupSelection" not in asked
    assert asked == ["ListBackupPlans", "GetBackupPlan", "DescribeBackupVault"]
    # unavailable, so evaluation takes the declared selection (test_verify_evaluate.py)
    assert snapshot["backup"]["plans"][0]["selected"] == SELECTIONS_NOT_READ
