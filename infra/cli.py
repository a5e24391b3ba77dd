"""The operator CLI, ``hub``: preview, local platform, deploy, verify and rollout.

Thin by design: each command parses its options and calls into ``infra``; the logic
lives in the modules it calls.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from infra.audit_cli import audit_app
from infra.stage import STACK_PHASES, StageConfigError

app = typer.Typer(help="Health Collaboration Hub operator CLI", no_args_is_help=True)
console = Console()

StackOption = Annotated[
    list[str] | None,
    typer.Option("--stack", "-s", help="Stack(s) to act on; default: all three phases."),
]


@app.callback()
def _root() -> None:
    """Health Collaboration Hub operator CLI."""


def _stacks(selected: list[str] | None) -> list[str]:
    stacks = selected or list(STACK_PHASES)
    unknown = [s for s in stacks if s not in STACK_PHASES]
    if unknown:
        raise typer.BadParameter(
            f"unknown stack {unknown[0]!r}; expected one of {', '.join(STACK_PHASES)}",
            param_hint="--stack",
        )
    return stacks


@app.command()
def preview(stack: StackOption = None) -> None:
    """Run the program for each stack (mock runtime, no cloud) and list what it would create."""
    from infra.mockrun import run_program

    for name in _stacks(stack):
        try:
            run = run_program(name)
        except StageConfigError as error:
            console.print(f"[red]{name}: configuration error:[/red] {error}")
            raise typer.Exit(2) from None
        groups = run.by_component()
        total = sum(len(v) for v in groups.values())
        table = Table(
            title=f"{name} (phase {run.stage.phase}): {total} resources to create",
            title_justify="left",
        )
        table.add_column("component")
        table.add_column("type")
        table.add_column("logical name")
        for component in sorted(groups):
            for resource in sorted(groups[component], key=lambda r: (r.type, r.name)):
                table.add_row(
                    component,
                    resource.type,
                    resource.name + (" [dim](protected)[/dim]" if resource.protect else ""),
                )
        console.print(table)


# --------------------------------------------------------------------------- shared

StateDirOption = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="HUB_STATE_DIR",
        help="Where deployment records, reports and local.json live.",
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
SingleStack = Annotated[str, typer.Option("--stack", "-s", help="The stack to act on.")]
DEFAULT_STATE_DIR = Path(".hub")
DEFAULT_MOTO_PORT = 5000
DEFAULT_API_PORT = 8000
DEFAULT_API_STACK = "phase3-private-practice"


def _one_stack(stack: str) -> str:
    return _stacks([stack])[0]


def _endpoint(explicit: str | None, state_dir: Path) -> str:
    """The emulator endpoint: explicit, else the running local platform's."""
    from infra.emulator.local import default_emulator_credentials, read_local_json
    from infra.emulator.server import endpoint_reachable

    if explicit:
        default_emulator_credentials()
        return explicit
    local = read_local_json(state_dir)
    if local and local.get("emulatorEndpoint") and endpoint_reachable(local["emulatorEndpoint"]):
        default_emulator_credentials()
        return str(local["emulatorEndpoint"])
    console.print(
        "[red]No AWS endpoint:[/red] pass --endpoint URL, set AWS_ENDPOINT_URL, or "
        "start the local platform with `hub local up`. (The emulator never "
        "targets real AWS; use --target pulumi for that.)"
    )
    raise typer.Exit(2)


def _print_gaps(records: list[Any]) -> None:
    """One row per gap; a gap recorded by several stacks is listed once."""
    rows: dict[tuple[str, str], tuple[list[str], Any]] = {}
    for record in records:
        for gap in record.gaps:
            key = (gap.resource, gap.property)
            rows.setdefault(key, ([], gap))[0].append(f"p{record.phase}")
    if not rows:
        return
    table = Table(
        title=f"Emulator gaps ({len(rows)}): declared, not enforced by the emulator, "
        "and the checks that cover each instead",
        title_justify="left",
    )
    table.add_column("phases", no_wrap=True)
    table.add_column("resource")
    table.add_column("property")
    table.add_column("covered by")
    for (resource, prop), (phases, gap) in sorted(rows.items()):
        table.add_row(",".join(phases), resource, prop, "\n".join(gap.covered_by))
    console.print(table)
    console.print(
        "[dim]What each gap leaves unenforced, and why: `gaps` in "
        "<state-dir>/deployments/<stack>.json[/dim]"
    )


