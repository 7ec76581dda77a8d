"""What every `tfbnn` subcommand shares: the parser, argument types, common options.

The number types check a value with the same rule as the Python API
(`tfbnn.validation`), so the command line accepts exactly what the estimators
accept; argparse reports a refusal as `argparse.ArgumentTypeError`, which it
turns into a usage error naming the option.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import re
import shutil
import sys
import textwrap
import warnings
from pathlib import Path

from tfbnn.cli.choices import (
    CLASSIFICATION_CALIBRATION,
    ESTIMATOR_DEFAULTS,
    REGRESSION_CALIBRATION,
)
from tfbnn.data.reading import (
    DEFAULT_ENCODING,
    DEFAULT_NA_VALUES,
    check_encoding,
    check_separator,
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
    try:
        return check_separator("\t" if text in ("\\t", "tab", "TAB") else text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected one character other than a quote or a line break (or tab), got {text!r}"
        ) from None


def na_markers(text: str) -> tuple[str, ...]:
    """Missing-value markers from one token, comma-separated: "?,-999"; "" for none."""
    return tuple(marker.strip() for marker in text.split(",")) if text else ()


def text_encoding(text: str) -> str:
    """A text encoding that Python knows, e.g. utf-8, latin-1, cp1252."""
    try:
        return check_encoding(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown encoding {text!r}; use a Python codec name such as utf-8, latin-1 or "
            "cp1252") from None


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


READ_DEFAULTS = {"header": True, "sep": ",", "na_values": DEFAULT_NA_VALUES,
                 "encoding": DEFAULT_ENCODING}
"""How CSV files are read when neither the command line nor a fitted model says otherwise."""


def add_csv_options(parser, *, fitted: bool) -> None:
    """`--header/--no-header`, `--sep`, `--na-values` and `--encoding`.

    For a fitted model their defaults are `None`, which `read_options` resolves
    to what `fit` used; `--na-values` and `--encoding` default to `None` always,
    resolved to `READ_DEFAULTS` when no model says otherwise.
    """
    as_fitted = "as for 'tfbnn fit'"
    parser.add_argument(
        "--header", action=argparse.BooleanOptionalAction, default=None if fitted else True,
        help="whether the first line holds column names; without them, columns are named "
             f"by position: 0, 1, ... (default: {as_fitted if fitted else 'yes'})")
    parser.add_argument(
        "--sep", type=separator, default=None if fitted else ",", metavar="CHAR",
        help="field separator, one character, e.g. ';' or tab "
             f"(default: {as_fitted if fitted else repr(',')})")
    markers = ",".join(DEFAULT_NA_VALUES)
    parser.add_argument(
        "--na-values", type=na_markers, default=None, metavar="LIST",
        help="comma-separated cells that mark a missing value, replacing the default; empty "
             "cells always do, and '' leaves only them (default: "
             f"{as_fitted + ', else ' if fitted else ''}{markers})")
    parser.add_argument(
        "--encoding", type=text_encoding, default=None, metavar="NAME",
        help="the file's text encoding, e.g. latin-1 or cp1252 for files from older "
             f"spreadsheets (default: {as_fitted + ', else ' if fitted else ''}"
             f"{DEFAULT_ENCODING})")


def read_options(args, meta: dict | None = None) -> dict:
    """How to read the command's CSV file: the keywords of `tabular.read_frame` and `read_table`.

    Each of `header`, `sep`, `na_values` and `encoding` is the command line's
    choice, else what the model was fitted with (`meta`, its `cli.json`; older
    folders lack some entries), else `READ_DEFAULTS`.
    """
    options = {}
    for key, default in READ_DEFAULTS.items():
        value = getattr(args, key, None)
        if value is None and meta is not None:
            value = meta.get(key)
        options[key] = default if value is None else value
    return options


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


PARAMETER_FLAGS = {"random_state": "--seed"}
"""Python parameters whose command-line option is not their name with dashes."""

# `name='value'`, `name=None`, `name=` in a message; and bare names with an
# underscore (`na_values`), which prose does not use. Quoted text (column names) is left.
_SETTING = re.compile(
    r"(?<![\w'\"-])([a-z][a-z0-9_]*)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[\w.+-]+)?")
_SHELL_WORD = re.compile(r"[\w.+/:-]+")  # needs no quotes in a shell
_PARAMETER = re.compile(r"(?<![\w'\"=-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w'\"=])")


def command_line_message(message: str, parser) -> str:
    """`message` in the command line's spelling: `impute='mean'` as `--impute mean`.

    tfbnn's messages name settings as Python does (`impute='mean'`, `data_dir=`,
    `na_values`); on the command line the same message names `parser`'s options
    (`--impute mean`, `--data-dir`, `--na-values`). Only names that are options
    of `parser` are changed, so a message about a setting the command does not
    have keeps its Python spelling.
    """
    flags = set(re.findall(r"--[\w-]+", parser.format_usage()))

    def option(name: str):
        flag = PARAMETER_FLAGS.get(name, "--" + name.replace("_", "-"))
        return flag if flag in flags else None

    def setting(match):
        flag = option(match[1])
        return match[0] if flag is None else _spelled(flag, match[2], flags)

    message = _SETTING.sub(setting, message)
    return _PARAMETER.sub(lambda match: option(match[1]) or match[0], message)


def _spelled(flag: str, token: str | None, flags: set) -> str:
    """`flag` with the value a message gave in Python spelling (`token`), as typed in a shell."""
    if token is None:
        return flag
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError):
        value = token
    if value is None:
        return f"no {flag}"
    if isinstance(value, bool):
        negated = f"--no-{flag[2:]}"
        return flag if value else negated if negated in flags else f"no {flag}"
    text = str(value)
    return f"{flag} {text if _SHELL_WORD.fullmatch(text) else repr(text)}"


@contextlib.contextmanager
def report_warnings(parser):
    """While the block runs, tfbnn's warnings show as one line on stderr each.

    `tfbnn: warning: ...`, in the command line's spelling
    (`command_line_message`); other libraries' warnings show as Python shows
    them. Warning filters (`python -W`) apply as usual.
    """
    with warnings.catch_warnings():
        python_show = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if category.__module__.partition(".")[0] != "tfbnn":
                return python_show(message, category, filename, lineno, file, line)
            text = " ".join(command_line_message(str(message), parser).split())
            print(f"tfbnn: warning: {text}", file=sys.stderr)
            return None

        warnings.showwarning = show
        yield
