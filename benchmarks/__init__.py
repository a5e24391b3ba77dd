"""On-demand benchmarks (never collected by pytest): ``python -m benchmarks [name ...]``."""
