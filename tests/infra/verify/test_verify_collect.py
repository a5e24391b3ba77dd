"""Collection helpers: absent configuration, unreadable reads, plain data."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from infra.verify.clients import ClientFactory
from infra.verify.collect import Targets, collect, fetch, plain, unreadable_reason


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
