"""Files read in parts: `tfbnn predict` and `evaluate` give the same output whatever
`--chunk-rows` is, and the pieces that make that so (`reading.read_frames`,
`RunningEvaluation`, the report's row sample) agree with their one-part forms."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from tfbnn import Predictive
from tfbnn import likelihoods as L
from tfbnn.cli import main
from tfbnn.cli.predict import RowSample
from tfbnn.data import reading, tabular
from tfbnn.metrics import RunningEvaluation, crps, crps_samples, evaluate

# The models have test_cli.py's shape (5 inputs, 8 hidden units, 60 rows), so that a run of
# both compiles their training once.
N_ROWS = 60
TINY = ["--epochs", "3", "--hidden-units", "8", "--quiet", "--seed", "0"]
# The network computes in float32; a part of another size may round a value one ulp apart.
SAME = {"rtol": 1e-6, "atol": 1e-7}


def _frame(seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=N_ROWS), "x2": rng.normal(size=N_ROWS),
                          "color": np.resize(["red", "green", "blue"], N_ROWS)})
    return frame.assign(y=2 * frame.x1 - frame.x2 + rng.normal(scale=0.3, size=N_ROWS),
                        label=np.where(frame.x1 + frame.x2 > 0, "dog", "cat"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A labelled CSV file and a model of each task fitted on it."""
    folder = tmp_path_factory.mktemp("chunks")
    data = folder / "data.csv"
    _frame().to_csv(data, index=False)
    regression, classification = folder / "regression", folder / "classification"
    _frame().drop(columns="label").to_csv(folder / "regression.csv", index=False)
    _frame().drop(columns="y").to_csv(folder / "classification.csv", index=False)
    assert main(["fit", str(folder / "regression.csv"), "--target", "y", "--out",
                 str(regression), *TINY]) == 0
    assert main(["fit", str(folder / "classification.csv"), "--target", "label", "--out",
                 str(classification), *TINY]) == 0
    return {"folder": folder, "regression": regression, "classification": classification,
            "regression.csv": folder / "regression.csv",
            "classification.csv": folder / "classification.csv"}


def _run(capsys, *argv) -> str:
    assert main([str(a) for a in argv]) == 0
    return capsys.readouterr().out


