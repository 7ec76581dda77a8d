"""tfbnn.Predictive: the mixture's moments, quantiles and densities against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import optimize, special, stats

from tfbnn import Predictive
from tfbnn import likelihoods as L

RNG = np.random.default_rng(0)
S, B = 5, 4
MIN_SCALE = 0.05
HETERO = L.HeteroscedasticGaussian(min_scale=MIN_SCALE)
HETERO_PARAMS = np.concatenate([RNG.normal(size=(S, B, 2)) * 2,   # locations, 2 targets
                                RNG.normal(size=(S, B, 2))], axis=-1).astype("float32")


def _loc_scale(params=HETERO_PARAMS):
    params = params.astype(np.float64)
    d = params.shape[-1] // 2
    return params[..., :d], np.logaddexp(0.0, params[..., d:]) + MIN_SCALE


def _mixture_cdf(y, loc, scale):
    return np.mean(stats.norm.cdf(y, loc, scale))


def _brute_quantile(q, loc, scale):
    """Inverts the equal mixture of Normal(loc_s, scale_s) with a bracketing root finder."""
    lo, hi = np.min(loc - 10 * scale), np.max(loc + 10 * scale)
    return optimize.brentq(lambda y: _mixture_cdf(y, loc, scale) - q, lo, hi, xtol=1e-10)


# -- regression moments ------------------------------------------------------------------


def test_mean_and_variance_decomposition_against_a_hand_computation():
    dist = Predictive(HETERO, HETERO_PARAMS)
    loc, scale = _loc_scale()
    np.testing.assert_allclose(dist.mean, loc.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dist.aleatoric_var, (scale**2).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(dist.epistemic_var, loc.var(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dist.var, dist.aleatoric_var + dist.epistemic_var, rtol=1e-12)
    np.testing.assert_allclose(dist.std, np.sqrt(dist.var), rtol=1e-12)
    # The law of total variance: the variance of a huge sample from the mixture.
    component = RNG.integers(0, S, size=200_000)
    draws = loc[component, 0, 0] + scale[component, 0, 0] * RNG.standard_normal(200_000)
    standard_error = np.std((draws - draws.mean()) ** 2) / math.sqrt(len(draws))
    assert abs(draws.var() - dist.var[0, 0]) < 4 * standard_error


def test_student_t_aleatoric_variance_includes_the_tails():
    lik = L.StudentT(df=5.0, scale=0.5)
    params = RNG.normal(size=(S, B, 1)).astype("float32")
    dist = Predictive(lik, params)
    np.testing.assert_allclose(dist.aleatoric_var, 0.25 * 5 / 3, rtol=1e-5)
    np.testing.assert_allclose(dist.epistemic_var, params[..., 0].astype(np.float64).var(axis=0),
                               rtol=1e-4, atol=1e-7)


def test_identical_draws_have_no_epistemic_variance():
    params = np.repeat(HETERO_PARAMS[:1], S, axis=0)
    dist = Predictive(HETERO, params)
    np.testing.assert_allclose(dist.epistemic_var, 0.0, atol=1e-10)
    np.testing.assert_allclose(dist.var, dist.aleatoric_var)


# -- quantiles, intervals and the CDF of the mixture -----------------------------------------


@pytest.mark.parametrize("q", [0.01, 0.025, 0.3, 0.5, 0.8, 0.975])
def test_quantile_inverts_the_mixture_cdf(q):
    dist = Predictive(HETERO, HETERO_PARAMS)
    loc, scale = _loc_scale()
    got = dist.quantile(q)
    assert got.shape == (B, 2)
    expected = np.array([[_brute_quantile(q, loc[:, b, j], scale[:, b, j]) for j in range(2)]
                         for b in range(B)])
    np.testing.assert_allclose(got, expected, atol=2e-4)
    np.testing.assert_allclose(dist.cdf(got), q, atol=1e-4)


def test_interval_is_the_central_quantiles():
    dist = Predictive(HETERO, HETERO_PARAMS)
    loc, scale = _loc_scale()
    lower, upper = dist.interval(0.9)
    for b in range(B):
        for j in range(2):
            assert abs(lower[b, j] - _brute_quantile(0.05, loc[:, b, j], scale[:, b, j])) < 2e-4
            assert abs(upper[b, j] - _brute_quantile(0.95, loc[:, b, j], scale[:, b, j])) < 2e-4
    narrow = dist.interval(0.5)
    assert np.all(lower < narrow[0]) and np.all(narrow[1] < upper)


def test_cdf_of_the_mixture():
    dist = Predictive(HETERO, HETERO_PARAMS)
    loc, scale = _loc_scale()
    y = RNG.normal(size=(B, 2))
    expected = stats.norm.cdf(y[None], loc, scale).mean(axis=0)
    np.testing.assert_allclose(dist.cdf(y), expected, rtol=1e-4, atol=1e-6)


def test_poisson_quantile_is_the_smallest_count_reaching_q():
    rates = np.array([[[2.0], [0.3]], [[5.0], [0.3]], [[3.5], [9.0]]])  # (S=3, B=2, 1)
    dist = Predictive(L.Poisson(), np.log(rates))
    rates = rates[..., 0]  # one target: the summaries are (B,)
    np.testing.assert_allclose(dist.mean, rates.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(dist.var, rates.mean(axis=0) + rates.var(axis=0), rtol=1e-5)
    for q in (0.05, 0.5, 0.9):
        expected = [min(k for k in range(200)
                        if stats.poisson.cdf(k, rates[:, b]).mean() >= q) for b in range(2)]
        np.testing.assert_array_equal(dist.quantile(q), expected)


# -- densities ----------------------------------------------------------------------------


def test_log_prob_is_the_log_mean_exp_of_the_components():
    dist = Predictive(HETERO, HETERO_PARAMS)
    loc, scale = _loc_scale()
    y = RNG.normal(size=(B, 2))
    per_draw = stats.norm.logpdf(y[None], loc, scale).sum(axis=-1)  # (S, B)
    expected = special.logsumexp(per_draw, axis=0) - math.log(S)
    got = dist.log_prob(y)
    assert got.shape == (B,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_log_prob_is_stable_far_in_the_tails():
    dist = Predictive(L.Gaussian(scale=0.1), np.zeros((S, B, 1), "float32"))
    got = dist.log_prob(np.full((B, 1), 5.0))
    np.testing.assert_allclose(got, stats.norm.logpdf(5.0, 0.0, 0.1), rtol=1e-5)
    assert np.all(np.isfinite(got))


# -- the affine map to user units --------------------------------------------------------------


def test_shift_and_scale_map_every_summary_to_user_units():
    shift, scale = np.array([10.0, -3.0]), np.array([2.5, 0.3])  # Jacobian log(0.75) != 0
    base = Predictive(HETERO, HETERO_PARAMS)
    user = Predictive(HETERO, HETERO_PARAMS, shift=shift, scale=scale)
    np.testing.assert_allclose(user.mean, shift + scale * base.mean, rtol=1e-10)
    np.testing.assert_allclose(user.std, scale * base.std, rtol=1e-10)
    np.testing.assert_allclose(user.aleatoric_var, scale**2 * base.aleatoric_var, rtol=1e-10)
    np.testing.assert_allclose(user.epistemic_var, scale**2 * base.epistemic_var, rtol=1e-10)
    np.testing.assert_allclose(user.quantile(0.2), shift + scale * base.quantile(0.2), rtol=1e-6)
    z = RNG.normal(size=(B, 2))
    y = shift + scale * z
    np.testing.assert_allclose(user.cdf(y), base.cdf(z), rtol=1e-5)
    # Densities pick up the Jacobian of the map.
    np.testing.assert_allclose(user.log_prob(y), base.log_prob(z) - np.log(scale).sum(),
                               rtol=1e-5)


def test_a_shift_and_scale_per_input_map_each_input_on_its_own():
    shift, scale = RNG.normal(size=(B, 2)), RNG.uniform(0.5, 2.0, size=(B, 2))
    base = Predictive(HETERO, HETERO_PARAMS)
    user = Predictive(HETERO, HETERO_PARAMS, shift=shift, scale=scale, seed=3)
    np.testing.assert_array_equal(user.shift, shift)
    np.testing.assert_array_equal(user.scale, scale)
    assert user.squeeze is False and user.seed == 3
    np.testing.assert_allclose(user.mean, shift + scale * base.mean, rtol=1e-10)
    z = RNG.normal(size=(B, 2))
    np.testing.assert_allclose(user.log_prob(shift + scale * z),
                               base.log_prob(z) - np.log(scale).sum(axis=1), rtol=1e-5)


def test_squeeze_returns_one_value_per_input_for_a_single_target():
    params = HETERO_PARAMS[..., [0, 2]]  # one target
    full = Predictive(HETERO, params, shift=1.0, scale=3.0, squeeze=False)
    flat = Predictive(HETERO, params, shift=1.0, scale=3.0, squeeze=True)
    assert full.mean.shape == (B, 1) and flat.mean.shape == (B,)
    assert full.squeeze is False and flat.squeeze is True
    np.testing.assert_allclose(flat.std, full.std[:, 0])
    np.testing.assert_allclose(flat.quantile(0.7), full.quantile(0.7)[:, 0])
    y = RNG.normal(size=B)
    np.testing.assert_allclose(flat.log_prob(y), full.log_prob(y[:, None]))
    assert flat.samples.shape == (S, B)


@pytest.mark.parametrize("likelihood, width", [(L.Gaussian(trainable=True), 2),
                                               (L.Gaussian(scale=0.5), 1), (HETERO, 2),
                                               (L.StudentT(trainable=True), 2), (L.Poisson(), 1)])
def test_one_target_dimension_gives_one_dimensional_summaries_by_default(likelihood, width):
    params = RNG.normal(size=(S, B, width)).astype("float32")
    dist = Predictive(likelihood, params, shift=1.0, scale=2.0)
    assert dist.squeeze is True
    y = RNG.poisson(2.0, size=B).astype(float)
    lower, upper = dist.interval(0.9)
    for value in (dist.mean, dist.std, dist.var, dist.aleatoric_var, dist.epistemic_var,
                  dist.quantile(0.3), lower, upper, dist.cdf(y), dist.log_prob(y),
                  dist.mean - y):
        assert value.shape == (B,)
    assert dist.samples.shape == (S, B)
    # The same numbers as the (B, 1) form, and a (B, 1) truth is taken too.
    full = Predictive(likelihood, params, shift=1.0, scale=2.0, squeeze=False)
    np.testing.assert_allclose(dist.mean, full.mean[:, 0])
    np.testing.assert_allclose(dist.std, full.std[:, 0])
    np.testing.assert_allclose(dist.log_prob(y), full.log_prob(y[:, None]), rtol=1e-6)
    np.testing.assert_allclose(dist.cdf(y[:, None]), full.cdf(y[:, None])[:, 0])


def test_several_target_dimensions_keep_their_axis():
    dist = Predictive(HETERO, HETERO_PARAMS)
    assert dist.squeeze is False
    assert dist.mean.shape == dist.std.shape == dist.quantile(0.5).shape == (B, 2)
    assert dist.samples.shape == (S, B, 2)
    with pytest.raises(ValueError, match=r"y must have shape \(n, 2\), got \(4,\)"):
        dist.log_prob(np.zeros(B))


def test_squeeze_must_be_auto_or_a_bool():
    with pytest.raises(ValueError, match=r"Unknown squeeze='yes'; expected one of \['auto', True"):
        Predictive(HETERO, HETERO_PARAMS, squeeze="yes")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_parameters_give_the_float32_predictive(dtype):
    half = tf.cast(HETERO_PARAMS, dtype)  # what a mixed-precision model outputs
    dist = Predictive(HETERO, half)
    reference = Predictive(HETERO, tf.cast(half, "float32"))
    assert dist.params.dtype == "float32"
    np.testing.assert_array_equal(dist.mean, reference.mean)
    y = RNG.normal(size=(B, 2))
    np.testing.assert_array_equal(dist.log_prob(y), reference.log_prob(y))


def test_samples_are_seeded_and_follow_the_predictive():
    params = np.zeros((4000, 1, 1), "float32")
    dist = Predictive(L.Gaussian(scale=1.0), params, shift=2.0, scale=3.0, seed=1)
    draws = dist.samples
    assert draws.shape == (4000, 1)
    np.testing.assert_array_equal(draws, Predictive(L.Gaussian(scale=1.0), params, shift=2.0,
                                                    scale=3.0, seed=1).samples)
    assert abs(draws.mean() - 2.0) < 4 * 3.0 / math.sqrt(4000)
    assert abs(draws.std() / 3.0 - 1) < 4 / math.sqrt(2 * 4000)


# -- classification ------------------------------------------------------------------------


def _entropy(p):
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def test_categorical_probabilities_and_uncertainty_decomposition():
    logits = RNG.normal(size=(S, B, 3)).astype("float32") * 2
    dist = Predictive(L.Categorical(3), logits, classes=np.array(["a", "b", "c"]))
    p = special.softmax(logits.astype(np.float64), axis=-1)
    mean_p = p.mean(axis=0)
    np.testing.assert_allclose(dist.probs, mean_p, rtol=1e-5)
    np.testing.assert_allclose(dist.mean, mean_p, rtol=1e-5)
    np.testing.assert_allclose(dist.entropy, _entropy(mean_p), rtol=1e-5)
    np.testing.assert_allclose(dist.expected_entropy, _entropy(p).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(dist.mutual_information,
                               _entropy(mean_p) - _entropy(p).mean(axis=0), rtol=1e-4, atol=1e-7)
    assert np.all(dist.mutual_information > 0)
    np.testing.assert_array_equal(dist.predicted_class, np.array(["a", "b", "c"])[mean_p.argmax(1)])
    labels = np.array(["c", "a", "a", "b"])
    index = np.array([2, 0, 0, 1])
    np.testing.assert_allclose(dist.log_prob(labels), np.log(mean_p[np.arange(B), index]),
                               rtol=1e-5)


def test_bernoulli_probabilities_cover_both_classes():
    logits = RNG.normal(size=(S, B, 1)).astype("float32")
    dist = Predictive(L.Bernoulli(), logits, classes=np.array([3, 7]))
    p1 = special.expit(logits[..., 0].astype(np.float64)).mean(axis=0)
    np.testing.assert_allclose(dist.probs, np.stack([1 - p1, p1], axis=1), rtol=1e-5)
    np.testing.assert_allclose(dist.log_prob(np.array([7, 3, 3, 7])),
                               np.log([p1[0], 1 - p1[1], 1 - p1[2], p1[3]]), rtol=1e-5)
    assert set(np.unique(dist.samples)) <= {3, 7}
    assert dist.samples.shape == (S, B)


def test_mutual_information_vanishes_when_all_draws_agree_and_is_log2_when_they_split():
    agree = np.repeat(RNG.normal(size=(1, B, 3)), S, axis=0).astype("float32")
    dist = Predictive(L.Categorical(3), agree)
    np.testing.assert_allclose(dist.mutual_information, 0.0, atol=1e-6)
    np.testing.assert_allclose(dist.entropy, dist.expected_entropy, rtol=1e-6)
    # Two confident draws that disagree: all the uncertainty is epistemic.
    split = np.array([[[30.0, -30.0]], [[-30.0, 30.0]]], "float32")
    dist = Predictive(L.Categorical(2), split)
    np.testing.assert_allclose(dist.mutual_information, math.log(2), rtol=1e-6)
    np.testing.assert_allclose(dist.expected_entropy, 0.0, atol=1e-10)


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_quantile_outside_the_unit_interval_raises(q):
    dist = Predictive(HETERO, HETERO_PARAMS)
    with pytest.raises(ValueError, match=f"q must be strictly between 0 and 1, got {q!r}"):
        dist.quantile(q)


@pytest.mark.parametrize("level", [0.0, 1.0, 95])
def test_interval_level_outside_the_unit_interval_raises(level):
    with pytest.raises(ValueError, match="level must be strictly between 0 and 1"):
        Predictive(HETERO, HETERO_PARAMS).interval(level)


@pytest.mark.parametrize("attribute", ["aleatoric_var", "epistemic_var", "var", "std"])
def test_regression_properties_raise_on_a_classifier(attribute):
    dist = Predictive(L.Categorical(3), np.zeros((S, B, 3), "float32"))
    with pytest.raises(AttributeError, match="regression predictives only"):
        getattr(dist, attribute)


@pytest.mark.parametrize("method", ["quantile", "cdf"])
def test_regression_methods_raise_on_a_classifier(method):
    dist = Predictive(L.Bernoulli(), np.zeros((S, B, 1), "float32"))
    with pytest.raises(AttributeError, match="regression predictives only"):
        getattr(dist, method)(0.5)
    with pytest.raises(AttributeError, match="regression predictives only"):
        dist.interval(0.9)


@pytest.mark.parametrize("attribute",
                         ["probs", "entropy", "expected_entropy", "mutual_information",
                          "predicted_class"])
def test_classification_properties_raise_on_a_regressor(attribute):
    with pytest.raises(AttributeError, match="classification predictives only"):
        getattr(Predictive(HETERO, HETERO_PARAMS), attribute)


def test_unknown_class_labels_raise():
    dist = Predictive(L.Categorical(3), np.zeros((S, B, 3), "float32"),
                      classes=np.array(["a", "b", "c"]))
    with pytest.raises(ValueError, match=r"Unknown class label 'z'; known: \['a', 'b', 'c'\]"):
        dist.log_prob(np.array(["a", "z", "b", "c"]))


def test_params_must_be_three_dimensional():
    with pytest.raises(ValueError, match=r"params must have shape \(S, B, k\), got \(4, 2\)"):
        Predictive(HETERO, np.zeros((4, 2), "float32"))


# -- blocks of inputs: bounded memory, the same answers ----------------------------------------

N_MANY = 23  # inputs in the chunking tests: blocks of 2 leave a partial last block
REGRESSION_CASES = {
    "gaussian": (L.Gaussian(scale=0.7), 1),
    "learned_scale": (L.Gaussian(trainable=True), 2),
    "heteroscedastic": (HETERO, 4),  # two targets
    "student_t": (L.StudentT(df=4.0, trainable=True), 2),
    "poisson": (L.Poisson(), 1),
}


def _params(width, n=N_MANY, draws=S, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(draws, n, width)) + rng.normal(size=(1, n, width))).astype("float32")


def _regression_summaries(dist, y):
    lower, upper = dist.interval(0.9)
    return {"mean": dist.mean, "std": dist.std, "aleatoric": dist.aleatoric_var,
            "epistemic": dist.epistemic_var, "lower": lower, "upper": upper,
            "quantile": dist.quantile(0.3), "cdf": dist.cdf(y), "log_prob": dist.log_prob(y),
            "samples": dist.samples}


# TensorFlow may round an elementwise float32 op one ulp apart at another position in a
# tensor, so the blocks agree to float32 rounding of each draw's values, not bit for bit.
SAME = {"rtol": 1e-6, "atol": 1e-7}


@pytest.mark.parametrize("case", REGRESSION_CASES)
def test_regression_summaries_do_not_depend_on_the_block_size(case):
    likelihood, width = REGRESSION_CASES[case]
    params = _params(width)
    # A map to user units of its own per input (counts stay counts).
    shift, scale = ((0.0, 1.0) if likelihood.is_discrete else
                    (RNG.normal(size=(N_MANY, 1)), RNG.uniform(0.5, 2.0, size=(N_MANY, 1))))
    whole = Predictive(likelihood, params, shift=shift, scale=scale, seed=4)
    blocks = Predictive(likelihood, params, shift=shift, scale=scale, seed=4, chunk_rows=8)
    assert blocks.chunk_rows == 8 and len(blocks.row_blocks()) == 3
    assert len(whole.row_blocks()) == 1
    y = np.asarray(whole.mean) + RNG.normal(size=np.shape(whole.mean))
    if likelihood.is_discrete:
        y = np.maximum(np.round(y), 0.0)
    expected, got = _regression_summaries(whole, y), _regression_summaries(blocks, y)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, **SAME, err_msg=name)


@pytest.mark.parametrize("likelihood, width", [(L.Bernoulli(), 1), (L.Categorical(4), 4)])
def test_classification_summaries_do_not_depend_on_the_block_size(likelihood, width):
    params = _params(width)
    classes = np.array(["w", "x", "y", "z"][:max(width, 2)])
    whole = Predictive(likelihood, params, classes=classes, seed=2)
    blocks = Predictive(likelihood, params, classes=classes, seed=2, chunk_rows=3)
    labels = classes[RNG.integers(0, len(classes), size=N_MANY)]
    for name in ("probs", "entropy", "expected_entropy", "mutual_information"):
        np.testing.assert_allclose(getattr(blocks, name), getattr(whole, name), **SAME,
                                   err_msg=name)
    np.testing.assert_allclose(blocks.log_prob(labels), whole.log_prob(labels), **SAME)
    np.testing.assert_array_equal(blocks.predicted_class, whole.predicted_class)
    np.testing.assert_array_equal(blocks.samples, whole.samples)


def test_drawing_consecutive_parts_from_one_generator_gives_the_samples():
    dist = Predictive(HETERO, _params(4), seed=7, chunk_rows=5)
    rng = np.random.default_rng(7)
    parts = [dist.draw(rng, slice(a, b)) for a, b in [(0, 3), (3, 11), (11, N_MANY)]]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), dist.samples, rtol=1e-14)
    assert dist.draw(3).shape == (S, N_MANY, 2)
    assert not np.array_equal(dist.draw(3), dist.samples)
    for rows in (slice(0, 9, 2), [1, 2]):
        with pytest.raises(ValueError, match="rows must be a slice of consecutive inputs"):
            dist.draw(rows=rows)


@pytest.mark.parametrize("likelihood", [L.Poisson(), L.StudentT(df=5.0, scale=0.5)])
def test_draws_by_inversion_follow_the_component(likelihood):
    params = np.full((4000, 1, 1), 1.2, "float32")
    draws = Predictive(likelihood, params, seed=0).samples
    component = likelihood.distribution(tf.constant(params[:1, 0]))
    mean, sd = float(component.mean()[0, 0]), float(component.stddev()[0, 0])
    assert abs(draws.mean() - mean) < 4 * sd / math.sqrt(len(draws))
    if likelihood.is_discrete:
        np.testing.assert_array_equal(draws, np.round(draws))
        counts = np.bincount(draws.astype(int)[:, 0], minlength=4)[:4] / len(draws)
        np.testing.assert_allclose(counts, stats.poisson.pmf(np.arange(4), math.exp(1.2)),
                                   atol=0.03)


class _Recording:
    """A likelihood that records the largest number of inputs it is asked about at once."""

    def __init__(self, likelihood):
        self.inner, self.largest = likelihood, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _seen(self, params):
        self.largest = max(self.largest, int(params.shape[-2]))
        return params

    def distribution(self, params):
        return self.inner.distribution(self._seen(params))

    def log_prob(self, y, params):
        return self.inner.log_prob(y, self._seen(params))

    def class_probs(self, params):
        return self.inner.class_probs(self._seen(params))


def test_summaries_of_many_inputs_hold_one_block_at_a_time():
    import tracemalloc

    draws, n, block = 400, 2000, 100  # an (S, B) float64 array would be 6.4 MB
    likelihood = _Recording(HETERO)
    params = _params(2, n=n, draws=draws)
    dist = Predictive(likelihood, params, chunk_rows=block)
    y = np.zeros(n)
    tracemalloc.start()
    try:
        lower, upper = dist.interval(0.95)
        dist.cdf(y), dist.log_prob(y), dist.std
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert likelihood.largest == block
    assert peak < 8 * (8 * draws * block), peak  # a few (S, block) float64 arrays
    assert np.all(lower < upper)


# -- the quantile solver against a plain bisection ----------------------------------------------


def _bisection_quantile(likelihood, params, q, iterations=64):
    """The mixture quantile by bisection on its float64 CDF, within the component quantiles."""
    dist = likelihood.distribution(tf.cast(params, tf.float64))
    component = dist.quantile(tf.constant(q, tf.float64)).numpy()
    lo, hi = component.min(axis=0) - 1e-6, component.max(axis=0) + 1e-6
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = tf.reduce_mean(dist.cdf(tf.constant(mid)[None]), axis=0).numpy() < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("likelihood, width, q", [
    *[(HETERO, 2, q) for q in (1e-6, 0.025, 0.5, 0.8, 0.975)],
    *[(L.Gaussian(scale=0.2), 1, q) for q in (0.025, 0.975)],
    (L.StudentT(df=3.0, scale=0.5), 1, 0.025),
    (L.StudentT(df=1.5, scale=0.5), 1, 0.8)])  # no variance: bracketed by the components
def test_quantiles_equal_a_bisection_of_the_mixture_cdf(likelihood, width, q):
    params = _params(width, n=20, draws=30, seed=5)
    dist = Predictive(likelihood, params, squeeze=False)
    expected = _bisection_quantile(likelihood, params, q)
    sd = np.where(np.isfinite(dist.std), dist.std, 1.0)  # df = 1.5 has no variance
    np.testing.assert_allclose((dist.quantile(q) - expected) / sd, 0.0, atol=1e-9)


@pytest.mark.parametrize("q", [1e-12, 1 - 1e-12])
def test_far_tail_quantiles_use_the_survival_function(q):
    params = _params(2, n=5, draws=30, seed=6)
    dist = Predictive(HETERO, params)
    loc, scale = _loc_scale(params)

    def tail(y, b):  # the mass beyond y on the side of q, exact in float64
        mass = stats.norm.cdf if q < 0.5 else stats.norm.sf
        return np.mean(mass(y, loc[:, b, 0], scale[:, b, 0])) - min(q, 1 - q)

    expected = [optimize.brentq(tail, -60, 60, args=(b,), xtol=1e-13) for b in range(5)]
    np.testing.assert_allclose(dist.quantile(q), expected, rtol=1e-10)


def test_a_quantile_in_a_gap_between_modes_reaches_the_level():
    # Two modes far apart: the mixture CDF is flat, to float64, between them.
    rng = np.random.default_rng(3)
    loc = np.where(rng.random((40, 30, 1)) < 0.5, -6.0, 6.0)
    params = np.concatenate([loc, np.full_like(loc, -3.0)], axis=-1).astype("float32")
    dist = Predictive(HETERO, params)
    for q in (0.3, 0.5, 0.7):
        np.testing.assert_allclose(dist.cdf(dist.quantile(q)), q, atol=1e-12)


def test_chunk_rows_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1, got 0"):
        Predictive(HETERO, HETERO_PARAMS, chunk_rows=0)


# -- parameters drawn a block at a time ------------------------------------------------------


class _Draws:
    """A `draw(x)` whose parameters depend on the input and on the block it is drawn in (as
    MC dropout's masks do), recording the largest block."""

    def __init__(self, draws=6):
        self.draws, self.largest, self.calls = draws, 0, 0

    def __call__(self, x):
        self.largest, self.calls = max(self.largest, len(x)), self.calls + 1
        noise = np.random.default_rng(len(x) * 1000 + int(x[0, 0])).normal(
            size=(self.draws, len(x), 1))
        loc = x[None, :, :1] + noise
        return np.concatenate([loc, 0.1 * noise - 1.0], axis=-1).astype(np.float32)


def test_drawn_params_are_read_a_grid_block_at_a_time():
    from tfbnn.predictive import DrawnParams

    x = np.arange(23, dtype=np.float32)[:, None]
    draw = _Draws()
    params = DrawnParams(draw, x, grid_rows=5)
    everything = np.asarray(params)
    assert params.shape == everything.shape == (6, 23, 2)
    np.testing.assert_array_equal(everything[:, :5], draw(x[:5]))
    # Any slice reads the rows of the grid blocks it covers: an input keeps its draws.
    for rows in (slice(3, 12), slice(0, 1), slice(20, None), slice(7, 7)):
        np.testing.assert_array_equal(params[:, rows].numpy(), everything[:, rows])
    np.testing.assert_array_equal(params[:2, 4:9].numpy(), everything[:2, 4:9])
    assert draw.largest == 5
    np.testing.assert_array_equal(tf.convert_to_tensor(params).numpy(), everything)
    for key in ((slice(None), slice(0, 9, 2)), 3, (slice(None), 4)):
        with pytest.raises(IndexError, match="DrawnParams"):
            params[key]
    with pytest.raises(ValueError, match="grid_rows"):
        DrawnParams(draw, x, grid_rows=0)
    with pytest.raises(ValueError, match="at least one input"):
        DrawnParams(draw, x[:0], grid_rows=5)


def test_a_predictive_of_drawn_params_is_that_of_the_array_and_holds_a_few_blocks():
    from tfbnn.predictive import DrawnParams

    x = np.linspace(-2, 2, 230, dtype=np.float32)[:, None]
    draw = _Draws(draws=40)
    params = DrawnParams(draw, x, grid_rows=16, cache_values=2 * 40 * 16 * 2)
    lazy = Predictive(HETERO, params, chunk_rows=50, seed=3)
    eager = Predictive(HETERO, np.asarray(params), chunk_rows=50, seed=3)
    y = x[:, 0] * 0.5
    calls = draw.calls
    lower, upper = lazy.interval(0.9)
    for got, expected in ((lower, eager.interval(0.9)[0]), (upper, eager.interval(0.9)[1]),
                          (lazy.std, eager.std), (lazy.log_prob(y), eager.log_prob(y)),
                          (lazy.cdf(y), eager.cdf(y)), (lazy.samples, eager.samples)):
        np.testing.assert_array_equal(got, expected)
    # With room for two blocks, every summary drew the blocks again.
    assert draw.calls - calls >= 4 * 15 and draw.largest == 16
    assert repr(lazy).startswith("Predictive(regression, draws=40, inputs=230")
