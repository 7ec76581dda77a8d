"""The demo: a quick run trains, scores, plots and saves a model the CLI can use; the
methods demo fits several inference methods to data with a gap and plots them."""

import math

import pandas as pd
import pytest

from tfbnn import demo
from tfbnn.cli import CLI_FILE, main
from tfbnn.datasets import concrete_path
from tfbnn.inference import INFERENCE


def test_run_demo_quick_writes_plot_and_model(tmp_path):
    results = demo.run_demo(tmp_path, quick=True, verbose=0)
    plot = tmp_path / demo.PLOT_FILE
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = tmp_path / demo.MODEL_DIR
    assert (model / "tfbnn.json").is_file() and (model / CLI_FILE).is_file()
    assert results["n_train"] == 927 and results["n_test"] == 103
    assert results["epochs"] == demo.QUICK_EPOCHS
    assert all(math.isfinite(value) for value in results.values())
    assert results["test_rmse"] > 0 and results["mean_interval_width"] > 0
    # A fraction of the test mixtures.
    assert results["test_coverage"] * 103 == pytest.approx(round(results["test_coverage"] * 103))
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


# -- the methods demo: every inference method on 1-D data with a gap ---------------------------


def test_run_methods_demo_quick_writes_plot_and_gap_ratios(tmp_path, capsys):
    methods = ["mc_dropout", "vi"]  # not the default order: the order given is kept
    results = demo.run_methods_demo(tmp_path, methods=methods, quick=True, epochs=3, verbose=1)
    assert (tmp_path / demo.METHODS_PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(results) == methods
    for result in results.values():
        assert set(result) == {"gap_ratio", "fit_seconds"}
        assert math.isfinite(result["gap_ratio"]) and result["gap_ratio"] > 0
    out = capsys.readouterr().out
    assert "gap ratio" in out and demo.METHODS_PLOT_FILE in out
    assert demo.format_methods_table(results) in out


def test_methods_demo_defaults_to_every_method_in_a_readable_order():
    assert sorted(demo.default_methods()) == sorted(INFERENCE.names())
    assert demo.default_methods()[:3] == ["vi", "mc_dropout", "ensemble"]
    for method in INFERENCE.names():
        model = demo.methods_regressor(method)
        assert model.hidden_units == demo.METHODS_HIDDEN_UNITS and model.inference == method
        assert model.epochs == demo.METHODS_EPOCHS
    assert demo.methods_regressor("hmc").inference_options["n_chains"] <= 2
    quick = demo.methods_regressor("swag", quick=True)
    assert quick.epochs == demo.QUICK_METHODS_EPOCHS and not quick.inference_options["jit_compile"]


@pytest.mark.parametrize("methods, message", [
    ([], r"methods is empty"),
    (["vi", "nope"], r"Unknown inference method\(s\) \['nope'\]"),
    (["vi", "vi"], r"methods lists \['vi'\] more than once"),
])
def test_run_methods_demo_refuses_bad_method_lists(tmp_path, methods, message):
    with pytest.raises(ValueError, match=message):
        demo.run_methods_demo(tmp_path, methods=methods)
    assert not (tmp_path / demo.METHODS_PLOT_FILE).exists()


def test_demo_methods_command_prints_the_gap_ratio_table(tmp_path, capsys):
    assert main(["demo", "--methods", "vi", "ensemble", "--quick", "--epochs", "3",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("method ")):]
    assert table[0].split() == ["method", "gap", "ratio", "fit", "(s)"]
    assert [line.split()[0] for line in table[1:3]] == ["vi", "ensemble"]
    assert (tmp_path / demo.METHODS_PLOT_FILE).is_file()
    assert not (tmp_path / demo.PLOT_FILE).exists()  # not the concrete demo


def test_demo_methods_without_names_means_every_method(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(demo, "run_methods_demo", lambda *args, **kwargs: calls.append(
        (args, kwargs)))
    monkeypatch.setattr(demo, "run_demo", lambda *args, **kwargs: pytest.fail("concrete demo"))
    assert main(["demo", "--methods", "--out", str(tmp_path)]) == 0
    assert calls == [((tmp_path,), {"methods": None, "quick": False, "epochs": None,
                                    "verbose": 1})]
