"""``hub-doctor``: the doctor's client from a terminal.

Sign in once (SRP, then the code of your authenticator app; the first sign-in enrols the
app), then work with groups and records; uploads show a progress bar and can be resumed,
downloads are verified before they are written. State lives in ``$HUB_DOCTOR_HOME``
(default ``~/.hub-doctor``, ``0700``): ``tokens.json`` (``0600``) and the journals of
interrupted uploads.

Exit status: 0 done; 1 refused by the service, a record that failed verification, or
storage failing; 2 bad input (one line naming the problem).

On the local platform (``make run``), ``--local`` reads ``.hub/local.json`` for the API,
the user pool and the demo user's password, and keeps the demo users' authenticator
secrets in ``.hub/demo-authenticators.json`` (synthetic users only).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

# typer vendors click (pinned); its exceptions are what a non-standalone call raises.
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer._click.exceptions import UsageError as ClickUsageError

from hubclient.auth import CognitoAuth, TokenStore, totp_now
from hubclient.errors import (
    ApiError,
    HubClientError,
    RecordIntegrityError,
    SignInError,
    StorageError,
    UsageError,
)
from hubclient.sdk import DEFAULT_HOME, HubClient

app = typer.Typer(
    help="The Health Collaboration Hub's doctor's client.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)

Home = Annotated[
    Path,
    typer.Option("--home", envvar="HUB_DOCTOR_HOME", help="Where tokens and journals live."),
]
SHRED_REASONS = ("retention_expired", "patient_request", "entered_in_error", "legal_order")


def _client(home: Path) -> HubClient:
    return HubClient.from_home(home)


def _say(text: str) -> None:
    typer.echo(text)


def _show(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@app.command()
def login(
    username: Annotated[str, typer.Option(help="Your user name in the hub.")],
    home: Home = DEFAULT_HOME,
    api: Annotated[str | None, typer.Option(help="The API's base URL.")] = None,
    pool_id: Annotated[str | None, typer.Option(help="The Cognito user pool id.")] = None,
    client_id: Annotated[str | None, typer.Option(help="The app client id.")] = None,
    cognito_endpoint: Annotated[
        str | None, typer.Option(help="Cognito endpoint (an emulator); default AWS.")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Use the local platform's .hub/local.json.")
    ] = False,
    state_dir: Annotated[Path, typer.Option(help="The local platform's state.")] = Path(".hub"),
    stack: Annotated[str, typer.Option(help="The local platform's stack.")] = (
        "phase3-private-practice"
    ),
) -> None:
    """Sign in with your password and your authenticator app's code (SRP and TOTP)."""
    password = os.environ.get("HUB_DOCTOR_PASSWORD")
    code_for: Any = None
    enrol: Any = None
    if local:
        api, pool_id, client_id, cognito_endpoint, demo = _local_platform(
            state_dir, stack, username
        )
        password = password or demo
        secrets_path = state_dir / "demo-authenticators.json"
        secrets = json.loads(secrets_path.read_text()) if secrets_path.is_file() else {}

        def code_for() -> str:
            if username not in secrets:
                raise UsageError(f"no authenticator secret for {username} in {secrets_path}")
            return totp_now(secrets[username])

        def enrol(secret: str) -> str:
            secrets[username] = secret
            fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(secrets, out, indent=2, sort_keys=True)
            return totp_now(secret)

    else:
        for name, value in (("--api", api), ("--pool-id", pool_id), ("--client-id", client_id)):
            if not value:
                raise UsageError(f"{name} is required (or --local on the local platform)")

        def code_for() -> str:
            code = typer.prompt("Authenticator code", hide_input=False)
            return str(code).strip()

        def enrol(secret: str) -> str:
            _say(f"Add this secret to your authenticator app, then enter its code: {secret}")
            return str(code_for())

    if not password:
        password = typer.prompt("Password", hide_input=True)
    assert api and pool_id and client_id
    auth = CognitoAuth(pool_id, client_id, api_url=api, endpoint_url=cognito_endpoint)
    tokens = auth.sign_in(username, str(password), code_for, enrol=enrol)
    TokenStore(home / "tokens.json").save(tokens)
    _say(f"signed in as {username}; tokens in {home / 'tokens.json'} (owner only)")


