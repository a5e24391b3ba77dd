"""``hub institutions`` and ``hub affiliations``: institutions and affiliations as data,
from the operator's seat.

- ``hub institutions list [--status S] [--json]``
- ``hub institutions admit ID --name N --type T [--phase P] [--provider NAME --hospital-code C]``
- ``hub institutions suspend|remove|readmit ID``
- ``hub institutions seed`` (the stage file's initial cohort and provider mappings)
- ``hub affiliations list INSTITUTION [--json]``
- ``hub affiliations add INSTITUTION (--reg-no N | --username U) --role R [--role R ...]``
  (with ``--username``, also binds that native account at the institution)
- ``hub affiliations remove INSTITUTION (--reg-no N | --username U)``

Each command acts through the institutions service's operator channel
(``app.dependencies.build_operator_institutions``): the same Cedar decisions as the API
(the operator is a platform admin of no institution), the same validation, and every
change a ledger entry in the deployment's ledger. A change takes effect on the service's
next request: nothing is cached, nothing is deployed.

The deployment is the local platform's stack (``--stack``, read from ``.hub/local.json``)
or named table by table (``--institutions-table``, ``--ledger-table``,
``--register-table``, ``--user-pool``, ``--phase``), against ``--endpoint`` or, without
one, AWS itself through the default credential chain.

Conventions (:mod:`infra.cli_output`, as every ``hub`` command): a bad input or a refused
change is one line on stderr naming the problem (``Error: ...``), exit status 2;
``--json`` prints what a command reports as one JSON document on stdout; tables print
full values, piped or not.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar, get_type_hints

import typer

from app.identity.affiliations import (
    Affiliation,
    Institution,
    InstitutionStatus,
    InstitutionType,
    staff_member,
)
from infra.cli_output import EndpointOption, JsonOption, OperatorError, Output, table
from infra.stage import STACK_PHASES

institutions_app = typer.Typer(
    help="Institutions admitted to the hub, as data (no deploy).", no_args_is_help=True
)
affiliations_app = typer.Typer(
    help="Who works where, in which role (institution admins keep these too).",
    no_args_is_help=True,
)
T = TypeVar("T")

DEFAULT_STACK = "phase3-private-practice"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
_REG_NO = re.compile(r"^[A-Za-z]{1,2}\d{4,6}$")
_ROLES = ("doctor", "specialist", "institution_admin", "auditor", "platform_admin")

Json = JsonOption


def fail(problem: str) -> NoReturn:
    """Bad input or a refused change: one line naming the problem, exit status 2."""
    raise OperatorError(problem)


@dataclass(frozen=True)
class Deployment:
    institutions_table: str
    ledger_table: str
    register_table: str
    user_pool: str | None
    phase: int
    endpoint: str | None


@dataclass(frozen=True)
class Target:
    """The deployment options every command takes (one parameter object): each field is
    the command-line option that sets it, appended after a command's own options by
    :func:`_takes_target`."""

    stack: Annotated[
        str,
        typer.Option(
            "--stack",
            "-s",
            help="The stack whose tables to use (from the local platform's local.json).",
        ),
    ] = DEFAULT_STACK
    state_dir: Annotated[
        Path,
        typer.Option(
            "--state-dir",
            envvar="HUB_STATE_DIR",
            help="Where the local platform's local.json lives.",
        ),
    ] = Path(".hub")
    endpoint: EndpointOption = None
    institutions_table: Annotated[
        str | None,
        typer.Option("--institutions-table", help="The institutions table (instead of --stack)."),
    ] = None
    ledger_table: Annotated[
        str | None,
        typer.Option(
            "--ledger-table", help="The ledger table changes are audited in (instead of --stack)."
        ),
    ] = None
    register_table: Annotated[
        str | None,
        typer.Option(
            "--register-table", help="The Medical Council register table (instead of --stack)."
        ),
    ] = None
    user_pool: Annotated[
        str | None,
        typer.Option(
            "--user-pool",
            help="The user pool, to find accounts by --username (instead of --stack).",
        ),
    ] = None
    phase: Annotated[
        int | None, typer.Option("--phase", help="The deployment's phase (default: the stack's).")
    ] = None

    def resolve(self) -> Deployment:
        from infra.emulator.local import read_local_json
        from infra.emulator.server import default_emulator_credentials

        if self.stack not in STACK_PHASES:
            fail(f"--stack: expected one of {', '.join(STACK_PHASES)}, got {self.stack!r}")
        local = read_local_json(self.state_dir) or {}
        outputs = ((local.get("stacks") or {}).get(self.stack) or {}).get("outputs") or {}
        tables = outputs.get("tableNames") or {}
        institutions = self.institutions_table or tables.get("institutions")
        ledger = self.ledger_table or tables.get("ledger")
        register = self.register_table or tables.get("register")
        if not (institutions and ledger and register):
            fail(
                "no deployment: pass --institutions-table, --ledger-table and "
                f"--register-table, or start `hub local up` so {self.state_dir}/local.json "
                f"lists {self.stack}"
            )
        endpoint = self.endpoint or (local.get("emulatorEndpoint") if outputs else None)
        if endpoint:
            default_emulator_credentials()
        return Deployment(
            institutions_table=institutions,
            ledger_table=ledger,
            register_table=register,
            user_pool=self.user_pool or outputs.get("userPoolId"),
            phase=self.phase or int(outputs.get("phase") or STACK_PHASES[self.stack]),
            endpoint=endpoint,
        )


_TARGET_HINTS = get_type_hints(Target, include_extras=True)
_TARGET_OPTIONS = tuple(
    inspect.Parameter(
        field.name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=_TARGET_HINTS[field.name],
        default=field.default,
    )
    for field in fields(Target)
)


def _takes_target(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` (whose last parameter is ``target: Target``) as a typer command: its own
    parameters, then :class:`Target`'s options in field order, gathered into one ``target``."""
    own = inspect.signature(command, eval_str=True).parameters.values()
    parameters = [p for p in own if p.name != "target"] + list(_TARGET_OPTIONS)

    @functools.wraps(command)
    def with_target(**values: Any) -> None:
        target = Target(**{option.name: values.pop(option.name) for option in _TARGET_OPTIONS})
        command(**values, target=target)

    # typer reads a command's options from its signature and annotations.
    with_target.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    with_target.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_target


