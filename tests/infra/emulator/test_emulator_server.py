"""The one harness (``infra/emulator/server.py``): moto always starts with DynamoDB's
isolation and the routing memoisation, a taken port is refused before anything starts,
and free ports and reachability answer as the callers rely on."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

from infra.emulator import dynamodb_isolation
from infra.emulator import server as harness
from infra.emulator.server import endpoint_reachable, free_port, start_moto_server


def test_moto_starts_with_the_isolation_and_the_memoisation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed: list[str] = []
    monkeypatch.setattr(
        dynamodb_isolation, "serialize_moto_dynamodb", lambda: installed.append("isolation")
    )
    monkeypatch.setattr(harness, "memoize_moto_routing", lambda: installed.append("routing"))
    server, endpoint = start_moto_server()
    try:
        assert sorted(installed) == ["isolation", "routing"]
        assert endpoint.startswith("http://127.0.0.1:") and endpoint_reachable(endpoint)
    finally:
        server.stop()


def test_the_isolation_is_installed_for_the_session(moto_endpoint: str) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    assert getattr(DynamoDBBackend, "_hub_serialized", False)


def test_a_taken_port_is_refused_before_anything_starts() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is already in use"):
            start_moto_server(port=port)


def test_a_free_port_can_be_bound_and_nothing_answers_there() -> None:
    port = free_port()
    assert not endpoint_reachable(f"http://127.0.0.1:{port}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.mark.parametrize("url", ["", "not a url", "http://127.0.0.1:notaport", "http:///x"])
def test_a_malformed_endpoint_is_unreachable(url: str) -> None:
    assert not endpoint_reachable(url)


def test_emulator_credentials_replace_real_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-looking")
    harness.use_emulator_credentials()
    seen: dict[str, Any] = {k: os.environ[k] for k in harness.EMULATOR_CREDENTIALS}
    assert seen == harness.EMULATOR_CREDENTIALS
