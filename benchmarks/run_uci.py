"""Runs the UCI regression benchmark and prints its Markdown table.

The same as `tfbnn benchmark uci`; see `tfbnn.benchmarks.uci` for the protocol and
`tfbnn.cli.benchmark` for the options.

    .venv/bin/python benchmarks/run_uci.py --quick --datasets yacht boston
    .venv/bin/python benchmarks/run_uci.py --datasets boston yacht --out benchmark_results/uci
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfbnn.cli.benchmark import add_uci_arguments, run_benchmark_command  # noqa: E402


def main(argv=None) -> int:
    """Parses `argv` (default `sys.argv[1:]`), runs the benchmark, returns the exit status."""
    parser = argparse.ArgumentParser(prog="run_uci.py", description=__doc__.split("\n\n")[0])
    add_uci_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_benchmark_command(args)
    except (OSError, ValueError) as err:
        print(f"run_uci.py: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
