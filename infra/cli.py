"""The operator CLI, ``hub``: preview, local platform, deploy, verify and rollout.

Thin by design: each command parses its options, calls one library function and prints
what it returns. Promotion is :func:`infra.rollout.promote`, the local platform is
:func:`infra.local_platform.start_local_platform`, deploys go through the deployers of
:mod:`infra.rollout`. Exit codes, one-line errors, full-width tables and ``--json``
follow :mod:`infra.cli_output`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from infra.audit_cli import audit_app
from infra.cli_output import (
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    EXIT_TOOL_MISSING,
    JsonOption,
    OperatorError,
    OperatorGroup,
    Output,
    table,
)
from infra.institutions_cli import affiliations_app, institutions_app
from infra.local_platform import (
    DEFAULT_API_PORT,
    DEFAULT_API_STACK,
    DEFAULT_MOTO_PORT,
    DEFAULT_STATE_DIR,
    StartupObserver,
)
from infra.metrics_cli import metrics_app
from infra.stage import CORE_STACK, STACK_PHASES, StageConfigError

if TYPE_CHECKING:
    from infra.emulator.record import DeploymentRecord
    from infra.local_platform import LocalPlatform
    from infra.rollout import Deployer, Verification

app = typer.Typer(
    cls=OperatorGroup,
    help="Health Collaboration Hub operator CLI.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)

StackOption = Annotated[
    list[str] | None,
    typer.Option("--stack", "-s", help="Stack(s) to act on (repeatable); default: all three."),
]
StateDirOption = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="HUB_STATE_DIR",
        help="Where deployment records, reports, rollout.json and local.json live.",
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        envvar="AWS_ENDPOINT_URL",
        help="AWS-compatible endpoint (default: the running `hub local up`).",
    ),
]
SingleStack = Annotated[
    str, typer.Option("--stack", "-s", help="The stack to act on (a stage in stages/).")
]


class Target(StrEnum):
    emulator = "emulator"
    pulumi = "pulumi"


TargetOption = Annotated[
    Target,
    typer.Option(
        help="emulator (moto/LocalStack at --endpoint) or pulumi (real AWS through "
        "Pulumi's Automation API)."
    ),
]


def _version(value: bool) -> None:
    if value:
        from infra.emulator.record import current_release, package_version

        typer.echo(f"hub {package_version()} (release {current_release()})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and this checkout's release, and exit.",
        ),
    ] = False,
) -> None:
    """Health Collaboration Hub operator CLI."""


app.add_typer(audit_app, name="audit")
app.add_typer(metrics_app, name="metrics")
app.add_typer(institutions_app, name="institutions")
app.add_typer(affiliations_app, name="affiliations")

# --------------------------------------------------------------------------- shared


def _stacks(selected: Sequence[str] | None) -> list[str]:
    stacks = list(selected or STACK_PHASES)
    unknown = [s for s in stacks if s not in STACK_PHASES]
    if unknown:
        raise OperatorError(
            f"unknown stack {unknown[0]!r}; expected one of {', '.join(STACK_PHASES)}"
        )
    return stacks


def _one_stack(stack: str) -> str:
    return _stacks([stack])[0]


@contextmanager
def _stage_errors(stack: str) -> Iterator[None]:
    """A bad stage file is one line naming the stack and the key, exit 2; so is a layer
    deployed without its core, or a stack destroyed under a layer."""
    from infra.emulator.engine import LayerStands
    from infra.mockrun import StackNotDeployed

    try:
        yield
    except StageConfigError as error:
        raise OperatorError(f"{stack}: configuration error: {error}") from None
    except (StackNotDeployed, LayerStands) as error:
        raise OperatorError(f"refused: {error}") from None


def _endpoint(explicit: str | None, state_dir: Path) -> str:
    """The emulator endpoint: explicit, else the running local platform's."""
    from infra.emulator.local import read_local_json
    from infra.emulator.server import default_emulator_credentials, endpoint_reachable

    if explicit:
        default_emulator_credentials()
        return explicit
    local = read_local_json(state_dir)
    if local and local.get("emulatorEndpoint") and endpoint_reachable(local["emulatorEndpoint"]):
        default_emulator_credentials()
        return str(local["emulatorEndpoint"])
    raise OperatorError(
        "no AWS endpoint: pass --endpoint URL, set AWS_ENDPOINT_URL, or start the local "
        "platform with `hub local up` (the emulator never targets real AWS; use "
        "--target pulumi for that)"
    )


