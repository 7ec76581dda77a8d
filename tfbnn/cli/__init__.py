"""The `tfbnn` command line: fit, predict and evaluate on CSV files, and a demo.

    tfbnn fit train.csv --target price --out model/ [--calibrate 0.2]
    tfbnn calibrate model/ calibration.csv [--method conformal]
    tfbnn predict model/ new.csv --out predictions.csv
    tfbnn evaluate model/ test.csv [--json] [--report report.html]
    tfbnn demo
    tfbnn benchmark uci

Each subcommand is one `add_<name>_parser(subparsers)` function listed in
`SUBCOMMANDS`; it declares the options and sets `run`, the function that carries
the command out. Adding a command means writing one such function. They live in
`fit` (fit, calibrate), `predict` (predict, evaluate), `demo` and `benchmark`;
what they share is in `options`. The model folders they write and read are
`tfbnn.model_folder`'s.

Errors the user can fix end in one line, `tfbnn: error: ...`, on stderr, with
exit status 2 for a command line that cannot work and 1 for a failure while
running (a missing file, bad data, diverged training). `--traceback` shows the
Python traceback instead, for bug reports; tfbnn's own warnings are one line
too, `tfbnn: warning: ...`.

Declaring the options imports nothing that imports TensorFlow (the choices it
shows are in `choices`), so `--help`, `--version` and usage errors answer at
once; a command imports the library when it runs, after `tensorflow_logs` has
imported TensorFlow without its C++ log lines (`--verbose` shows them).
"""

from __future__ import annotations

import importlib
import sys

from tfbnn.cli import tensorflow_logs
from tfbnn.cli.benchmark import add_benchmark_parser
from tfbnn.cli.demo import add_demo_parser
from tfbnn.cli.fit import DIAGNOSTIC_ROWS, add_calibrate_parser, add_fit_parser
from tfbnn.cli.options import (
    Parser,
    UsageError,
    add_common_options,
    command_line_message,
    report_warnings,
)
from tfbnn.cli.predict import add_evaluate_parser, add_predict_parser, prediction_frame
from tfbnn.version import __version__

__all__ = ["CLI_FILE", "DIAGNOSTIC_ROWS", "SUBCOMMANDS", "UsageError", "build_parser", "main",
           "prediction_frame"]

# Failures of a well-formed command, reported in one line (exit status 1);
# tfbnn.training.NonFiniteLossError (diverged training) is a FloatingPointError.
_RUNTIME_ERRORS = (OSError, ValueError, FloatingPointError)

SUBCOMMANDS = [add_fit_parser, add_calibrate_parser, add_predict_parser, add_evaluate_parser,
               add_demo_parser, add_benchmark_parser]
"""The functions that add each subcommand, in the order `tfbnn --help` lists them."""


def build_parser() -> Parser:
    """The `tfbnn` argument parser with every subcommand in `SUBCOMMANDS`."""
    parser = Parser(
        prog="tfbnn", description="Bayesian neural networks on CSV files.",
        epilog="Run 'tfbnn COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    add_common_options(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv=None) -> int:
    """Runs the command line on `argv` (default `sys.argv[1:]`); returns the exit status."""
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            # Reported by the subcommand's parser, so the hint names its --help.
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    if not args.verbose:
        tensorflow_logs.import_quietly()
    try:
        with report_warnings(args.parser):
            return args.run(args)
    except UsageError as err:
        return _fail(err, 2)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", 130)
    except _RUNTIME_ERRORS as err:
        if args.traceback:
            raise
        return _fail(err, 1, args.parser)


def __getattr__(name: str):
    if name == "CLI_FILE":  # from a module that imports TensorFlow: only when asked for
        return importlib.import_module("tfbnn.model_folder").CLI_FILE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fail(error, status: int, parser=None) -> int:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        message = f"{error.filename}: {error.strerror}"
    else:
        message = str(error)
    if parser is not None:
        message = command_line_message(message, parser)
    # One line even when a library message spans several.
    print(f"tfbnn: error: {' '.join(message.split())}", file=sys.stderr)
    return status