def _local_platform(state_dir: Path, stack: str, username: str) -> tuple[str, str, str, str, str]:
    path = state_dir / "local.json"
    if not path.is_file():
        raise UsageError(f"{path} not found: start the local platform with `make run`")
    doc = json.loads(path.read_text())
    if stack not in doc.get("stacks", {}):
        raise UsageError(f"stack {stack} is not in {path}")
    outputs = doc["stacks"][stack]["outputs"]
    user = next(
        (u for u in doc.get("demoUsers", []) if u["username"] == username and u["stack"] == stack),
        None,
    )
    if user is None:
        raise UsageError(f"{username} is not a demo user of {stack}")
    return (
        str(doc.get("apiBaseUrl") or "http://127.0.0.1:8000"),
        str(outputs["userPoolId"]),
        str(outputs["userPoolClientIds"][0]),
        str(doc["emulatorEndpoint"]),
        str(user["password"]),
    )


@app.command()
def logout(home: Home = DEFAULT_HOME) -> None:
    """Forget the tokens kept here."""
    TokenStore(home / "tokens.json").clear()
    _say("signed out")


@app.command()
def whoami(home: Home = DEFAULT_HOME) -> None:
    """Who the service says you are."""
    me = _client(home).me()
    _say(f"{me.get('username')} {me.get('reg_no') or ''} at {me.get('institution')}")


@app.command()
def inbox(home: Home = DEFAULT_HOME) -> None:
    """Your pending invitations to consultation groups."""
    found = False
    for invitation in _client(home).invitations():
        found = True
        _say(
            f"{invitation['group_id']}  {invitation['title']}  (patient "
            f"{invitation['patient_id']}, invited by {invitation['invited_by']})"
        )
    if not found:
        _say("no pending invitations")


@app.command()
def groups(home: Home = DEFAULT_HOME) -> None:
    """The consultation groups you belong to."""
    found = False
    for group in _client(home).groups():
        found = True
        _say(f"{group['group_id']}  {group['title']}  ({group['role']}, {group['status']})")
    if not found:
        _say("no groups")


@app.command()
def accept(group_id: str, home: Home = DEFAULT_HOME) -> None:
    """Accept an invitation to a group."""
    _client(home).accept(group_id)
    _say(f"joined {group_id}")


@app.command()
def summon(
    group_id: str,
    specialty: Annotated[list[str], typer.Option(help="A specialty to summon (repeatable).")],
    count: Annotated[int, typer.Option(min=1, max=10, help="How many experts.")] = 2,
    home: Home = DEFAULT_HOME,
) -> None:
    """Invite experts of the given specialties into a group you lead."""
    summoned = _client(home).summon(group_id, specialty, count)
    for expert in summoned["invited"]:
        _say(f"invited {expert['reg_no']} ({expert['specialty']}, {expert['institution']})")


@app.command()
def records(
    patient_id: Annotated[str | None, typer.Argument(help="A patient id.")] = None,
    group: Annotated[str | None, typer.Option(help="Records shared into this group.")] = None,
    home: Home = DEFAULT_HOME,
) -> None:
    """The records you may read: a patient's, or those shared into a group."""
    if (patient_id is None) == (group is None):
        raise UsageError("give a patient id or --group, not both")
    client = _client(home)
    found = client.patient_records(patient_id) if patient_id else client.group_records(group or "")
    shown = False
    for record in found:
        shown = True
        latest = record["versions"][-1]
        _say(
            f"{record['record_id']}  {record['category']}  v{record['latest_version']}  "
            f"{latest['content_type']}  {latest['length']} bytes"
        )
    if not shown:
        _say("no records you may read")


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(help="The file to store.")],
    content_type: Annotated[str, typer.Option("--type", help="Its media type.")],
    patient: Annotated[str | None, typer.Option(help="A new record of this patient.")] = None,
    record: Annotated[str | None, typer.Option(help="A new version of this record.")] = None,
    category: Annotated[str, typer.Option(help="imaging, laboratory, ...")] = "other",
    title: Annotated[str, typer.Option(help="A short title (never audited).")] = "",
    home: Home = DEFAULT_HOME,
) -> None:
    """Seal a file on this device and store it (FHIR JSON goes to the service to be
    validated). Interrupted? `hub-doctor resume UPLOAD_ID` sends only what is missing."""
    if not file.is_file():
        raise UsageError(f"{file}: no such file")
    client = _client(home)
    with _progress(file.stat().st_size, f"sealing and sending {file.name}") as advance:
        stored = client.upload(
            patient,
            file,
            content_type,
            record_id=record,
            category=category,
            title=title,
            progress=advance,
        )
    _say(f"stored record {stored['record_id']} version {stored['latest_version']}")