def _deployer(target: Target, endpoint: str | None, state_dir: Path) -> Deployer:
    from infra.rollout import EmulatorDeployer, PulumiDeployer

    if target is Target.pulumi:
        return PulumiDeployer()
    return EmulatorDeployer(_endpoint(endpoint, state_dir))


class _DeployProgress:
    """A spinner per stack, counting the resources created or updated."""

    def __init__(self, out: Output):
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("[dim]{task.completed} resources[/dim]"),
            TimeElapsedColumn(),
            console=out.console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.stopped = False

    def start(self, stack: str) -> None:
        self.progress.start()  # idempotent
        self.tasks[stack] = self.progress.add_task(f"deploying {stack}", total=None)

    def line(self, stack: str, line: str) -> None:
        if stack not in self.tasks:
            self.start(stack)
        if line.startswith(("created", "updated")):
            self.progress.advance(self.tasks[stack])

    def done(self, record: DeploymentRecord) -> None:
        if record.stack not in self.tasks:
            self.start(record.stack)
        count = len(record.resources)
        self.progress.update(
            self.tasks[record.stack],
            description=f"[green]deployed[/green] {record.stack}",
            total=count,
            completed=count,
        )

    def stop(self) -> None:
        # rich ends a stopped display with a newline off a terminal: once, if one was drawn
        if self.tasks and not self.stopped:
            self.stopped = True
            self.progress.stop()


def _print_gaps(out: Output, records: Sequence[DeploymentRecord]) -> None:
    """One row per gap; a gap recorded by several stacks is listed once."""
    rows: dict[tuple[str, str], tuple[list[str], Any]] = {}
    for record in records:
        for gap in record.gaps:
            rows.setdefault((gap.resource, gap.property), ([], gap))[0].append(f"p{record.phase}")
    if not rows:
        return
    gaps = table(
        f"Emulator gaps ({len(rows)}): declared, not enforced by the emulator, "
        "and the checks that cover each instead",
        "phases",
        "resource",
        "property",
        "covered by",
        no_wrap=("phases",),
    )
    for (resource, prop), (phases, gap) in sorted(rows.items()):
        gaps.add_row(",".join(phases), resource, prop, "\n".join(gap.covered_by))
    out.print(gaps)
    out.print(
        "[dim]What each gap leaves unenforced, and why: `gaps` in "
        "<state-dir>/deployments/<stack>.json[/dim]"
    )


def _verification_line(verification: Verification) -> str:
    failed = verification.failed_checks
    colour = "green" if verification.passed else "red"
    return (
        f"verify {verification.stack}: [{colour}]"
        f"{'passed' if verification.passed else 'FAILED'}[/{colour}]"
        + (f" ({len(failed)} failed: {', '.join(failed)})" if failed else "")
        + (
            f"; reports in {Path(verification.report_paths[0]).parent}"
            if verification.report_paths
            else ""
        )
    )


def _record_json(record: DeploymentRecord, state_dir: Path) -> dict[str, Any]:
    return {
        "stack": record.stack,
        "phase": record.phase,
        "target": record.target,
        "release": record.release,
        "deployed_at": record.deployed_at,
        "record": str(record.path_for(record.stack, state_dir)),
        "resources": len(record.resources),
        "gaps": [g.to_json() for g in record.gaps],
        "outputs": record.outputs,
    }


# -------------------------------------------------------------------------- preview


