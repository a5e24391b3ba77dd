"""The operator CLI, ``hub``: preview, local platform, deploy, verify and rollout.

Thin by design: each command parses its options and calls into ``infra``; the logic
lives in the modules it calls.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

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
        raise typer.BadParameter(f"unknown stack {unknown[0]!r}; expected one of "
                                 f"{', '.join(STACK_PHASES)}", param_hint="--stack")
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
        table = Table(title=f"{name} (phase {run.stage.phase}): {total} resources to create",
                      title_justify="left")
        table.add_column("component")
        table.add_column("type")
        table.add_column("logical name")
        for component in sorted(groups):
            for resource in sorted(groups[component], key=lambda r: (r.type, r.name)):
                table.add_row(component, resource.type, resource.name
                              + (" [dim](protected)[/dim]" if resource.protect else ""))
        console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
