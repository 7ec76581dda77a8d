import argparse
import json
import math
import os
import re
import runpy
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tfbnn import cli
from tfbnn.benchmarks import published, tables
from tfbnn.benchmarks import uci as bench
from tfbnn.cli import benchmark as command
from tfbnn.data import UCI_DATASETS, load_uci

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def uci_dir() -> Path:
    default = ROOT.parent / "shared" / "data" / "uci"
    path = Path(os.environ.get("TFBNN_UCI_DIR", default))
    if not path.is_dir():
        pytest.skip(f"UCI data folder {path} not found; set TFBNN_UCI_DIR to run these tests")
    return path


class Interrupted(Exception):
    """Stands in for Ctrl-C (a real KeyboardInterrupt would stop pytest itself)."""


class MeanRegressor:
    """Predicts Normal(mean, std) of the training targets everywhere.

    Its test RMSE and log-likelihood have closed forms, so the runner's metrics,
    splits and units can be checked exactly without training a network.
    """

    n_samples = 100

    def __init__(self, log, fail_on_fit=None, **params):
        self.params, self.log, self.fail_on_fit = params, log, fail_on_fit

    def fit(self, X, y):
        self.log.append(self.params)
        if self.fail_on_fit is not None and len(self.log) == self.fail_on_fit:
            raise Interrupted
        self.loc, self.scale = float(np.mean(y)), float(np.std(y))
        return self

    def predict_distribution(self, X):
        return SimpleNamespace(mean=np.full(len(X), self.loc),
                               log_prob=lambda y: stats.norm.logpdf(y, self.loc, self.scale))


@pytest.fixture
def fits(monkeypatch):
    """Replaces the network by `MeanRegressor`; returns the list of fits' parameters."""
    log = []
    monkeypatch.setattr(bench, "BayesianRegressor", lambda **params: MeanRegressor(log, **params))
    return log


def test_metrics_are_exact_in_original_units_on_the_published_splits(uci_dir, fits):
    summary = bench.run_uci_benchmark(["yacht"], [0, 3], data_dir=uci_dir, progress=False)
    data = load_uci("yacht", uci_dir)
    rmse, ll = [], []
    for k in (0, 3):
        _, y_train, _, y_test = data.split(k)
        rmse.append(np.sqrt(np.mean((y_test - y_train.mean()) ** 2)))
        ll.append(stats.norm.logpdf(y_test, y_train.mean(), y_train.std()).mean())
    row = summary.iloc[0]
    assert row["rmse_mean"] == pytest.approx(np.mean(rmse), rel=1e-12)
    assert row["rmse_se"] == pytest.approx(np.std(rmse, ddof=1) / np.sqrt(2), rel=1e-12)
    assert row["test_ll_mean"] == pytest.approx(np.mean(ll), rel=1e-12)
    assert row["test_ll_se"] == pytest.approx(np.std(ll, ddof=1) / np.sqrt(2), rel=1e-12)
    # The protocol's network: one layer of 50 units, 10 x 40 epochs, seeded per split.
    assert fits == [
        {"hidden_units": (50,), "epochs": 400, "inference": "vi", "inference_options": None,
         "random_state": k} for k in (0, 3)
    ]


def test_protocol_defaults_and_overrides(uci_dir, fits, tmp_path):
    protein_like = tmp_path / "data"
    shutil.copytree(uci_dir / "yacht", protein_like / "yacht")
    (protein_like / "yacht" / "n_hidden.txt").write_text("100\n")
    (protein_like / "yacht" / "n_epochs.txt").write_text("20\n")
    bench.run_uci_benchmark(["yacht"], 1, data_dir=protein_like, progress=False)
    assert fits[-1]["hidden_units"] == (100,) and fits[-1]["epochs"] == 200
    bench.run_uci_benchmark(["yacht"], 1, data_dir=protein_like, epochs=7, hidden_units=[8, 4],
                            method_options={"estimator": "flipout"}, progress=False)
    assert fits[-1]["hidden_units"] == (8, 4) and fits[-1]["epochs"] == 7
    assert fits[-1]["inference_options"] == {"estimator": "flipout"}
    bench.run_uci_benchmark(["yacht"], data_dir=protein_like, quick=True, progress=False)
    assert [f["random_state"] for f in fits[-2:]] == [0, 1]
    assert fits[-1]["epochs"] == bench.QUICK_EPOCHS