@app.command()
def preview(stack: StackOption = None, json_output: JsonOption = False) -> None:
    """Run the program for each stack (mock runtime, no cloud) and list what it would create."""
    from infra.mockrun import run_program

    out = Output(json_output)
    document = []
    for name in _stacks(stack):
        with _stage_errors(name):
            run = run_program(name)
        groups = run.by_component()
        total = sum(len(v) for v in groups.values())
        listing = table(
            f"{name} (phase {run.stage.phase}): {total} resources to create",
            "component",
            "type",
            "logical name",
        )
        resources = []
        for component in sorted(groups):
            for resource in sorted(groups[component], key=lambda r: (r.type, r.name)):
                listing.add_row(
                    component,
                    resource.type,
                    resource.name + (" [dim](protected)[/dim]" if resource.protect else ""),
                )
                resources.append(
                    {
                        "component": component,
                        "type": resource.type,
                        "name": resource.name,
                        "protected": resource.protect,
                    }
                )
        out.print(listing)
        document.append({"stack": name, "phase": run.stage.phase, "resources": resources})
    out.json({"stacks": document})


# ---------------------------------------------------------------------------- local

local_app = typer.Typer(
    help="The local platform on an embedded AWS emulator (moto).", no_args_is_help=True
)
app.add_typer(local_app, name="local")


class _StartupDisplay(StartupObserver):
    """Draws the local platform's start-up: deploy spinners, gaps, verification lines."""

    def __init__(self, out: Output):
        self.out = out
        self.deploys = _DeployProgress(out)

    def emulator_started(self, endpoint: str) -> None:
        self.out.print(f"Embedded AWS (moto) listening on [bold]{endpoint}[/bold]")

    def deploying(self, stack: str) -> None:
        self.deploys.start(stack)

    def deploy_progress(self, stack: str, line: str) -> None:
        self.deploys.line(stack, line)

    def deployed(self, record: DeploymentRecord) -> None:
        self.deploys.done(record)

    def all_deployed(self, records: Sequence[DeploymentRecord]) -> None:
        self.deploys.stop()
        _print_gaps(self.out, records)

    def verified(self, verification: Verification) -> None:
        self.out.print(_verification_line(verification))

    def api_not_started(self, note: str) -> None:
        self.out.print(f"[yellow]{note}[/yellow]")

    def messaging_started(self, homeserver_url: str, started_in_s: float) -> None:
        self.out.print(
            f"Messaging: Synapse at [bold]{homeserver_url}[/bold] (started in "
            f"{started_in_s:.1f} s), the hub's application service and outbox dispatcher"
        )


@local_app.command("up")
def local_up(
    port: Annotated[
        int, typer.Option(help="Port of the embedded moto server on 127.0.0.1 (0: any free).")
    ] = DEFAULT_MOTO_PORT,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Stay in the foreground until Ctrl-C (default), or deploy and exit.",
        ),
    ] = True,
    api: Annotated[
        bool, typer.Option("--api/--no-api", help="Start the sharing service API on 127.0.0.1.")
    ] = True,
    api_port: Annotated[int, typer.Option(help="Port of the API on 127.0.0.1.")] = (
        DEFAULT_API_PORT
    ),
    api_stack: Annotated[str, typer.Option(help="The phase (stack) the API serves.")] = (
        DEFAULT_API_STACK
    ),
    direct: Annotated[
        bool,
        typer.Option(
            "--direct",
            help="Serve the app directly on uvicorn, without the local API gateway "
            "(debugging only: no authorizer, caps, binary handling or web ACL).",
        ),
    ] = False,
    messaging: Annotated[
        bool,
        typer.Option(
            "--messaging/--no-messaging",
            help="Start Synapse (the hub's one messaging homeserver, the core's), the hub's "
            "application service and the outbox dispatcher (default).",
        ),
    ] = True,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    json_output: JsonOption = False,
) -> None:
    """Start moto on 127.0.0.1, deploy and verify all three phases, seed demo data, start
    messaging and the API, and stay up until Ctrl-C."""
    from infra.local_platform import start_local_platform

    out = Output(json_output)
    api_stack = _one_stack(api_stack)
    display = _StartupDisplay(out)
    try:
        platform = start_local_platform(
            port=port,
            state_dir=state_dir,
            api=api and serve,
            api_port=api_port,
            api_stack=api_stack,
            direct=direct,
            observer=display,
            messaging=messaging and serve,
        )
    except OSError as error:
        raise OperatorError(
            f"cannot start the emulator: {error}; choose another port with --port, or "
            "stop what holds it"
        ) from None
    except StageConfigError as error:
        raise OperatorError(f"configuration error: {error}") from None
    finally:
        display.deploys.stop()
    try:
        _print_ready(out, platform)
        if messaging and serve and not platform.messaging:
            out.print(
                "Messaging: not started (Synapse is not installed here: "
                "pip install -e '.[messaging]')."
            )
        out.json(platform.summary())
        if not serve:
            out.print("[dim]--no-serve: stopping the emulator; its state is gone.[/dim]")
            return
        out.print("[bold]Ready.[/bold] Press Ctrl-C to stop the local platform.")
        stop = threading.Event()
        # SIGTERM (a supervisor, `kill`) stops as cleanly as Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(timeout=1.0):
                pass
        except KeyboardInterrupt:
            pass
        out.print("\nStopping the local platform...")
    finally:
        platform.stop()


