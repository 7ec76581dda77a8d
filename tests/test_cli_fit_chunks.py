"""`tfbnn fit --chunk-rows`: training on a file read in parts gives the model the library's
streamed fit gives, encoded and standardised as the whole-file fit; what cannot work on
a file read in parts is refused; memory does not grow with the file."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tfbnn import BayesianClassifier, BayesianRegressor
from tfbnn.cli import main
from tfbnn.data import chunked
from tfbnn.model_folder import CLI_FILE, load_model

N_ROWS = 120
TINY = ["--epochs", "2", "--hidden-units", "8", "--quiet", "--seed", "0"]


def _frame(n=N_ROWS, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "color": np.resize(["red", "green", "blue"], n)})
    return frame.assign(y=2 * frame.x1 - frame.x2 + rng.normal(scale=0.3, size=n),
                        k=(frame.x1 + frame.x2 > 0).astype(int))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A regression file fitted at once and in parts of 40 rows, and a classification file
    (integer labels) fitted in parts and calibrated on a file of its own."""
    folder = tmp_path_factory.mktemp("fit_chunks")
    paths = {name: folder / f"{name}.csv" for name in ("regression", "classes", "cal")}
    _frame().drop(columns="k").to_csv(paths["regression"], index=False)
    _frame().drop(columns="y").to_csv(paths["classes"], index=False)
    _frame(60, seed=1).drop(columns="y").to_csv(paths["cal"], index=False)
    for name, argv in {
        "whole": [paths["regression"], "--target", "y"],
        "parts": [paths["regression"], "--target", "y", "--chunk-rows", "40"],
        "classes": [paths["classes"], "--target", "k", "--chunk-rows", "40",
                    "--calibration-data", paths["cal"]],
    }.items():
        assert main(["fit", *map(str, argv), "--out", str(folder / name), *TINY]) == 0
    return folder, paths


def test_a_fit_in_parts_is_the_streamed_fit_of_the_files_batches(fitted):
    folder, paths = fitted
    model, meta = load_model(folder / "parts")
    scan = chunked.scan_table(paths["regression"], target="y", chunk_rows=40)
    expected = BayesianRegressor(hidden_units=(8,), epochs=2, random_state=0, verbose=0).fit(
        scan.batches(32, seed=0))
    X = np.concatenate([x for x, _ in scan.parts()])
    np.testing.assert_allclose(model.predict(X), expected.predict(X), rtol=1e-6)
    assert meta["encoder"] == scan.encoder


def test_a_fit_in_parts_encodes_and_standardises_as_the_whole_file_fit(fitted, capsys):
    folder, paths = fitted
    parts, parts_meta = load_model(folder / "parts")
    whole, whole_meta = load_model(folder / "whole")
    assert parts_meta == whole_meta  # the same cli.json: columns, encoder, reading options
    # Standardisation from one streamed pass (float32 batches) against float64 arrays.
    for name in ("x_mean_", "x_scale_", "y_shift_", "y_scale_"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-5,
                                   atol=1e-6)
    # Both predict a file the same way: the same columns and rows.
    outputs = {}
    for name in ("parts", "whole"):
        assert main(["predict", str(folder / name), str(paths["regression"])]) == 0
        outputs[name] = capsys.readouterr().out.splitlines()
    assert outputs["parts"][0] == outputs["whole"][0] and len(outputs["parts"]) == N_ROWS + 1


def test_a_classifier_in_parts_keeps_the_files_labels_and_calibrates(fitted, capsys):
    folder, paths = fitted
    model, _ = load_model(folder / "classes")
    assert isinstance(model, BayesianClassifier)
    assert model.classes_.dtype.kind == "i" and model.classes_.tolist() == [0, 1]
    assert json.loads((folder / "classes" / CLI_FILE).read_text())["task"] == "classification"
    assert model.calibrator_ is not None
    assert main(["predict", str(folder / "classes"), str(paths["cal"])]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("prob_0,prob_1,predicted")


@pytest.mark.parametrize("extra, problem", [
    (["--validation-fraction", "0.2"], "--validation-fraction does not apply"),
    (["--validation-fraction", "0.2", "--patience", "3"], "--validation-fraction"),
    (["--calibrate", "0.2"], "--calibrate does not apply"),
    (["--checkpoint-every", "1"], "--checkpoint-every does not apply"),
    (["--inference", "hmc"], "hmc uses every row.*use sgmcmc"),
])
def test_what_needs_the_rows_in_memory_is_refused_before_reading(tmp_path, capsys, extra,
                                                                  problem):
    out = tmp_path / "model"
    code = main(["fit", str(tmp_path / "absent.csv"), "--target", "y", "--out", str(out),
                 "--chunk-rows", "10", *extra])
    assert code == 2
    assert pd.Series([capsys.readouterr().err]).str.contains(problem).all()
    assert not out.exists()


def test_errors_in_parts_name_the_column_and_the_data_row(tmp_path, capsys):
    frame = _frame().drop(columns="k")
    frame["x2"] = frame["x2"].astype(object)
    frame.loc[93, "x2"] = "oops"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    for argv in ([], ["--chunk-rows", "25"]):
        assert main(["fit", str(path), "--target", "y", "--out", str(tmp_path / "m"),
                     *argv]) == 1
        error = capsys.readouterr().err
        assert "column 'x2' holds numbers except in 1 of 120 cell(s): data row 94 'oops'" in error


def _peak_rss(argv) -> int:
    """The peak resident memory (bytes) of a child process running `argv`."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": os.getcwd()})
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, process.stderr.read().decode()[-2000:]
    return usage.ru_maxrss * 1024


@pytest.mark.slow
def test_a_file_larger_than_the_memory_budget_fits_in_parts(tmp_path):
    """A 10x larger file raises the peak memory of a fit in parts by little, and that of
    a fit at once by more than the budget the parts stay within."""
    budget = 60 * 2**20
    peaks = {}
    for n_rows in (20_000, 400_000):
        path = tmp_path / f"rows{n_rows}.csv"
        _frame(n_rows).drop(columns="k").assign(
            **{f"z{i}": np.float32(i) for i in range(8)}).to_csv(path, index=False)
        for mode, extra in (("parts", ["--chunk-rows", "5000"]), ("whole", [])):
            peaks[mode, n_rows] = _peak_rss([
                sys.executable, "-m", "tfbnn", "fit", str(path), "--target", "y", "--out",
                str(tmp_path / f"{mode}{n_rows}"), "--epochs", "1", "--batch-size", "4096",
                "--hidden-units", "8", "--quiet", "--seed", "0", *extra])
    growth = {mode: peaks[mode, 400_000] - peaks[mode, 20_000] for mode in ("parts", "whole")}
    assert growth["parts"] < budget < growth["whole"], {k: v / 2**20 for k, v in growth.items()}