def test_quick_run_writes_files_and_resumes_without_training(uci_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = bench.run_uci_benchmark(["yacht"], data_dir=uci_dir, out_dir=out, quick=True,
                                    progress=False)
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == list(bench.RESULT_COLUMNS)
    assert list(zip(results["dataset"], results["split"])) == [("yacht", 0), ("yacht", 1)]
    assert (results["epochs"] == bench.QUICK_EPOCHS).all()
    assert np.isfinite(results[["rmse", "test_ll", "fit_seconds"]].to_numpy()).all()
    # Better than predicting a constant: the network learned something.
    assert (results["rmse"] < np.std(load_uci("yacht", uci_dir).y)).all()

    assert list(first["splits"]) == [2] and list(first["n_splits"]) == [20]
    assert json.loads((out / "summary.json").read_text())[0]["ll_pbp"] == -1.63
    written = pd.read_csv(out / "summary.csv", dtype={"hidden_units": str})
    pd.testing.assert_frame_equal(written, first, check_dtype=False)
    table = (out / "summary.md").read_text()
    assert table == tables.format_markdown(first)
    assert "| yacht | vi | 2/20 | 20 |" in table and "not comparable" in table
    # Files with the usual permissions, as `open()` makes them under the umask.
    umask = os.umask(0)
    os.umask(umask)
    for name in ("results.csv", "summary.md", "summary.csv", "summary.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert sorted(p.name for p in out.iterdir()) == [
        "results.csv", "summary.csv", "summary.json", "summary.md"]  # no temporary files left

    def no_training(**params):
        raise AssertionError("a finished split was trained again")

    monkeypatch.setattr(bench, "BayesianRegressor", no_training)
    again = bench.run_uci_benchmark(["yacht"], data_dir=uci_dir, out_dir=out, quick=True,
                                    progress=False)
    pd.testing.assert_frame_equal(again, first)
    assert (out / "summary.md").read_text() == table


def test_interrupted_run_resumes_where_it_stopped(uci_dir, tmp_path, monkeypatch):
    log = []
    monkeypatch.setattr(bench, "BayesianRegressor",
                        lambda **p: MeanRegressor(log, fail_on_fit=3, **p))
    with pytest.raises(Interrupted):
        bench.run_uci_benchmark(["yacht"], 4, data_dir=uci_dir, out_dir=tmp_path,
                                progress=False)
    assert list(bench.read_results(tmp_path)["split"]) == [0, 1]
    log.clear()
    monkeypatch.setattr(bench, "BayesianRegressor", lambda **p: MeanRegressor(log, **p))
    summary = bench.run_uci_benchmark(["yacht"], 4, data_dir=uci_dir, out_dir=tmp_path,
                                      progress=False)
    assert [p["random_state"] for p in log] == [2, 3]
    assert list(bench.read_results(tmp_path)["split"]) == [0, 1, 2, 3]
    assert summary["splits"].tolist() == [4]


def test_refuses_to_mix_settings_in_one_output_folder(uci_dir, tmp_path, fits):
    bench.run_uci_benchmark(["yacht"], 1, data_dir=uci_dir, out_dir=tmp_path, epochs=5,
                            progress=False)
    with pytest.raises(ValueError, match=r"results.csv already holds 'yacht'.*epochs=5.*epochs=6"):
        bench.run_uci_benchmark(["yacht"], 2, data_dir=uci_dir, out_dir=tmp_path, epochs=6,
                                progress=False)
    with pytest.raises(ValueError, match=r"hidden_units='50'.*hidden_units='8'"):
        bench.run_uci_benchmark(["yacht"], 2, data_dir=uci_dir, out_dir=tmp_path, epochs=5,
                                hidden_units=8, progress=False)
    assert len(fits) == 1


def test_missing_data_folder_is_named(tmp_path, fits):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        bench.run_uci_benchmark(["yacht"], data_dir=missing, progress=False)


def test_missing_data_set_is_named_before_any_training(uci_dir, tmp_path, fits):
    shutil.copytree(uci_dir / "yacht", tmp_path / "yacht")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "boston"))):
        bench.run_uci_benchmark(["yacht", "boston"], data_dir=tmp_path, out_dir=tmp_path / "o",
                                progress=False)
    assert fits == [] and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"datasets": ["yatch"]}, r"Unknown dataset='yatch'; expected one of \['boston'"),
        ({"method": "nope"}, r"Unknown inference='nope'; expected one of \[.*'vi'"),
        ({"method_options": {"bogus": 1}}, r"Invalid inference_options for inference='vi'"),
        ({"splits": [20]}, r"Split 20 is out of range for 'yacht', which has splits 0 to 19"),
        ({"splits": 0}, r"splits must be an integer >= 1, got 0"),
        ({"epochs": 0}, r"epochs must be an integer >= 1, got 0"),
        ({"hidden_units": []}, r"hidden_units is empty"),
    ],
)
def test_bad_arguments_fail_before_training(uci_dir, fits, kwargs, message):
    kwargs = {"datasets": ["yacht"], **kwargs}
    with pytest.raises(ValueError, match=message):
        bench.run_uci_benchmark(data_dir=uci_dir, progress=False, **kwargs)
    assert fits == []


