"""ArviZ export of sampled posteriors: names and shapes per weight, sample statistics,
ArviZ's diagnostics on the result, and the errors without arviz or without draws."""

import sys

import numpy as np
import pytest

import tfbnn
from tfbnn.inference.inference_data import hmc_sample_stats, to_inference_data, weight_draws

az = pytest.importorskip("arviz")


def linear_data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return x, x @ np.array([1.0, -0.5]) + 0.3 * rng.normal(size=n)


@pytest.fixture(scope="module")
def sgmcmc_fit():
    x, y = linear_data()
    return tfbnn.BayesianRegressor(
        hidden_units=(3,), inference="sgmcmc", epochs=40, batch_size=20, random_state=0,
        inference_options={"n_cycles": 2, "samples_per_cycle": 8, "map_steps": 20,
                           "min_steps": 0, "jit_compile": False}).fit(x, y)


def test_sgmcmc_draws_become_one_variable_per_weight(sgmcmc_fit):
    method = sgmcmc_fit.inference_
    idata = method.to_inference_data()
    posterior = idata.posterior
    names = [v.path.replace("/", ".") for v in method.model.trainable_variables]
    assert sorted(posterior.data_vars) == sorted(names)
    # Each of the 2 cycles' 8 kept draws is a chain.
    assert posterior.sizes["chain"] == 2 and posterior.sizes["draw"] == 8
    for variable in method.model.trainable_variables:
        values = posterior[variable.path.replace("/", ".")].values
        assert values.shape == (2, 8, *variable.shape)
    # The flat draws come back in the model's weight order, cycle after cycle.
    flat = np.concatenate([posterior[n].values.reshape(2, 8, -1) for n in names], axis=-1)
    np.testing.assert_array_equal(flat.reshape(16, 1, -1), method.draws_)
    lp = idata.sample_stats["lp"].values
    assert lp.shape == (2, 8) and np.all(np.isfinite(lp))
    np.testing.assert_array_equal(to_inference_data(method).posterior.sizes["chain"], 1)


def test_arviz_diagnostics_run_on_the_export(sgmcmc_fit):
    idata = sgmcmc_fit.inference_.to_inference_data()
    summary = az.summary(idata)
    assert {"mean", "sd", "ess_bulk", "r_hat"} <= set(summary.columns)
    assert len(summary) == sgmcmc_fit.inference_.draws_.shape[-1]
    assert np.all(np.isfinite(az.ess(idata).to_array().values))
    assert np.all(np.isfinite(az.rhat(idata).to_array().values))
    import matplotlib

    matplotlib.use("Agg")
    axes = az.plot_trace(idata)
    assert axes.shape == (len(idata.posterior.data_vars), 2)


def test_hmc_draws_through_the_estimator():
    x, y = linear_data()
    model = tfbnn.BayesianRegressor(
        hidden_units=(), inference="hmc", random_state=0,
        inference_options={"n_chains": 2, "num_warmup": 40, "num_samples": 20,
                           "map_steps": 20, "jit_compile": False, "threads": 1}).fit(x, y)
    idata = model.inference_.to_inference_data()
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 20
    rhat = az.rhat(idata).to_array().values
    assert np.all(np.isfinite(rhat)) and rhat.max() < 2.0
    stats = idata.sample_stats
    assert {"lp", "acceptance_rate", "diverging", "tree_depth", "step_size"} <= set(stats)
    assert stats["lp"].shape == (2, 20)


def test_hmc_sample_stats_are_named_and_derived_as_arviz_expects():
    trace = {"target_log_prob": np.array([[-3.0, -4.0]]), "log_accept_ratio": np.array(
        [[0.5, np.log(0.25)]]), "divergent": np.array([[False, True]]),
        "leapfrogs": np.array([[7, 31]]), "energy": np.array([[5.0, 6.0]])}
    stats = hmc_sample_stats(trace, step_size=0.1)
    np.testing.assert_allclose(stats["acceptance_rate"], [[1.0, 0.25]])
    np.testing.assert_array_equal(stats["tree_depth"], [[3, 5]])
    np.testing.assert_array_equal(stats["diverging"], [[False, True]])
    np.testing.assert_allclose(stats["step_size"], [[0.1, 0.1]])
    np.testing.assert_allclose(stats["energy"], trace["energy"])


def test_bad_draws_and_non_samplers_are_refused(sgmcmc_fit):
    model = sgmcmc_fit.inference_.model
    with pytest.raises(ValueError, match="parameters"):
        weight_draws(model, np.zeros((4, 1, 3)))
    with pytest.raises(ValueError, match="draws, chains, parameters"):
        weight_draws(model, np.zeros((4, 3)))
    x, y = linear_data()
    vi = tfbnn.BayesianRegressor(hidden_units=(2,), epochs=1, random_state=0).fit(x, y)
    with pytest.raises(ValueError, match="no posterior draws"):
        to_inference_data(vi.inference_)


def test_a_missing_arviz_says_how_to_install_it(sgmcmc_fit, monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz", None)  # makes `import arviz` fail
    with pytest.raises(ImportError, match="pip install arviz"):
        sgmcmc_fit.inference_.to_inference_data()
