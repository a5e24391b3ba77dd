"""The local platform (``hub local up``) as library code: one hub (the core and the layers
over it) deployed, verified and seeded on an embedded moto, with its API in front.

:func:`start_local_platform` runs the steps in order and returns a
:class:`LocalPlatform` handle; ``stop()`` ends it (idempotent):

1. start moto on loopback (:func:`infra.emulator.server.start_moto_server`, with the
   DynamoDB isolation the ledger relies on), with fake credentials only;
2. deploy the core and then the layers through the emulator (:class:`EmulatorDeployer`);
3. run the post-deploy verification of each (a layer with its core), writing reports;
4. seed synthetic demo data per phase into the one hub: each phase's own institutions,
   register entries, demo users and patients, in the core's pool and tables;
5. write ``local.json`` (:mod:`infra.emulator.local`), with the trails of the hub's
   audit ledger (``ledgerTrails``, :func:`infra.emulator.hub.hub_ledger_trails`: the
   core's, or the highest phase's floor), which every service the platform runs reads;
6. **messaging** (one separate step, :func:`start_messaging`): the hub's one homeserver
   (the core declares it; the layers re-export its outputs). Synapse, started in the
   background right after moto (so it comes up while the stacks deploy), configured by
   the project (:class:`app.messaging.local.PlatformHomeserver`: closed federation, no
   open registration, the hub's application service registered); then the hub's
   private path for it and the outbox dispatcher loop (:class:`app.local.LocalInternal`)
   for the API's stack; its URL and what a client needs go to local.json under
   ``messaging``;
7. start the API (:func:`start_api`: the API reads its settings from local.json and, with
   messaging, points at the local Synapse; without it, :data:`MESSAGING_OFF` switches the
   messaging the stack declares off, so the messaging routes answer 503
   ``messaging_not_configured``) and write local.json again with its URL.

A step that fails stops moto before the error propagates, so nothing is left behind.
What happens is reported to a :class:`StartupObserver` (the CLI draws progress from
it); the default observer says nothing. The platform is loopback-only and synthetic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.stage import REQUIRED_REGION as REGION
from infra.stage import STACK_PHASES

# The emulator (and through it Pulumi's SDK) is imported when a platform starts, not
# with this module: the CLI reads the defaults below, and `hub --version` stays fast.

# The API's messaging settings when no homeserver runs here (--no-messaging, or Synapse
# not installed). Every phase's function declares the messaging component's settings
# (the homeserver URL, the application service secret, which has no value on the
# emulator: its tokens are the operators' to put); left in place, the API would read
# that secret as it starts and fail. Empty, messaging is off (Settings.messaging_enabled).
MESSAGING_OFF: dict[str, str] = {
    "HUB_MATRIX_HOMESERVER_URL": "",
    "HUB_MATRIX_CLIENT_URL": "",
    "HUB_MATRIX_APPSERVICE_URL": "",
    "HUB_MATRIX_APPSERVICE_SECRET_ARN": "",
    "HUB_MATRIX_REGISTRATION_FILE": "",
}
if TYPE_CHECKING:
    from app.local import AuthenticatorApp
    from infra.emulator.record import DeploymentRecord
    from infra.emulator.seed import SeedResult
    from infra.rollout import Deployer, Verification

API_HOST = "127.0.0.1"  # loopback only: the local API is never exposed

DEFAULT_STATE_DIR = Path(".hub")
DEFAULT_MOTO_PORT = 5000
DEFAULT_API_PORT = 8000
DEFAULT_API_STACK = "phase3-private-practice"


class StartupObserver:
    """What the start-up reports as it goes; every method does nothing by default."""

    def emulator_started(self, endpoint: str) -> None:
        """moto answers at ``endpoint``."""

    def deploying(self, stack: str) -> None:
        """The deploy of ``stack`` begins."""

    def deploy_progress(self, stack: str, line: str) -> None:
        """One line per resource and per step of the deploy of ``stack``."""

    def deployed(self, record: DeploymentRecord) -> None:
        """``record.stack`` is deployed."""

    def all_deployed(self, records: Sequence[DeploymentRecord]) -> None:
        """Every phase is deployed; verification begins."""

    def verified(self, verification: Verification) -> None:
        """One phase's verification finished (passed or not)."""

    def api_not_started(self, note: str) -> None:
        """The API was asked for but did not start; ``note`` says why."""

    def messaging_started(self, homeserver_url: str, started_in_s: float) -> None:
        """Synapse answers at ``homeserver_url`` (it took ``started_in_s`` to start)."""