def _deploy_with_progress(
    stacks: list[str], endpoint: str, state_dir: Path, config: dict[str, Any] | None = None
) -> list[Any]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from infra.emulator import deploy

    records = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("[dim]{task.completed} resources[/dim]"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        for stack in stacks:
            task = progress.add_task(f"deploying {stack}", total=None)

            def tick(line: str, task: Any = task) -> None:
                if line.startswith(("created", "updated")):
                    progress.advance(task)

            try:
                record = deploy(
                    stack, endpoint_url=endpoint, state_dir=state_dir, config=config, progress=tick
                )
            except StageConfigError as error:
                progress.stop()
                console.print(f"[red]{stack}: configuration error:[/red] {error}")
                raise typer.Exit(2) from None
            progress.update(
                task,
                description=f"[green]deployed[/green] {stack}",
                total=len(record.resources),
                completed=len(record.resources),
            )
            records.append(record)
    return records


def _verify(
    record: Any, endpoint: str | None, report_dir: Path | None, *, show: bool = True
) -> tuple[bool, list[str], list[str]] | None:
    """Run the post-deploy checks; None when the verify package is unavailable."""
    try:
        from infra.verify import verify_stack
        from infra.verify.report import render_table, write_reports
    except ImportError as error:
        console.print(
            f"[yellow]Post-deploy verification is unavailable:[/yellow] infra.verify "
            f"could not be imported ({error})."
        )
        return None
    report = verify_stack(record, endpoint_url=endpoint)
    if show:
        render_table(report, console)
    paths = [str(p) for p in write_reports(report, report_dir)] if report_dir else []
    failed = sorted({f"{c.id} ({c.resource})" for c in report.failed})
    return report.passed, failed, paths


# ---------------------------------------------------------------------------- local

local_app = typer.Typer(
    help="The local platform on an embedded AWS emulator (moto).", no_args_is_help=True
)
app.add_typer(local_app, name="local")
app.add_typer(audit_app, name="audit")


@local_app.command("up")
def local_up(
    port: Annotated[int, typer.Option(help="Port of the embedded moto server.")] = (
        DEFAULT_MOTO_PORT
    ),
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
    api_port: Annotated[int, typer.Option(help="Port of the API.")] = DEFAULT_API_PORT,
    api_stack: Annotated[str, typer.Option(help="The phase the API serves.")] = (DEFAULT_API_STACK),
    direct: Annotated[
        bool,
        typer.Option(
            "--direct",
            help="Serve the app directly on uvicorn, without the local API gateway "
            "(debugging only: no authorizer, caps, binary handling or web ACL).",
        ),
    ] = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Start moto on 127.0.0.1, deploy and verify all three phases, seed demo data, start
    the API."""
    import signal
    import threading
    import time

    from infra.emulator import start_moto_server
    from infra.emulator.local import (
        API_NOTE,
        cohort_ids,
        mark_stopped,
        use_emulator_credentials,
        write_local_json,
    )
    from infra.emulator.provision import Context
    from infra.emulator.rollout import record_verification
    from infra.emulator.seed import seed_stack

    started = time.monotonic()
    use_emulator_credentials()
    try:
        server, endpoint = start_moto_server(port=port)
    except OSError as error:
        console.print(
            f"[red]Cannot start the emulator:[/red] {error}. Choose another port "
            "with --port, or stop what holds it."
        )
        raise typer.Exit(2) from None
    console.print(f"Embedded AWS (moto) listening on [bold]{endpoint}[/bold]")
    try:
        stacks = _stacks(None)
        records = _deploy_with_progress(stacks, endpoint, state_dir)
        _print_gaps(records)

        verification: dict[str, Any] = {}
        for record in records:
            outcome = _verify(record, endpoint, state_dir / "reports" / record.stack, show=False)
            if outcome is None:
                verification[record.stack] = {
                    "verified": None,
                    "note": "infra.verify is not available",
                }
                continue
            passed, failed, paths = outcome
            record_verification(
                state_dir, record, passed=passed, failed_checks=failed, report_paths=paths
            )
            verification[record.stack] = {"passed": passed, "failed": failed, "reports": paths}
            colour = "green" if passed else "red"
            console.print(
                f"verify {record.stack}: [{colour}]"
                f"{'passed' if passed else 'FAILED'}[/{colour}]"
                + (f" ({len(failed)} failed: {', '.join(failed)})" if failed else "")
                + (f"; reports in {Path(paths[0]).parent}" if paths else "")
            )

        ctx = Context(endpoint, "ap-east-1")
        seeds = [seed_stack(r, cohort_ids(r.stack), ctx) for r in records]
        stack_outputs = {
            r.stack: {"phase": r.phase, "release": r.release, "outputs": r.outputs} for r in records
        }

        def write(api_url: str | None = None, note: str = API_NOTE) -> Path:
            return write_local_json(
                state_dir,
                endpoint_url=endpoint,
                stacks=stack_outputs,
                seeds=seeds,
                verification=verification,
                gaps={r.stack: len(r.gaps) for r in records},
                api_base_url=api_url,
                api_stack=api_stack if api_url else None,
                api_note=note,
            )

        path = write()
        api_server, api_url, api_note = None, None, API_NOTE
        if api and serve:
            # the API reads its settings (pool, tables) from local.json, so it starts after
            api_server, api_url, api_note = _start_api(
                state_dir, _one_stack(api_stack), api_port, direct
            )
            path = write(api_url, api_note)
        _print_ready(endpoint, path, records, seeds, api_url, api_note, time.monotonic() - started)
        if not serve:
            console.print("[dim]--no-serve: stopping the emulator; its state is gone.[/dim]")
            mark_stopped(state_dir)
            return
        console.print("[bold]Ready.[/bold] Press Ctrl-C to stop the local platform.")
        stop = threading.Event()
        # SIGTERM (a supervisor, `kill`) stops as cleanly as Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(timeout=1.0):
                pass
        except KeyboardInterrupt:
            pass
        console.print("\nStopping the local platform...")
        if api_server is not None:
            api_server.stop()
        mark_stopped(state_dir)
    finally:
        server.stop()


def _print_ready(
    endpoint: str,
    local_json: Path,
    records: list[Any],
    seeds: list[Any],
    api_url: str | None,
    api_note: str,
    elapsed: float,
) -> None:
    table = Table(title=f"Local platform ready in {elapsed:.1f} s", title_justify="left")
    table.add_column("phase")
    table.add_column("user pool")
    table.add_column("register table")
    table.add_column("demo users")
    table.add_column("gaps")
    for record, seed in zip(records, seeds, strict=True):
        table.add_row(
            record.stack,
            record.outputs["userPoolId"],
            record.outputs["tableNames"]["register"],
            f"{len(seed.users)} ({seed.register_entries} register entries)",
            str(len(record.gaps)),
        )
    console.print(table)
    console.print(
        f"Emulator endpoint: [bold]{endpoint}[/bold] (export AWS_ENDPOINT_URL={endpoint})"
    )
    console.print(f"Stack outputs and demo logins (synthetic): [bold]{local_json}[/bold]")
    console.print(f"Deployment records: {local_json.parent / 'deployments'}")
    if api_url:
        console.print(f"API: [bold]{api_url}[/bold] (OpenAPI document at {api_url}/openapi.json)")
    else:
        console.print(f"API: not started. {api_note}")


def _start_api(
    state_dir: Path, stack: str, port: int, direct: bool = False
) -> tuple[Any, str | None, str]:
    """Start the sharing service in a background thread, behind the local API gateway
    unless ``direct``; (server, base URL, note)."""
    from infra.emulator.local import read_local_json

    try:
        from app.local import LocalApi
        from infra.emulator.gateway.local import serve_stack
    except ImportError as error:
        note = f"The sharing service could not be imported ({error}); the API is not running."
        console.print(f"[yellow]{note}[/yellow]")
        return None, None, note
    try:
        document = read_local_json(state_dir) or {}
        if direct:
            server = LocalApi(document, stack, port=port)
            return server, server.start(), ""
        gateway = serve_stack(
            state_dir, stack, endpoint=str(document["emulatorEndpoint"]), port=port
        )
        return gateway, gateway.base_url, ""
    except Exception as error:  # a port in use, a service start-up error: say which
        note = f"The API did not start on 127.0.0.1:{port}: {error}"
        console.print(f"[yellow]{note}[/yellow]")
        return None, None, note


@local_app.command("down")
def local_down(state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Tear the local platform down: destroy its stacks (if the emulator still runs) and
    remove the local state."""
    from infra.emulator import destroy
    from infra.emulator.local import read_local_json, remove_state, use_emulator_credentials
    from infra.emulator.server import endpoint_reachable

    local = read_local_json(state_dir)
    endpoint = (local or {}).get("emulatorEndpoint")
    if endpoint and endpoint_reachable(endpoint):
        use_emulator_credentials()
        for stack in reversed(_stacks(None)):
            result = destroy(stack, endpoint_url=endpoint, state_dir=state_dir, force=True)
            console.print(
                f"{stack}: deleted {len(result.deleted)} resources"
                + (f", [red]{len(result.failed)} failed[/red]" if result.failed else "")
            )
    else:
        console.print("No running emulator from `hub local up` (its state went with it).")
    removed = remove_state(state_dir)
    console.print(f"Removed {len(removed)} local state entries under {state_dir}.")


# ----------------------------------------------------------------------- deploy/verify


class Target(StrEnum):
    emulator = "emulator"
    pulumi = "pulumi"


@app.command("deploy")
def deploy_command(
    stack: SingleStack,
    target: Annotated[
        Target,
        typer.Option(
            help="emulator (moto/LocalStack) or pulumi (real AWS via the Automation API)."
        ),
    ],
    endpoint: EndpointOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Deploy one stack through the emulator or through Pulumi."""
    stack = _one_stack(stack)
    if target is Target.pulumi:
        _deploy_with_pulumi(stack, state_dir)
        return
    url = _endpoint(endpoint, state_dir)
    records = _deploy_with_progress([stack], url, state_dir)
    _print_gaps(records)
    console.print(f"Record: {records[0].path_for(stack, state_dir)}")


@app.command("destroy")
def destroy_command(
    stack: SingleStack,
    force: Annotated[bool, typer.Option(help="Also delete protected resources.")] = False,
    endpoint: EndpointOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Delete what the emulator deployed for a stack; protected resources stay unless
    --force, and the output lists them."""
    from infra.emulator import destroy

    stack = _one_stack(stack)
    url = _endpoint(endpoint, state_dir)
    result = destroy(stack, endpoint_url=url, state_dir=state_dir, force=force)
    console.print(f"{stack}: deleted {len(result.deleted)} resources")
    for name, reason in result.kept:
        console.print(f"  [yellow]kept[/yellow] {name}: {reason}")
    for name, error in result.failed:
        console.print(f"  [red]failed[/red] {name}: {error}")
    if result.failed:
        raise typer.Exit(1)


def _deploy_with_pulumi(stack: str, state_dir: Path) -> None:
    import shutil

    from infra.config_source import ROOT

    if shutil.which("pulumi") is None:
        console.print(
            "[red]The Pulumi CLI is not installed[/red] (no `pulumi` on PATH). "
            "--target pulumi drives it through the Automation API; install it "
            "from https://www.pulumi.com/docs/install/ or use --target emulator."
        )
        raise typer.Exit(3)
    from pulumi import automation as auto

    from infra.emulator.record import DeploymentRecord, current_release, now_utc
    from infra.emulator.record import program_version as version

    try:
        workspace_stack = auto.select_stack(stack_name=stack, work_dir=str(ROOT))
        result = workspace_stack.up(on_output=lambda line: console.print(line, end=""))
    except Exception as error:  # the Automation API raises several unrelated types
        console.print(f"[red]pulumi up failed for {stack}:[/red] {error}")
        raise typer.Exit(3) from None
    outputs = {k: ("[secret]" if v.secret else v.value) for k, v in result.outputs.items()}
    record = DeploymentRecord(
        stack=stack,
        phase=int(outputs.get("phase", 0) or 0),
        region=str(outputs.get("region", "ap-east-1")),
        account_id="",
        endpoint_url=None,
        target="pulumi",
        deployed_at=now_utc(),
        program_version=version(),
        release=current_release(),
        outputs=outputs,
        resources=[],
        gaps=[],
    )
    console.print(f"Record: {record.save(state_dir)}")


@app.command("verify")
def verify_command(
    stack: SingleStack,
    endpoint: EndpointOption = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the JSON and Markdown reports "
            "(default: <state-dir>/reports/<stack>)."
        ),
    ] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Run the post-deploy checks against a deployed stack."""
    from infra.emulator import load_record
    from infra.emulator.rollout import record_verification

    stack = _one_stack(stack)
    record = load_record(stack, state_dir)
    if record is None:
        console.print(
            f"[red]{stack} has no deployment record under {state_dir}[/red]; deploy it first."
        )
        raise typer.Exit(2)
    url = _endpoint(endpoint, state_dir) if record.target == "emulator" else endpoint
    outcome = _verify(record, url, report_dir or state_dir / "reports" / stack)
    if outcome is None:
        raise typer.Exit(2)
    passed, failed, paths = outcome
    record_verification(state_dir, record, passed=passed, failed_checks=failed, report_paths=paths)
    for path in paths:
        console.print(f"Report: {path}")
    if not passed:
        console.print(f"[red]{stack}: {len(failed)} check(s) failed[/red]")
        raise typer.Exit(1)
    console.print(f"[green]{stack}: all checks passed[/green]")


# --------------------------------------------------------------------------- rollout

rollout_app = typer.Typer(help="Promote a release phase by phase, gated.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")


@rollout_app.command("status")
def rollout_status(state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Each phase: deployed? verified? which release?"""
    from infra.emulator.record import current_release
    from infra.emulator.rollout import phase_status

    table = Table(
        title=f"Rollout (this checkout: release {current_release()})", title_justify="left"
    )
    for column in ("phase", "stack", "deployed", "release", "target", "verified"):
        table.add_column(column)
    for stack in _stacks(None):
        s = phase_status(stack, state_dir)
        verified = (
            "[green]yes[/green] " + (s.verified_at or "")
            if s.verified
            else "[red]failed[/red]"
            if s.failed_checks
            else "no"
        )
        table.add_row(
            str(s.phase),
            stack,
            f"yes {s.deployed_at}" if s.deployed else "no",
            s.release or "-",
            s.target or "-",
            verified,
        )
    console.print(table)


@rollout_app.command("promote")
def rollout_promote(
    to: Annotated[str, typer.Option("--to", help="The stack to promote the release to.")],
    endpoint: EndpointOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Gate, policy-check, deploy and verify the current release on the next phase."""
    from infra.emulator.record import current_release
    from infra.emulator.rollout import (
        promotion_refusal,
        record_promotion,
        record_verification,
    )

    to = _one_stack(to)
    release = current_release()
    refusal = promotion_refusal(to, state_dir, release)
    if refusal:
        console.print(f"[red]Refused:[/red] cannot promote {release} to {to}: {refusal}.")
        record_promotion(
            state_dir, {"to": to, "release": release, "result": "refused", "reason": refusal}
        )
        raise typer.Exit(2)
    url = _endpoint(endpoint, state_dir)
    blocking = _policy_gate(to)
    if blocking:
        record_promotion(
            state_dir,
            {"to": to, "release": release, "result": "policy-violation", "violations": blocking},
        )
        raise typer.Exit(2)
    records = _deploy_with_progress([to], url, state_dir)
    _print_gaps(records)
    outcome = _verify(records[0], url, state_dir / "reports" / to)
    if outcome is None:
        record_promotion(
            state_dir,
            {
                "to": to,
                "release": release,
                "result": "unverified",
                "reason": "infra.verify is not available",
            },
        )
        console.print(
            "[red]Promotion incomplete:[/red] deployed but not verified; a phase "
            "only counts once verified."
        )
        raise typer.Exit(2)
    passed, failed, paths = outcome
    record_verification(
        state_dir, records[0], passed=passed, failed_checks=failed, report_paths=paths
    )
    record_promotion(
        state_dir,
        {
            "to": to,
            "release": release,
            "result": "promoted" if passed else "verification-failed",
            "failed_checks": failed,
            "reports": paths,
        },
    )
    if not passed:
        console.print(f"[red]{to}: deployed but verification failed[/red]: {', '.join(failed)}")
        raise typer.Exit(1)
    console.print(f"[green]Promoted {release} to {to}[/green] (deployed and verified).")


def _policy_gate(stack: str) -> list[str]:
    """Run the policy pack over the stack's declared inputs; the blocking violations."""
    try:
        from infra.policies.pack import evaluate_stack
    except ImportError as error:
        console.print(
            f"[red]Refused:[/red] the policy pack is unavailable ({error}); "
            "promotion fails closed without it."
        )
        raise typer.Exit(2) from None
    from infra.config_source import read_stage_file
    from infra.mockrun import run_program

    run = run_program(stack)
    findings = evaluate_stack(run.resources, read_stage_file(stack))
    blocking = [f for f in findings if getattr(f, "blocking", False)]
    for f in blocking:
        console.print(f"[red]policy violation[/red] {f.policy} on {f.resource_name}: {f.message}")
    if not blocking:
        console.print(f"Policy pack: {len(findings)} findings, no blocking violation.")
    return [f"{f.policy} ({f.resource_name})" for f in blocking]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
