"""CSV files as people's files are, on the command line: markers, encodings, separators.

The options are parsed by the real `tfbnn` parser and handed to the reader by
`read_options`, as the subcommands do; messages are checked in the command
line's spelling (`command_line_message`). One small model is fitted on a file
with `?` markers and reused.
"""

import argparse
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from tfbnn.cli import build_parser, main
from tfbnn.cli.benchmark import add_uci_arguments
from tfbnn.cli.options import (
    READ_DEFAULTS,
    command_line_message,
    read_options,
    report_warnings,
)
from tfbnn.data import DataWarning, prepare_features, read_table

TINY = ["--epochs", "2", "--hidden-units", "4", "--quiet", "--seed", "0"]


def _parse(*argv):
    return build_parser().parse_args([str(a) for a in argv])


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def marked_file(tmp_path_factory):
    """40 rows in the style of a UCI file: numeric columns with `?` for missing values."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "x1": rng.normal(size=40).round(3), "x2": rng.normal(size=40).round(3),
        "colour": np.resize(["red", "blue"], 40)})
    frame["y"] = (frame.x1 - frame.x2).round(3)
    text = frame.astype(object)
    text.loc[[3, 17], "x1"] = "?"
    text.loc[[8], "x2"] = "?"
    path = tmp_path_factory.mktemp("data") / "marked.csv"
    text.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def marked_model(marked_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "marked"
    argv = ["fit", marked_file, "--target", "y", "--impute", "mean", "--out", out, *TINY]
    assert main([str(a) for a in argv]) == 0
    return out


# The options and what the reader is given.


def test_fit_reads_with_the_defaults_unless_told():
    assert read_options(_parse("fit", "a.csv", "--target", "y", "--out", "m")) == READ_DEFAULTS
    args = _parse("fit", "a.csv", "--target", "y", "--out", "m", "--na-values", "?, -999,",
                  "--encoding", "latin-1", "--sep", "tab", "--no-header")
    assert read_options(args) == {"header": False, "sep": "\t", "na_values": ("?", "-999", ""),
                                  "encoding": "latin-1"}
    none = _parse("fit", "a.csv", "--target", "y", "--out", "m", "--na-values", "")
    assert read_options(none)["na_values"] == ()


@pytest.mark.parametrize("command", ["predict", "evaluate", "calibrate"])
def test_a_fitted_model_reads_as_at_fitting_unless_told(command):
    meta = {"header": False, "sep": ";", "na_values": ["-"], "encoding": "cp1252"}
    assert read_options(_parse(command, "m", "a.csv"), meta) == meta
    told = _parse(command, "m", "a.csv", "--na-values", "x", "--encoding", "utf-8")
    assert read_options(told, meta) == {**meta, "na_values": ("x",), "encoding": "utf-8"}
    # Folders saved before --na-values and --encoding existed.
    old = {"header": True, "sep": ","}
    assert read_options(_parse(command, "m", "a.csv"), old) == READ_DEFAULTS


def test_help_states_the_default_markers(capsys):
    assert main(["fit", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "?,NA,N/A,NaN,nan" in help_text and "empty cells always do" in help_text
    assert "--encoding NAME" in help_text and "utf-8" in help_text


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--encoding", "klingon", "unknown encoding 'klingon'"),
    ("--sep", ";;", "expected one character"),
])
def test_bad_reading_options_are_usage_errors(capsys, option, value, expected):
    code, _, err = _run(capsys, "fit", "a.csv", "--target", "y", "--out", "m", option, value)
    assert code == 2
    assert option in err and expected in err and len(err.strip().splitlines()) == 1


# Messages in the command line's spelling.


@pytest.fixture(scope="module")
def fit_parser():
    return _parse("fit", "a.csv", "--target", "y", "--out", "m").parser


@pytest.mark.parametrize(("python", "command_line"), [
    ("use impute='mean' to fill", "use --impute mean to fill"),
    ("use task='regression'", "use --task regression"),
    ("looks ';'-separated: use sep=';'", "looks ';'-separated: use --sep ';'"),
    ("use sep='\\t'", "use --sep '\\t'"),
    ("e.g. encoding='latin-1'", "e.g. --encoding latin-1"),
    ("add them to na_values (now ['?'])", "add them to --na-values (now ['?'])"),
    ("with header=False", "with --no-header"),
    ("random_state=3", "--seed 3"),
    ("fitted with impute=None", "fitted with no --impute"),
    # Quoted text (a column named like a parameter) and names fit has no option for stay.
    ("column 'na_values' and n_chains=2", "column 'na_values' and n_chains=2"),
])
def test_messages_name_the_options(fit_parser, python, command_line):
    assert command_line_message(python, fit_parser) == command_line
    assert command_line_message(command_line, fit_parser) == command_line


def test_only_options_of_the_command_are_spelled_as_flags(fit_parser):
    predict = _parse("predict", "m", "a.csv").parser
    assert command_line_message("use impute='mean'", predict) == "use impute='mean'"
    uci = argparse.ArgumentParser()
    add_uci_arguments(uci)
    message = "Pass data_dir= or set $TFBNN_UCI_DIR (searched the data_dir argument)"
    assert command_line_message(message, uci) == (
        "Pass --data-dir or set $TFBNN_UCI_DIR (searched the --data-dir argument)")
    assert command_line_message(message, fit_parser) == message


def test_a_reader_error_in_the_command_line_spelling(tmp_path, fit_parser):
    path = tmp_path / "latin.csv"
    path.write_bytes("ville,x,y\nZürich,1,1.5\nMontréal,2,2.5\n".encode("latin-1"))
    args = _parse("fit", path, "--target", "y", "--out", tmp_path / "m")
    with pytest.raises(ValueError) as error:
        read_table(args.data, target=args.target, **read_options(args))
    message = command_line_message(str(error.value), args.parser)
    assert f"{path} is not utf-8 text (line 2 has byte 0xfc" in message
    assert "give its encoding, e.g. --encoding latin-1" in message
    args = _parse("fit", path, "--target", "y", "--out", tmp_path / "m", "--encoding", "latin-1")
    table = read_table(args.data, target=args.target, **read_options(args))
    assert table.X["ville"].tolist() == ["Zürich", "Montréal"]


def test_a_separator_hint_in_the_command_line_spelling(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;b;y\n1;2;3\n4;5;6\n")
    args = _parse("fit", path, "--target", "y", "--out", tmp_path / "m")
    with pytest.raises(ValueError) as error:
        read_table(args.data, target=args.target, **read_options(args))
    assert command_line_message(str(error.value), args.parser) == (
        f"Target column 'y' not found in {path}; available columns: ['a;b;y']; its first "
        "line looks ';'-separated: use --sep ';'")


def test_warnings_reach_the_command_line_user_in_one_line(fit_parser, capsys):
    _, state = prepare_features(pd.DataFrame({"colour": ["red", "blue"]}))
    # Other libraries' warnings go on to Python's display (here pytest's recorder).
    with pytest.warns(UserWarning, match="another library's"), report_warnings(fit_parser):
        prepare_features(pd.DataFrame({"colour": ["green"]}), state)
        warnings.warn("task='regression' might suit", DataWarning, stacklevel=1)
        warnings.warn("another library's", UserWarning, stacklevel=1)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith("tfbnn: warning: Column 'colour': 1 row(s) hold a category not "
                             "seen when fitting (data row 1 'green')")
    assert err[1] == "tfbnn: warning: --task regression might suit"


# Whole commands (the defaults need no wiring).


def test_question_marks_are_missing_values_not_categories(marked_model, marked_file, capsys):
    code, out, _ = _run(capsys, "predict", marked_model, marked_file)
    assert code == 0
    assert len(pd.read_csv(io.StringIO(out))) == 40
    meta = pd.read_json(marked_model / "cli.json", typ="series")
    assert meta["encoder"]["output_names"] == ["x1", "x2", "colour=blue", "colour=red"]


def test_unseen_category_at_predict_time_gives_predictions_and_a_warning(
        marked_model, marked_file, tmp_path, capsys):
    frame = pd.read_csv(marked_file)
    frame.loc[[2, 5], "colour"] = "green"
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    with report_warnings(_parse("predict", marked_model, path).parser):
        code, out, err = _run(capsys, "predict", marked_model, path)
    assert code == 0, err
    assert err.startswith("tfbnn: warning: Column 'colour': 2 row(s) hold a category not seen")
    predictions = pd.read_csv(io.StringIO(out))
    assert len(predictions) == 40 and np.isfinite(predictions.to_numpy()).all()


@pytest.mark.parametrize("task", [[], ["--task", "regression"], ["--task", "classification"]])
def test_a_constant_target_is_refused(tmp_path, capsys, task):
    path = tmp_path / "constant.csv"
    path.write_text("a,y\n" + "".join(f"{i},7\n" for i in range(30)))
    code, _, err = _run(capsys, "fit", path, "--target", "y", "--out", tmp_path / "m", *task,
                        *TINY)
    assert code == 1
    assert "target column 'y' holds the same value (7) in all 30 rows" in err
    assert not (tmp_path / "m").exists()


def test_stray_text_is_named_instead_of_one_hot_encoded(tmp_path, capsys):
    path = tmp_path / "stray.csv"
    cells = [str(i) for i in range(30)]
    cells[4], cells[9] = "n.d.", "-"
    path.write_text("a,y\n" + "".join(f"{c},{i % 7}.5\n" for i, c in enumerate(cells)))
    code, _, err = _run(capsys, "fit", path, "--target", "y", "--out", tmp_path / "m", *TINY)
    assert code == 1
    assert "column 'a' holds numbers except in 2 of 30 cell(s): data row 5 'n.d.', " \
           "data row 10 '-'" in err
