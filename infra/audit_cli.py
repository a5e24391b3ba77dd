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
bad leaf index is printed); 2 on bad input (a missing or unreadable export, a key that
is not a P-256 public key, a deployment that cannot be read), as one line naming the
problem. The logic lives in :mod:`app.ledger.verify`; this module only gathers inputs
and prints the result (a table, or ``--json``).
"""

from __future__ import annotations

import binascii
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from infra.cli_output import (
    EXIT_FINDINGS,
    EndpointOption,
    JsonOption,
    OperatorError,
    Output,
    table,
)

if TYPE_CHECKING:
    from app.ledger.verify import LedgerSnapshot, VerificationReport

audit_app = typer.Typer(
    help="Verify and export the tamper-evident audit ledger.", no_args_is_help=True
)

DEFAULT_STACK = "phase3-private-practice"
StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="HUB_STATE_DIR",
        help="Where local.json lives (names the deployment when --table/--bucket are not given).",
    ),
]
Stack = Annotated[
    str, typer.Option("--stack", "-s", help="The stack whose ledger to read (from local.json).")
]
TableName = Annotated[
    str | None, typer.Option("--table", help="Ledger table name (instead of --stack).")
]
Bucket = Annotated[
    str | None,
    typer.Option("--bucket", help="Checkpoint (Object Lock audit) bucket (instead of --stack)."),
]
KeyId = Annotated[
    str | None,
    typer.Option("--key-id", help="KMS signing key id or ARN (default: the stack's)."),
]
PublicKey = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        exists=True,
        dir_okay=False,
        readable=True,
        help="PEM public key of the signing key (default: the export's, or KMS GetPublicKey).",
    ),
]


def _deployment(
    stack: str, table_name: str | None, bucket: str | None, key_id: str | None, state_dir: Path
) -> tuple[str, str, str]:
    """(table, bucket, signing key) from explicit options or the local platform's
    ``local.json`` outputs for ``stack``."""
    if table_name and bucket:
        return table_name, bucket, key_id or ""
    from infra.emulator.local import read_local_json

    local = read_local_json(state_dir)
    outputs = ((local or {}).get("stacks", {}).get(stack) or {}).get("outputs")
    if not outputs:
        raise OperatorError(
            f"no deployment: pass --table and --bucket, or start the local platform "
            f"(`hub local up`) so {state_dir}/local.json lists {stack}"
        )
    return (
        str(outputs["tableNames"]["ledger"]),
        str(outputs["auditBucketName"]),
        key_id or str(outputs.get("signingKeyArn", "")),
    )


def _clients(endpoint: str | None, state_dir: Path) -> tuple[Any, Any, Any]:
    import boto3

    from infra.emulator.local import read_local_json
    from infra.emulator.server import REGION, default_emulator_credentials

    if endpoint is None:
        local = read_local_json(state_dir) or {}
        endpoint = local.get("emulatorEndpoint")
    if endpoint:
        default_emulator_credentials()
    session = boto3.session.Session(region_name=REGION)
    return (
        session.client("dynamodb", endpoint_url=endpoint),
        session.client("s3", endpoint_url=endpoint),
        session.client("kms", endpoint_url=endpoint),
    )


def _live_inputs(
    stack: str,
    table_name: str | None,
    bucket: str | None,
    key_id: str | None,
    endpoint: str | None,
    state_dir: Path,
    public_key: Path | None,
) -> tuple[LedgerSnapshot, bytes]:
    from app.ledger.checkpoint import KmsHeadSigner
    from app.ledger.errors import LedgerError
    from app.ledger.verify import snapshot_from_deployment

    table_name, bucket, key = _deployment(stack, table_name, bucket, key_id, state_dir)
    dynamodb, s3, kms = _clients(endpoint, state_dir)
    try:
        snapshot = snapshot_from_deployment(dynamodb, s3, table_name, bucket)
        if public_key is not None:
            return snapshot, public_key.read_bytes()
        if not key:
            raise OperatorError("no public key: pass --public-key or --key-id")
        return snapshot, KmsHeadSigner(kms, key).public_key_pem()
    except (BotoCoreError, ClientError) as error:
        raise OperatorError(f"cannot read the ledger {table_name} / {bucket}: {error}") from None
    except LedgerError as error:
        raise OperatorError(f"the ledger {table_name} / {bucket} is unreadable: {error}") from None


def _export_inputs(
    export: Path, checkpoints: Path | None, public_key: Path | None
) -> tuple[LedgerSnapshot, bytes]:
    from app.ledger.errors import LedgerError
    from app.ledger.verify import ENTRIES_FILE, read_export

    if not export.exists():
        raise OperatorError(f"{export}: no such file or directory")
    if export.is_dir() and not (export / ENTRIES_FILE).is_file():
        raise OperatorError(f"{export}: not an export (no {ENTRIES_FILE} in it)")
    if checkpoints is not None and not checkpoints.exists():
        raise OperatorError(f"--checkpoints {checkpoints}: no such file or directory")
    try:
        snapshot, bundled = read_export(export, checkpoints)
    except (OSError, ValueError, KeyError, TypeError, binascii.Error, LedgerError) as error:
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise OperatorError(f"{export}: not a readable export: {error}") from None
    key_file = public_key or bundled
    if key_file is None:
        raise OperatorError(f"{export}: no public key in the export; pass --public-key PEM")
    return snapshot, key_file.read_bytes()


@audit_app.command("verify")
def verify(
    export: Annotated[
        Path | None,
        typer.Argument(help="Export directory, or an entries.ndjson file (with --checkpoints)."),
    ] = None,
    public_key: PublicKey = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option("--checkpoints", help="Directory of signed heads (JSON), for a bare file."),
    ] = None,
    index: Annotated[
        list[int] | None,
        typer.Option("--index", help="Check inclusion of these leaf indices only (repeatable)."),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Read the ledger from a deployment, not an export.")
    ] = False,
    stack: Stack = DEFAULT_STACK,
    table_name: TableName = None,
    bucket: Bucket = None,
    key_id: KeyId = None,
    endpoint: EndpointOption = None,
    state_dir: StateDir = Path(".hub"),
    json_output: JsonOption = False,
) -> None:
    """Check signatures, consistency between successive heads and inclusion of entries;
    report modified, deleted, reordered or forked history at its first bad index (exit 1)."""
    from app.ledger.checkpoint import load_public_key
    from app.ledger.errors import LedgerError
    from app.ledger.verify import verify_snapshot

    out = Output(json_output)
    if live:
        if export is not None:
            raise OperatorError("give an export or --live, not both")
        snapshot, pem = _live_inputs(
            stack, table_name, bucket, key_id, endpoint, state_dir, public_key
        )
        source = f"live: {table_name or stack}"
    elif export is None:
        raise OperatorError("give an export to verify, or --live")
    else:
        snapshot, pem = _export_inputs(export, checkpoints, public_key)
        source = str(export)
    try:
        key = load_public_key(pem)
    except (ValueError, LedgerError) as error:
        raise OperatorError(f"not an ECDSA P-256 public key in PEM: {error}") from None
    report = verify_snapshot(snapshot, key, indices=index)
    _print(out, report, source)
    out.json(_report_json(report, source))
    if not report.ok:
        raise typer.Exit(EXIT_FINDINGS)


def _report_json(report: VerificationReport, source: str) -> dict[str, Any]:
    return {
        "source": source,
        "ok": report.ok,
        "heads_verified": report.heads_verified,
        "consistency_checked": report.consistency_checked,
        "entries_checked": report.entries_checked,
        "inclusions_checked": report.inclusions_checked,
        "size": report.size,
        "trails": report.trails,
        "ledger_checkpoints_verified": report.checkpoints_verified,
        "first_bad_index": report.first_bad_index,
        "first_bad_trail": report.first_bad_trail,
        "findings": [
            {"kind": f.kind, "trail": f.trail, "index": f.index, "message": f.message}
            for f in report.findings
        ],
    }


def _print(out: Output, report: VerificationReport, source: str) -> None:
    summary = table(f"Audit ledger verification ({source})", "check", "result")
    summary.add_row("signed heads verified", str(report.heads_verified))
    summary.add_row("consistency proofs between successive heads", str(report.consistency_checked))
    summary.add_row("entries checked", str(report.entries_checked))
    summary.add_row("inclusion proofs verified", str(report.inclusions_checked))
    summary.add_row("log size (largest signed head)", str(report.size))
    if report.trails > 1 or report.checkpoints_verified:
        summary.add_row("trails", str(report.trails))
        summary.add_row("ledger checkpoints verified", str(report.checkpoints_verified))
    out.print(summary)
    if report.findings:
        findings = table("Findings", "kind", "trail", "index", "detail")
        findings.style = "red"
        for f in sorted(report.findings, key=lambda f: (f.trail, f.index is None, f.index or 0)):
            index = "-" if f.index is None else str(f.index)
            findings.add_row(f.kind, str(f.trail), index, f.message)
        out.print(findings)
        first = report.first_bad_index
        where = f"first bad index: {first}" if first is not None else "bad signatures"
        if first is not None and report.first_bad_trail:
            where += f" in trail {report.first_bad_trail}"
        out.print(f"[bold red]FAILED[/bold red] ({where})")
    elif report.heads_verified == 0:
        out.print("[bold red]FAILED[/bold red] (no signed head to verify against)")
    else:
        out.print("[bold green]OK[/bold green]: history verified against every signed head")


@audit_app.command("export")
def export_command(
    directory: Annotated[Path, typer.Argument(help="Directory to write the export to.")],
    stack: Stack = DEFAULT_STACK,
    table_name: TableName = None,
    bucket: Bucket = None,
    key_id: KeyId = None,
    endpoint: EndpointOption = None,
    state_dir: StateDir = Path(".hub"),
    json_output: JsonOption = False,
) -> None:
    """Export entries, FHIR AuditEvents (IHE BALP NDJSON), checkpoints and the public key."""
    from app.ledger.verify import write_export

    out = Output(json_output)
    if directory.exists() and not directory.is_dir():
        raise OperatorError(f"{directory}: exists and is not a directory")
    snapshot, pem = _live_inputs(stack, table_name, bucket, key_id, endpoint, state_dir, None)
    try:
        write_export(
            directory,
            snapshot.entries,
            snapshot.tree_leaves or {},
            snapshot.heads,
            pem,
            trails=snapshot.trails,
            ledger_checkpoints=snapshot.checkpoints,
        )
    except OSError as error:
        raise OperatorError(f"{directory}: cannot write the export: {error}") from None
    out.print(
        f"exported {len(snapshot.entries)} entries and {len(snapshot.heads)} signed heads "
        f"to {directory}"
    )
    out.json(
        {
            "directory": str(directory),
            "entries": len(snapshot.entries),
            "heads": len(snapshot.heads),
        }
    )
