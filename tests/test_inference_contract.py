"""One contract that every registered inference method meets through the public estimators.

The methods come from `tfbnn.inference.INFERENCE.names()`, so a newly registered
method is covered as soon as it has an entry in `QUICK_OPTIONS` (the test says so
when it has none). Each method is fitted once per task on tiny data (module-scoped
fixtures) and the checks share those fits; the method's own test file keeps the
statistical checks (gaps, exact answers).
"""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import tfbnn
from tfbnn.inference import INFERENCE

# Tiny MCMC runs have not mixed, and say so; that is not what this file checks.
pytestmark = pytest.mark.filterwarnings("ignore:.*Markov chains have not mixed")

METHODS = INFERENCE.names()

#: Options that make each method quick on a 64-row problem. `threads=1` keeps the
#: draws independent of the machine's core count (see `test_seeded_fits_repeat`).
QUICK_OPTIONS = {
    "ensemble": {"n_members": 2, "threads": 1, "jit_compile": False},
    "hmc": {"n_chains": 2, "num_warmup": 20, "num_samples": 20, "max_tree_depth": 3,
            "map_steps": 50, "threads": 1, "jit_compile": False},
    "laplace": {"jit_compile": False},
    "mc_dropout": {"jit_compile": False},
    # One cycle at a larger step: the ten steps of five epochs then fit the classes.
    "sgmcmc": {"n_cycles": 1, "samples_per_cycle": 2, "learning_rate": 1e-2,
               "jit_compile": False},
    "swag": {"swag_epochs": 3, "max_rank": 2, "n_models": 2, "jit_compile": False},
    "vi": {"jit_compile": False},
}

#: One real option per method and a value of it the method must refuse.
BAD_VALUES = {
    "ensemble": ("n_members", -1),
    "hmc": ("n_chains", -1),
    "laplace": ("max_memory_gb", -1.0),
    "mc_dropout": ("dropout_rate", -0.1),
    "sgmcmc": ("n_cycles", -1),
    "swag": ("swag_epochs", -1),
    "vi": ("posterior_scale_init", -1.0),
}

#: Methods whose predictive has a fixed number of draws whatever `n_samples` is.
FIXED_DRAWS = {"ensemble": QUICK_OPTIONS["ensemble"]["n_members"]}

N_ROWS = 64
N_SAMPLES = 12
LABELS = np.array(["setosa", "versicolor", "virginica"])
ESTIMATOR_ARGS = {"hidden_units": (8,), "epochs": 5, "learning_rate": 1e-2,
                  "n_samples": N_SAMPLES}


def entry(table: dict, table_name: str, method: str):
    if method not in table:
        pytest.fail(f"The registered inference method {method!r} has no entry in {table_name} "
                    "of tests/test_inference_contract.py: add one")
    return table[method]


def quick_options(method: str) -> dict:
    return dict(entry(QUICK_OPTIONS, "QUICK_OPTIONS", method))


def regressor(method: str, random_state=0, **options) -> tfbnn.BayesianRegressor:
    return tfbnn.BayesianRegressor(inference=method,
                                   inference_options={**quick_options(method), **options},
                                   random_state=random_state, **ESTIMATOR_ARGS)


@pytest.fixture(scope="module", params=METHODS)
def method(request):
    return request.param


@pytest.fixture(scope="module")
def regression_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, 2))
    y = X @ np.array([1.0, -0.5]) + 0.2 * rng.normal(size=N_ROWS)
    return X, y


@pytest.fixture(scope="module")
def classification_data():
    """Three well-separated blobs in two dimensions, labelled by strings."""
    rng = np.random.default_rng(1)
    centres = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    index = rng.integers(0, 3, size=N_ROWS)
    X = centres[index] + 0.5 * rng.normal(size=(N_ROWS, 2))
    return X, LABELS[index]


@pytest.fixture(scope="module")
def fitted(method, regression_data):
    """`(estimator, what fit returned)` for one method with `random_state=0`."""
    model = regressor(method)
    return model, model.fit(*regression_data)


@pytest.fixture(scope="module")
def classifier(method, classification_data):
    return tfbnn.BayesianClassifier(inference=method, inference_options=quick_options(method),
                                    random_state=0, **ESTIMATOR_ARGS).fit(*classification_data)


def test_the_tables_name_only_registered_methods():
    # A method dropped from the registry must leave the tables too (missing entries
    # fail in the parametrised tests, naming the method).
    assert set(QUICK_OPTIONS) <= set(METHODS)
    assert set(BAD_VALUES) <= set(METHODS)


