"""Rewrite the control tables of ``infra/verify/README.md`` and ``infra/policies/README.md``
from the control catalogue (``CHECK_SPECS``, ``BINDINGS``), so the READMEs never drift from
what verify and the pack evidence. ``tests/infra/controls/test_control_catalogue.py`` reads
the tables back and fails when they differ; after adding or changing a check or a rule, run:

    .venv/bin/python scripts/catalogue_tables.py          # rewrite both tables
    .venv/bin/python scripts/catalogue_tables.py --check  # exit 1 if either is stale

Only the table body rows are rewritten; the prose around them is left as written.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.controls.catalogue import Control, Framework, Requirement  # noqa: E402
from infra.policies.pack import BINDINGS, ConfigBinding, ResourceBinding  # noqa: E402
from infra.verify.checks import CHECK_SPECS  # noqa: E402

VERIFY = ROOT / "infra" / "verify" / "README.md"
PACK = ROOT / "infra" / "policies" / "README.md"


def _frameworks(requirements: Sequence[Requirement]) -> list[str]:
    return [
        ", ".join(r.ref for r in requirements if r.framework is framework) or "-"
        for framework in Framework
    ]


def _controls(controls: Sequence[Control]) -> str:
    return ", ".join(f"`{c.id}`" for c in controls)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def verify_rows() -> list[str]:
    return [
        _row([f"`{s.id}`", s.title, _controls(s.controls), *_frameworks(s.requirements)])
        for s in CHECK_SPECS
    ]


def pack_rows() -> list[str]:
    rows = []
    for b in BINDINGS:
        if isinstance(b, ResourceBinding):
            kind = "resource (+ its provider)" if b.check_provider else "resource"
        elif isinstance(b, ConfigBinding):
            kind = "config"
        else:
            kind = "stack"
        rows.append(
            _row(
                [
                    f"`{b.rule_name}`",
                    kind,
                    b.severity.value,
                    _controls(b.controls),
                    *_frameworks(b.requirements),
                ]
            )
        )
    return rows


def rewrite(text: str, header: str, rows: list[str]) -> str:
    """``text`` with the body of the table whose header row starts with ``header``
    replaced by ``rows``."""
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(header)) + 2
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join([*lines[:start], *rows, *lines[end:]]) + "\n"


def main(argv: Sequence[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, header, rows in (
        (VERIFY, "| check | what it verifies |", verify_rows()),
        (PACK, "| rule | kind | severity |", pack_rows()),
    ):
        before = path.read_text()
        after = rewrite(before, header, rows)
        if after != before:
            stale.append(path.relative_to(ROOT))
            if not check:
                path.write_text(after)
    if check and stale:
        print("stale tables: " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
