"""What every `tfbnn` subcommand shares: the parser, argument types, common options.

The number types check a value with the same rule as the Python API
(`tfbnn.validation`), so the command line accepts exactly what the estimators
accept; argparse reports a refusal as `argparse.ArgumentTypeError`, which it
turns into a usage error naming the option.
"""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from pathlib import Path

from tfbnn.cli.choices import (
    CLASSIFICATION_CALIBRATION,
    ESTIMATOR_DEFAULTS,
    REGRESSION_CALIBRATION,
)
from tfbnn.validation import check_fraction, check_int, check_positive, check_probability

DEFAULTS = ESTIMATOR_DEFAULTS
"""The command line's defaults: the estimators' own (both share them)."""


def json_object(text: str) -> dict:
    """An argparse type: a JSON object (method options on the command line)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({err})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


class UsageError(ValueError):
    """A command line that cannot work, found after parsing (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other tfbnn error."""

    def error(self, message):
        self.exit(2, f"tfbnn: error: {message} (see '{self.prog} --help')\n")


def argument_type(convert, check, expected: str):
    """An argparse type: `check(name, convert(text))`, refused as `expected` otherwise.

    Args:
        convert: text -> value, raising ValueError for text it cannot read.
        check: a `tfbnn.validation` rule, `(name, value) -> value`, raising
            ValueError for a value it refuses.
        expected: what the option takes, for the error message.
    """

    def parse(text: str):
        try:
            return check("value", convert(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    return parse


def _at_least(minimum: int):
    return lambda name, value: check_int(name, value, minimum=minimum)


positive_int = argument_type(int, _at_least(1), "a positive integer")
non_negative_int = argument_type(int, _at_least(0), "a non-negative integer")
positive_float = argument_type(float, check_positive, "a positive number")
fraction = argument_type(float, check_fraction, "a number in [0, 1)")
probability = argument_type(float, check_probability, "a number strictly between 0 and 1")
epochs = argument_type(lambda text: text if text == "auto" else int(text),
                       lambda name, value: value if value == "auto" else check_int(
                           name, value, minimum=1),
                       "a positive integer or 'auto'")


def widths(text: str) -> tuple[int, ...]:
    """Hidden-layer widths from one token: "50" or "50,50"."""
    try:
        return tuple(positive_int(part) for part in text.split(",") if part.strip())
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"hidden-layer widths must be positive integers, got {text!r}") from None


class HiddenUnits(argparse.Action):
    """Joins `--hidden-units 50 50` and `--hidden-units 50,50` into one tuple."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, tuple(w for group in values for w in group))


def separator(text: str) -> str:
    """A field separator; a tab is hard to type on a command line, so its spellings too."""
    return "\t" if text in ("\\t", "tab", "TAB") else text


def add_command(subparsers, name: str, *, summary: str, paragraphs, example: str, run):
    """Adds subcommand `name`, its help text wrapped by paragraph, that calls `run(args)`."""
    width = min(shutil.get_terminal_size().columns, 100) - 2
    description = "\n\n".join(textwrap.fill(" ".join(text.split()), width) for text in paragraphs)
    parser = subparsers.add_parser(
        name, help=summary, description=description, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(run=run, parser=parser)
    add_common_options(parser)
    return parser


def add_common_options(parser, *, top_level: bool = False) -> None:
    """`--verbose` and `--traceback`, taken before the command or after it.

    A command's parser adds them with no default, so that one given before the
    command is not reset by the command's parser.
    """
    default = False if top_level else argparse.SUPPRESS
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="show TensorFlow's own log messages (hidden otherwise)")
    parser.add_argument("--traceback", action="store_true", default=default,
                        help="on errors, show the Python traceback (for bug reports)")


def add_model_inputs(parser, data: str, data_help: str) -> None:
    """The positional arguments of a command on a saved model: its folder, then a CSV file."""
    parser.add_argument("model", metavar="MODEL_DIR", type=Path,
                        help="a folder saved by 'tfbnn fit'")
    parser.add_argument("data", metavar=data, type=Path, help=data_help)


def add_target_override(parser) -> None:
    """`--target COLUMN` for labelled files whose target is named otherwise than at fitting."""
    parser.add_argument("--target", metavar="COLUMN", default=None,
                        help="the target column, if its name differs from the training file's")


def add_prediction_options(parser) -> None:
    """`--level`, `--n-samples` and the CSV layout of a command that predicts."""
    add_level(parser)
    add_n_samples(parser)
    add_csv_options(parser, fitted=True)


def add_csv_options(parser, *, fitted: bool) -> None:
    """`--header/--no-header` and `--sep`; for a fitted model they default to what `fit` used."""
    as_fitted = "as for 'tfbnn fit'"
    parser.add_argument(
        "--header", action=argparse.BooleanOptionalAction, default=None if fitted else True,
        help="whether the first line holds column names; without them, columns are named "
             f"by position: 0, 1, ... (default: {as_fitted if fitted else 'yes'})")
    parser.add_argument(
        "--sep", type=separator, default=None if fitted else ",", metavar="CHAR",
        help="field separator, e.g. ';' or tab "
             f"(default: {as_fitted if fitted else repr(',')})")


def csv_layout(args, meta: dict) -> tuple[bool, str]:
    """`(header, sep)`: the command line's choice, else what the model was fitted with."""
    header = meta["header"] if args.header is None else args.header
    return header, meta["sep"] if args.sep is None else args.sep


def check_out_folder(path, *, overwrite: bool = True) -> None:
    """Refuses an `--out` folder that a model save would wipe out with someone's files in
    it, that cannot be written, or, unless `overwrite`, that holds a model already."""
    from tfbnn.model_folder import ModelExistsError, check_save_destination  # at run time

    try:
        check_save_destination(path, overwrite=overwrite)
    except ModelExistsError as err:
        raise UsageError(f"--out {err}; add --overwrite to replace it") from None
    except ValueError as err:
        raise UsageError(f"--out {err}") from None
    except OSError as err:
        raise UsageError(f"--out {path}: {err.filename}: {err.strerror}") from None


def add_n_samples(parser) -> None:
    """`--n-samples S`, the posterior draws a prediction averages over."""
    parser.add_argument(
        "--n-samples", type=positive_int, default=None, metavar="S",
        help=f"posterior draws to average over (default: as fitted, {DEFAULTS['n_samples']})")


def add_level(parser) -> None:
    """`--level P`, the probability of the central predictive interval."""
    parser.add_argument(
        "--level", type=probability, default=0.95, metavar="P",
        help="probability of the central predictive interval (default: %(default)s)")


def add_calibration_method(parser, option: str) -> None:
    """`option METHOD`, a calibration method for a regressor or a classifier."""
    parser.add_argument(
        option, choices=REGRESSION_CALIBRATION + CLASSIFICATION_CALIBRATION, default=None,
        metavar="METHOD",
        help="regression: " + ", ".join(REGRESSION_CALIBRATION) + " (default: "
             f"{REGRESSION_CALIBRATION[0]}); classification: "
             + ", ".join(CLASSIFICATION_CALIBRATION) + " (the default)")