@dataclass
class LocalPlatform:
    """A running local platform. ``stop()`` stops the API, marks local.json stopped (so
    ``hub rollout status`` no longer counts its stacks as deployed) and stops moto."""

    endpoint: str
    state_dir: Path
    records: list[DeploymentRecord]
    verifications: dict[str, Verification]
    seeds: list[SeedResult]
    local_json: Path
    api_url: str | None
    api_note: str
    elapsed_s: float
    _server: Any = field(repr=False)
    _api: Any = field(default=None, repr=False)
    _messaging: Any = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)
    messaging: dict[str, Any] | None = None

    def stop(self) -> None:
        from infra.emulator.local import mark_stopped

        if self._stopped:
            return
        self._stopped = True
        try:
            if self._api is not None:
                self._api.stop()
            if self._messaging is not None:
                self._messaging.stop()
            mark_stopped(self.state_dir)
        finally:
            self._server.stop()

    def summary(self) -> dict[str, Any]:
        """What is running, without the demo passwords (those stay in local.json)."""
        return {
            "emulatorEndpoint": self.endpoint,
            "apiBaseUrl": self.api_url,
            "apiNote": None if self.api_url else self.api_note,
            "localJson": str(self.local_json),
            "readyInSeconds": round(self.elapsed_s, 1),
            "messaging": self.messaging,
            "stacks": {
                r.stack: {
                    "phase": r.phase,
                    "release": r.release,
                    "resources": len(r.resources),
                    "gaps": len(r.gaps),
                    "verified": self.verifications[r.stack].passed,
                    "failedChecks": list(self.verifications[r.stack].failed_checks),
                    "reports": list(self.verifications[r.stack].report_paths),
                    "demoUsers": len(seed.users),
                    "registerEntries": seed.register_entries,
                }
                for r, seed in zip(self.records, self.seeds, strict=True)
            },
        }


def start_local_platform(
    *,
    port: int = DEFAULT_MOTO_PORT,
    state_dir: Path = DEFAULT_STATE_DIR,
    api: bool = True,
    api_port: int = DEFAULT_API_PORT,
    api_stack: str = DEFAULT_API_STACK,
    direct: bool = False,
    observer: StartupObserver | None = None,
    stacks: Sequence[str] = tuple(STACK_PHASES),
    deployer_for: Callable[[str], Deployer] | None = None,
    messaging: bool = True,
) -> LocalPlatform:
    """Start moto, deploy, verify and seed every phase, write local.json, start the API.

    Args:
        port: moto's port on 127.0.0.1 (0: any free port).
        api: start the sharing service's API for ``api_stack`` on ``api_port``, behind the
            local API gateway built from the stack's declared REST API (or, with
            ``direct``, the app alone on uvicorn, for debugging).
        stacks: the phases to bring up, in order (default: all three).
        deployer_for: the deployer for the started emulator's endpoint (default: the
            emulator's own, :class:`infra.rollout.EmulatorDeployer`).
        messaging: start Synapse and the hub's side of it for ``api_stack`` (needs the
            ``messaging`` extra; without Synapse installed the step is skipped and said so).

    Raises:
        OSError: moto's port is taken (nothing was started).
        StageConfigError: a stage file is invalid (moto is stopped again).
    """
    unknown = [s for s in (*stacks, api_stack) if s not in STACK_PHASES]
    if unknown:
        raise ValueError(f"unknown stack {unknown[0]!r}; expected one of {', '.join(STACK_PHASES)}")
    if api and api_stack not in stacks:
        raise ValueError(f"the API's stack {api_stack} is not among the stacks brought up")
    from infra.emulator.hub import hub_ledger_trails
    from infra.emulator.local import API_NOTE, layer_cohort_ids, write_local_json
    from infra.emulator.provision import Context
    from infra.emulator.seed import seed_stack
    from infra.emulator.server import start_moto_server, use_emulator_credentials
    from infra.rollout import EmulatorDeployer, verify_deployment

    observe = observer or StartupObserver()
    started = time.monotonic()
    use_emulator_credentials()
    server, endpoint = start_moto_server(port=port)
    observe.emulator_started(endpoint)
    homeserver = _start_homeserver(state_dir) if messaging else None
    running: LocalMessagingStep | None = None
    try:
        records = _deploy_all(
            (deployer_for or EmulatorDeployer)(endpoint), stacks, state_dir, observe
        )
        observe.all_deployed(records)
        verifications: dict[str, Verification] = {}
        for record in records:
            verification = verify_deployment(record, endpoint_url=endpoint, state_dir=state_dir)
            verifications[record.stack] = verification
            observe.verified(verification)
        ctx = Context(endpoint, REGION)
        # One hub: each phase seeds the institutions it adds into the core's pool and tables.
        seeds = [seed_stack(r, layer_cohort_ids(r.stack), ctx) for r in records]
        # The hub's ledger trails: the core's, or the highest phase's floor (see there).
        ledger_trails = hub_ledger_trails(r.stack for r in records)

        def write(
            api_url: str | None = None, note: str = API_NOTE, web_url: str | None = None
        ) -> Path:
            return write_local_json(
                state_dir,
                endpoint_url=endpoint,
                stacks={
                    r.stack: {"phase": r.phase, "release": r.release, "outputs": r.outputs}
                    for r in records
                },
                seeds=seeds,
                verification={
                    stack: {
                        "passed": v.passed,
                        "failed": list(v.failed_checks),
                        "reports": list(v.report_paths),
                    }
                    for stack, v in verifications.items()
                },
                gaps={r.stack: len(r.gaps) for r in records},
                api_base_url=api_url,
                api_stack=api_stack if api_url else None,
                api_note=note,
                messaging=running.document if running else None,
                web_url=web_url,
                ledger_trails=ledger_trails,
            )

        path = write()
        if homeserver is not None:
            running = start_messaging(homeserver, state_dir, api_stack, endpoint)
            observe.messaging_started(homeserver.base_url, running.started_in_s)
            path = write()
        api_server, api_url, api_note = None, None, API_NOTE
        if api:
            api_server, api_url, api_note = start_api(
                state_dir,
                api_stack,
                api_port,
                direct=direct,
                environment=running.environment if running else None,
            )
            if api_url is None:
                observe.api_not_started(api_note)
            # --direct serves the app alone: the site is the gateway's (an S3 integration)
            web_url = f"{api_url}/web/" if api_url and not direct else None
            path = write(api_url, api_note, web_url)
    except BaseException:
        if running is not None:
            running.stop()
        elif homeserver is not None:
            homeserver.stop()
        server.stop()
        raise
    return LocalPlatform(
        endpoint=endpoint,
        state_dir=state_dir,
        records=records,
        verifications=verifications,
        seeds=seeds,
        local_json=path,
        api_url=api_url,
        api_note=api_note,
        elapsed_s=time.monotonic() - started,
        _server=server,
        _api=api_server,
        _messaging=running,
        messaging=running.document if running else None,
    )


