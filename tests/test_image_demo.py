"""The image demo: digits 0-4 learned, 5-9 unseen; every method scored the same way."""

import numpy as np
import pytest

from tfbnn.cli import main
from tfbnn.demo import IMAGES_PLOT_FILE
from tfbnn.image_demo import METHODS, results_table, run_images_demo


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
    assert (tmp_path / IMAGES_PLOT_FILE).stat().st_size > 0


@pytest.mark.slow
def test_every_method_of_the_image_demo_runs(tmp_path):
    results = run_images_demo(tmp_path, quick=True, verbose=0)
    _check(results, METHODS)
    assert np.isfinite(results["vi"]["seconds"])


def test_unknown_methods_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown methods \['mcmc'\]"):
        run_images_demo(tmp_path, methods=("vi", "mcmc"), verbose=0)


def test_the_command_line_refuses_images_with_methods(tmp_path, capsys):
    assert main(["demo", "--images", "--methods", "vi", "--out", str(tmp_path)]) == 2
    assert "--images takes neither --methods nor --epochs" in capsys.readouterr().err