def _print_ready(out: Output, platform: LocalPlatform) -> None:
    ready = table(
        f"Local platform ready in {platform.elapsed_s:.1f} s",
        "phase",
        "user pool",
        "register table",
        "demo users",
        "gaps",
    )
    for record, seed in zip(platform.records, platform.seeds, strict=True):
        ready.add_row(
            record.stack,
            record.outputs["userPoolId"],
            record.outputs["tableNames"]["register"],
            f"{len(seed.users)} ({seed.register_entries} register entries)",
            str(len(record.gaps)),
        )
    out.print(ready)
    endpoint, local_json = platform.endpoint, platform.local_json
    out.print(f"Emulator endpoint: [bold]{endpoint}[/bold] (export AWS_ENDPOINT_URL={endpoint})")
    out.print(f"Stack outputs and demo logins (synthetic): [bold]{local_json}[/bold]")
    out.print(f"Deployment records: {local_json.parent / 'deployments'}")
    if platform.messaging:
        out.print(f"Messaging homeserver: [bold]{platform.messaging['homeserverUrl']}[/bold]")
    if platform.api_url:
        url = platform.api_url
        out.print(f"API: [bold]{url}[/bold] (OpenAPI document at {url}/openapi.json)")
    else:
        out.print(f"API: not started. {platform.api_note}")


@local_app.command("down")
def local_down(
    state_dir: StateDirOption = DEFAULT_STATE_DIR, json_output: JsonOption = False
) -> None:
    """Tear the local platform down: destroy its stacks (if the emulator still runs) and
    remove the local state."""
    from infra.emulator import destroy
    from infra.emulator.local import read_local_json, remove_state
    from infra.emulator.server import endpoint_reachable, use_emulator_credentials

    out = Output(json_output)
    local = read_local_json(state_dir)
    endpoint = (local or {}).get("emulatorEndpoint")
    destroyed: dict[str, Any] = {}
    if endpoint and endpoint_reachable(endpoint):
        use_emulator_credentials()
        for stack in reversed(_stacks(None)):
            result = destroy(stack, endpoint_url=endpoint, state_dir=state_dir, force=True)
            destroyed[stack] = {"deleted": len(result.deleted), "failed": dict(result.failed)}
            out.print(
                f"{stack}: deleted {len(result.deleted)} resources"
                + (f", [red]{len(result.failed)} failed[/red]" if result.failed else "")
            )
    else:
        out.print("No running emulator from `hub local up` (its state went with it).")
    removed = remove_state(state_dir)
    out.print(f"Removed {len(removed)} local state entries under {state_dir}.")
    out.json({"destroyed": destroyed, "removed": [str(p) for p in removed]})


# ----------------------------------------------------------------------- deploy/verify