def _start_homeserver(state_dir: Path) -> Any:
    """Synapse starting in the background, or None if it is not installed."""
    import importlib.util

    if importlib.util.find_spec("synapse") is None:
        return None
    from app.messaging.local import PlatformHomeserver

    homeserver = PlatformHomeserver(Path(state_dir) / "messaging")
    homeserver.start_in_background()
    return homeserver


@dataclass
class LocalMessagingStep:
    """Synapse and the hub's side of it, running once for the hub (``stop()`` ends both)."""

    document: dict[str, Any]
    environment: dict[str, str]
    started_in_s: float
    _homeserver: Any = field(repr=False)
    _internal: Any = field(repr=False)

    def stop(self) -> None:
        try:
            self._internal.stop()
        finally:
            self._homeserver.stop()


def start_messaging(
    homeserver: Any, state_dir: Path, stack: str, endpoint: str
) -> LocalMessagingStep:
    """Wait for Synapse, then start the hub's private path for it and the dispatcher.

    The app's settings for ``stack`` come from local.json plus the homeserver's
    (:meth:`PlatformHomeserver.environment`); the API started after this uses the same.
    """
    import os

    from app.local import LocalInternal, settings_from_local_json
    from infra.emulator.local import read_local_json

    started_in_s = homeserver.wait_ready()
    device_store = Path(state_dir) / "messaging" / "hub-device"
    document = {
        **homeserver.document(),
        "deviceStore": str(device_store),
        "dispatcher": "running",
    }
    local = dict(read_local_json(state_dir) or {})
    local["messaging"] = document
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        internal = LocalInternal(settings_from_local_json(local, stack), homeserver.appservice_port)
        internal.start()
    except BaseException:
        homeserver.stop()
        raise
    environment = {
        # Local mode only so the declared function may reach Synapse over plain http on
        # loopback with the registration file; every other setting is the declared one.
        "HUB_MODE": "local",
        **homeserver.environment(device_store),
    }
    outputs = local["stacks"][stack]["outputs"]
    for name, output in (
        ("HUB_NOTIFICATION_TOPIC_ARN", "notificationTopicArn"),
        ("HUB_SECURITY_TOPIC_ARN", "securityTopicArn"),
        ("HUB_OUTBOX_DEAD_LETTER_QUEUE_URL", "outboxDeadLetterQueueUrl"),
    ):
        if outputs.get(output):
            environment[name] = str(outputs[output])
    return LocalMessagingStep(document, environment, started_in_s, homeserver, internal)