def _assert_same_frames(got: pd.DataFrame, expected: pd.DataFrame):
    assert list(got.columns) == list(expected.columns) and len(got) == len(expected)
    for name in expected.columns:
        if expected[name].dtype.kind == "f":
            np.testing.assert_allclose(got[name], expected[name], **SAME, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_predict_writes_the_same_rows_in_parts(files, tmp_path, capsys, task):
    whole, parts = tmp_path / "whole.csv", tmp_path / "parts.csv"
    _run(capsys, "predict", files[task], files[f"{task}.csv"], "--out", whole)
    out = _run(capsys, "predict", files[task], files[f"{task}.csv"], "--out", parts,
               "--chunk-rows", 7)
    assert out.strip() == f"Wrote {N_ROWS} predictions to {parts}"
    _assert_same_frames(pd.read_csv(parts), pd.read_csv(whole))
    # On standard output too, with one header line.
    printed = _run(capsys, "predict", files[task], files[f"{task}.csv"], "--chunk-rows", 10)
    assert printed.count("\n") == N_ROWS + 1
    _assert_same_frames(pd.read_csv(io.StringIO(printed)), pd.read_csv(whole))


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_evaluate_scores_every_row_the_same_in_parts(files, capsys, task):
    command = ["evaluate", files[task], files[f"{task}.csv"], "--json"]
    whole = json.loads(_run(capsys, *command))
    parts = json.loads(_run(capsys, *command, "--chunk-rows", 7))
    assert parts.keys() == whole.keys() and parts["rows"] == whole["rows"] == N_ROWS
    for name, value in whole.items():
        assert parts[name] == pytest.approx(value, rel=SAME["rtol"], abs=SAME["atol"]), name


def test_evaluate_report_from_parts(files, tmp_path, capsys):
    report = tmp_path / "report.html"
    _run(capsys, "evaluate", files["regression"], files["regression.csv"], "--report", report,
         "--chunk-rows", 8)
    assert "Calibration curve" in report.read_text()


def test_an_error_in_a_later_part_says_where_the_part_begins(files, tmp_path, capsys):
    frame = _frame().drop(columns="label")
    frame["x2"] = frame["x2"].astype(object)
    frame.loc[33, "x2"] = "n/a?"  # data row 34: row 4 of the part from row 31
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    for command in ("predict", "evaluate"):
        assert main([command, str(files["regression"]), str(path), "--chunk-rows", "10"]) == 1
        error = capsys.readouterr().err
        assert "'x2'" in error and "row 4" in error, error
        assert "rows counted from data row 31" in error, error


# -- the pieces -------------------------------------------------------------------------


def test_read_frames_gives_the_file_in_parts(files, tmp_path):
    path = files["folder"] / "data.csv"
    parts = list(reading.read_frames(path, chunk_rows=25))
    assert [len(part) for part in parts] == [25, 25, 10]
    assert parts[1].index[0] == 25  # the file's row numbering
    pd.testing.assert_frame_equal(pd.concat(parts), tabular.read_frame(path))
    # With read_frame's options, e.g. other missing-value markers.
    marked = tmp_path / "marked.csv"
    marked.write_text("a;b\n1;x\n-9;y\n3;-9\n")
    options = {"sep": ";", "na_values": ["-9"]}
    parts = list(reading.read_frames(marked, chunk_rows=2, **options))
    pd.testing.assert_frame_equal(pd.concat(parts), reading.read_frame(marked, **options),
                                  check_dtype=False)
    assert parts[0]["a"].isna().tolist() == [False, True]
    tables = list(tabular.read_tables(path, target="y", task="regression", chunk_rows=25))
    pd.testing.assert_series_equal(pd.concat([t.y for t in tables]),
                                   tabular.read_table(path, target="y").y)


def test_read_frames_refuses_what_read_frame_refuses(tmp_path):
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(ValueError, match="has no data rows"):
        list(reading.read_frames(header_only, chunk_rows=5))
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1, got 0"):
        list(reading.read_frames(header_only, chunk_rows=0))
    with pytest.raises(FileNotFoundError):
        list(reading.read_frames(tmp_path / "none.csv", chunk_rows=5))
    with pytest.raises(ValueError, match="Unknown task=None"):
        list(tabular.read_tables(header_only, target="a", task=None, chunk_rows=5))
    broken = tmp_path / "broken.csv"
    broken.write_text("a,b\n" + "1,2\n" * 30 + "1,2,3\n")
    parts = reading.read_frames(broken, chunk_rows=10)
    assert len(next(parts)) == 10
    with pytest.raises(ValueError, match=r"broken.csv: cannot parse as CSV with sep=','"):
        list(parts)


def _parts(predictive_of, n, splits):
    """`predictive_of(rows)` for consecutive parts of `range(n)`, split at `splits`."""
    bounds = [0, *splits, n]
    return [(slice(a, b), predictive_of(slice(a, b))) for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_running_evaluation_over_parts_equals_evaluate(task):
    rng = np.random.default_rng(0)
    n = 60
    if task == "regression":
        likelihood = L.HeteroscedasticGaussian()
        params = rng.normal(size=(20, n, 2)).astype("float32")
        y = rng.normal(size=n)
    else:
        likelihood = L.Categorical(3)
        params = 2 * rng.normal(size=(20, n, 3)).astype("float32")
        y = rng.integers(0, 3, size=n)
    expected = evaluate(Predictive(likelihood, params, seed=5), y=y, level=0.8)
    running = RunningEvaluation(level=0.8)
    for rows, part in _parts(lambda r: Predictive(likelihood, params[:, r], seed=5), n,
                             [7, 30, 31]):
        assert running.add(y[rows], part) is running
    assert running.rows == n
    got = running.scores()
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=SAME["rtol"], abs=SAME["atol"]), name


def test_crps_of_a_predictive_is_that_of_its_samples_block_by_block():
    rng = np.random.default_rng(1)
    params = rng.normal(size=(30, 25, 2)).astype("float32")
    dist = Predictive(L.HeteroscedasticGaussian(), params, seed=3, chunk_rows=4)
    y = rng.normal(size=25)
    assert crps(y, dist) == pytest.approx(np.mean(crps_samples(y, dist.samples)), rel=1e-12)


def test_running_evaluation_errors():
    running = RunningEvaluation()
    with pytest.raises(ValueError, match="no parts were added"):
        running.scores()
    with pytest.raises(TypeError, match="add takes a Predictive, got tuple"):
        running.add(np.zeros(3), (np.zeros(3), np.ones(3)))
    running.add(np.zeros(4), Predictive(L.Gaussian(), np.zeros((2, 4, 1), "float32")))
    with pytest.raises(ValueError, match="classification and regression predictives"):
        running.add(np.zeros(4), Predictive(L.Bernoulli(), np.zeros((2, 4, 1), "float32")))
    with pytest.raises(ValueError, match="y_true has 3 examples but the predictive has 4"):
        running.add(np.zeros(3), Predictive(L.Gaussian(), np.zeros((2, 4, 1), "float32")))


def test_row_sample_is_uniform_in_order_and_independent_of_the_split():
    X, y = np.arange(100.0)[:, None], np.arange(100)
    whole, split = RowSample(30), RowSample(30)
    whole.add(X, y)
    for rows in (slice(0, 13), slice(13, 14), slice(14, 100)):
        split.add(X[rows], y[rows])
    np.testing.assert_array_equal(split.rows()[1], whole.rows()[1])
    kept = whole.rows()[1]
    assert len(kept) == 30 and np.all(np.diff(kept) > 0)
    np.testing.assert_array_equal(whole.rows()[0][:, 0], kept)
    small = RowSample(500)
    small.add(X, y)
    np.testing.assert_array_equal(small.rows()[1], y)
