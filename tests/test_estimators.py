"""BayesianRegressor / BayesianClassifier: the scikit-learn contract and clear errors."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import SMALL, N
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import tfbnn
from tfbnn import BayesianClassifier, BayesianRegressor, NonFiniteLossError
from tfbnn import likelihoods as L
from tfbnn.data import DataWarning

# For properties that do not depend on how training is compiled: tracing without XLA
# is quicker for a network built once. The fixtures keep the default (XLA) path.
NO_XLA = {**SMALL, "inference_options": {"jit_compile": False}}


@pytest.fixture(scope="module")
def labels(data):
    X, _ = data
    binary = np.where(X[:, 0] - X[:, 1] > 0, "yes", "no")
    score = X[:, 0] + X[:, 2]
    three = np.select([score < -0.5, score > 0.5], ["low", "high"], "mid")
    return binary, three


@pytest.fixture(scope="module")
def binary_classifier(data, labels):
    return BayesianClassifier(**SMALL, random_state=0).fit(data[0], labels[0])


# -- regression --------------------------------------------------------------------------


def test_regressor_fits_and_predicts(regressor, data):
    X, y = data
    assert regressor.n_features_in_ == 3
    assert isinstance(regressor.likelihood_, L.Gaussian) and regressor.likelihood_.trainable
    assert len(regressor.history_["nll"]) == SMALL["epochs"]
    mean = regressor.predict(X)
    assert mean.shape == (N,) and np.all(np.isfinite(mean))
    assert r2_score(y, mean) > 0.8
    # random_state fixes the posterior draws: predictions repeat exactly.
    np.testing.assert_array_equal(regressor.predict(X), mean)


def test_predict_with_return_std_matches_the_predictive_distribution(regressor, data):
    X, y = data
    mean, std = regressor.predict(X, return_std=True)
    dist = regressor.predict_distribution(X)
    np.testing.assert_array_equal(mean, dist.mean)
    np.testing.assert_array_equal(std, dist.std)
    assert std.shape == (N,) and np.all(std > 0)
    # The predictive std is on the scale of the residuals, in the targets' units.
    residual_sd = np.std(y - mean)
    assert 0.5 * residual_sd < np.median(std) < 3 * residual_sd
    assert regressor.predict_distribution(X[:5], n_samples=7).n_draws == 7


def test_predictions_have_the_shape_of_the_fitted_target(data):
    # A 1-D y gives 1-D summaries; a y of one column keeps its column, as in scikit-learn.
    X, y = data
    for targets, shape in ((y, (5,)), (y[:, None], (5, 1))):
        model = BayesianRegressor(**{**NO_XLA, "epochs": 2}, random_state=0).fit(X, targets)
        dist = model.predict_distribution(X[:5])
        assert dist.squeeze is (targets.ndim == 1)
        assert model.predict(X[:5]).shape == dist.mean.shape == dist.std.shape == shape
        assert dist.interval(0.9)[0].shape == dist.quantile(0.5).shape == shape
        assert dist.samples.shape == (SMALL["n_samples"], *shape)
        assert dist.log_prob(targets[:5]).shape == (5,)


def test_regressor_score_is_r2(regressor, data):
    X, y = data
    assert regressor.score(X, y) == pytest.approx(r2_score(y, regressor.predict(X)))


def test_pandas_inputs_give_the_same_fit_as_numpy(regressor, data):
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = BayesianRegressor(**SMALL, random_state=0).fit(frame, pd.Series(y, name="target"))
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c"])
    np.testing.assert_allclose(model.predict(frame), regressor.predict(X), rtol=1e-5, atol=1e-6)
    assert not hasattr(regressor, "feature_names_in_")


def test_get_params_set_params_and_clone(regressor):
    params = regressor.get_params()
    assert params["hidden_units"] == (8,) and params["random_state"] == 0
    assert {"inference", "inference_options", "likelihood", "prior", "epochs",
            "validation_fraction", "patience"} <= set(params)
    copy = clone(regressor)
    assert copy.get_params() == params
    assert not hasattr(copy, "inference_")
    with pytest.raises(NotFittedError):
        copy.predict(np.zeros((2, 3)))
    assert copy.set_params(epochs=5, prior="laplace") is copy
    assert copy.epochs == 5 and copy.prior == "laplace" and regressor.epochs == SMALL["epochs"]
    with pytest.raises(ValueError, match="Invalid parameter 'wings'"):
        copy.set_params(wings=2)


def test_regressor_in_a_pipeline_and_cross_validation(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), BayesianRegressor(**NO_XLA, random_state=0))
    pipe.fit(10 * X + 3, y)
    assert pipe.score(10 * X + 3, y) > 0.8
    scores = cross_val_score(BayesianRegressor(**NO_XLA, random_state=0), X, y, cv=2)
    assert scores.shape == (2,) and np.all(np.isfinite(scores)) and np.mean(scores) > 0.5


def test_fixed_noise_scale_is_in_target_units(data):
    X, y = data
    y_big = 100 * y + 7  # standardisation would otherwise distort a fixed scale
    # The noise scale is fixed, so a single epoch shows where it ends up.
    model = BayesianRegressor(**{**NO_XLA, "epochs": 1}, likelihood=L.Gaussian(scale=12.0),
                              random_state=0)
    dist = model.fit(X, y_big).predict_distribution(X)
    np.testing.assert_allclose(np.sqrt(dist.aleatoric_var), 12.0, rtol=1e-5)
    assert model.likelihood == L.Gaussian(scale=12.0)  # the parameter itself is untouched
    # Two targets on different scales: the one noise scale holds for both.
    y2 = np.column_stack([y_big, y / 10])
    dist = clone(model).fit(X, y2).predict_distribution(X)
    assert dist.mean.shape == (N, 2)
    np.testing.assert_allclose(np.sqrt(dist.aleatoric_var), 12.0, rtol=1e-5)


@pytest.mark.slow
def test_fixed_student_t_noise_is_in_target_units(data):
    X, y = data
    model = BayesianRegressor(**SMALL, likelihood=L.StudentT(df=5.0, scale=0.4), random_state=0)
    dist = model.fit(X, 10 * y).predict_distribution(X[:5])
    np.testing.assert_allclose(dist.aleatoric_var, 0.4**2 * 5 / 3, rtol=1e-5)


def test_poisson_regression_on_counts(data):
    X, _ = data
    rate = np.exp(0.3 + 0.8 * X[:, 0])
    counts = np.random.default_rng(1).poisson(rate)
    model = BayesianRegressor(**NO_XLA, likelihood="poisson", random_state=0).fit(X, counts)
    assert isinstance(model.likelihood_, L.Poisson)
    mean = model.predict(X)
    assert np.all(mean > 0)
    assert np.corrcoef(np.log(mean), np.log(rate))[0, 1] > 0.8
    lower, upper = model.predict_distribution(X).interval(0.9)
    np.testing.assert_array_equal(lower, np.round(lower))  # counts, not reals
    assert np.all(lower <= upper)
    for bad in (counts - counts.max() - 1, counts + 0.5):  # negative, fractional
        with pytest.raises(ValueError, match="needs non-negative integer targets"):
            clone(model).fit(X, bad)


def test_early_stopping_through_the_estimator(data):
    X, y = data
    model = BayesianRegressor(**{**NO_XLA, "epochs": 300}, validation_fraction=0.25, patience=3,
                              random_state=0).fit(X, y)
    history = model.history_
    # 225 training rows; the validation NLL levels off well before 300 epochs.
    assert history["stopped_epoch"] is not None and history["stopped_epoch"] < 300
    assert len(history["val_nll"]) == len(history["nll"]) == history["stopped_epoch"]
    assert history["stopped_epoch"] == int(np.argmin(history["val_nll"])) + 1 + 3
    assert model.score(X, y) > 0.8


# -- classification ---------------------------------------------------------------------


def test_binary_classifier_uses_bernoulli_and_returns_string_labels(binary_classifier, data,
                                                                    labels):
    X, binary = data[0], labels[0]
    assert isinstance(binary_classifier.likelihood_, L.Bernoulli)
    np.testing.assert_array_equal(binary_classifier.classes_, ["no", "yes"])
    predicted = binary_classifier.predict(X)
    assert predicted.dtype.kind == "U" and set(predicted) <= {"no", "yes"}
    proba = binary_classifier.predict_proba(X)
    assert proba.shape == (N, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(predicted, binary_classifier.classes_[proba.argmax(axis=1)])
    assert binary_classifier.score(X, binary) == accuracy_score(binary, predicted)
    assert binary_classifier.score(X, binary) > 0.8


def test_three_classes_use_categorical(data, labels):
    X, three = data[0], labels[1]
    model = BayesianClassifier(**NO_XLA, random_state=0).fit(X, three)
    assert model.likelihood_ == L.Categorical(3)
    np.testing.assert_array_equal(model.classes_, ["high", "low", "mid"])
    proba = model.predict_proba(X)
    assert proba.shape == (N, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert model.score(X, three) > 0.6
    dist = model.predict_distribution(X)
    # Total entropy is at least the mean per-draw entropy (concavity of the entropy).
    assert np.all(dist.entropy >= dist.expected_entropy)


def test_classifier_likelihood_options(data, labels):
    X, binary = data[0], labels[0]
    two_way = BayesianClassifier(**{**NO_XLA, "epochs": 1}, likelihood="categorical",
                                 random_state=0).fit(X, binary)
    assert two_way.likelihood_ == L.Categorical(2)
    assert set(two_way.predict(X)) <= {"no", "yes"}
    with pytest.raises(ValueError, match="likelihood='bernoulli' needs 2 classes, got 3"):
        BayesianClassifier(**SMALL, likelihood="bernoulli").fit(X, labels[1])


def test_classifier_keeps_numeric_labels_and_pandas_targets(data, labels):
    X, binary = data[0], labels[0]
    numbers = np.where(binary == "yes", 7, 3)
    model = BayesianClassifier(**SMALL, random_state=0).fit(pd.DataFrame(X), pd.Series(numbers))
    np.testing.assert_array_equal(model.classes_, [3, 7])
    assert set(model.predict(pd.DataFrame(X))) <= {3, 7}
    assert model.predict(pd.DataFrame(X)).dtype.kind == "i"


def test_classifier_in_a_pipeline(data, labels, binary_classifier):
    X, binary = data[0], labels[0]
    pipe = make_pipeline(StandardScaler(), BayesianClassifier(**SMALL, random_state=0))
    pipe.fit(5 * X - 1, binary)
    assert pipe.score(5 * X - 1, binary) > 0.8
    np.testing.assert_array_equal(pipe.classes_, binary_classifier.classes_)


# -- bad input --------------------------------------------------------------------------------


def _with(array, index, value):
    array = np.array(array, dtype=float)
    array.flat[index] = value
    return array


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda X, y: (_with(X, 4, np.nan), y), "Input X contains NaN"),
        (lambda X, y: (_with(X, 4, np.inf), y), "Input X contains infinity"),
        (lambda X, y: (X, _with(y, 2, np.nan)), "Input y contains NaN"),
        (lambda X, y: (X, _with(y, 2, -np.inf)), "Input y contains infinity"),
        (lambda X, y: (X, y[:-1]), r"inconsistent numbers of samples: \[300, 299\]"),
        (lambda X, y: (X[:, 0], y), "Expected 2D array, got 1D array"),
        (lambda X, y: (X[:, :, None], y), "Found array with dim 3"),
        (lambda X, y: (X, y[:, None, None]), "dim 3"),
        (lambda X, y: (X[:0], y[:0]), r"Found array with 0 sample\(s\)"),
        (lambda X, y: (X[:1], y[:1]), r"Found array with 1 sample\(s\).*minimum of 2"),
        (lambda X, y: (X[:, :0], y), r"0 feature\(s\)"),
    ],
    ids=["nan-X", "inf-X", "nan-y", "inf-y", "lengths", "1d-X", "3d-X", "3d-y", "empty",
         "one-row", "no-features"],
)
@pytest.mark.parametrize("cls", [BayesianRegressor, BayesianClassifier])
def test_bad_data_raises_a_clear_error(cls, make, message, data):
    X, y = data
    if cls is BayesianClassifier:
        y = (y > 0).astype(float)
    X_bad, y_bad = make(X, y)
    with pytest.raises(ValueError, match=message):
        cls(**SMALL).fit(X_bad, y_bad)


def test_classifier_rejects_continuous_targets_and_one_class(data):
    X, y = data
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        BayesianClassifier(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match=r"at least 2 classes, got only \['a'\]"):
        BayesianClassifier(**SMALL).fit(X, np.full(N, "a"))
    with pytest.raises(ValueError, match="one label column"):
        BayesianClassifier(**SMALL).fit(X, np.zeros((N, 2)))


def test_regression_target_checks_match_the_csv_reader(data):
    X, y = data
    with pytest.raises(ValueError, match=r"BayesianRegressor.fit: target column 'y' holds the "
                                         r"same value \(2.5\) in all 300 rows"):
        BayesianRegressor(**SMALL).fit(X, np.full(N, 2.5))
    with pytest.raises(ValueError, match=r"column 'y\[:, 1\]' holds the same value"):
        BayesianRegressor(**SMALL).fit(X, np.column_stack([y, np.zeros(N)]))
    # An object array is checked as numbers: infinity is refused before training.
    with pytest.raises(ValueError, match="Input y contains infinity"):
        BayesianRegressor(**SMALL).fit(X, np.array([np.inf, *y[1:]], dtype=object))


@pytest.mark.parametrize("other", [1, None, 2.5])
def test_labels_of_mixed_types_are_refused_by_name(data, other):
    y = np.array(["cat", other] * (N // 2), dtype=object)
    with pytest.raises(ValueError, match=r"y mixes class labels of types .*'str'.*"
                                         r"one type"):
        BayesianClassifier(**SMALL).fit(data[0], y)


def test_many_classes_for_the_rows_warn_as_the_csv_reader_does(data):
    X = data[0][:40]
    y = np.arange(40) % 10  # 4 rows per class
    with pytest.warns(DataWarning, match=r"y has 10 classes for 40 rows \(4.0 rows per class\)"):
        BayesianClassifier(**NO_XLA, random_state=0).fit(X, y)


def test_a_label_column_warns_as_scikit_learn_does(data, labels):
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        model = BayesianClassifier(**NO_XLA, random_state=0).fit(data[0], labels[0][:, None])
    assert model.classes_.tolist() == ["no", "yes"]


@pytest.mark.parametrize(
    "cls, params, message",
    [
        (BayesianRegressor, {"inference": "vii"}, r"Unknown inference='vii'; expected one of \[.*'vi'"),
        (BayesianRegressor, {"likelihood": "gamma"},
         r"Unknown likelihood='gamma'; expected one of \['auto', 'gaussian'"),
        (BayesianRegressor, {"likelihood": L.Bernoulli()}, "is for classification"),
        (BayesianClassifier, {"likelihood": "gaussian"},
         r"Unknown likelihood='gaussian'; expected one of \['auto', 'bernoulli', 'categorical'\]"),
        (BayesianRegressor, {"prior": "cauchy"}, r"Unknown prior='cauchy'; expected one of \["),
        (BayesianClassifier, {"activation": "wiggle"}, r"Unknown activation='wiggle'; expected one of"),
        (BayesianRegressor, {"inference_options": {"estimatr": "flipout"}},
         r"Invalid inference_options for inference='vi'.*estimatr"),
        (BayesianRegressor, {"inference_options": {"estimator": "reinforce"}},
         r"Unknown estimator='reinforce'"),
        (BayesianRegressor, {"inference_options": "flipout"},
         "inference_options must be a dict.*got 'flipout'"),
        (BayesianRegressor, {"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        (BayesianRegressor, {"epochs": "many"}, "epochs must be an integer >= 1, got 'many'"),
        (BayesianRegressor, {"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        (BayesianClassifier, {"learning_rate": -1.0}, "learning_rate must be a positive finite number, got -1.0"),
        (BayesianRegressor, {"n_samples": 0}, "n_samples must be an integer >= 1, got 0"),
        (BayesianRegressor, {"validation_fraction": 1.0}, r"validation_fraction must be in \[0, 1\), got 1.0"),
        (BayesianRegressor, {"patience": 3}, "patience .* needs validation_fraction > 0"),
        (BayesianRegressor, {"hidden_units": (8, 0)}, r"hidden_units must be positive integers, got \(8, 0\)"),
        (BayesianRegressor, {"hidden_units": "wide"}, "hidden_units must be positive integers, got 'wide'"),
    ],
)
def test_unknown_options_and_invalid_settings_raise(cls, params, message, data, labels):
    X = data[0]
    y = labels[0] if cls is BayesianClassifier else data[1]
    with pytest.raises(ValueError, match=message):
        cls(**{**SMALL, **params}).fit(X, y)


def test_predicting_before_fitting_raises_not_fitted():
    X = np.zeros((3, 3))
    for call in (BayesianRegressor().predict, BayesianRegressor().predict_distribution,
                 BayesianClassifier().predict, BayesianClassifier().predict_proba):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call(X)


def test_prediction_checks_the_feature_count(regressor, binary_classifier):
    with pytest.raises(ValueError, match="X has 2 features, but BayesianRegressor is expecting 3"):
        regressor.predict(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="X has 4 features, but BayesianClassifier is expecting 3"):
        binary_classifier.predict_proba(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        regressor.predict(np.full((4, 3), np.nan))


def test_non_numeric_columns_are_named(data):
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(city=["Oslo", "Lima"] * (N // 2))
    with pytest.raises(ValueError, match=r"Non-numeric feature column\(s\) \['city'\]"):
        BayesianRegressor(**SMALL).fit(frame, y)
    model = BayesianRegressor(**{**SMALL, "epochs": 1}, random_state=0).fit(
        frame.drop(columns="city"), y)
    with pytest.raises(ValueError, match=r"\['c'\]"):
        model.predict(frame.drop(columns="city").assign(c="x"))


def test_a_failed_fit_leaves_a_fitted_estimator_as_it_was(data):
    X, y = data
    model = BayesianRegressor(**{**SMALL, "epochs": 1}, random_state=0).fit(X, y)
    before = model.predict(X, return_std=True)
    state = {k: v for k, v in vars(model).items() if k.endswith("_")}
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.fit(_with(X, 0, np.nan), y)
    with pytest.raises(ValueError, match="Unknown prior"):
        model.set_params(prior="cauchy").fit(X[:, :2], y)
    # Training diverges on data of another width (no XLA: this network is built once).
    model.set_params(prior="normal", learning_rate=1e30, inference_options={"jit_compile": False})
    with pytest.raises(NonFiniteLossError, match="learning_rate"):
        model.fit(X[:, :2] + 5, y)
    assert {k: v for k, v in vars(model).items() if k.endswith("_")}.keys() == state.keys()
    assert model.n_features_in_ == 3 and model.inference_ is state["inference_"]
    after = model.predict(X, return_std=True)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])


def test_hidden_units_may_be_a_single_int(regressor, data):
    X, y = data
    model = BayesianRegressor(**{**SMALL, "hidden_units": 8}, random_state=0).fit(X, y)
    np.testing.assert_allclose(model.predict(X), regressor.predict(X), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_no_hidden_layers_is_a_bayesian_linear_model(data):
    X, y = data
    linear = BayesianRegressor(**{**SMALL, "hidden_units": ()}, random_state=0).fit(X, y)
    assert linear.score(X, y) > 0.9


def test_optimizer_by_name_instance_or_config_trains_the_same_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 2))
    y = X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.normal(size=48)
    common = dict(hidden_units=(4,), epochs=3, random_state=0,
                  inference_options={"jit_compile": False})
    by_name = tfbnn.BayesianRegressor(optimizer="sgd", learning_rate=0.05, **common).fit(X, y)
    instance = keras.optimizers.SGD(0.05)
    by_instance = tfbnn.BayesianRegressor(optimizer=instance, **common).fit(X, y)
    by_config = tfbnn.BayesianRegressor(
        optimizer={"class_name": "SGD", "config": {"learning_rate": 0.05}}, **common).fit(X, y)
    adam = tfbnn.BayesianRegressor(learning_rate=0.05, **common).fit(X, y)
    np.testing.assert_allclose(by_instance.predict(X), by_name.predict(X), rtol=1e-5)
    np.testing.assert_allclose(by_config.predict(X), by_name.predict(X), rtol=1e-5)
    assert not np.allclose(adam.predict(X), by_name.predict(X), rtol=1e-3)
    assert int(instance.iterations.numpy()) == 0  # the user's optimizer is never stepped
    by_instance.save(tmp_path / "m")
    loaded = tfbnn.load(tmp_path / "m")
    assert isinstance(loaded.optimizer, keras.optimizers.SGD)
    np.testing.assert_allclose(loaded.predict(X), by_instance.predict(X), rtol=1e-6)


def test_unknown_optimizer_is_refused_before_training():
    X, y = np.zeros((8, 1)), np.arange(8.0)
    with pytest.raises(ValueError, match="Unknown optimizer='adamm'"):
        tfbnn.BayesianRegressor(optimizer="adamm", epochs=1).fit(X, y)


# -- predictions a block of inputs at a time ----------------------------------------------------


def _same_summaries(got, expected):
    if got.is_classification:
        pairs = [(got.probs, expected.probs), (got.mutual_information,
                                                expected.mutual_information)]
    else:
        pairs = [(got.mean, expected.mean), (got.std, expected.std),
                 *zip(got.interval(0.9), expected.interval(0.9), strict=True)]
    pairs.append((got.samples, expected.samples))
    for a, b in pairs:
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(a, b)


def test_predictive_drawn_in_blocks_equals_one_draw_at_all_inputs(regressor, binary_classifier,
                                                                  data, labels):
    from tfbnn.predictive import DrawnParams

    X = np.tile(data[0], (3, 1))[:450]  # 1000 draws: blocks of 200 inputs
    for model, y in ((regressor, np.tile(data[1], 3)[:450]),
                     (binary_classifier, np.tile(labels[0], 3)[:450])):
        dist = model.predict_distribution(X, n_samples=1000)
        assert isinstance(dist.params, DrawnParams) and dist.params.shape[:2] == (1000, 450)
        xs = (X - model.x_mean_) / model.x_scale_
        params = model.inference_.sample_params(xs, 1000, seed=0, max_rows=10**9)  # one call
        expected = model._predictive(params, 0)
        _same_summaries(dist, expected)
        np.testing.assert_allclose(dist.log_prob(y), expected.log_prob(y), rtol=1e-6)


def test_mc_dropout_predictive_in_blocks_keeps_each_inputs_draws(data):
    X, y = data
    model = BayesianRegressor(**SMALL, inference="mc_dropout", random_state=0).fit(X, y)
    X = np.tile(X, (3, 1))[:450]
    xs = (X - model.x_mean_) / model.x_scale_
    # Dropout masks are drawn per input within a block: the blocks sample_params uses.
    expected = model._predictive(model.inference_.sample_params(xs, 1000, seed=0), 0)
    _same_summaries(model.predict_distribution(X, n_samples=1000), expected)


def test_without_random_state_every_summary_of_a_predictive_uses_the_same_draws(regressor,
                                                                                  data):
    model = clone(regressor).set_params(random_state=None)
    model.__dict__.update({k: v for k, v in regressor.__dict__.items() if k.endswith("_")})
    X = np.tile(data[0], (3, 1))[:450]
    dist = model.predict_distribution(X, n_samples=1000)
    fixed = model._predictive(np.asarray(dist.params), dist.seed)
    _same_summaries(dist, fixed)
    np.testing.assert_array_equal(dist.samples, dist.samples)
    again = model.predict_distribution(X, n_samples=1000)
    assert not np.array_equal(again.mean, dist.mean)  # a fresh seed per call
