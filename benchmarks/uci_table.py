"""Prints the UCI benchmark results of several methods side by side, as Markdown.

Reads the `results.csv` of each output folder of `tfbnn benchmark uci` (one
method per folder, or several), and prints test log-likelihood, RMSE and fit
time per data set and method beside the published numbers, best of each row in
bold. The README's comparison tables come from

    .venv/bin/python benchmarks/uci_table.py docs/benchmarks/uci_*
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pandas as pd  # noqa: E402

from tfbnn.benchmarks import format_comparison, read_results, summarise  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="uci_table.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="output folders of `tfbnn benchmark uci`")
    args = parser.parse_args(argv)
    try:
        results = pd.concat([read_results(folder) for folder in args.folders], ignore_index=True)
    except (OSError, ValueError) as err:
        print(f"uci_table.py: error: {err}", file=sys.stderr)
        return 1
    # Columns in the order the folders were given.
    methods = list(dict.fromkeys(results["method"]))
    print(format_comparison(summarise(results), methods), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