def _service(deployment: Deployment) -> Any:
    import boto3

    from app.dependencies import build_operator_institutions
    from app.identity.register import RegisterStore

    session = boto3.session.Session(region_name="ap-east-1")
    client = session.client("dynamodb", endpoint_url=deployment.endpoint)
    resource = session.resource("dynamodb", endpoint_url=deployment.endpoint)
    return build_operator_institutions(
        client,
        RegisterStore(resource.Table(deployment.register_table)),
        institutions_table=deployment.institutions_table,
        ledger_table=deployment.ledger_table,
        phase=deployment.phase,
    )


def _as_operator(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(OPERATOR, *args, **kwargs)``: a service method called on the operator's
    channel; a refusal (4xx in the API) becomes one line and exit 2."""
    from botocore.exceptions import ClientError

    from app.errors import HubError
    from app.institutions.service import OPERATOR

    try:
        return call(OPERATOR, *args, **kwargs)
    except HubError as error:
        fail(f"{error.code}: {error.message}")
    except ClientError as error:
        fail(f"AWS refused: {error.response.get('Error', {}).get('Code', 'error')}")


def _sub_of(deployment: Deployment, username: str) -> str:
    import boto3

    if not deployment.user_pool:
        fail("--username needs the user pool: pass --user-pool or use a local platform stack")
    cognito = boto3.session.Session(region_name="ap-east-1").client(
        "cognito-idp", endpoint_url=deployment.endpoint
    )
    try:
        user = cognito.admin_get_user(UserPoolId=deployment.user_pool, Username=username)
    except cognito.exceptions.UserNotFoundException:
        fail(f"--username: no user {username!r} in the user pool")
    return next(str(a["Value"]) for a in user["UserAttributes"] if a["Name"] == "sub")


def _institution_id(value: str, option: str = "INSTITUTION") -> str:
    if not _ID.match(value):
        fail(f"{option}: expected a lowercase id (a-z, 0-9, '-', 2-40 characters), got {value!r}")
    return value


# -- output ---------------------------------------------------------------------------


def _institution_row(i: Institution) -> dict[str, Any]:
    return {
        "id": i.id,
        "name": i.name,
        "type": i.type.value,
        "phase": i.phase,
        "status": i.status.value,
        "provider": i.provider,
        "hospital_code": i.hospital_code,
    }


def _affiliation_row(a: Affiliation) -> dict[str, Any]:
    return {
        "institution": a.institution,
        "member": a.member,
        "roles": list(a.roles),
        "status": a.status.value,
    }


def _show(
    rows: Sequence[dict[str, Any]], as_json: bool, title: str, columns: Sequence[str]
) -> None:
    out = Output(as_json)
    if as_json:
        out.json(list(rows))
        return
    if not rows:
        out.print(f"{title}: none")
        return

    def text(value: Any) -> str:
        if value is None:
            return "-"
        return ",".join(value) if isinstance(value, list) else str(value)

    shown = table(title, *columns)
    for row in rows:
        shown.add_row(*(text(row[c]) for c in columns))
    out.print(shown)


def _done(row: dict[str, Any], as_json: bool, line: str) -> None:
    out = Output(as_json)
    if as_json:
        out.json(row)
    else:
        out.print(line, highlight=False)


def _audited(row: dict[str, Any], receipt: Any) -> dict[str, Any]:
    """A change's row, with where the ledger recorded it."""
    return {**row, "audit_position": receipt.position}


# -- institutions ---------------------------------------------------------------------


@institutions_app.command("list")
@_takes_target
def list_institutions(
    status: Annotated[
        str, typer.Option("--status", help="admitted, suspended, removed or all.")
    ] = "all",
    as_json: Json = False,
    *,
    target: Target,
) -> None:
    """Every institution of every phase, with its type, phase and status."""
    if status != "all" and status not in {s.value for s in InstitutionStatus}:
        fail(f"--status: expected admitted, suspended, removed or all, got {status!r}")
    service = _service(target.resolve())
    wanted = None if status == "all" else InstitutionStatus(status)
    found, _ = _as_operator(service.list_institutions, wanted)
    _show(
        [_institution_row(i) for i in found],
        as_json,
        "Institutions",
        ("id", "name", "type", "phase", "status", "provider", "hospital_code"),
    )


@institutions_app.command("admit")
@_takes_target
def admit(
    institution_id: Annotated[
        str, typer.Argument(metavar="ID", help="The new institution's id (a-z, 0-9, '-').")
    ],
    name: Annotated[str | None, typer.Option("--name", help="Its display name.")] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--type", help="specialist_alliance, ha_hospital, ha_cluster or private_clinic."
        ),
    ] = None,
    institution_phase: Annotated[
        int | None,
        typer.Option(
            "--institution-phase", help="The rollout phase it joins (default: its type's first)."
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option("--provider", help="The identity provider covering it by hospital code."),
    ] = None,
    hospital_code: Annotated[
        str | None,
        typer.Option("--hospital-code", help="The code that provider's users carry for it."),
    ] = None,
    as_json: Json = False,
    *,
    target: Target,
) -> None:
    """Admit an institution; its users are served from the next request."""
    _institution_id(institution_id, "ID")
    if not name or len(name.strip()) < 2:
        fail("--name: required, at least 2 characters")
    types = [t.value for t in InstitutionType]
    if kind not in types:
        fail(f"--type: expected one of {', '.join(types)}, got {kind!r}")
    if (provider is None) != (hospital_code is None):
        fail("--provider and --hospital-code go together")
    service = _service(target.resolve())
    admitted, receipt = _as_operator(
        service.admit,
        institution_id,
        name.strip(),
        InstitutionType(kind),
        institution_phase,
        provider,
        hospital_code,
    )
    _done(
        _audited(_institution_row(admitted), receipt),
        as_json,
        f"admitted {admitted.id} ({admitted.type.value}, phase {admitted.phase})",
    )


