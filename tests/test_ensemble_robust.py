"""Deep ensembles that hold up on awkward data: a noise floor from the targets' grid
(`tfbnn.inference.noise_floor`) and member settings chosen on held-out rows
(`tfbnn.inference.ensemble_choice`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

import tfbnn
from tfbnn import likelihoods
from tfbnn.inference.base import FitSettings
from tfbnn.inference.ensemble_choice import (
    MIN_HELD_OUT,
    PAPER_EPSILON,
    Candidate,
    choose,
    member_candidates,
    selection_rows,
)
from tfbnn.inference.noise_floor import (
    MAX_FLOOR,
    resolution_floor,
    shift_floor,
    target_resolution,
    with_floor,
)
from tfbnn.inference.training_data import training_data

#: Today's defaults before this change: the paper's members, the likelihood's own floor.
PAPER = {"adversarial_epsilon": PAPER_EPSILON, "noise": "heteroscedastic", "min_scale": None}


def graded(n, seed, flip=0.02):
    """Integer ratings: a step function of one input, a few ratings one grade off (the
    wine failure: large regions where every training target is the same integer)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = np.clip(np.round(2.0 * x[:, 0]), -2, 2)
    flipped = rng.random(n) < flip
    y[flipped] += rng.choice([-1.0, 1.0], flipped.sum())
    return x, y


