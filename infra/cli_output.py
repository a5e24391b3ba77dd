"""How the operator CLI (``hub``) answers: exit codes, one-line errors, tables that never
cut a value, and ``--json``.

Guarantees, for every ``hub`` command:

- exit 0 on success; 1 when the command ran and found something wrong (failed checks,
  a tampered ledger); 2 on bad input or an unusable environment (a missing file, an
  unknown stack, an invalid stage file, no endpoint), printed as one line on stderr
  naming the problem (``Error: ...``), never a traceback; 3 when a tool the command
  drives is missing (the Pulumi CLI);
- tables print full values: when stdout is not a terminal the console has no width
  limit (one row per line, nothing cut to 80 columns), and on a terminal long values
  fold onto the next line instead of ending in ``…``;
- with ``--json`` the result goes to stdout as one JSON document and everything meant
  for people (progress, tables) goes to stderr, so ``hub ... --json | jq`` works.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from botocore.exceptions import EndpointConnectionError, NoCredentialsError
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_TOOL_MISSING = 3
# Wide enough that no table the CLI prints is ever folded when piped.
UNLIMITED_WIDTH = 100_000

JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the result as one JSON document on stdout (progress and tables go to stderr).",
    ),
]
# The deployment a command reads, for the commands that work against a local platform or
# AWS alike (``hub audit verify --live``, ``hub institutions``).
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        envvar="AWS_ENDPOINT_URL",
        help="AWS-compatible endpoint (default: the running `hub local up`, else AWS).",
    ),
]


class OperatorError(Exception):
    """Bad input or an unusable environment: printed as one line, exit 2 (or
    ``exit_code``)."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


def make_console(*, stderr: bool = False) -> Console:
    """A console that prints full values: unlimited width when not a terminal (unless
    ``COLUMNS`` asks for a width)."""
    probe = Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return Console(stderr=stderr, width=UNLIMITED_WIDTH)


class Output:
    """One command's output: a console for people, and the JSON result when asked."""

    def __init__(self, json_mode: bool = False):
        self.json_mode = json_mode
        self.console = make_console(stderr=json_mode)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        self.console.print(*objects, **kwargs)

    def json(self, document: Any) -> None:
        """The command's result, on stdout (only with ``--json``)."""
        if self.json_mode:
            sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
            sys.stdout.flush()


def table(title: str, *columns: str, no_wrap: Sequence[str] = ()) -> Table:
    """A left-titled table whose columns fold long values instead of cutting them (and at
    least as wide as its title, which would otherwise wrap)."""
    out = Table(title=title, title_justify="left", min_width=len(title))
    for column in columns:
        out.add_column(column, overflow="fold", no_wrap=column in no_wrap)
    return out


class OperatorGroup(TyperGroup):
    """The root command group: turns bad input into one line and exit 2.

    Click's and Typer's own usage errors (an unknown option, a missing argument, an
    invalid value), the commands' :class:`OperatorError`, an endpoint that does not
    answer and missing AWS credentials are printed as ``Error: <problem>`` on stderr
    instead of a usage box or a traceback.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except typer.TyperException as error:
            # Typer (its vendored click) reports usage errors, bad values and missing
            # files this way; a group called without a command has printed its help.
            if type(error).__name__ == "NoArgsIsHelpError":
                sys.exit(EXIT_BAD_INPUT)
            ctx = getattr(error, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _fail(f"{_one_line(error.format_message())}{hint}", EXIT_BAD_INPUT)
        except OperatorError as error:
            _fail(_one_line(str(error)), error.exit_code)
        except (EndpointConnectionError, NoCredentialsError) as error:
            # an endpoint that does not answer, or AWS without credentials: the
            # environment, not the command, is wrong
            _fail(f"cannot reach AWS: {_one_line(str(error))}", EXIT_BAD_INPUT)
        except typer.Abort:
            _fail("aborted", 1)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _fail(message: str, code: int) -> None:
    typer.echo(f"Error: {message}", err=True)
    sys.exit(code)
