"""Convergence diagnostics on made-up chains: mixed chains pass, stuck ones are named."""

import numpy as np
import pytest

from tfbnn.inference import diagnostics as diag


def test_diagnostics_on_synthetic_chains():
    rng = np.random.default_rng(1)
    mixed = rng.normal(size=(200, 4, 3))
    summary = diag.summarize(mixed, mixed[..., 0], mixed[..., 1:])
    assert summary["rhat_params_max"] < 1.05 and summary["ess_params_min"] > 300
    assert summary["rhat_predictive_max"] < 1.05 and summary["ess_predictive_min"] > 300
    assert diag.problems({**summary, "n_chains": 4}) == []
    stuck = mixed + np.arange(4)[None, :, None] * 5.0  # chains in different places
    summary = diag.summarize(stuck, stuck[..., 0])
    assert summary["rhat_log_lik"] > 1.1
    with pytest.warns(diag.ConvergenceWarning, match="log-likelihood"):
        diag.warn_if_not_mixed({**summary, "n_chains": 4}, "test")


def test_one_chain_has_an_effective_sample_size_and_short_chains_are_refused():
    rng = np.random.default_rng(2)
    independent = rng.normal(size=(400, 1))
    sticky = np.repeat(independent[:40], 10, axis=0)  # each value held for 10 steps
    assert float(diag.effective_sample_size(independent)) > 250
    assert float(diag.effective_sample_size(sticky)) < 100
    with pytest.raises(ValueError, match="at least 4 draws per chain, got 3"):
        diag.summarize(rng.normal(size=(3, 2, 1)), rng.normal(size=(3, 2)))


def test_divergences_and_tiny_sample_sizes_are_problems():
    found = diag.problems({"n_chains": 2, "ess_log_lik": 4.0, "n_divergences": 3})
    assert found == ["effective sample size of the log-likelihood is 4 (< 10)",
                     "3 divergent transitions after warm-up"]


def test_effective_sample_size_is_capped_for_anticorrelated_chains():
    """Strongly anticorrelated chains push TFP's estimate far above the number of draws
    (or below zero); like Stan, it is capped at N log10(N) and never negative."""
    rng = np.random.default_rng(1)
    x = np.zeros((20, 2))
    for t in range(1, 20):
        x[t] = -0.99 * x[t - 1] + rng.normal(size=2)
    constant = np.full((20, 2), 2.0)
    ess = diag.effective_sample_size(np.stack([x, constant], axis=-1))
    assert ess[0] == pytest.approx(40 * np.log10(40))
    assert np.isnan(ess[1])  # no variance: undefined, and left out of the summaries


def test_mean_tree_depth_counts_the_depth_each_tree_reached():
    # Full trees of depth 1, 3 and 8 take 1, 7 and 255 leapfrog steps; a tree stopped
    # inside its fourth doubling (8 to 14 steps) reached depth 4.
    assert diag.mean_tree_depth([1, 7, 255]) == pytest.approx(4.0)
    assert diag.mean_tree_depth(np.array([[9], [14]])) == pytest.approx(4.0)