def smooth(n, seed):
    """A smooth function of three inputs with almost no noise (naval, energy)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, 3))
    return x, np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 1e-3 * rng.normal(size=n)


# -- the floor -----------------------------------------------------------------------


def test_target_resolution_is_the_grid_step():
    assert target_resolution([3.0, 5.0, 4.0, 5.0, 8.0]) == 1.0
    assert target_resolution(np.array([[0.0, 0.5], [1.0, 0.75], [1.0, 0.5]])) == 0.25
    assert target_resolution([2.0, 2.0]) == 0.0
    continuous = np.random.default_rng(0).normal(size=1000)
    assert 0.0 < target_resolution(continuous) < 1e-3


def test_resolution_floor_is_the_spread_of_one_grid_cell():
    # Integer ratings with std 0.8, standardised: step 1.25, floor 1.25 / sqrt(12) = 0.361,
    # rounded down to a power of 2 ** (1 / 4).
    floor = resolution_floor(np.arange(6) / 0.8)
    assert 0.84 * 1.25 / math.sqrt(12) < floor <= 1.25 / math.sqrt(12)
    assert math.log2(floor) * 4 == pytest.approx(round(math.log2(floor) * 4))
    # Steps that differ in the last digits (splits of one data set) share the floor.
    assert resolution_floor(np.arange(6) / 0.81) == floor
    assert resolution_floor([-1.0, 1.0]) == MAX_FLOOR  # a standardised binary target: capped
    assert resolution_floor([1.0, 1.0]) == 0.0


def test_with_floor_raises_only_a_learned_scale():
    het = with_floor(likelihoods.HeteroscedasticGaussian(), 0.3)
    assert isinstance(het, likelihoods.HeteroscedasticGaussian) and het.min_scale == 0.3
    assert with_floor(likelihoods.Gaussian(trainable=True), 0.3).min_scale == 0.3
    # The initial learned scale stays above the floor.
    assert with_floor(likelihoods.Gaussian(scale=0.2, trainable=True), 0.3).min_scale == 0.1
    fixed = likelihoods.Gaussian(scale=0.5)
    assert with_floor(fixed, 0.3) is fixed
    poisson = likelihoods.Poisson()
    assert with_floor(poisson, 0.3) is poisson
    high = likelihoods.HeteroscedasticGaussian(min_scale=0.5)
    assert with_floor(high, 0.3) is high


def test_shift_floor_keeps_the_scale_under_the_lower_floor():
    params = tf.constant([[0.5, -20.0], [1.0, 0.0], [-2.0, 30.0]])
    floored = likelihoods.HeteroscedasticGaussian(min_scale=0.3).distribution(params)
    shifted = shift_floor(params, 0.3, 1e-6)
    plain = likelihoods.HeteroscedasticGaussian().distribution(shifted)
    np.testing.assert_allclose(plain.stddev(), floored.stddev(), rtol=1e-5)
    np.testing.assert_allclose(plain.mean(), floored.mean())
    assert float(tf.reduce_min(plain.stddev())) >= 0.3 - 1e-6
    assert shift_floor(params, 1e-6, 1e-6) is params


# -- the candidates and the held-out rows ---------------------------------------------


def test_candidates_of_the_auto_options():
    het, gauss = likelihoods.HeteroscedasticGaussian(), likelihoods.Gaussian(trainable=True)
    assert member_candidates(het, "auto", "auto") == [
        Candidate(False, PAPER_EPSILON), Candidate(False, None), Candidate(True, None)]
    assert member_candidates(het, "heteroscedastic", "auto") == [
        Candidate(False, PAPER_EPSILON), Candidate(False, None)]
    assert member_candidates(het, "homoscedastic", None) == [Candidate(True, None)]
    assert member_candidates(het, "auto", 0.05) == [Candidate(False, 0.05), Candidate(True, 0.05)]
    assert member_candidates(gauss, "auto", "auto") == [
        Candidate(False, PAPER_EPSILON), Candidate(False, None)]
    # Labels keep the paper's step: nothing to choose.
    assert member_candidates(likelihoods.Categorical(3), "auto", "auto") == [
        Candidate(False, PAPER_EPSILON)]
    homoscedastic = Candidate(True, None).likelihood(likelihoods.HeteroscedasticGaussian(0.01))
    assert homoscedastic.trainable and homoscedastic.min_scale == 0.01


def test_noise_option_needs_a_heteroscedastic_likelihood():
    with pytest.raises(ValueError, match=r"noise='homoscedastic' applies to "
                                         r"likelihood='heteroscedastic' only"):
        member_candidates(likelihoods.Gaussian(trainable=True), "homoscedastic", "auto")
    x, y = graded(40, 0)
    with pytest.raises(ValueError, match=r"noise='heteroscedastic' applies to"):
        tfbnn.BayesianRegressor(inference="ensemble", likelihood="gaussian",
                                inference_options={"noise": "heteroscedastic"}).fit(x, y)


def test_selection_rows_hold_out_a_share_or_use_the_validation_rows():
    x = np.arange(400.0, dtype=np.float32).reshape(200, 2)
    y = np.arange(200.0, dtype=np.float32)[:, None]
    fitted, (x_held, y_held) = selection_rows(training_data(x, y, FitSettings(seed=0)), 0.2, 0)
    assert fitted.n_rows == 160 and len(fitted.x) == len(fitted.y) == 160 and len(x_held) == 40
    assert sorted([*fitted.y[:, 0], *y_held[:, 0]]) == list(range(200))
    with_validation = training_data(x, y, FitSettings(seed=0, validation_fraction=0.25))
    fitted, held = selection_rows(with_validation, 0.2, 0)
    assert fitted is with_validation and held is with_validation.validation
    few = training_data(x[:150], y[:150], FitSettings(seed=0))
    assert selection_rows(few, 0.1, 0) is None  # 15 rows < MIN_HELD_OUT
    assert MIN_HELD_OUT == 20


# -- the estimator --------------------------------------------------------------------


def test_choice_and_floor_are_saved_with_the_model(tmp_path):
    x, y = graded(120, 0)
    model = tfbnn.BayesianRegressor(hidden_units=(8,), inference="ensemble", epochs=3,
                                    validation_fraction=0.25, random_state=0,
                                    inference_options={"n_members": 2, "threads": 1, "jit_compile": False}).fit(x, y)
    method = model.inference_
    # 30 validation rows: the three candidates were scored on them.
    assert len(method.choice_["held_out_nll"]) == 3
    assert method.floor_ == resolution_floor((y[:, None] - y.mean()) / y.std())
    assert np.all(model.predict_distribution(x).aleatoric_var >= (method.floor_ * y.std()) ** 2)
    model.save(tmp_path / "m")
    loaded = tfbnn.load(tmp_path / "m")
    assert loaded.inference_.choice_ == method.choice_
    assert loaded.inference_.floor_ == method.floor_
    assert loaded.inference_.get_config() == method.get_config()
    np.testing.assert_allclose(loaded.predict_distribution(x).std,
                               model.predict_distribution(x).std, rtol=1e-5)


def test_homoscedastic_members_predict_one_noise_scale():
    x, y = smooth(60, 0)
    model = tfbnn.BayesianRegressor(
        hidden_units=(8,), inference="ensemble", epochs=3, random_state=0,
        inference_options={"n_members": 2, "threads": 1, "noise": "homoscedastic",
                           "jit_compile": False}).fit(x, y)
    assert isinstance(model.likelihood_, likelihoods.HeteroscedasticGaussian)
    aleatoric = model.predict_distribution(x).aleatoric_var
    np.testing.assert_allclose(aleatoric, aleatoric[0], rtol=1e-4)
    assert model.inference_.choice_["noise"] == "homoscedastic"


def test_integer_targets_do_not_collapse_the_noise():
    """Today's defaults put a test point hundreds of nats down; the floor does not."""
    x, y = graded(400, 0)
    x_test, y_test = graded(2000, 1)
    worst = {}
    for name, floor in [("paper", None), ("floored", "auto")]:
        model = tfbnn.BayesianRegressor(
            hidden_units=(32,), inference="ensemble", epochs=300, random_state=0,
            inference_options={**PAPER, "min_scale": floor}).fit(x, y)
        worst[name] = model.predict_distribution(x_test).log_prob(y_test).min()
    assert worst["paper"] < -50
    assert worst["floored"] > -20


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_integer_targets_with_the_new_defaults(seed):
    x, y = graded(400, seed)
    x_test, y_test = graded(2000, seed + 100)
    model = tfbnn.BayesianRegressor(hidden_units=(32,), inference="ensemble", epochs=300,
                                    random_state=seed).fit(x, y)
    assert model.predict_distribution(x_test).log_prob(y_test).min() > -20