@app.command("deploy")
def deploy_command(
    stack: SingleStack,
    target: TargetOption,
    endpoint: EndpointOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    json_output: JsonOption = False,
) -> None:
    """Deploy one stack through the emulator or through Pulumi, and record what was
    deployed."""
    from infra.rollout import DeployFailed

    out = Output(json_output)
    stack = _one_stack(stack)
    deployer = _deployer(target, endpoint, state_dir)
    display = _DeployProgress(out)
    try:
        with _stage_errors(stack):
            record = deployer.deploy(
                stack, state_dir=state_dir, progress=lambda line: display.line(stack, line)
            )
        display.done(record)
    except DeployFailed as error:
        raise OperatorError(str(error), EXIT_TOOL_MISSING) from None
    finally:
        display.stop()
    _print_gaps(out, [record])
    out.print(f"Record: {record.path_for(stack, state_dir)} ({len(record.resources)} resources)")
    out.json(_record_json(record, state_dir))


@app.command("destroy")
def destroy_command(
    stack: SingleStack,
    force: Annotated[bool, typer.Option(help="Also delete protected resources.")] = False,
    endpoint: EndpointOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    json_output: JsonOption = False,
) -> None:
    """Delete what the emulator deployed for a stack; protected resources stay unless
    --force, and the output lists them. Exit 1 if a deletion failed."""
    from infra.emulator import destroy, load_record

    out = Output(json_output)
    stack = _one_stack(stack)
    record = load_record(stack, state_dir)
    if record is not None and record.target != "emulator":
        raise OperatorError(
            f"{stack} was deployed with {record.target}, not the emulator; destroy it "
            "with `pulumi destroy`"
        )
    url = _endpoint(endpoint, state_dir)
    with _stage_errors(stack):
        result = destroy(stack, endpoint_url=url, state_dir=state_dir, force=force)
    out.print(f"{stack}: deleted {len(result.deleted)} resources")
    for name, reason in result.kept:
        out.print(f"  [yellow]kept[/yellow] {name}: {reason}")
    for name, error in result.failed:
        out.print(f"  [red]failed[/red] {name}: {error}")
    out.json(
        {
            "stack": stack,
            "deleted": result.deleted,
            "kept": [{"name": n, "reason": r} for n, r in result.kept],
            "failed": [{"name": n, "error": e} for n, e in result.failed],
            "record_removed": result.record_removed,
        }
    )
    if result.failed:
        raise typer.Exit(EXIT_FINDINGS)


@app.command("verify")
def verify_command(
    stack: SingleStack,
    endpoint: EndpointOption = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the reports: JSON, Markdown, HTML, PDF and the diagram "
            "(default: <state-dir>/reports/<stack>)."
        ),
    ] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    json_output: JsonOption = False,
) -> None:
    """Run the post-deploy checks (the audit ledger's integrity included) against a
    deployed stack and write its compliance report, kept signed in the history; exit 1
    if any check fails."""
    from infra.emulator import load_record
    from infra.rollout import emulator_gone, verify_deployment
    from infra.verify.report import render_table

    out = Output(json_output)
    stack = _one_stack(stack)
    record = load_record(stack, state_dir)
    if record is None:
        raise OperatorError(f"{stack} has no deployment record under {state_dir}; deploy it first")
    if record.target == "emulator":
        from infra.emulator.server import endpoint_reachable

        gone = endpoint is None and emulator_gone(record, state_dir, endpoint_reachable)
        if gone:
            raise OperatorError(f"{stack} is not running: {gone}")
        url: str | None = _endpoint(endpoint, state_dir)
    else:
        url = endpoint
    with _stage_errors(stack):
        verification = verify_deployment(
            record, endpoint_url=url, state_dir=state_dir, report_dir=report_dir
        )
    render_table(verification.report, out.console)
    for path in verification.report_paths:
        out.print(f"Report: {path}")
    _print_history(out, verification.history, verification.notes)
    out.json(verification.to_json())
    if not verification.passed:
        out.print(f"[red]{stack}: {len(verification.failed_checks)} check(s) failed[/red]")
        raise typer.Exit(EXIT_FINDINGS)
    out.print(f"[green]{stack}: all checks passed[/green]")


