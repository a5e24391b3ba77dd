"""Write a synthetic Medical Council register (general.csv, specialist.csv) for demos.

Thin wrapper over ``app.identity.synthetic``; everything it writes is generated.
Usage: ``python scripts/generate_synthetic_register.py OUT_DIR [--seed N]
[--institution ID ...]`` (institutions default to the phase 3 cohort).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.identity.synthetic import general_csv, generate_population, specialist_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=2046)
    parser.add_argument("--institution", action="append", dest="institutions")
    args = parser.parse_args()
    institutions = args.institutions
    if not institutions:
        from infra.config_source import read_stage_file

        cohort = read_stage_file("phase3-private-practice")["hub:cohort"]
        institutions = [i["id"] for i in cohort]
    population = generate_population(institutions, seed=args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "general.csv").write_text(general_csv(population.doctors))
    (args.out_dir / "specialist.csv").write_text(specialist_csv(population.doctors))
    print(f"wrote {len(population.doctors)} synthetic practitioners to {args.out_dir}")


if __name__ == "__main__":
    main()