@app.command()
def resume(
    upload_id: Annotated[str | None, typer.Argument(help="Default: the only pending one.")] = None,
    home: Home = DEFAULT_HOME,
) -> None:
    """Finish an interrupted upload (only the missing shards are sent)."""
    client = _client(home)
    pending = client.pending_uploads()
    if upload_id is None:
        if len(pending) != 1:
            raise UsageError(
                "no interrupted upload here" if not pending else "several uploads: name one"
            )
        upload_id = pending[0]
    total = json.loads((home / "uploads" / f"{upload_id}.json").read_text())["length"]
    with _progress(total, f"resuming {upload_id[:8]}") as advance:
        stored = client.resume(upload_id, progress=advance)
    _say(f"stored record {stored['record_id']} version {stored['latest_version']}")


@app.command()
def download(
    record_id: str,
    out: Annotated[Path, typer.Argument(help="Where to write it.")],
    version: Annotated[int | None, typer.Option(min=1, help="Default: the latest.")] = None,
    home: Home = DEFAULT_HOME,
) -> None:
    """Open a record on this device; written only once every shard verified."""
    if out.exists():
        raise UsageError(f"{out} exists; choose another path")
    client = _client(home)
    meta = client.record(record_id)
    wanted = version or meta["latest_version"]
    sizes = {v["version"]: v["length"] for v in meta["versions"]}
    # The bar's total is a hint; what is written comes from the verified manifest only.
    with _progress(int(sizes.get(wanted, 0)), f"opening {record_id[:8]}") as advance:
        result = client.download(record_id, out, version=version, progress=advance)
    checked = "content digest matches" if result.digest_checked else "no content digest kept"
    _say(f"{result.path}: {result.length} bytes, verified; {checked} ({result.repr_digest})")


@app.command()
def share(record_id: str, group_id: str, home: Home = DEFAULT_HOME) -> None:
    """Share a record into a group you are an active member of."""
    _client(home).share(record_id, group_id)
    _say(f"shared {record_id} into {group_id}")


@app.command()
def versions(record_id: str, home: Home = DEFAULT_HOME) -> None:
    """A record's versions."""
    for v in _client(home).versions(record_id):
        _say(f"v{v['version']}  {v['status']}  {v['content_type']}  {v['length']} bytes")


@app.command()
def shred(
    record_id: str,
    version: int,
    reason: Annotated[str, typer.Option(help="|".join(SHRED_REASONS))],
    home: Home = DEFAULT_HOME,
) -> None:
    """Crypto-shred one version of a record (its key is destroyed)."""
    if reason not in SHRED_REASONS:
        raise UsageError(f"--reason must be one of {', '.join(SHRED_REASONS)}")
    _client(home).shred(record_id, version, reason)
    _say(f"version {version} of {record_id} shredded")


class _progress:
    """A rich progress bar on stderr, advanced with bytes done."""

    def __init__(self, total: int, label: str):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        self._task = self._bar.add_task(label, total=total or None)

    def __enter__(self) -> Any:
        self._bar.start()
        return lambda n: self._bar.advance(self._task, n)

    def __exit__(self, *_: object) -> None:
        self._bar.stop()


def _fail(message: str, status: int) -> NoReturn:
    print(f"hub-doctor: {message}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; every failure is one line on stderr and an exit status."""
    try:
        app(args=argv, prog_name="hub-doctor", standalone_mode=False)
    except typer.Abort:
        _fail("aborted", 1)
    except NoArgsIsHelpError:
        app(args=["--help"], prog_name="hub-doctor", standalone_mode=False)
        raise SystemExit(2) from None
    except ClickUsageError as exc:
        _fail(exc.format_message().splitlines()[0], 2)
    except ClickException as exc:
        _fail(exc.format_message().splitlines()[0], 1)
    except UsageError as exc:
        _fail(str(exc), 2)
    except ApiError as exc:
        _fail(f"refused: {exc.code}: {exc.message}", 1)
    except RecordIntegrityError as exc:
        _fail(str(exc), 1)
    except (SignInError, StorageError, HubClientError) as exc:
        _fail(str(exc), 1)


if __name__ == "__main__":
    main()