def _readme_tables(text: str) -> tuple[dict, dict]:
    """The published LL table and RMSE lines of the data folder's README."""
    ll = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("| ").split("|")]
        if len(cells) == 5 and cells[0] in UCI_DATASETS:
            ll[cells[0]] = [float(c) for c in cells[1:]]
    rmse = {}
    for label, key in [("PBP", "pbp"), ("MC dropout (grid)", "mc_dropout"),
                       ("Deep ensembles", "deep_ensembles")]:
        numbers = re.search(re.escape(label) + r" ([-\d./ ]+)", text).group(1)
        rmse[key] = [float(n) for n in numbers.split("/")]
    return ll, rmse


def test_published_numbers_match_the_data_readme(uci_dir):
    ll, rmse = _readme_tables((uci_dir / "README.md").read_text())
    assert sorted(ll) == sorted(UCI_DATASETS)
    for name in UCI_DATASETS:
        assert list(published.published_ll(name).values()) == ll[name]
        assert published.best_published_ll(name) == max(ll[name])
        for key in rmse:
            assert published.published_rmse(name)[key] == rmse[key][UCI_DATASETS.index(name)]


def _rows(dataset, values, method="vi"):
    return [{"dataset": dataset, "method": method, "split": k, "rmse": r, "test_ll": ll,
             "fit_seconds": 10.0, "n_train": 9, "n_test": 1, "epochs": 400, "hidden_units": "50",
             "options": "{}", "seed": k, "n_samples": 100, "n_splits": 20}
            for k, (r, ll) in enumerate(values)]


def test_summary_columns_and_published_comparison():
    results = pd.DataFrame(_rows("yacht", [(1.0, -1.0), (2.0, -2.0), (3.0, -3.0)])
                           + _rows("boston", [(3.0, -2.5)]))
    summary = tables.summarise(results)
    assert list(summary.columns) == [
        "dataset", "method", "splits", "n_splits", "epochs", "hidden_units", "rmse_mean",
        "rmse_se", "test_ll_mean", "test_ll_se", "fit_seconds", "ll_pbp", "ll_mc_dropout",
        "ll_deep_ensembles", "ll_dvi", "ll_best_published", "ll_minus_best", "rmse_pbp",
        "rmse_mc_dropout", "rmse_deep_ensembles"]
    boston, yacht = summary.to_dict("records")
    assert boston["dataset"] == "boston" and math.isnan(boston["rmse_se"])
    assert (boston["ll_pbp"], boston["ll_mc_dropout"], boston["rmse_deep_ensembles"]) == (
        -2.57, -2.40, 3.28)
    assert boston["ll_best_published"] == -2.40
    assert boston["ll_minus_best"] == pytest.approx(-0.10)
    assert yacht["rmse_mean"] == 2.0 and yacht["rmse_se"] == pytest.approx(1 / np.sqrt(3))
    assert yacht["ll_minus_best"] == pytest.approx(-2.0 - (-0.47))
    assert yacht["fit_seconds"] == 30.0
    table = tables.format_markdown(summary)
    assert "| yacht | vi | 3/20 | 400 | 2.000 ± 0.577 | -2.000 ± 0.577 | -1.53 | 30 s |" in table
    assert "| boston | vi | 1/20 | 400 | 3.000 | -2.500 |" in table


