"""`tfbnn benchmark uci`: the UCI regression benchmark from the command line.

The runner, its protocol and its tables are in `tfbnn.benchmarks`; this module
only declares the options and prints the Markdown table. The script
`benchmarks/run_uci.py` uses the same options (`add_uci_arguments`). The runner
(and with it TensorFlow) is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfbnn.cli.choices import (
    INFERENCE_METHODS,
    UCI_DEFAULT_OUT_DIR,
    UCI_EPOCH_FACTOR,
    UCI_QUICK_EPOCHS,
    UCI_QUICK_OUT_DIR,
    UCI_QUICK_SPLITS,
)
from tfbnn.cli.options import add_common_options, json_object, non_negative_int, positive_int
from tfbnn.data.uci import ENV_VAR, SEARCH_RULE, UCI_DATASETS, find_data_dir


def add_uci_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the options of `tfbnn benchmark uci` to `parser`."""
    parser.add_argument("--datasets", nargs="+", choices=UCI_DATASETS, metavar="NAME",
                        help=f"data sets to run (default: all of {', '.join(UCI_DATASETS)})")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--splits", nargs="+", type=non_negative_int, metavar="K",
                       help="split indices to run (default: all)")
    which.add_argument("--n-splits", type=positive_int, metavar="N",
                       help="run the first N splits of each data set")
    parser.add_argument("--method", default="vi",
                        help="inference method (default: %(default)s; registered: "
                             f"{', '.join(INFERENCE_METHODS)})")
    parser.add_argument("--method-options", type=json_object, metavar="JSON",
                        help="the method's options as a JSON object, e.g. "
                             "'{\"estimator\": \"flipout\"}'")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help=f"folder of the UCI data set folders (default: ${ENV_VAR} if "
                             f"set, else the first that exists of {SEARCH_RULE})")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help=f"folder for results and summary (default: {UCI_DEFAULT_OUT_DIR}, "
                             f"or {UCI_QUICK_OUT_DIR} with --quick); re-running resumes")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {UCI_QUICK_SPLITS} splits of {UCI_QUICK_EPOCHS} epochs")
    parser.add_argument("--epochs", type=positive_int, metavar="N",
                        help=f"training epochs (default: {UCI_EPOCH_FACTOR} x the protocol's "
                             "n_epochs, 400; 200 for protein)")
    parser.add_argument("--hidden-units", nargs="+", type=positive_int, metavar="N",
                        help="hidden-layer widths, e.g. 50 50 (default: one layer of the "
                             "protocol's 50; 100 for protein)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_benchmark_parser(subparsers) -> None:
    """Adds `tfbnn benchmark uci ...` to the `tfbnn` command line's subparsers."""
    benchmark = subparsers.add_parser(
        "benchmark", help="run the published benchmarks and compare with the literature",
        description="Run a published benchmark and compare with the literature.")
    kinds = benchmark.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    uci = kinds.add_parser(
        "uci", help="the nine UCI regression data sets with their standard splits",
        description="Run the UCI regression benchmark by the published protocol (standard "
                    "splits, one hidden layer, 400 epochs) and print a Markdown table beside "
                    "the published results. Re-running with the same --out resumes.")
    add_uci_arguments(uci)
    add_common_options(uci)
    uci.set_defaults(run=run_benchmark_command, parser=uci)


def run_benchmark_command(args) -> int:
    """Runs `tfbnn benchmark uci` from parsed arguments and prints the Markdown table.

    Returns:
        The exit status: 0, or 130 if interrupted (finished splits are kept).
    """
    from tfbnn.benchmarks.tables import format_markdown
    from tfbnn.benchmarks.uci import (
        DEFAULT_OUT_DIR,
        QUICK_OUT_DIR,
        RESULTS_FILE,
        run_uci_benchmark,
    )

    out = args.out or (QUICK_OUT_DIR if args.quick else DEFAULT_OUT_DIR)
    data_dir = find_data_dir(args.data_dir)  # an error that says where it looked
    try:
        summary = run_uci_benchmark(
            args.datasets, args.splits if args.splits is not None else args.n_splits,
            args.method, data_dir=data_dir, out_dir=out, quick=args.quick,
            epochs=args.epochs, hidden_units=args.hidden_units,
            method_options=args.method_options, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"tfbnn: interrupted; finished splits are kept in {out / RESULTS_FILE}: "
              "run the same command again to resume", file=sys.stderr)
        return 130
    print(format_markdown(summary), end="")
    print(f"Results: {out / RESULTS_FILE}; summary: {out}/summary.{{md,csv,json}}",
          file=sys.stderr)
    return 0