def _print_history(out: Output, kept: Mapping[str, Any], notes: Sequence[str]) -> None:
    if kept:
        signed = "signed" if kept.get("signed") else "UNSIGNED"
        out.print(f"History: {kept.get('path')} ({signed})")
        diff = kept.get("diff") or {}
        if kept.get("previous"):
            changed = len(diff.get("changed") or [])
            out.print(
                f"  since {str(kept['previous'])[:12]}: {changed} check(s) changed status, "
                f"{len(diff.get('added') or [])} added, {len(diff.get('removed') or [])} removed"
            )
        for key in kept.get("archived") or []:
            out.print(f"  archived: s3://.../{key}")
    for note in notes:
        out.print(f"[yellow]{note}[/yellow]")


@app.command("report")
def report_command(
    stack: StackOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where to write the hub report (default: <state-dir>/reports/hub)."
        ),
    ] = None,
    endpoint: EndpointOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    json_output: JsonOption = False,
) -> None:
    """Write the hub's compliance report (JSON, Markdown, HTML, PDF) from each stack's
    latest kept report (run `hub verify` first), signed with the core's ledger key; exit 1
    if any stack's report failed."""
    from infra.compliance.write import latest_kept, signer_and_archive, write_hub_report
    from infra.emulator import load_record
    from infra.verify.clients import ClientFactory

    out = Output(json_output)
    stacks = _stacks(stack)
    reports, records, missing = [], {}, []
    for name in stacks:
        kept = latest_kept(state_dir, name)
        if kept is None:
            missing.append(name)
            continue
        reports.append(kept)
        records[name] = load_record(name, state_dir)
    if missing:
        raise OperatorError(
            f"no kept report of {', '.join(missing)} under {state_dir}; run "
            f"`hub verify --stack {missing[0]}` first"
        )
    signer = archive = None
    core = records.get(stacks[0])
    if core is not None:
        url = endpoint
        if url is None and core.target == "emulator":
            from infra.emulator.local import read_local_json
            from infra.emulator.server import default_emulator_credentials, endpoint_reachable

            local = read_local_json(state_dir) or {}
            found = local.get("emulatorEndpoint") or core.endpoint_url
            if found and endpoint_reachable(str(found)):
                default_emulator_credentials()
                url = str(found)
        if url is not None or core.target != "emulator":
            clients = ClientFactory(
                endpoint_url=url, region=core.region, endpoints=core.endpoints or None
            )
            signer, archive = signer_and_archive(core, clients)
    written = write_hub_report(
        reports,
        {k: v for k, v in records.items() if v is not None},
        out_dir or Path(state_dir) / "reports" / "hub",
        state_dir=state_dir,
        signer=signer,
        archive=archive,
    )
    passed = all(r.passed for r in reports)
    summary = table("Hub compliance report", "stack", "verified", "generated", "failed checks")
    for r in reports:
        summary.add_row(
            r.stack,
            "yes" if r.passed else "[red]NO[/red]",
            r.generated_at,
            str(len(r.failed)),
        )
    out.print(summary)
    for path in written.paths:
        out.print(f"Report: {path}")
    _print_history(out, written.kept.to_json(), written.notes)
    out.json({"passed": passed, **written.to_json()})
    if not passed:
        raise typer.Exit(EXIT_FINDINGS)


@app.command("diagrams")
def diagrams_command(
    out_dir: Annotated[
        Path, typer.Argument(help="Where to write <stack>.dot and <stack>.svg.")
    ] = Path("docs/diagrams"),
    stack: StackOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    json_output: JsonOption = False,
) -> None:
    """Draw each stack's diagram from its deployment record (DOT and SVG): components,
    data flows and trust boundaries."""
    from infra.diagrams import write_diagrams
    from infra.emulator import load_record

    out = Output(json_output)
    records = []
    for name in _stacks(stack):
        record = load_record(name, state_dir)
        if record is None:
            raise OperatorError(
                f"{name} has no deployment record under {state_dir}; deploy it first"
            )
        records.append(record)
    if out_dir.exists() and not out_dir.is_dir():
        raise OperatorError(f"{out_dir}: exists and is not a directory")
    paths = write_diagrams(records, out_dir)
    for path in paths:
        out.print(f"Diagram: {path}")
    out.json({"paths": [str(p) for p in paths]})