def test_fit_returns_the_estimator_and_predict_has_one_value_per_row(fitted, regression_data):
    model, returned = fitted
    X, _ = regression_data
    assert returned is model
    mean = model.predict(X)
    assert mean.shape == (N_ROWS,) and np.isfinite(mean).all()
    mean_again, std = model.predict(X, return_std=True)
    assert std.shape == (N_ROWS,)
    assert np.isfinite(std).all() and (std > 0).all()
    np.testing.assert_allclose(mean_again, mean, rtol=1e-5, atol=1e-6)


def test_predictive_distribution_is_consistent(method, fitted, regression_data):
    model, _ = fitted
    X, y = regression_data
    dist = model.predict_distribution(X, n_samples=N_SAMPLES)
    draws = FIXED_DRAWS.get(method, N_SAMPLES)
    for name in ("mean", "std", "var", "aleatoric_var", "epistemic_var"):
        value = getattr(dist, name)
        assert value.shape == (N_ROWS,), name
        assert np.isfinite(value).all(), name
    assert (dist.aleatoric_var > 0).all() and (dist.epistemic_var >= 0).all()
    np.testing.assert_allclose(dist.aleatoric_var + dist.epistemic_var, dist.var, rtol=1e-6)
    np.testing.assert_allclose(dist.std, np.sqrt(dist.var), rtol=1e-6)
    lower, upper = dist.interval(0.9)
    assert lower.shape == upper.shape == (N_ROWS,)
    assert (lower < dist.mean).all() and (dist.mean < upper).all()
    assert dist.samples.shape == (draws, N_ROWS)
    assert np.isfinite(dist.samples).all()
    log_prob = dist.log_prob(y)
    assert log_prob.shape == (N_ROWS,) and np.isfinite(log_prob).all()


def test_classifier_gives_probabilities_and_the_given_labels(classifier, classification_data):
    X, labels = classification_data
    proba = classifier.predict_proba(X)
    assert proba.shape == (N_ROWS, len(LABELS))
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(classifier.classes_, LABELS)
    predicted = classifier.predict(X)
    assert predicted.shape == (N_ROWS,)
    assert set(predicted.tolist()) <= set(LABELS.tolist())
    np.testing.assert_array_equal(predicted, LABELS[proba.argmax(axis=1)])
    # The blobs are far apart: labels that come back mapped to the wrong classes
    # would get most rows wrong (every method fits 90-100% on seeds 0-2).
    assert np.mean(predicted == labels) > 0.8


def test_save_and_load_give_the_same_predictions(fitted, classifier, regression_data,
                                                 classification_data, tmp_path):
    model, _ = fitted
    X, _ = regression_data
    model.save(tmp_path / "regressor")
    loaded = tfbnn.load(tmp_path / "regressor")
    assert type(loaded) is tfbnn.BayesianRegressor
    before = model.predict_distribution(X)
    after = loaded.predict_distribution(X)
    np.testing.assert_allclose(after.mean, before.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after.std, before.std, rtol=1e-5, atol=1e-6)

    Xc, _ = classification_data
    classifier.save(tmp_path / "classifier")
    loaded = tfbnn.load(tmp_path / "classifier")
    np.testing.assert_allclose(loaded.predict_proba(Xc), classifier.predict_proba(Xc),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(Xc), classifier.predict(Xc))


def test_seeded_fits_repeat_and_other_seeds_differ(method, fitted, regression_data):
    model, _ = fitted
    X, y = regression_data
    first = model.predict_distribution(X)
    again = regressor(method, random_state=0).fit(X, y).predict_distribution(X)
    np.testing.assert_allclose(again.mean, first.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again.std, first.std, rtol=1e-5, atol=1e-6)
    other = regressor(method, random_state=1).fit(X, y).predict_distribution(X)
    assert np.abs(other.mean - first.mean).max() > 1e-3


def test_unknown_option_is_refused_by_name(method, regression_data):
    model = regressor(method, no_such_option=1)
    with pytest.raises(ValueError, match="no_such_option"):
        model.fit(*regression_data)


def test_bad_option_value_is_refused(method, regression_data):
    name, value = entry(BAD_VALUES, "BAD_VALUES", method)
    model = regressor(method, **{name: value})
    with pytest.raises(ValueError, match=name):
        model.fit(*regression_data)


def test_predict_before_fit_raises_not_fitted(method, regression_data):
    X, _ = regression_data
    with pytest.raises(NotFittedError):
        regressor(method).predict(X)
    with pytest.raises(NotFittedError):
        tfbnn.BayesianClassifier(inference=method).predict_proba(X)