def _status_command(status: InstitutionStatus, doc: str) -> None:
    def command(
        institution_id: Annotated[str, typer.Argument(metavar="ID", help="The institution's id.")],
        as_json: Json = False,
        *,
        target: Target,
    ) -> None:
        _institution_id(institution_id, "ID")
        service = _service(target.resolve())
        changed, receipt = _as_operator(service.update_institution, institution_id, None, status)
        _done(
            _audited(_institution_row(changed), receipt),
            as_json,
            f"{changed.id} is {changed.status.value}",
        )

    command.__doc__ = doc
    name = {"admitted": "readmit", "suspended": "suspend", "removed": "remove"}[status.value]
    institutions_app.command(name)(_takes_target(command))


_status_command(
    InstitutionStatus.SUSPENDED,
    "Suspend an institution: its users are refused from the next request.",
)
_status_command(
    InstitutionStatus.REMOVED, "Remove an institution: its users are refused from the next request."
)
_status_command(InstitutionStatus.ADMITTED, "Admit a suspended or removed institution again.")


@institutions_app.command("seed")
@_takes_target
def seed(as_json: Json = False, *, target: Target) -> None:
    """Seed the stage file's initial cohort and provider mappings (after a deploy).
    Institutions the table already holds are left as they are."""
    from infra.cohort import initial_cohort
    from infra.config_source import read_stage_file, stage_from_config
    from infra.stage import StageConfigError

    stack = target.stack
    deployment = target.resolve()
    try:
        stage, _ = stage_from_config(stack, read_stage_file(stack))
    except StageConfigError as error:
        fail(f"{stack}: {error}")
    changed = _as_operator(
        lambda operator: _service(deployment).seed(operator, *initial_cohort(stage))
    )
    _done(
        {"stack": stack, "changed": changed},
        as_json,
        f"{stack}: " + (", ".join(changed) if changed else "nothing to seed"),
    )


