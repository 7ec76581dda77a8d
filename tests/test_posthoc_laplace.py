"""tfbnn.posthoc.LastLayerLaplace: the estimators' Laplace posterior on any trained Keras
model, exact on a linear model in fixed features, from arrays or a tf.data.Dataset."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import optimize, stats

import tfbnn
from tfbnn import likelihoods
from tfbnn.posthoc import LastLayerLaplace

SIGMA = 0.3  # known noise of the random-feature regression


# -- the estimator's posterior, post hoc --------------------------------------------------


@pytest.fixture(scope="module", params=[True, False], ids=["refined", "trained"])
def fitted_regressor(request):
    """The estimator's Laplace with its default last-layer refit, and without it."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=60)
    est = tfbnn.BayesianRegressor(
        hidden_units=(8,), activation="tanh", inference="laplace", epochs=20,
        learning_rate=1e-2, random_state=0,
        inference_options={"jit_compile": False, "refine_map": request.param},
    ).fit(X, y)
    xs = ((X - est.x_mean_) / est.x_scale_).astype(np.float32)
    ys = (y - est.y_shift_) / est.y_scale_
    return est, xs, ys


def test_regression_matches_the_estimators_laplace(fitted_regressor):
    """On the estimator's own MAP network and standardised data, the post-hoc posterior is
    the estimator's: the same weights, precision, noise, covariance and predictive (to
    float32 rounding: the network holds the estimator's float64 MAP as float32).

    The estimator's network holds its tuned noise, which sigma_noise="map" keeps;
    "marglik" tunes it again at the network's weights, as the estimator does without
    its last-layer refit (with it, the estimator counts the noise's well-determined
    weights at the weights before the refit, so the two differ a little)."""
    est, xs, ys = fitted_regressor
    method = est.inference_
    weights = [w.copy() for w in method.model.get_weights()]
    for sigma_noise in ["map"] if method.refine_map else ["map", "marglik"]:
        la = LastLayerLaplace(method.model, est.likelihood_, sigma_noise=sigma_noise)
        la.fit(xs, ys)
        np.testing.assert_allclose(la.theta_map_, method.theta_map_, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(la.sigma_noise_, method.sigma_noise_, rtol=1e-6)
        assert la.prior_precision_ == pytest.approx(method.prior_precision_, rel=1e-5)
        assert la.log_marginal_likelihood() == pytest.approx(method.log_marginal_likelihood(),
                                                             rel=1e-6)
        np.testing.assert_allclose(la.posterior_covariance(), method.posterior_covariance(),
                                   rtol=1e-5, atol=1e-7)
        for ours, theirs in zip(la.glm_predictive(xs[:9], include_noise=True),
                                method.glm_predictive(xs[:9], include_noise=True)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(la.draw_params(xs[:9], 5, seed=1),
                                   method.sample_params(xs[:9], 5, seed=1), rtol=1e-5, atol=1e-6)
    # The same predictive as the estimator's, in the model's standardised units.
    ours = la.predictive(xs[:9], n_samples=30, seed=0)
    theirs = est.predict_distribution(est.x_mean_ + est.x_scale_ * xs[:9], n_samples=30)
    np.testing.assert_allclose(est.y_shift_ + est.y_scale_ * ours.mean, theirs.mean, rtol=1e-5)
    np.testing.assert_allclose(est.y_scale_ * ours.std, theirs.std, rtol=1e-5)
    # The user's model is left as it was.
    for before, after in zip(weights, method.model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_classification_matches_the_estimators_laplace():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    est = tfbnn.BayesianClassifier(
        hidden_units=(6,), inference="laplace", epochs=30, learning_rate=1e-2,
        random_state=0, inference_options={"jit_compile": False}).fit(X, y)
    method = est.inference_
    xs = ((X - est.x_mean_) / est.x_scale_).astype(np.float32)
    la = LastLayerLaplace(method.model, "categorical").fit(xs, np.searchsorted(est.classes_, y))
    assert la.likelihood == est.likelihood_
    np.testing.assert_allclose(la.theta_map_, method.theta_map_, rtol=1e-6, atol=1e-7)
    assert la.prior_precision_ == pytest.approx(method.prior_precision_, rel=1e-5)
    np.testing.assert_allclose(la.posterior_covariance(), method.posterior_covariance(),
                               rtol=1e-5, atol=1e-7)
    # The estimator draws with its random_state as the seed.
    np.testing.assert_allclose(la.predictive(xs, n_samples=30, seed=0).probs,
                               est.predict_distribution(X, n_samples=30).probs,
                               rtol=1e-5, atol=1e-7)


# -- exact on Bayesian linear regression in fixed features -----------------------------------


@pytest.fixture(scope="module")
def random_features():
    """A frozen random-feature layer, then Dense(1): linear in the last layer's weights.

    The model computes its features in float32, so the posterior agrees with the
    float64 closed form to about 1e-6 (relative)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(50, 1)).astype(np.float32)
    y = np.sin(2 * x[:, 0]) + SIGMA * rng.normal(size=50)
    features = keras.layers.Dense(6, activation="tanh", trainable=False,
                                  kernel_initializer=keras.initializers.RandomNormal(0, 1.0, 0),
                                  bias_initializer=keras.initializers.RandomUniform(-1, 1, 1))
    model = keras.Sequential([keras.Input((1,)), features, keras.layers.Dense(1)])
    kernel, bias = (np.asarray(w, np.float64) for w in features.get_weights())

    def design(inputs):  # the feature map in float64, with the bias column
        return np.c_[np.tanh(inputs @ kernel + bias), np.ones(len(inputs))]

    x_test = np.linspace(-3, 3, 7, dtype=np.float32)[:, None]
    return model, x, y, design(x), x_test, design(x_test)


def _posterior(design, y, alpha, sigma):
    cov = np.linalg.inv(design.T @ design / sigma**2 + alpha * np.eye(design.shape[1]))
    return cov @ design.T @ y / sigma**2, cov


def _log_evidence(design, y, alpha, sigma):
    cov = sigma**2 * np.eye(len(y)) + design @ design.T / alpha
    return stats.multivariate_normal(np.zeros(len(y)), cov).logpdf(y)


@pytest.mark.parametrize("structure", ["full", "kron"])
def test_fixed_precision_posterior_is_bayesian_linear_regression(random_features, structure):
    model, x, y, design, x_test, design_test = random_features
    la = LastLayerLaplace(model, likelihoods.Gaussian(scale=SIGMA), hessian_structure=structure,
                          prior_precision=0.7, refine_map=True).fit(x, y)
    mean, cov = _posterior(design, y, 0.7, SIGMA)
    assert la.prior_precision_ == 0.7
    np.testing.assert_allclose(la.theta_map_, mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(la.posterior_covariance(), cov, rtol=1e-5, atol=1e-7)
    f_mean, y_var = la.glm_predictive(x_test, include_noise=True)
    np.testing.assert_allclose(f_mean[:, 0], design_test @ mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(y_var[:, 0], np.einsum("bi,ij,bj->b", design_test, cov,
                                                      design_test) + SIGMA**2, rtol=1e-5)
    predictive = la.predictive(x_test, n_samples=4000, seed=0)
    np.testing.assert_allclose(predictive.aleatoric_var, SIGMA**2, rtol=1e-6)
    np.testing.assert_allclose(predictive.var, y_var[:, 0], rtol=0.1)


def test_trained_weights_are_taken_as_the_map(random_features):
    """Without `refine_map` the model's own last layer is the posterior mean."""
    model, x, y, design, _, _ = random_features
    mean, cov = _posterior(design, y, 2.0, SIGMA)
    trained = keras.models.clone_model(model)
    trained.set_weights([*model.get_weights()[:2], mean[:-1, None], mean[-1:]])
    la = LastLayerLaplace(trained, likelihoods.Gaussian(scale=SIGMA),
                          prior_precision=2.0).fit(x, y)
    np.testing.assert_allclose(la.theta_map_, mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(la.posterior_covariance(), cov, rtol=1e-5, atol=1e-7)


def test_marglik_maximises_the_closed_form_evidence(random_features):
    model, x, y, design, _, _ = random_features
    known = LastLayerLaplace(model, likelihoods.Gaussian(scale=SIGMA), refine_map=True).fit(x, y)
    best = optimize.minimize_scalar(lambda t: -_log_evidence(design, y, math.exp(t), SIGMA),
                                    bounds=(-8, 8), method="bounded", options={"xatol": 1e-10})
    assert known.prior_precision_ == pytest.approx(math.exp(best.x), rel=1e-5)
    assert known.log_marginal_likelihood() == pytest.approx(
        _log_evidence(design, y, known.prior_precision_, SIGMA), rel=1e-6)

    # "gaussian" on a model without a noise head: noise and precision tuned jointly.
    tuned = LastLayerLaplace(model, "gaussian", refine_map=True).fit(x, y)
    joint = optimize.minimize(lambda t: -_log_evidence(design, y, *np.exp(t)), np.zeros(2),
                              method="BFGS", options={"gtol": 1e-10})
    alpha, sigma = np.exp(joint.x)
    assert tuned.prior_precision_ == pytest.approx(alpha, rel=1e-4)
    assert tuned.sigma_noise_[0] == pytest.approx(sigma, rel=1e-5)
    # The predictive carries the tuned noise through the likelihood's own head.
    predictive = tuned.predictive(x[:4], n_samples=10, seed=0)
    np.testing.assert_allclose(predictive.aleatoric_var, tuned.sigma_noise_[0] ** 2, rtol=1e-5)


def _dead_unit_model(n_outputs):
    """Dense(4, relu) -> Dense(n_outputs); hidden unit 3 never fires on normal inputs."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, "relu"),
                              keras.layers.Dense(n_outputs)])
    kernel, bias = model.layers[0].get_weights()
    kernel[:, 3], bias[3] = 0.0, -1.0
    model.layers[0].set_weights([kernel, bias])
    return model


@pytest.mark.parametrize("likelihood, n_outputs", [
    (likelihoods.Gaussian(scale=SIGMA), 1), ("categorical", 3)])
def test_weights_the_data_cannot_see_do_not_change_the_tuned_prior(likelihood, n_outputs):
    """The marginal likelihood counts the weights' norm in the GGN's range only: a large
    weight on a unit that never fires, or one shift of every logit alike (softmax ignores
    it), changes no prediction and no MAP, so neither may change the prior precision."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = x[:, 0] + 0.1 * rng.normal(size=40)
    if n_outputs > 1:
        y = np.digitize(x[:, 0] + x[:, 1], [-0.5, 0.5])
    model = _dead_unit_model(n_outputs)
    clean = LastLayerLaplace(model, likelihood).fit(x, y)
    kernel, bias = model.layers[-1].get_weights()
    kernel[3] = 5.0  # the dead unit's outgoing weights
    if n_outputs > 1:
        bias = bias + 3.0  # every logit shifted alike
    model.layers[-1].set_weights([kernel, bias])
    shifted = LastLayerLaplace(model, likelihood).fit(x, y)
    assert shifted.prior_precision_ == pytest.approx(clean.prior_precision_, rel=1e-8)
    assert shifted.log_marginal_likelihood() == pytest.approx(clean.log_marginal_likelihood(),
                                                              rel=1e-8)
    summary = "probs" if n_outputs > 1 else "mean"
    np.testing.assert_allclose(getattr(shifted.predictive(x, 20, seed=0), summary),
                               getattr(clean.predictive(x, 20, seed=0), summary),
                               rtol=1e-4, atol=1e-6)


# -- any model ending in Dense, from arrays or a dataset -------------------------------------


@pytest.fixture(scope="module")
def conv_net():
    rng = np.random.default_rng(2)
    images = rng.normal(size=(48, 6, 6, 1)).astype(np.float32)
    labels = (images[:, :3].mean(axis=(1, 2, 3)) > 0).astype(int) + (images[:, 3:, :3].mean(
        axis=(1, 2, 3)) > 0).astype(int)
    inputs = keras.Input((6, 6, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu",
                            kernel_initializer=keras.initializers.GlorotUniform(0))(inputs)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(1))(h)
    model = keras.Model(inputs, outputs)
    tfbnn.train(model, likelihoods.Categorical(3), images, labels, epochs=3, batch_size=16,
                learning_rate=1e-2, seed=0, verbose=0, jit_compile=False)
    return model, images, labels


def test_conv_net_from_arrays_and_from_a_dataset(conv_net):
    model, images, labels = conv_net
    from_arrays = LastLayerLaplace(model, "categorical", hessian_structure="kron")
    from_arrays.fit(images, labels)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(48, seed=0).batch(10)
    from_dataset = LastLayerLaplace(model, "categorical", hessian_structure="kron")
    from_dataset.fit(dataset)
    assert from_dataset.n_data_ == from_arrays.n_data_ == 48
    assert from_dataset.prior_precision_ == pytest.approx(from_arrays.prior_precision_, rel=1e-8)
    np.testing.assert_allclose(from_dataset.posterior_covariance(),
                               from_arrays.posterior_covariance(), rtol=1e-6, atol=1e-12)
    ours = from_dataset.predictive(images[:5], n_samples=50, seed=3)
    np.testing.assert_allclose(ours.probs, from_arrays.predictive(images[:5], 50, seed=3).probs,
                               rtol=1e-5, atol=1e-7)
    assert ours.probs.shape == (5, 3) and np.all(ours.mutual_information > 0)


def test_categorical_curvature_of_a_conv_net_is_the_hessian_of_its_nll(conv_net):
    """Given its features the last layer is a GLM, whose GGN is the Hessian of the softmax
    NLL: checked against automatic differentiation, with the linearised output covariance
    built from that Hessian and a fixed prior precision."""
    model, images, labels = conv_net
    la = LastLayerLaplace(model, "categorical", prior_precision=2.0).fit(images, labels)
    features = keras.Model(model.inputs[0], model.layers[-1].input)
    phi = np.concatenate([features(images).numpy(), np.ones((len(images), 1))], axis=1)
    w = tf.Variable(la.theta_map_.reshape(phi.shape[1], 3))
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            nll = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels, tf.constant(phi) @ w))
        grad = inner.gradient(nll, w)
    hessian = outer.jacobian(grad, w).numpy().reshape(w.shape.num_elements(), -1)
    np.testing.assert_allclose(la.curvature_.ggn, hessian, rtol=1e-6, atol=1e-9)
    jac = np.einsum("bi,jo->bjio", phi[:4], np.eye(3)).reshape(4, 3, -1)
    expected = jac @ np.linalg.inv(hessian + 2.0 * np.eye(len(hessian))) @ jac.transpose(0, 2, 1)
    _, cov = la.glm_predictive(images[:4], full_cov=True)
    np.testing.assert_allclose(cov, expected, rtol=1e-6, atol=1e-10)


def test_save_and_load_give_the_same_predictive(conv_net, tmp_path):
    model, images, labels = conv_net
    la = LastLayerLaplace(model, "categorical").fit(images, labels)
    la.save(tmp_path / "la")
    loaded = tfbnn.posthoc.load(tmp_path / "la")
    assert isinstance(loaded, LastLayerLaplace) and loaded.get_config() == la.get_config()
    assert loaded.prior_precision_ == la.prior_precision_
    np.testing.assert_array_equal(loaded.predictive(images[:4], 20, seed=0).probs,
                                  la.predictive(images[:4], 20, seed=0).probs)


def test_learned_scale_head_and_functional_model_with_dropout_and_batchnorm(random_features):
    """A functional net with Dropout and BatchNormalization before the last layer and a
    LearnedScale head: the features are computed in inference mode."""
    _, x, y, _, _, _ = random_features
    inputs = keras.Input((1,))
    h = keras.layers.Dense(8, activation="tanh")(inputs)
    h = keras.layers.BatchNormalization()(keras.layers.Dropout(0.5)(h))
    outputs = tfbnn.layers.LearnedScale(initial_scale=0.4)(keras.layers.Dense(1)(h))
    model = keras.Model(inputs, outputs)
    la = LastLayerLaplace(model, sigma_noise="map").fit(x, y)
    assert la.sigma_noise_[0] == pytest.approx(0.4 + 1e-6, rel=1e-5)
    predictive = la.predictive(x[:6], n_samples=500, seed=0)
    mean, var = la.glm_predictive(x[:6])
    np.testing.assert_allclose(mean[:, 0], model(x[:6], training=False).numpy()[:, 0], atol=1e-5)
    np.testing.assert_allclose(predictive.epistemic_var, var[:, 0], rtol=0.2)


# -- what does not fit ---------------------------------------------------------------------


def _sequential(*layers, n_in=3):
    return keras.Sequential([keras.Input((n_in,)), *layers])


def _shared_last_layer():
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(3)
    return keras.Model(inputs, dense(dense(inputs)))


@pytest.mark.parametrize("model, message", [
    (lambda: _sequential(keras.layers.Dense(4), keras.layers.BatchNormalization()),
     "last layer with weights .* must be a keras.layers.Dense"),
    (lambda: _sequential(keras.layers.Dense(3, activation="softmax")), "must be linear"),
    (lambda: _sequential(keras.layers.Dense(2, use_bias=False)), "needs a bias"),
    (lambda: _sequential(keras.layers.Reshape((3, 1)), keras.layers.Conv1D(2, 3)),
     "has no keras.layers.Dense layer"),
    (lambda: _sequential(keras.layers.Reshape((3, 1)), keras.layers.Dense(2)),
     "must take 2-D inputs"),
    (lambda: _sequential(keras.layers.Dense(1), tfbnn.layers.LearnedScale()),
     r"\['LearnedScale'\], are not the heads of Gaussian\(scale=0.5"),
])
def test_models_that_do_not_fit_are_refused(model, message):
    likelihood = likelihoods.Gaussian(scale=0.5) if "heads" in message else "gaussian"
    with pytest.raises(ValueError, match=message):
        LastLayerLaplace(model(), likelihood)


def test_a_connection_around_the_last_layer_is_found_on_data():
    x = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="not its last Dense layer .* applied to"):
        LastLayerLaplace(_shared_last_layer(), likelihoods.Gaussian(scale=1.0)).fit(x, x)


def test_bad_arguments_are_refused():
    model = _sequential(keras.layers.Dense(2))
    x, y = np.zeros((5, 3), np.float32), np.zeros((5, 2))
    with pytest.raises(TypeError, match="model must be a Keras model"):
        LastLayerLaplace("model")
    with pytest.raises(ValueError, match="prior_precision must be 'marglik' or a positive"):
        LastLayerLaplace(model, prior_precision="prior")
    with pytest.raises(ValueError, match="Unknown hessian_structure='dense'"):
        LastLayerLaplace(model, hessian_structure="dense")
    with pytest.raises(ValueError, match="for one output only"):  # learned noise, 2 outputs
        LastLayerLaplace(model, "gaussian")
    with pytest.raises(ValueError, match="no LearnedScale head"):
        LastLayerLaplace(_sequential(keras.layers.Dense(1)), "gaussian", sigma_noise="map")
    with pytest.raises(ValueError, match="likelihoods .* got StudentT"):
        LastLayerLaplace(model, likelihoods.StudentT())
    fixed = LastLayerLaplace(model, likelihoods.Gaussian(scale=1.0))
    with pytest.raises(ValueError, match="not fitted yet"):
        fixed.predictive(x)
    with pytest.raises(ValueError, match="y must have 2 target column"):
        fixed.fit(x, y[:, :1])
    with pytest.raises(ValueError, match="x has 5 rows but y has 4"):
        fixed.fit(x, y[:4])
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(ValueError, match=r"batch a dataset with \.batch"):
        fixed.fit(unbatched)
    with pytest.raises(ValueError, match=r"must yield \(x, y\) batches and come without y"):
        fixed.fit(unbatched.batch(2), y)


def test_subset_all_still_needs_an_mlp(conv_net):
    from tfbnn.inference.laplace.network import Network

    with pytest.raises(ValueError, match=r"subset_of_weights='all' needs an MLP .*\(Conv2D\)"):
        Network(conv_net[0], "all")


def test_folders_that_are_not_saved_methods_are_refused(tmp_path):
    from tfbnn.persistence import ModelFileError

    with pytest.raises(FileNotFoundError, match="No saved tfbnn post-hoc method"):
        tfbnn.posthoc.load(tmp_path / "missing")
    with pytest.raises(ModelFileError, match="not a tfbnn post-hoc folder"):
        tfbnn.posthoc.load(tmp_path)
    (tmp_path / "posthoc.json").write_text('{"format": "tfbnn-posthoc", "format_version": 9, '
                                           '"method": "MCDropout", "config": {}, "likelihood": {}}')
    with pytest.raises(ModelFileError, match="format version 9; this tfbnn reads 1"):
        tfbnn.posthoc.load(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "posthoc.json").unlink()
    la = LastLayerLaplace(_sequential(keras.layers.Dense(1)), likelihoods.Gaussian(scale=1.0))
    with pytest.raises(ValueError, match="holds other files, not a tfbnn model"):
        la.save(tmp_path)
