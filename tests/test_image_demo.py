"""The image demo: digits 0-4 learned, 5-9 unseen; every method scored the same way."""

import numpy as np
import pytest

from tfbnn.cli import main
from tfbnn.datasets.digits import digit_images
from tfbnn.demo import IMAGES_PLOT_FILE
from tfbnn.image_demo import (
    METHODS,
    SEED,
    TARGET_ACCURACY_GAP,
    meets_target,
    results_table,
    run_images_demo,
    summarise,
)


def _check(results, methods):
    assert list(results) == list(methods)
    for row in results.values():
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["ece"] <= 1 and 0 <= row["ood_auroc"] <= 1
    table = results_table(results)
    assert list(table.index) == list(methods) and table.loc[methods[0], "accuracy"] >= 0


def test_the_deterministic_net_and_its_laplace_posterior_are_scored_and_plotted(tmp_path):
    results = run_images_demo(tmp_path, methods=("deterministic", "laplace"), quick=True,
                              verbose=0)
    _check(results, ("deterministic", "laplace"))
    assert results["deterministic"]["ood_measure"] == "max softmax"
    assert results["laplace"]["ood_measure"] == "mutual information"
    assert results["deterministic"]["meets_target"] is None
    assert isinstance(results["laplace"]["meets_target"], bool)
    assert (tmp_path / IMAGES_PLOT_FILE).stat().st_size > 0


@pytest.mark.slow
def test_every_method_of_the_image_demo_runs(tmp_path):
    results = run_images_demo(tmp_path, quick=True, verbose=0)
    _check(results, METHODS)
    assert np.isfinite(results["vi"]["seconds"])


@pytest.mark.slow
def test_several_splits_are_averaged(tmp_path):
    results = run_images_demo(tmp_path, methods=("deterministic",), quick=True, verbose=0,
                              seeds=(0, 1))
    per_split = [row["accuracy"] for row in results["deterministic"]["splits"]]
    assert len(per_split) == 2
    assert results["deterministic"]["accuracy"] == pytest.approx(np.mean(per_split))


def _split(accuracy, ece, auroc):
    return {"accuracy": accuracy, "ece": ece, "ood_auroc": auroc, "seconds": 1.0,
            "ood_measure": "m"}


def test_summaries_average_the_splits_and_check_the_targets_on_the_means():
    splits = [{"deterministic": _split(0.99, 0.01, 0.90), "vi": _split(0.99, 0.01, 0.95)},
              {"deterministic": _split(0.97, 0.03, 0.94), "vi": _split(0.98, 0.00, 0.93)}]
    results = summarise(splits)
    assert results["vi"]["ece"] == pytest.approx(0.005)
    assert results["vi"]["ece_sd"] == pytest.approx(0.005)
    assert results["deterministic"]["ood_auroc"] == pytest.approx(0.92)
    assert results["vi"]["meets_target"] is True  # 0.985 >= 0.98 - gap, 0.005 <= 0.02, 0.94 > 0.92
    table = results_table(results)
    assert table.loc["vi", "ECE"] == "0.005 ± 0.005"
    assert table.loc["deterministic", "meets target"] is None


@pytest.mark.parametrize("change, met", [
    ({}, True),
    ({"accuracy": 0.99 - TARGET_ACCURACY_GAP - 1e-9}, False),
    ({"ece": 0.0201}, False),
    ({"ood_auroc": 0.90}, False),
])
def test_each_target_is_required(change, met):
    deterministic = _split(0.99, 0.02, 0.90)
    assert meets_target({**_split(0.99, 0.02, 0.91), **change}, deterministic, "vi") is met
    assert meets_target(_split(0.5, 0.5, 0.5), None, "vi") is None


def test_the_validation_split_comes_out_of_the_training_images():
    plain = digit_images(seed=1)
    data = digit_images(seed=1, validation_fraction=0.2)
    assert len(plain.x_val) == 0 and len(plain.y_val) == 0
    assert len(data.x_val) + len(data.x_train) == len(plain.x_train)
    assert len(data.x_val) == pytest.approx(0.2 * len(plain.x_train), abs=1)
    np.testing.assert_array_equal(data.x_test, plain.x_test)
    train_rows = {x.tobytes() for x in plain.x_train}
    assert all(x.tobytes() in train_rows for x in data.x_val)
    assert sorted(set(data.y_val)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="validation_fraction"):
        digit_images(validation_fraction=1.0)


def test_unknown_methods_and_no_splits_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown methods \['mcmc'\]"):
        run_images_demo(tmp_path, methods=("vi", "mcmc"), verbose=0)
    with pytest.raises(ValueError, match="seeds must name at least one split"):
        run_images_demo(tmp_path, seeds=(), verbose=0)


def test_the_command_line_refuses_images_with_methods(tmp_path, capsys):
    assert main(["demo", "--images", "--methods", "vi", "--out", str(tmp_path)]) == 2
    assert "--images takes neither --methods nor --epochs" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "2"], "--seeds applies to --images only"),
    (["--images", "--seeds", "0"], "--seeds must be at least 1, got 0"),
])
def test_the_command_line_checks_seeds(tmp_path, capsys, argv, message):
    assert main(["demo", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_the_command_line_averages_images_over_seeds(tmp_path, monkeypatch):
    import tfbnn.image_demo

    calls = []
    monkeypatch.setattr(tfbnn.image_demo, "run_images_demo",
                        lambda out, **kwargs: calls.append(list(kwargs["seeds"])))
    assert main(["demo", "--images", "--seeds", "3", "--out", str(tmp_path)]) == 0
    assert main(["demo", "--images", "--quick", "--out", str(tmp_path)]) == 0
    assert calls == [[SEED, SEED + 1, SEED + 2], [SEED]]
