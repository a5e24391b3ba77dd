"""Run benchmarks by name: ``python -m benchmarks emulator`` runs ``benchmarks.bench_emulator``.

Without a name, every ``bench_*.py`` module in this package runs in turn. Arguments after
the name are passed to that benchmark's ``main(argv)``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))


def run(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"benchmarks.bench_{name}")
    result = module.main(argv)
    return int(result or 0)


def main() -> int:
    args = sys.argv[1:]
    names = available()
    if not args:
        return max((run(name, []) for name in names), default=0)
    name, rest = args[0], args[1:]
    if name not in names:
        print(f"unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    return run(name, rest)


if __name__ == "__main__":
    sys.exit(main())
