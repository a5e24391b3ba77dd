"""A real Synapse for the messaging tests, once per session, only when they run.

The session fixture starts :class:`app.messaging.local.LocalMessaging`: Synapse with
SQLite on a free loopback port (about two seconds), configured by the project, pushing
to the hub's application service endpoint served in a thread. Only the tests in this
directory that ask for ``messaging`` pay for it; drift reports go to a session
:class:`messaging_testkit.DriftLog`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from api_contract import CONTRACT, checked
from messaging_testkit import DriftLog

from app.messaging.local import LocalMessaging


@pytest.fixture(scope="session")
def drift_log() -> DriftLog:
    return DriftLog()


@pytest.fixture(scope="session")
def messaging(
    tmp_path_factory: pytest.TempPathFactory, drift_log: DriftLog
) -> Iterator[LocalMessaging]:
    local = LocalMessaging(
        tmp_path_factory.mktemp("messaging"), rate_limits="test", on_drift=drift_log
    )
    # What the hub answers Synapse is held to the API document like every other response.
    checked(local.app, CONTRACT)
    with local:
        yield local


_numbers = itertools.count(100001)


@pytest.fixture
def new_reg_nos() -> Callable[[int], list[str]]:
    """Fresh synthetic registration numbers (each test gets doctors of its own)."""
    return lambda count: [f"ZZ{next(_numbers)}" for _ in range(count)]