# --------------------------------------------------------------------------- rollout

rollout_app = typer.Typer(help="Promote a release phase by phase, gated.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")


@rollout_app.command("status")
def rollout_status(
    state_dir: StateDirOption = DEFAULT_STATE_DIR, json_output: JsonOption = False
) -> None:
    """Each phase: deployed (and still running)? verified? which release?"""
    from infra.emulator.record import current_release
    from infra.rollout import rollout_status as phases

    out = Output(json_output)
    release = current_release()
    statuses = phases(state_dir)
    listing = table(
        f"The hub: one core, its layers (this checkout: release {release})",
        "phase",
        "stack",
        "part",
        "deployed",
        "release",
        "target",
        "verified",
    )
    for s in statuses:
        verified = (
            "[green]yes[/green] " + (s.verified_at or "")
            if s.verified
            else "[red]failed[/red]"
            if s.failed_checks
            else "no"
        )
        deployed = {
            "deployed": f"yes {s.deployed_at}",
            "not running": "[yellow]not running[/yellow]",
            "partially-destroyed": "[yellow]partially destroyed[/yellow]",
        }.get(s.state, "no")
        part = "core" if s.stack == CORE_STACK else f"layer on {CORE_STACK}"
        listing.add_row(
            str(s.phase), s.stack, part, deployed, s.release or "-", s.target or "-", verified
        )
    out.print(listing)
    for s in statuses:
        if s.note:
            out.print(f"[dim]{s.stack}: {s.note}[/dim]")
    core = next(s for s in statuses if s.stack == CORE_STACK)
    hub = {
        "core": CORE_STACK,
        "deployed": core.deployed,
        "layers": [s.stack for s in statuses if s.stack != CORE_STACK and s.deployed],
    }
    out.json({"release": release, "hub": hub, "phases": [s.to_json() for s in statuses]})


@rollout_app.command("promote")
def rollout_promote(
    to: Annotated[str, typer.Option("--to", help="The stack to promote this release to.")],
    target: TargetOption = Target.emulator,
    endpoint: EndpointOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    json_output: JsonOption = False,
) -> None:
    """Gate, policy-check, deploy and verify this checkout's release on the next phase.

    Exit 2 when the gate or the policy pack refuses, 1 when the deployed phase fails
    verification."""
    from infra.rollout import DeployFailed, promote
    from infra.verify.report import render_table

    out = Output(json_output)
    to = _one_stack(to)
    deployer = _deployer(target, endpoint, state_dir)
    display = _DeployProgress(out)
    try:
        with _stage_errors(to):
            promotion = promote(
                to,
                deployer,
                state_dir=state_dir,
                progress=lambda line: display.line(to, line),
            )
        if promotion.record is not None:
            display.done(promotion.record)
    except DeployFailed as error:
        raise OperatorError(str(error), EXIT_TOOL_MISSING) from None
    finally:
        display.stop()
    out.json(promotion.to_json())
    release = promotion.release
    if promotion.result == "refused":
        out.print(f"[red]Refused:[/red] cannot promote {release} to {to}: {promotion.reason}.")
        raise typer.Exit(EXIT_BAD_INPUT)
    policy = promotion.policy
    if promotion.result == "policy-violation":
        assert policy is not None
        for violation in policy.violations():
            out.print(f"[red]policy violation[/red] {violation}")
        if policy.refusal:
            out.print(f"[red]Refused:[/red] {policy.refusal}; promotion fails closed.")
        raise typer.Exit(EXIT_BAD_INPUT)
    if policy is not None:
        out.print(f"Policy pack: {len(policy.findings)} findings, no blocking violation.")
    if promotion.record is not None:
        _print_gaps(out, [promotion.record])
    verification = promotion.verification
    if verification is not None:
        render_table(verification.report, out.console)
    if not promotion.promoted:
        failed = ", ".join(verification.failed_checks) if verification else ""
        out.print(f"[red]{to}: deployed but verification failed[/red]: {failed}")
        raise typer.Exit(EXIT_FINDINGS)
    out.print(f"[green]Promoted {release} to {to}[/green] (deployed and verified).")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
