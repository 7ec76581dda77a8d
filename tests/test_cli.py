"""The `tfbnn` command line, run in-process through `tfbnn.cli.main`.

Every model here has the same shape (3 feature columns, one of them one-hot
encoded into 3, so 5 inputs; one hidden layer of 8; 60 rows), so the compiled
training code is shared and the whole file stays fast.
"""

import importlib
import io
import json
import runpy
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tfbnn
from tfbnn.cli import CLI_FILE, main

N_ROWS = 60
TINY = ["--epochs", "3", "--hidden-units", "8", "--quiet", "--seed", "0"]
REGRESSION_COLUMNS = ["mean", "std", "lower", "upper", "epistemic", "aleatoric"]


def _features(seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x1": rng.normal(size=N_ROWS),
        "x2": rng.normal(size=N_ROWS),
        "color": np.resize(["red", "green", "blue"], N_ROWS),
    })


def _regression_frame(seed=0) -> pd.DataFrame:
    X = _features(seed)
    noise = np.random.default_rng(seed + 1).normal(scale=0.1, size=N_ROWS)
    return X.assign(y=2 * X.x1 - X.x2 + (X.color == "red") + noise)


def _classification_frame(seed=0) -> pd.DataFrame:
    X = _features(seed)
    return X.assign(label=np.where(X.x1 + X.x2 > 0, "dog", "cat"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """CSV files shared by the tests, by name."""
    folder = tmp_path_factory.mktemp("data")
    files = {}

    def write(name, frame, **kwargs):
        files[name] = folder / f"{name}.csv"
        frame.to_csv(files[name], index=False, **kwargs)

    regression = _regression_frame()
    write("regression", regression)
    write("regression_no_target", regression.drop(columns="y"))
    write("classification", _classification_frame())
    # Calibration rows the models are not fitted on; and a file whose --calibrate 0.5
    # leaves N_ROWS rows for fitting and for calibration (so compiled code is shared).
    write("regression_cal", _regression_frame(seed=10))
    write("classification_cal", _classification_frame(seed=10))
    write("regression_120", pd.concat([regression, _regression_frame(seed=20)]))
    return files


def _run(capsys, *argv):
    """Runs the command line; returns `(exit status, stdout, stderr)`."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _expect_error(capsys, argv, status, *fragments):
    code, _, err = _run(capsys, *argv)
    assert code == status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert lines[0].startswith("tfbnn: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def regression_model(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "regression"
    assert main(["fit", str(data["regression"]), "--target", "y", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def classification_model(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "classification"
    assert main(["fit", str(data["classification"]), "--target", "label", "--out", str(out),
                 *TINY]) == 0
    return out


# -- fit ------------------------------------------------------------------------------


def test_fit_prints_inferred_task_and_summary(data, tmp_path, capsys):
    out = tmp_path / "model"
    code, stdout, _ = _run(capsys, "fit", data["regression"], "--target", "y", "--out", out,
                           *TINY)
    assert code == 0
    assert "Task: regression (inferred from target column 'y'" in stdout
    assert "5 after one-hot encoding" in stdout
    assert "final loss" in stdout and "training time" in stdout
    assert {p.name for p in out.iterdir()} == {"tfbnn.json", "inference", CLI_FILE}


def test_inference_options_reach_the_method_and_are_saved(data, tmp_path, capsys):
    out = tmp_path / "ensemble"
    code, stdout, _ = _run(capsys, "fit", data["regression"], "--target", "y", "--out", out,
                           "--inference", "ensemble", "--inference-options",
                           '{"n_members": 2, "adversarial_epsilon": null, "threads": 1}', *TINY)
    assert code == 0, stdout
    config = tfbnn.load(out).inference_.get_config()
    assert config["n_members"] == 2 and config["adversarial_epsilon"] is None
    assert config["threads"] == 1


@pytest.mark.parametrize("method, extra, options, rows", [
    ("hmc", [], {"n_chains": 2, "num_warmup": 10, "num_samples": 8, "max_tree_depth": 3,
                 "map_steps": 20, "jit_compile": False},
     ["chains", "draws per chain", "acceptance rate", "divergences", "step size",
      "split R-hat, log-likelihood", "split R-hat, predictive mean (max)",
      "ESS, log-likelihood", "mixing"]),
    ("sgmcmc", ["--epochs", "40"], {"n_cycles": 4, "jit_compile": False, "min_steps": 0,
                                    "map_steps": 0},
     ["draws", "ESS, log-likelihood", "mixing"]),
])
def test_samplers_print_their_diagnostics(data, tmp_path, capsys, method, extra, options, rows):
    code, stdout, err = _run(capsys, "fit", data["regression"], "--target", "y", "--out",
                             tmp_path / method, "--inference", method, "--inference-options",
                             json.dumps(options), *TINY, *extra)
    assert code == 0, err
    labels = [line.split("  ")[0] for line in stdout.splitlines()]
    assert set(rows) <= set(labels), stdout
    assert "epochs" not in labels  # samplers do not run by epochs
    # A run this short has not mixed, and the summary says why (not a Python warning).
    mixing = next(line for line in stdout.splitlines() if line.startswith("mixing"))
    assert "NOT MIXED: " in mixing and "ConvergenceWarning" not in err
    # The fitted sampler predicts like any model.
    code, _, _ = _run(capsys, "predict", tmp_path / method, data["regression_no_target"],
                      "--out", tmp_path / f"{method}.csv")
    assert code == 0 and len(pd.read_csv(tmp_path / f"{method}.csv")) == N_ROWS


def test_bad_inference_options_exit_2_before_reading_the_data(tmp_path, capsys):
    # The data file does not exist: the options are checked first.
    fit = ["fit", tmp_path / "missing.csv", "--target", "y", "--out", tmp_path / "m"]
    _expect_error(capsys, [*fit, "--inference-options", "{n_members: 2}"], 2,
                  "--inference-options", "expected a JSON object")
    _expect_error(capsys, [*fit, "--inference-options", "[2]"], 2, "expected a JSON object")
    _expect_error(capsys, [*fit, "--inference", "ensemble", "--inference-options",
                           '{"n_member": 2}'], 2, "--inference-options", "n_member")
    _expect_error(capsys, [*fit, "--inference", "hmc", "--inference-options",
                           '{"n_chains": 0}'], 2, "n_chains must be an integer >= 1")
    assert not (tmp_path / "m").exists()


def test_explicit_task_is_not_reported_as_inferred(data, tmp_path, capsys):
    code, stdout, _ = _run(capsys, "fit", data["regression"], "--target", "y", "--task",
                           "regression", "--out", tmp_path / "m", *TINY)
    assert code == 0 and "inferred" not in stdout


def test_cli_json_records_columns_and_one_hot_encoding(regression_model):
    meta = json.loads((regression_model / CLI_FILE).read_text())
    assert meta["task"] == "regression" and meta["target"] == "y"
    assert meta["features"] == ["x1", "x2", "color"]
    assert meta["encoder"]["output_names"] == [
        "x1", "x2", "color=blue", "color=green", "color=red"]


@pytest.mark.parametrize("target", ["y", "3", "-1"])
def test_target_by_name_index_and_negative_index(data, tmp_path, target):
    out = tmp_path / "model"
    assert main(["fit", str(data["regression"]), "--target", target, "--out", str(out),
                 *TINY]) == 0
    assert json.loads((out / CLI_FILE).read_text())["target"] == "y"


def test_target_first_column_by_index_zero(tmp_path, capsys):
    frame = _regression_frame()
    path = tmp_path / "first.csv"
    frame[["y", "x1", "x2", "color"]].to_csv(path, index=False)
    code, _, _ = _run(capsys, "fit", path, "--target", "0", "--out", tmp_path / "m", *TINY)
    assert code == 0
    code, stdout, _ = _run(capsys, "evaluate", tmp_path / "m", path, "--json")
    assert code == 0 and json.loads(stdout)["rows"] == N_ROWS


def test_no_header_and_predict_with_or_without_target(tmp_path, capsys):
    frame = _regression_frame()[["y", "x1", "x2", "color"]]  # target first
    with_target, without = tmp_path / "with.csv", tmp_path / "without.csv"
    frame.to_csv(with_target, index=False, header=False)
    frame.drop(columns="y").to_csv(without, index=False, header=False)
    model = tmp_path / "m"
    code, stdout, _ = _run(capsys, "fit", with_target, "--no-header", "--target", "0", "--out",
                           model, *TINY)
    assert code == 0 and "target column '0'" in stdout
    # Without a header the feature columns are positions; a file lacking the
    # target has one column fewer and must still line up.
    for path in (with_target, without):
        code, stdout, _ = _run(capsys, "predict", model, path, "--level", "0.9")
        assert code == 0
        assert len(pd.read_csv(io.StringIO(stdout))) == N_ROWS


def test_separator(tmp_path, capsys):
    path = tmp_path / "semi.csv"
    _regression_frame().to_csv(path, index=False, sep=";")
    model = tmp_path / "m"
    assert _run(capsys, "fit", path, "--sep", ";", "--target", "y", "--out", model, *TINY)[0] == 0
    code, stdout, _ = _run(capsys, "evaluate", model, path, "--json")  # the saved separator
    assert code == 0 and "rmse" in json.loads(stdout)
    _expect_error(capsys, ["predict", model, path, "--sep", ","], 1,
                  "other feature columns", "read as one column")


def test_missing_value_refused_naming_row_and_column(tmp_path, capsys):
    frame = _regression_frame()
    frame.loc[2, "x2"] = np.nan  # data row 3
    path = tmp_path / "missing.csv"
    frame.to_csv(path, index=False)
    message = _expect_error(capsys, ["fit", path, "--target", "y", "--out", tmp_path / "m",
                                     *TINY], 1, "'x2'", "row 3")
    assert "impute" in message
    assert not (tmp_path / "m").exists()


def test_missing_values_imputed_with_mean_at_fit_and_predict(tmp_path, capsys):
    frame = _regression_frame()
    frame.loc[2, "x2"] = np.nan
    frame.loc[5, "color"] = np.nan
    path = tmp_path / "missing.csv"
    frame.to_csv(path, index=False)
    model = tmp_path / "m"
    assert _run(capsys, "fit", path, "--target", "y", "--impute", "mean", "--out", model,
                *TINY)[0] == 0
    code, stdout, _ = _run(capsys, "predict", model, path)
    assert code == 0
    predictions = pd.read_csv(io.StringIO(stdout))
    assert np.isfinite(predictions.to_numpy()).all()


# -- predict and evaluate --------------------------------------------------------------


def test_predict_regression_columns(regression_model, data, tmp_path, capsys):
    out = tmp_path / "sub" / "pred.csv"
    code, stdout, _ = _run(capsys, "predict", regression_model, data["regression_no_target"],
                           "--out", out, "--n-samples", "20")
    assert code == 0 and str(out) in stdout
    predictions = pd.read_csv(out)
    assert list(predictions.columns) == REGRESSION_COLUMNS
    assert len(predictions) == N_ROWS
    p = predictions
    assert (p["lower"] < p["mean"]).all() and (p["mean"] < p["upper"]).all()
    # std, epistemic and aleatoric are standard deviations whose squares add up.
    np.testing.assert_allclose(p["std"] ** 2, p["epistemic"] ** 2 + p["aleatoric"] ** 2,
                               rtol=1e-6)


def test_predict_ignores_a_target_column(regression_model, data, capsys):
    code, stdout, _ = _run(capsys, "predict", regression_model, data["regression"])
    assert code == 0
    assert list(pd.read_csv(io.StringIO(stdout)).columns) == REGRESSION_COLUMNS


def test_evaluate_regression_table_and_json(regression_model, data, capsys):
    code, stdout, _ = _run(capsys, "evaluate", regression_model, data["regression"])
    assert code == 0
    names = [line.split()[0] for line in stdout.splitlines()]
    assert {"rows", "rmse", "nll", "crps", "coverage"} <= set(names)
    code, stdout, _ = _run(capsys, "evaluate", regression_model, data["regression"], "--json",
                           "--level", "0.8")
    metrics = json.loads(stdout)
    assert metrics["level"] == 0.8 and metrics["rows"] == N_ROWS
    assert all(np.isfinite(v) for v in metrics.values())


def test_evaluate_writes_html_report(regression_model, data, tmp_path, capsys):
    report = tmp_path / "report.html"
    code, stdout, err = _run(capsys, "evaluate", regression_model, data["regression"], "--json",
                             "--report", report)
    assert code == 0
    json.loads(stdout)  # the report notice goes to stderr, keeping stdout JSON
    assert "report" in err
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_classification_with_string_labels(classification_model, data, capsys):
    meta = json.loads((classification_model / CLI_FILE).read_text())
    assert meta["task"] == "classification"
    code, stdout, _ = _run(capsys, "predict", classification_model, data["classification"])
    assert code == 0
    predictions = pd.read_csv(io.StringIO(stdout))
    assert list(predictions.columns) == [
        "prob_cat", "prob_dog", "predicted", "entropy", "mutual_information"]
    np.testing.assert_allclose(predictions.prob_cat + predictions.prob_dog, 1.0, atol=1e-6)
    assert set(predictions.predicted) <= {"cat", "dog"}
    code, stdout, _ = _run(capsys, "evaluate", classification_model, data["classification"],
                           "--json")
    assert code == 0
    labels = pd.read_csv(data["classification"])["label"]
    expected = np.mean(predictions.predicted.to_numpy() == labels.to_numpy())
    assert json.loads(stdout)["accuracy"] == pytest.approx(expected)


# -- calibration ---------------------------------------------------------------------------


def test_fit_with_calibrate_holds_out_rows_and_evaluate_shows_it(data, tmp_path, capsys):
    out = tmp_path / "model"
    code, stdout, _ = _run(capsys, "fit", data["regression_120"], "--target", "y", "--out", out,
                           "--calibrate", "0.5", *TINY)
    assert code == 0
    summary = dict(line.split(None, 1) for line in stdout.splitlines() if line.strip())
    assert summary["rows"] == str(N_ROWS)
    assert summary["calibration"] == f"quantile on {N_ROWS} held-out rows"
    config = json.loads((out / "tfbnn.json").read_text())
    assert config["state"]["calibrator_"]["class"] == "QuantileRecalibrator"
    assert (out / CLI_FILE).is_file()
    code, stdout, _ = _run(capsys, "evaluate", out, data["regression_cal"], "--json")
    metrics = json.loads(stdout)
    assert code == 0 and metrics["calibration"] == "quantile"
    code, stdout, _ = _run(capsys, "evaluate", out, data["regression_cal"])
    assert "calibration" in stdout.split()
    code, stdout, _ = _run(capsys, "predict", out, data["regression_cal"], "--level", "0.9")
    predictions = pd.read_csv(io.StringIO(stdout))
    assert code == 0 and (predictions.lower < predictions.upper).all()


def test_fit_with_calibration_data_for_a_classifier(data, tmp_path, capsys):
    out = tmp_path / "model"
    code, stdout, _ = _run(capsys, "fit", data["classification"], "--target", "label",
                           "--out", out, "--calibration-data", data["classification_cal"], *TINY)
    assert code == 0 and f"temperature on {N_ROWS} held-out rows" in stdout
    code, stdout, _ = _run(capsys, "evaluate", out, data["classification_cal"], "--json")
    assert code == 0 and json.loads(stdout)["calibration"] == "temperature"


def test_calibrate_command_adds_and_replaces_a_calibrator(regression_model, data, tmp_path,
                                                          capsys):
    model = tmp_path / "model"
    shutil.copytree(regression_model, model)
    cli_json = (model / CLI_FILE).read_text()
    code, stdout, _ = _run(capsys, "calibrate", model, data["regression_cal"],
                           "--method", "conformal")
    assert code == 0 and f"conformal on {N_ROWS} rows" in stdout
    assert (model / CLI_FILE).read_text() == cli_json
    assert sorted(p.name for p in model.parent.iterdir()) == ["model"]  # no staging left
    code, stdout, _ = _run(capsys, "evaluate", model, data["regression"], "--json",
                           "--level", "0.9")
    assert json.loads(stdout)["calibration"] == "conformal"
    code, stdout, _ = _run(capsys, "calibrate", model, data["regression_cal"])
    assert code == 0 and "replaced" in stdout and "conformal" in stdout
    config = json.loads((model / "tfbnn.json").read_text())
    assert config["state"]["calibrator_"]["class"] == "QuantileRecalibrator"


def test_calibration_errors(regression_model, classification_model, data, tmp_path, capsys):
    fit = ["fit", data["regression"], "--target", "y", "--out", tmp_path / "m", *TINY]
    _expect_error(capsys, [*fit, "--calibrate", "0.2", "--calibration-method", "temperature"],
                  2, "--calibration-method temperature", "regression", "quantile")
    _expect_error(capsys, [*fit, "--task", "regression", "--calibrate", "0.2",
                           "--calibration-method", "temperature"], 2, "temperature")
    _expect_error(capsys, [*fit, "--calibration-method", "quantile"], 2, "--calibrate")
    _expect_error(capsys, [*fit, "--calibrate", "0.01"], 2, "--calibrate 0.01", "at least 2")
    _expect_error(capsys, [*fit, "--calibrate", "1.5"], 2, "--calibrate")
    _expect_error(capsys, [*fit, "--calibrate", "0.2", "--calibration-data",
                           data["regression_cal"]], 2, "not allowed with")
    _expect_error(capsys, [*fit, "--calibration-data", tmp_path / "nope.csv"], 1, "nope.csv")
    assert not (tmp_path / "m").exists()
    _expect_error(capsys, ["calibrate", classification_model, data["classification_cal"],
                           "--method", "quantile"], 2, "--method quantile", "temperature")
    _expect_error(capsys, ["calibrate", regression_model, data["regression_no_target"]], 1,
                  "'y' not found")


# -- errors -----------------------------------------------------------------------------


def test_usage_errors_exit_2(data, tmp_path, capsys):
    fit = ["fit", data["regression"], "--target", "y", "--out", tmp_path / "m"]
    _expect_error(capsys, [*fit, "--bogus"], 2, "unrecognized arguments: --bogus",
                  "tfbnn fit --help")
    _expect_error(capsys, [*fit, "--hidden-units", "8,x"], 2, "--hidden-units")
    _expect_error(capsys, [*fit, "--learning-rate", "-1"], 2, "--learning-rate")
    _expect_error(capsys, [*fit, "--inference", "nope"], 2, "--inference")
    _expect_error(capsys, [*fit, "--patience", "3"], 2, "--validation-fraction")
    _expect_error(capsys, [*fit, "--likelihood", "bernoulli", *TINY], 2, "regression")
    _expect_error(capsys, ["fit", data["regression"]], 2, "--target", "--out")
    _expect_error(capsys, [], 2, "COMMAND")


def test_demo_methods_usage_errors_exit_2(tmp_path, capsys):
    demo = ["demo", "--out", tmp_path]
    _expect_error(capsys, [*demo, "--methods", "nope"], 2, "--methods", "invalid choice: 'nope'")
    _expect_error(capsys, [*demo, "--methods", "vi", "vi"], 2,
                  "--methods lists ['vi'] more than once")
    assert not any(tmp_path.iterdir())
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("mine")
    _expect_error(capsys, demo, 2, f"--out {tmp_path / 'model'}", "not a tfbnn model")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_missing_files_and_unknown_target(regression_model, data, tmp_path, capsys):
    _expect_error(capsys, ["fit", tmp_path / "nope.csv", "--target", "y", "--out",
                           tmp_path / "m"], 1, "nope.csv")
    _expect_error(capsys, ["fit", data["regression"], "--target", "price", "--out",
                           tmp_path / "m"], 1, "'price' not found", "'x1'")
    _expect_error(capsys, ["fit", data["regression"], "--target", "7", "--out",
                           tmp_path / "m"], 1, "out of range")
    _expect_error(capsys, ["predict", regression_model, tmp_path / "nope.csv"], 1, "nope.csv")
    _expect_error(capsys, ["predict", tmp_path / "no_model", data["regression"]], 1,
                  "no_model")
    _expect_error(capsys, ["evaluate", regression_model, data["regression_no_target"]], 1,
                  "'y' not found")


def test_not_a_model_folder(data, tmp_path, capsys, regression_model):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    _expect_error(capsys, ["predict", folder, data["regression"]], 1, "not a tfbnn model")
    # A model saved from Python has no cli.json: the columns are unknown.
    copy = tmp_path / "python_model"
    shutil.copytree(regression_model, copy)
    (copy / CLI_FILE).unlink()
    _expect_error(capsys, ["predict", copy, data["regression"]], 1, CLI_FILE, "tfbnn.load")
    shutil.copytree(regression_model, copy, dirs_exist_ok=True)
    (copy / CLI_FILE).write_text("{not json")
    _expect_error(capsys, ["evaluate", copy, data["regression"]], 1, "corrupt")


def test_fit_refuses_to_replace_a_folder_that_is_not_a_model(data, tmp_path, capsys):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    _expect_error(capsys, ["fit", data["regression"], "--target", "y", "--out", folder, *TINY],
                  2, "not a tfbnn model")
    assert (folder / "thesis.tex").read_text() == "precious"


def test_different_feature_columns(regression_model, tmp_path, capsys):
    path = tmp_path / "other.csv"
    _regression_frame().rename(columns={"x2": "z"}).to_csv(path, index=False)
    _expect_error(capsys, ["predict", regression_model, path], 1,
                  "missing ['x2']", "unexpected ['z']")


def test_bad_values_at_predict_time(regression_model, tmp_path, capsys):
    frame = _regression_frame()
    frame["x1"] = frame["x1"].astype(object)
    frame.loc[4, "x1"] = "n/a?"
    frame.loc[1, "color"] = "purple"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    _expect_error(capsys, ["predict", regression_model, path], 1, "'x1'", "row 5")
    frame = _regression_frame()
    frame.loc[3, "x2"] = np.nan
    frame.to_csv(path, index=False)
    _expect_error(capsys, ["predict", regression_model, path], 1, "'x2'", "row 4")


def test_infinite_value_refused(tmp_path, capsys):
    frame = _regression_frame()
    frame.loc[0, "x1"] = np.inf
    path = tmp_path / "inf.csv"
    frame.to_csv(path, index=False)
    _expect_error(capsys, ["fit", path, "--target", "y", "--out", tmp_path / "m", *TINY], 1,
                  "Infinite value", "'x1'")


def test_divergence_keeps_the_existing_model(data, tmp_path, capsys):
    model = tmp_path / "model"
    fit = ["fit", data["regression"], "--target", "y", "--out", model, *TINY]
    assert _run(capsys, *fit)[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in model.iterdir()}
    _expect_error(capsys, [*fit, "--learning-rate", "1e30", "--overwrite"], 1, "diverged")
    assert {p.name: p.stat().st_mtime_ns for p in model.iterdir()} == before
    assert _run(capsys, "predict", model, data["regression"])[0] == 0


# -- help and entry points ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["fit", "calibrate", "predict", "evaluate", "demo"])
def test_help_of_each_command(command, capsys):
    code, stdout, _ = _run(capsys, command, "--help")
    assert code == 0 and f"usage: tfbnn {command}" in stdout


def test_predict_help_says_uncertainties_are_standard_deviations(capsys):
    _, stdout, _ = _run(capsys, "predict", "--help")
    assert "standard deviation" in " ".join(stdout.split())


def test_version(capsys):
    import tfbnn

    code, stdout, _ = _run(capsys, "--version")
    assert code == 0 and stdout.strip() == f"tfbnn {tfbnn.__version__}"


def test_python_dash_m_tfbnn_help(monkeypatch, capsys):
    # What `python -m tfbnn --help` runs, in this process: tfbnn/__main__.py as __main__.
    monkeypatch.setattr(sys, "argv", ["tfbnn", "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("tfbnn", run_name="__main__")
    assert exit_.value.code == 0
    stdout = capsys.readouterr().out
    assert "usage: tfbnn" in stdout
    for command in ("fit", "calibrate", "predict", "evaluate", "demo", "benchmark"):
        assert command in stdout


def test_console_script_entry_point_is_main():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    module, name = pyproject["project"]["scripts"]["tfbnn"].split(":")
    assert getattr(importlib.import_module(module), name) is main


def test_headerless_file_for_a_model_fitted_with_a_header(regression_model, tmp_path, capsys):
    frame = _regression_frame()
    features_only, with_target = tmp_path / "features.csv", tmp_path / "all.csv"
    frame.drop(columns="y").to_csv(features_only, index=False, header=False)
    frame.to_csv(with_target, index=False, header=False)
    code, stdout, _ = _run(capsys, "predict", regression_model, features_only, "--no-header")
    assert code == 0 and len(pd.read_csv(io.StringIO(stdout))) == N_ROWS
    # Where the target sits is unknown without names: ask for the features alone.
    _expect_error(capsys, ["predict", regression_model, with_target, "--no-header"], 1,
                  "no header", "['x1', 'x2', 'color']")