def test_adversarial_step_does_not_hurt_near_noise_free_data():
    x, y = smooth(400, 0)
    x_test, y_test = smooth(500, 1)
    scores = {}
    for name, options in [("paper", PAPER), ("auto", {})]:
        model = tfbnn.BayesianRegressor(hidden_units=(16,), inference="ensemble", epochs=200,
                                        learning_rate=1e-2, random_state=0,
                                        inference_options=options).fit(x, y)
        scores[name] = model.predict_distribution(x_test).log_prob(y_test).mean()
        choice = model.inference_.choice_
    assert choice["adversarial_epsilon"] is None
    assert scores["auto"] > scores["paper"] + 0.1


def test_choose_keeps_the_papers_members_unless_another_is_clearly_better():
    rng = np.random.default_rng(0)
    paper, plain = Candidate(False, PAPER_EPSILON), Candidate(False, None)
    reference = rng.normal(1.0, 1.0, size=50)
    # Better by 0.05 nats on average, with a per-row spread of 1: within the noise.
    noisy = reference - 0.05 + rng.normal(0.0, 1.0, size=50)
    assert choose({paper: reference, plain: noisy}) == paper
    # Better by 2 nats on every row (a near-noise-free data set): chosen.
    clear = reference - 2.0 + rng.normal(0.0, 0.1, size=50)
    assert choose({paper: reference, plain: clear}) == plain
    worse = Candidate(True, None)
    assert choose({paper: reference, worse: reference + 1.0, plain: clear}) == plain
    assert choose({paper: reference}) == paper