def _deploy_all(
    deployer: Deployer, stacks: Sequence[str], state_dir: Path, observe: StartupObserver
) -> list[DeploymentRecord]:
    records = []
    for stack in stacks:
        observe.deploying(stack)

        def progress(line: str, stack: str = stack) -> None:
            observe.deploy_progress(stack, line)

        record = deployer.deploy(stack, state_dir=state_dir, progress=progress)
        observe.deployed(record)
        records.append(record)
    return records


def api_environment(
    document: Mapping[str, Any], environment: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the local platform's API function runs with over its declared environment:
    ``environment`` (the local messaging settings; without it :data:`MESSAGING_OFF`) and
    the trails of the hub's ledger from local.json (``ledgerTrails``) as
    ``HUB_LEDGER_TRAILS``. The declared value is the core's stage's; the platform brings
    the layers up without the promotion gate that would first raise it to their floor
    (:func:`infra.emulator.hub.hub_ledger_trails`)."""
    out = dict(MESSAGING_OFF if environment is None else environment)
    if document.get("ledgerTrails"):
        out["HUB_LEDGER_TRAILS"] = str(int(document["ledgerTrails"]))
    return out


def start_api(
    state_dir: Path,
    stack: str,
    port: int,
    *,
    direct: bool = False,
    environment: Mapping[str, str] | None = None,
) -> tuple[Any, str | None, str]:
    """Serve the sharing service for ``stack`` on 127.0.0.1:``port`` from local.json, in a
    background thread, behind the local API gateway (the request path AWS runs: the
    declared authorizer, caps, binary media types, throttling and web ACL, then the Lambda
    handler) unless ``direct``; returns (server with ``stop()``, base URL, note). A port in
    use or a service that fails to start is reported in the note, not raised: the rest of
    the platform stays useful without the API. ``environment`` is applied over the
    function's declared one (the local messaging settings); without it, messaging is off
    (:data:`MESSAGING_OFF`); the ledger's trails are local.json's (:func:`api_environment`).
    """
    from app.local import LocalApi
    from infra.emulator.gateway.local import serve_stack
    from infra.emulator.local import read_local_json
    from infra.emulator.server import check_port_free

    try:
        check_port_free(API_HOST, port)
        document = read_local_json(state_dir) or {}
        if direct:
            server = LocalApi(document, stack, host=API_HOST, port=port)
            return server, server.start(), ""
        gateway = serve_stack(
            state_dir,
            stack,
            endpoint=str(document["emulatorEndpoint"]),
            port=port,
            environment=api_environment(document, environment),
        )
        return gateway, gateway.base_url, ""
    except Exception as error:  # a port in use, a service start-up error: say which
        return None, None, f"The API did not start on {API_HOST}:{port}: {error}"


def demo_bearer(
    document: Mapping[str, Any], stack: str, authenticators: AuthenticatorApp | Path | None = None
) -> Callable[[Mapping[str, Any]], dict[str, str]]:
    """Sign demo users of a local platform (its local.json ``document``) in through the
    emulated Cognito as a real client does, with SRP (``USER_SRP_AUTH``) and the TOTP
    challenge; returns a function from a demo user (a ``demoUsers`` entry) to their
    ``Authorization`` header.

    ``authenticators`` (the demo users' authenticator app, or the file it keeps its
    secrets in) holds the TOTP secrets enrolled at first sign-in, so later runs answer
    ``SOFTWARE_TOKEN_MFA``; without it they are held for this process only.
    """
    import boto3

    from app.local import AuthenticatorApp, login
    from infra.emulator.server import default_emulator_credentials

    default_emulator_credentials()
    outputs = document["stacks"][stack]["outputs"]
    cognito = boto3.client(
        "cognito-idp", region_name=REGION, endpoint_url=document["emulatorEndpoint"]
    )

    authenticator = (
        authenticators
        if isinstance(authenticators, AuthenticatorApp)
        else AuthenticatorApp(authenticators)
    )

    def bearer(user: Mapping[str, Any]) -> dict[str, str]:
        tokens = login(
            cognito,
            outputs["userPoolId"],
            outputs["userPoolClientIds"][0],
            user["username"],
            user["password"],
            authenticator=authenticator,
        )
        return {"Authorization": f"Bearer {tokens['AccessToken']}"}

    return bearer