# -- affiliations ---------------------------------------------------------------------


def _member(
    deployment: Deployment, reg_no: str | None, username: str | None
) -> tuple[str, str | None]:
    """(member, the sub to bind): the number when given, else the staff account's sub."""
    if reg_no is not None and not _REG_NO.match(reg_no):
        fail(f"--reg-no: expected a Medical Council number like M12345, got {reg_no!r}")
    if reg_no is None and username is None:
        fail("give --reg-no (a practitioner) or --username (a staff account), or both")
    sub = _sub_of(deployment, username) if username else None
    if reg_no is not None:
        return reg_no.upper(), sub
    assert sub is not None
    return staff_member(sub), sub


InstitutionId = Annotated[str, typer.Argument(metavar="INSTITUTION", help="The institution's id.")]
RegNo = Annotated[
    str | None, typer.Option("--reg-no", help="The practitioner's Medical Council number.")
]


@affiliations_app.command("list")
@_takes_target
def list_affiliations(institution: InstitutionId, as_json: Json = False, *, target: Target) -> None:
    """Who is affiliated with INSTITUTION, in which roles."""
    _institution_id(institution)
    service = _service(target.resolve())
    found, _ = _as_operator(service.affiliations, institution)
    _show(
        [_affiliation_row(a) for a in found],
        as_json,
        f"Affiliations of {institution}",
        ("member", "roles", "status"),
    )


@affiliations_app.command("add")
@_takes_target
def add_affiliation(
    institution: InstitutionId,
    reg_no: RegNo = None,
    username: Annotated[
        str | None,
        typer.Option(
            "--username",
            help="A native account to bind here (a staff account without --reg-no).",
        ),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="doctor, specialist, institution_admin, auditor or platform_admin "
            "(repeat for several).",
        ),
    ] = None,
    as_json: Json = False,
    *,
    target: Target,
) -> None:
    """Affiliate a practitioner or staff account with INSTITUTION in some roles; effective
    from their next request."""
    _institution_id(institution)
    roles = sorted(set(role or ()))
    if not roles:
        fail(f"--role: at least one of {', '.join(_ROLES)}")
    unknown = [r for r in roles if r not in _ROLES]
    if unknown:
        fail(f"--role: expected one of {', '.join(_ROLES)}, got {unknown[0]!r}")
    deployment = target.resolve()
    member, sub = _member(deployment, reg_no, username)
    service = _service(deployment)
    affiliation, receipt = _as_operator(
        service.set_affiliation, institution, member, roles, bind_sub=sub
    )
    _done(
        _audited({**_affiliation_row(affiliation), "bound": sub is not None}, receipt),
        as_json,
        f"{member} is {','.join(affiliation.roles)} at {institution}"
        + (f"; account {username} bound" if sub else ""),
    )


@affiliations_app.command("remove")
@_takes_target
def remove_affiliation(
    institution: InstitutionId,
    reg_no: RegNo = None,
    username: Annotated[
        str | None, typer.Option("--username", help="The staff account (without --reg-no).")
    ] = None,
    as_json: Json = False,
    *,
    target: Target,
) -> None:
    """Remove an affiliation; the member is refused there from their next request."""
    _institution_id(institution)
    deployment = target.resolve()
    member, _ = _member(deployment, reg_no, None if reg_no else username)
    service = _service(deployment)
    affiliation, receipt = _as_operator(service.remove_affiliation, institution, member)
    _done(
        _audited(_affiliation_row(affiliation), receipt),
        as_json,
        f"{member} is no longer affiliated with {institution}",
    )


__all__ = ["affiliations_app", "institutions_app"]
