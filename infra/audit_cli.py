"""``hub audit``: verify and export the audit ledger, offline or against a live deployment.

- ``hub audit verify EXPORT [--public-key PEM] [--checkpoints DIR] [--index N ...]``
  checks an export (directory written by ``hub audit export``, or an ``entries.ndjson``
  file plus ``--checkpoints``) against the signed heads, trusting only the public key.
- ``hub audit verify --live [--stack S | --table T --bucket B --key-id K] [--endpoint]``
  reads the same data straight from a deployment: the ledger table, the checkpoint
  bucket, and the public key through KMS ``GetPublicKey`` (or ``--public-key``).
- ``hub audit export DIR`` writes entries (with the tree's leaf hashes), FHIR
  AuditEvents (IHE BALP, NDJSON), every checkpoint and the public key.

Exit status: 0 when every check passes; 1 when the log fails verification (the first
bad leaf index is printed); 2 on usage errors. The logic lives in
:mod:`app.ledger.verify`; this module only gathers inputs and prints a rich table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

audit_app = typer.Typer(help="Verify and export the tamper-evident audit ledger.")
console = Console()

DEFAULT_STACK = "phase3-private-practice"
StateDir = Annotated[Path, typer.Option("--state-dir", envvar="HUB_STATE_DIR")]
Endpoint = Annotated[
    str | None,
    typer.Option("--endpoint", envvar="AWS_ENDPOINT_URL", help="AWS-compatible endpoint."),
]


def _deployment(
    stack: str, table: str | None, bucket: str | None, key_id: str | None, state_dir: Path
) -> tuple[str, str, str]:
    """(table, bucket, signing key) from explicit options or the local platform's
    ``local.json`` outputs for ``stack``."""
    if table and bucket:
        return table, bucket, key_id or ""
    from infra.emulator.local import read_local_json

    local = read_local_json(state_dir)
    outputs = ((local or {}).get("stacks", {}).get(stack) or {}).get("outputs")
    if not outputs:
        console.print(
            f"[red]No deployment:[/red] pass --table and --bucket, or start the local "
            f"platform (`hub local up`) so {state_dir}/local.json lists {stack}."
        )
        raise typer.Exit(2)
    return (
        str(outputs["tableNames"]["ledger"]),
        str(outputs["auditBucketName"]),
        key_id or str(outputs.get("signingKeyArn", "")),
    )


def _clients(endpoint: str | None, state_dir: Path) -> tuple[Any, Any, Any]:
    import boto3

    from infra.emulator.local import default_emulator_credentials, read_local_json

    if endpoint is None:
        local = read_local_json(state_dir) or {}
        endpoint = local.get("emulatorEndpoint")
    if endpoint:
        default_emulator_credentials()
    session = boto3.session.Session(region_name="ap-east-1")
    return (
        session.client("dynamodb", endpoint_url=endpoint),
        session.client("s3", endpoint_url=endpoint),
        session.client("kms", endpoint_url=endpoint),
    )


def _live_inputs(
    stack: str,
    table: str | None,
    bucket: str | None,
    key_id: str | None,
    endpoint: str | None,
    state_dir: Path,
    public_key: Path | None,
) -> tuple[Any, bytes]:
    from app.ledger.checkpoint import KmsHeadSigner
    from app.ledger.verify import snapshot_from_deployment

    table_name, bucket_name, key = _deployment(stack, table, bucket, key_id, state_dir)
    dynamodb, s3, kms = _clients(endpoint, state_dir)
    snapshot = snapshot_from_deployment(dynamodb, s3, table_name, bucket_name)
    if public_key is not None:
        pem = public_key.read_bytes()
    elif key:
        pem = KmsHeadSigner(kms, key).public_key_pem()
    else:
        console.print("[red]No public key:[/red] pass --public-key or --key-id.")
        raise typer.Exit(2)
    return snapshot, pem


@audit_app.command("verify")
def verify(
    export: Annotated[
        Path | None, typer.Argument(help="Export directory or entries.ndjson file.")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="PEM public key of the signing key.")
    ] = None,
    checkpoints: Annotated[
        Path | None, typer.Option("--checkpoints", help="Directory of signed heads (JSON).")
    ] = None,
    index: Annotated[
        list[int] | None, typer.Option("--index", help="Check inclusion of these only.")
    ] = None,
    live: Annotated[bool, typer.Option("--live", help="Read from a deployment.")] = False,
    stack: Annotated[str, typer.Option("--stack", "-s")] = DEFAULT_STACK,
    table: Annotated[str | None, typer.Option("--table", help="Ledger table name.")] = None,
    bucket: Annotated[str | None, typer.Option("--bucket", help="Checkpoint bucket.")] = None,
    key_id: Annotated[str | None, typer.Option("--key-id", help="KMS signing key.")] = None,
    endpoint: Endpoint = None,
    state_dir: StateDir = Path(".hub"),
) -> None:
    """Check signatures, consistency between successive heads and inclusion of entries;
    report modified, deleted, reordered or forked history at its first bad index."""
    from app.ledger.checkpoint import load_public_key
    from app.ledger.verify import read_export, verify_snapshot

    if live:
        snapshot, pem = _live_inputs(stack, table, bucket, key_id, endpoint, state_dir, public_key)
        source = f"live: {snapshot_label(stack, table)}"
    else:
        if export is None:
            console.print("[red]Give an export to verify, or --live.[/red]")
            raise typer.Exit(2)
        snapshot, bundled = read_export(export, checkpoints)
        key_file = public_key or bundled
        if key_file is None:
            console.print("[red]No public key:[/red] pass --public-key PEM.")
            raise typer.Exit(2)
        pem = key_file.read_bytes()
        source = str(export)
    report = verify_snapshot(snapshot, load_public_key(pem), indices=index)
    _print(report, source)
    if not report.ok:
        raise typer.Exit(1)


def snapshot_label(stack: str, table: str | None) -> str:
    return table or stack


def _print(report: Any, source: str) -> None:
    summary = Table(title=f"Audit ledger verification ({source})")
    summary.add_column("check")
    summary.add_column("result", justify="right")
    summary.add_row("signed heads verified", str(report.heads_verified))
    summary.add_row("consistency proofs between successive heads", str(report.consistency_checked))
    summary.add_row("entries checked", str(report.entries_checked))
    summary.add_row("inclusion proofs verified", str(report.inclusions_checked))
    summary.add_row("log size (largest signed head)", str(report.size))
    console.print(summary)
    if report.findings:
        findings = Table(title="Findings", style="red")
        findings.add_column("kind")
        findings.add_column("index", justify="right")
        findings.add_column("detail")
        for f in sorted(report.findings, key=lambda f: (f.index is None, f.index or 0)):
            findings.add_row(f.kind, "-" if f.index is None else str(f.index), f.message)
        console.print(findings)
        first = report.first_bad_index
        where = f"first bad index: {first}" if first is not None else "bad signatures"
        console.print(f"[bold red]FAILED[/bold red] ({where})")
    elif report.heads_verified == 0:
        console.print("[bold red]FAILED[/bold red] (no signed head to verify against)")
    else:
        console.print("[bold green]OK[/bold green]: history verified against every signed head")


@audit_app.command("export")
def export_command(
    directory: Annotated[Path, typer.Argument(help="Directory to write the export to.")],
    stack: Annotated[str, typer.Option("--stack", "-s")] = DEFAULT_STACK,
    table: Annotated[str | None, typer.Option("--table")] = None,
    bucket: Annotated[str | None, typer.Option("--bucket")] = None,
    key_id: Annotated[str | None, typer.Option("--key-id")] = None,
    endpoint: Endpoint = None,
    state_dir: StateDir = Path(".hub"),
) -> None:
    """Export entries, FHIR AuditEvents (IHE BALP NDJSON), checkpoints and the public key."""
    from app.ledger.verify import write_export

    snapshot, pem = _live_inputs(stack, table, bucket, key_id, endpoint, state_dir, None)
    write_export(directory, snapshot.entries, snapshot.tree_leaves or {}, snapshot.heads, pem)
    console.print(
        f"exported {len(snapshot.entries)} entries and {len(snapshot.heads)} signed heads "
        f"to {directory}"
    )
