"""The demo: a quick run trains, scores, plots and saves a model the CLI can use."""

import math

import pandas as pd

from tfbnn import demo
from tfbnn.cli import CLI_FILE, main
from tfbnn.datasets import concrete_path


def test_run_demo_quick_writes_plot_and_model(tmp_path):
    results = demo.run_demo(tmp_path, quick=True, verbose=0)
    plot = tmp_path / demo.PLOT_FILE
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = tmp_path / demo.MODEL_DIR
    assert (model / "tfbnn.json").is_file() and (model / CLI_FILE).is_file()
    assert results["n_train"] == 927 and results["n_test"] == 103
    assert results["epochs"] == demo.QUICK_EPOCHS
    assert all(math.isfinite(value) for value in results.values())
    assert results["test_rmse"] > 0 and 0.0 <= results["test_coverage"] <= 1.0
    # The saved model is an ordinary command-line model.
    predictions = tmp_path / "predictions.csv"
    assert main(["predict", str(model), str(concrete_path()), "--out", str(predictions)]) == 0
    assert len(pd.read_csv(predictions)) == 1030


def test_demo_command_prints_results(tmp_path, capsys):
    assert main(["demo", "--quick", "--epochs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for text in ("test RMSE", "MPa", "test log-likelihood", "95% interval coverage"):
        assert text in out
    assert (tmp_path / demo.PLOT_FILE).is_file()
