"""The first-fit benchmark's own arithmetic: data split, schedule and scores."""

import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tfbnn.data import load_uci

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_first_fit",
                                               ROOT / "benchmarks" / "bench_first_fit.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_learning_rate_is_constant_then_a_half_cosine_to_the_floor():
    total = 1000
    rates = bench.learning_rate_at(np.arange(total + 1), total)
    start = round((1 - bench.DECAY_FRACTION) * total)
    np.testing.assert_allclose(rates[:start + 1], bench.LR)
    assert rates[-1] == pytest.approx(bench.DECAY_FLOOR * bench.LR)
    middle = start + (total - start) // 2
    assert rates[middle] == pytest.approx(bench.LR * (1 + bench.DECAY_FLOOR) / 2)
    assert np.all(np.diff(rates) <= 0)


def test_scores_are_rmse_and_the_mixture_log_likelihood():
    rng = np.random.default_rng(0)
    loc = rng.normal(size=(3, 5))
    scale = rng.uniform(0.5, 2.0, size=(3, 5))
    y = rng.normal(size=5)
    rmse, ll = bench.predictive_scores(loc, scale, y)
    assert rmse == pytest.approx(np.sqrt(np.mean((loc.mean(0) - y) ** 2)))
    mixture = np.log(stats.norm(loc, scale).pdf(y).mean(0)).mean()
    assert ll == pytest.approx(mixture)
    far = bench.predictive_scores(loc + 1e3, scale, y)[1]  # no underflow to -inf
    assert math.isfinite(far) and far < ll


def test_split_matches_tfbnn_loader():
    folder = Path(os.environ.get("TFBNN_UCI_DIR", ROOT.parent / "shared" / "data" / "uci"))
    if not (folder / "boston").is_dir():
        pytest.skip(f"UCI data folder {folder} not found")
    ours = bench.load_split(str(folder), "boston", 0)
    for a, b in zip(ours, load_uci("boston", folder).split(0)):
        np.testing.assert_array_equal(a, b)
