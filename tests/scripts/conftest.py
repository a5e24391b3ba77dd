"""The walk-throughs' platform, once per session: one phase on the session's moto server,
seeded as ``hub local up`` seeds it, its API served through the local API gateway built
from the program's declaration (``infra.standalone_platform``).

``walkthrough_platform`` yields a :class:`Platform`: the local.json document, the API base
URL (``http://127.0.0.1:<port>/v1``) and a state directory holding ``local.json`` and the
demo users' authenticator secrets, so every walk-through signs in as a real client (SRP,
then the TOTP challenge of the authenticator it enrolled at its first sign-in).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from walkthrough_testkit import Platform

from infra.standalone_platform import standalone_platform


@pytest.fixture(scope="session")
def messaging_platform(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """The same platform with messaging on: its own Synapse (started only when a test asks)."""
    state_dir = tmp_path_factory.mktemp("messaging-walkthrough-state")
    with standalone_platform(moto_endpoint, messaging=True) as (doc, api):
        (state_dir / "local.json").write_text(json.dumps(doc))
        yield Platform(doc, api, state_dir)


@pytest.fixture(scope="session")
def walkthrough_platform(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    state_dir = tmp_path_factory.mktemp("walkthrough-state")
    with standalone_platform(moto_endpoint) as (doc, api):
        (state_dir / "local.json").write_text(json.dumps(doc))
        yield Platform(doc, api, state_dir)


@pytest.fixture(scope="session")
def intake_platform(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """Phase 2 (community-care intake on: the resource server, the clinic systems' app
    clients and the pool's domain, as the program declares them), through the gateway."""
    state_dir = tmp_path_factory.mktemp("intake-walkthrough-state")
    with standalone_platform(moto_endpoint, stack="phase2-hospital-authority") as (doc, api):
        (state_dir / "local.json").write_text(json.dumps(doc))
        yield Platform(doc, api, state_dir)
