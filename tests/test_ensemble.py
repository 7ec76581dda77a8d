"""tfbnn.inference.ensemble: M members trained as one program, wider in data gaps,
behind the estimators and persistence, and strict about its options."""

from __future__ import annotations

import numpy as np
import pytest

import tfbnn
from tfbnn import likelihoods
from tfbnn.datasets import gap_data
from tfbnn.demo import gap_ratio
from tfbnn.inference import INFERENCE
from tfbnn.inference.ensemble import DeepEnsemble


@pytest.fixture(scope="module")
def gap_ensemble():
    x, y = gap_data(64)
    model = tfbnn.BayesianRegressor(hidden_units=(32, 32), inference="ensemble", epochs=500,
                                    learning_rate=5e-3, random_state=0).fit(x, y)
    return x, y, model


def test_ensemble_is_registered():
    assert INFERENCE.get("ensemble") is DeepEnsemble


def test_auto_likelihood_is_the_papers_heteroscedastic_gaussian(gap_ensemble):
    x, _, model = gap_ensemble
    assert isinstance(model.likelihood_, likelihoods.HeteroscedasticGaussian)
    # The members learned the input-dependent noise: 0.1 (variance 0.01) on this data.
    aleatoric = model.predict_distribution(x).aleatoric_var
    assert 0.005 < np.median(aleatoric) < 0.02


def test_epistemic_variance_is_larger_in_the_gap(gap_ensemble):
    x, y, model = gap_ensemble
    assert gap_ratio(model, x) > 2.0
    assert model.score(x, y) > 0.9


def test_members_differ_and_predict_as_an_equal_mixture(gap_ensemble):
    x, _, model = gap_ensemble
    method = model.inference_
    assert method.thetas_.shape[0] == 5
    assert len({tuple(t[:5]) for t in method.thetas_}) == 5
    # Exactly the M members, whatever n_samples asks for.
    xs = model._model_inputs(x[:7])
    assert tuple(method.sample_params(xs, 100).shape) == (5, 7, 2)
    assert tuple(method.sample_params(xs, 2).shape) == (5, 7, 2)
    assert model.predict_distribution(x[:7]).n_draws == 5


def test_heteroscedastic_members_and_validation_data():
    x, y = gap_data(64)
    model = tfbnn.BayesianRegressor(
        hidden_units=(8,), inference="ensemble", likelihood="heteroscedastic",
        inference_options={"n_members": 3, "jit_compile": False}, epochs=3, validation_fraction=0.25,
        random_state=1).fit(x, y)
    assert isinstance(model.likelihood_, likelihoods.HeteroscedasticGaussian)
    assert len(model.history_["val_nll"]) == 3
    dist = model.predict_distribution(x)
    assert dist.n_draws == 3 and np.all(dist.aleatoric_var > 0)


def test_classifier_on_iris(tmp_path):
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    model = tfbnn.BayesianClassifier(
        hidden_units=(16,), inference="ensemble",
        inference_options={"n_members": 3, "jit_compile": False},
        epochs=30, learning_rate=1e-2, random_state=0).fit(x, y)
    assert isinstance(model.likelihood_, likelihoods.Categorical)
    assert model.score(x, y) > 0.85
    assert model.predict_distribution(x).mutual_information.max() > 0
    model.save(tmp_path / "iris")
    np.testing.assert_allclose(tfbnn.load(tmp_path / "iris").predict_proba(x),
                               model.predict_proba(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options, message", [
    ({"n_members": 0}, r"n_members must be an integer >= 1, got 0"),
    ({"n_members": 2.5}, r"n_members must be an integer >= 1, got 2.5"),
    ({"adversarial_epsilon": 0},
     r"adversarial_epsilon must be 'auto', None or a positive number, got 0"),
    ({"adversarial_epsilon": "paper"},
     r"adversarial_epsilon must be 'auto', None or a positive number, got 'paper'"),
    ({"noise": "constant"}, r"Unknown noise='constant'; expected one of \['auto', "),
    ({"min_scale": -0.1}, r"min_scale must be 'auto', None or a non-negative number, got -0.1"),
    ({"selection_fraction": 1.0}, r"selection_fraction must be in \[0, 1\), got 1.0"),
    ({"threads": 0}, r"threads must be 'auto' or an integer >= 1, got 0"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        tfbnn.BayesianRegressor(inference="ensemble", inference_options=options).fit(
            np.zeros((4, 1)), np.arange(4.0))


def test_adversarial_training_is_an_option_that_saves(tmp_path):
    x, y = gap_data(64)
    options = {"n_members": 2, "adversarial_epsilon": 0.01, "threads": 2, "jit_compile": False}
    model = tfbnn.BayesianRegressor(hidden_units=(8,), inference="ensemble", epochs=30,
                                    inference_options=options, random_state=0).fit(x, y)
    assert model.history_["nll"][-1] < model.history_["nll"][0]
    model.save(tmp_path / "adv")
    # The network once, and the members' parameter vectors beside it.
    assert (tmp_path / "adv" / "inference" / "model.keras").exists()
    with np.load(tmp_path / "adv" / "inference" / "ensemble.npz") as data:
        assert data["thetas"].shape[0] == 2
    loaded = tfbnn.load(tmp_path / "adv")
    assert loaded.inference_.get_config() == {**DeepEnsemble().get_config(), **options}
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-5, atol=1e-6)


def test_early_stopping_per_member_through_the_estimator():
    x, y = gap_data(64)
    model = tfbnn.BayesianRegressor(
        hidden_units=(8,), inference="ensemble", epochs=400, learning_rate=1e-2,
        inference_options={"n_members": 2, "jit_compile": False},
        validation_fraction=0.25, patience=2, random_state=0).fit(x, y)
    stopped = model.history_["stopped_epoch"]
    assert stopped is not None and stopped < 400
    assert len(model.history_["val_nll"]) == stopped


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_gap_variance_holds_across_seeds(seed):
    x, y = gap_data()
    model = tfbnn.BayesianRegressor(hidden_units=(50, 50), inference="ensemble", epochs=200,
                                    random_state=seed).fit(x, y)
    assert gap_ratio(model, x) > 1.5


REGRESSION_LIKELIHOODS = ["gaussian", "heteroscedastic", "student_t", "poisson",
                          likelihoods.Gaussian(scale=0.3)]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ensemble", "mc_dropout", "swag"])
@pytest.mark.parametrize("likelihood", REGRESSION_LIKELIHOODS, ids=repr)
def test_every_regression_likelihood(method, likelihood, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    y = rng.poisson(2.0, size=40).astype(float)
    options = {"jit_compile": False, **({"swag_epochs": 2} if method == "swag" else {})}
    model = tfbnn.BayesianRegressor(hidden_units=(4,), inference=method, likelihood=likelihood,
                                    inference_options=options, epochs=2, n_samples=6,
                                    random_state=0).fit(x, y)
    dist = model.predict_distribution(x)
    assert np.all(np.isfinite(dist.mean)) and np.all(np.isfinite(dist.var))
    model.save(tmp_path / "m")
    np.testing.assert_allclose(tfbnn.load(tmp_path / "m").predict(x), model.predict(x),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ensemble", "mc_dropout", "swag"])
def test_bernoulli_classifier(method):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    options = {"jit_compile": False, **({"swag_epochs": 2} if method == "swag" else {})}
    model = tfbnn.BayesianClassifier(hidden_units=(4,), inference=method, epochs=2,
                                     inference_options=options, random_state=0)
    probs = model.fit(x, np.where(x[:, 0] > 0, "yes", "no")).predict_proba(x)
    assert isinstance(model.likelihood_, likelihoods.Bernoulli)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
