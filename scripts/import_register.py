"""Import the Medical Council register lists into a register table.

Usage (synthetic data only):
    .venv/bin/python scripts/import_register.py --table <register table> \\
        --general general.csv [--specialist specialist.csv] [--keep-missing]

The CSV format is documented in ``app/identity/register.py``. The AWS endpoint comes
from ``AWS_ENDPOINT_URL`` (moto, LocalStack or AWS). All logic lives in
:func:`app.identity.register.import_register`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    import boto3

    from app.identity.register import RegisterFormatError, RegisterStore, import_register

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--table", required=True, help="register table name")
    parser.add_argument("--general", required=True, type=Path)
    parser.add_argument("--specialist", type=Path)
    parser.add_argument(
        "--keep-missing",
        action="store_true",
        help="do not mark practitioners absent from the general list as removed",
    )
    args = parser.parse_args(argv)
    table = boto3.resource("dynamodb", region_name="ap-east-1").Table(args.table)
    try:
        summary = import_register(
            RegisterStore(table),
            args.general.read_text(encoding="utf-8"),
            args.specialist.read_text(encoding="utf-8") if args.specialist else None,
            mark_missing_removed=not args.keep_missing,
        )
    except RegisterFormatError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    print(
        f"imported {summary.imported} practitioners ({summary.specialists} specialists); "
        f"by status {summary.by_status}; marked removed {summary.marked_removed}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