def test_comparison_puts_methods_side_by_side_and_marks_the_best():
    results = pd.DataFrame(
        _rows("yacht", [(1.0, -1.0), (2.0, -2.0)], method="vi")
        + _rows("yacht", [(0.5, -0.2)] * 20, method="hmc")
        + _rows("boston", [(3.0, -2.5)] * 20, method="hmc"))
    table = tables.format_comparison(tables.summarise(results), ["vi", "hmc"])
    ll, rmse, seconds = table.split("\n\n")[1::2]
    assert ll.splitlines()[0] == ("| data set | vi | hmc | PBP (published) | MC dropout (published) "
                                  "| Deep ensembles (published) | DVI (published) |")
    # Ours beat every published number on yacht; on boston MC dropout's -2.40 is best.
    assert "| yacht | -1.500 ± 0.500 (2/20 splits) | **-0.200 ± 0.000** ▲ | -1.63 |" in ll
    assert "| boston | – | -2.500 ± 0.000 | -2.57 | **-2.40** | -2.41 | -2.41 |" in ll
    assert "| yacht | 1.500 ± 0.500 (2/20 splits) | **0.500 ± 0.000** ▲ | 1.02 | 0.67 | 1.58 |" in rmse
    assert "| boston | – | 3.000 ± 0.000 | 3.01 | **2.90** | 3.28 |" in rmse
    assert "| yacht | 20 s | 3.3 min |" in seconds and "| total | 20 s | 6.7 min |" in seconds


def test_comparison_script_reads_result_folders(tmp_path, capsys):
    for method in ("vi", "hmc"):
        folder = tmp_path / method
        folder.mkdir()
        pd.DataFrame(_rows("yacht", [(1.0, -1.0)] * 20, method=method)).to_csv(
            folder / "results.csv", index=False)
    script = runpy.run_path(str(ROOT / "benchmarks" / "uci_table.py"))
    assert script["main"]([str(tmp_path / "hmc"), str(tmp_path / "vi")]) == 0
    assert "| data set | hmc | vi |" in capsys.readouterr().out
    assert script["main"]([str(tmp_path / "missing")]) == 1
    assert "uci_table.py: error:" in capsys.readouterr().err


def _parse(argv):
    """Parses like `tfbnn` does once `add_benchmark_parser` is in its SUBCOMMANDS."""
    parser = argparse.ArgumentParser(prog="tfbnn")
    command.add_benchmark_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_command_line_runs_and_prints_the_table(uci_dir, tmp_path, fits, capsys):
    args = _parse(["benchmark", "uci", "--datasets", "yacht", "--n-splits", "2", "--epochs", "3",
                   "--hidden-units", "8", "4", "--data-dir", str(uci_dir), "--out",
                   str(tmp_path), "--no-progress"])
    assert args.run(args) == 0
    assert capsys.readouterr().out == (tmp_path / "summary.md").read_text()
    assert [(f["epochs"], f["hidden_units"], f["random_state"]) for f in fits] == [
        (3, (8, 4), 0), (3, (8, 4), 1)]
    defaults = _parse(["benchmark", "uci"])
    assert (defaults.datasets, defaults.splits, defaults.method, defaults.out) == (
        None, None, "vi", None)


@pytest.mark.parametrize("argv", [["--splits", "0", "--n-splits", "2"], ["--datasets", "iris"],
                                  ["--epochs", "0"], ["--method-options", "[1]"]])
def test_command_line_rejects_bad_options(argv):
    with pytest.raises(SystemExit):
        _parse(["benchmark", "uci", *argv])


def test_script_reports_errors_in_one_line(tmp_path, fits, capsys):
    main = runpy.run_path(str(ROOT / "benchmarks" / "run_uci.py"))["main"]
    assert main(["--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 1
    assert f"run_uci.py: error: UCI data folder {tmp_path / 'nothing'}" in capsys.readouterr().err


def test_interrupt_keeps_finished_splits_and_says_how_to_resume(uci_dir, tmp_path, monkeypatch,
                                                                capsys):
    def interrupt(**params):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "BayesianRegressor", interrupt)
    args = _parse(["benchmark", "uci", "--datasets", "yacht", "--data-dir", str(uci_dir),
                   "--out", str(tmp_path), "--no-progress"])
    try:
        status = args.run(args)
    except KeyboardInterrupt:
        pytest.fail("run_benchmark_command let KeyboardInterrupt through")
    assert status == 130
    assert "run the same command again to resume" in capsys.readouterr().err


def test_wired_into_the_tfbnn_command_line(tmp_path, capsys):
    assert command.add_benchmark_parser in cli.SUBCOMMANDS
    missing = tmp_path / "nothing"
    assert cli.main(["benchmark", "uci", "--data-dir", str(missing), "--out",
                     str(tmp_path)]) == 1
    assert f"tfbnn: error: UCI data folder {missing} does not exist" in capsys.readouterr().err
