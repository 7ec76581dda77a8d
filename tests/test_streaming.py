"""Training from streams of (x, y) batches: tfbnn.train, the estimators' fit and partial_fit."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfbnn import likelihoods, models
from tfbnn.layers import variational_layers
from tfbnn.training import train

LIKELIHOOD = likelihoods.Gaussian(trainable=True)
N, BATCH = 64, 16


def _data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2)).astype("float32")
    y = (2 * x[:, :1] - x[:, 1:] + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def _model(seed=0):
    return models.bayesian_mlp(2, LIKELIHOOD, hidden_units=(8,), estimator="flipout",
                               kl_weight=1 / N, seed=seed)


def _values(model):
    return [np.asarray(v) for v in model.trainable_variables]


def _in_memory_orders(seed, epochs, n=N):
    """The data orders `train` uses on arrays: one permutation per epoch from `seed`."""
    return np.random.default_rng(seed).permuted(
        np.broadcast_to(np.arange(n), (epochs, n)).copy(), axis=-1)


# -- tfbnn.train ---------------------------------------------------------------------------


def test_training_from_a_dataset_equals_training_from_the_arrays_in_the_same_order():
    # A fair equality: the dataset holds the rows in the order the array path draws
    # from its seed (N divisible by the batch size: no wrapped rows), one epoch per
    # call, each continuing from the previous call's optimizer state.
    x, y = _data()
    epochs = 3
    in_memory = _model()
    history = train(in_memory, LIKELIHOOD, x, y, epochs=epochs, batch_size=BATCH, seed=3,
                    verbose=0)
    streamed, state, nlls = _model(), None, []
    for order in _in_memory_orders(3, epochs):
        dataset = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(BATCH)
        run = train(streamed, LIKELIHOOD, dataset, epochs=1, verbose=0, optimizer_state=state)
        state, nlls = run.optimizer_state, nlls + run.nll
    np.testing.assert_allclose(nlls, history.nll, rtol=1e-5)
    for a, b in zip(_values(streamed), _values(in_memory), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_function_of_numpy_batches_and_a_list_of_batches_train_like_the_dataset():
    x, y = _data()
    batches = [(x[i : i + BATCH].astype(np.float64), y[i : i + BATCH, 0])  # any float, 1-D y
               for i in range(0, N, BATCH)]
    results = []
    for source in (tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH),
                   lambda: iter(batches), batches):
        model = _model()
        history = train(model, LIKELIHOOD, source, epochs=2, verbose=0)
        results.append((history.nll, _values(model)))
    for nll, values in results[1:]:
        np.testing.assert_allclose(nll, results[0][0], rtol=1e-6)
        for a, b in zip(values, results[0][1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_the_kl_weight_is_one_over_the_rows_counted_or_given():
    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x[:50], y[:50])).batch(BATCH)
    model = _model()
    train(model, LIKELIHOOD, dataset, epochs=1, verbose=0)
    assert all(layer.kl_weight == pytest.approx(1 / 50) for layer in variational_layers(model))
    train(model, LIKELIHOOD, dataset, epochs=1, verbose=0, n_train=1000)
    assert all(layer.kl_weight == pytest.approx(1e-3) for layer in variational_layers(model))


def test_validation_and_callbacks_see_every_epoch_of_a_stream():
    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(N, seed=0).batch(BATCH)
    ends = []
    callback = tf.keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: ends.append(logs))
    history = train(_model(), LIKELIHOOD, dataset, epochs=3, verbose=0, callbacks=[callback],
                    validation_data=(x[:20], y[:20]))
    assert len(history.val_nll) == len(history.nll) == len(ends) == 3
    assert all(np.isfinite(logs["val_nll"]) for logs in ends)


def test_ensemble_members_take_the_same_stream_and_differ_by_initialisation():
    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    def member(seed):
        return models.mlp(2, LIKELIHOOD.n_network_outputs(1), hidden_units=(8,), seed=seed,
                          output_layers=LIKELIHOOD.output_layers(1))

    members = [member(s) for s in (1, 2)]
    history = train(members, LIKELIHOOD, dataset, epochs=2, verbose=0, threads=2)
    alone = member(2)
    train(alone, LIKELIHOOD, dataset, epochs=2, verbose=0)
    assert len(history.nll) == 2
    for a, b in zip(_values(members[1]), _values(alone), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not np.allclose(_values(members[0])[0], _values(members[1])[0])


def test_bad_streams_are_refused_clearly():
    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    with pytest.raises(TypeError, match="read only once"):
        train(_model(), LIKELIHOOD, ((x, y) for _ in range(2)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="without a separate y"):
        train(_model(), LIKELIHOOD, dataset, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="batch a dataset"):
        train(_model(), LIKELIHOOD, tf.data.Dataset.from_tensor_slices((x, y)), epochs=1,
              verbose=0)
    with pytest.raises(ValueError, match=r"\(x, y\) batches"):
        train(_model(), LIKELIHOOD, tf.data.Dataset.from_tensor_slices(x).batch(8), epochs=1,
              verbose=0)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_a_stream_larger_than_its_memory_budget_trains():
    # 2,000,000 rows of 16 float64 features (256 MB) made batch by batch; past the start,
    # resident memory must grow by far less than the data.
    rows, features, batch = 2_000_000, 16, 8192
    budget = 64 * 2**20
    peak = []

    def batches():
        rng = np.random.default_rng(0)
        for _ in range(rows // batch):
            x = rng.normal(size=(batch, features))
            peak.append(_resident_bytes())
            yield x, x[:, :1] - 0.5 * x[:, 1:2]

    model = models.bayesian_mlp(features, LIKELIHOOD, hidden_units=(8,), seed=0)
    history = train(model, LIKELIHOOD, batches, epochs=1, n_train=rows, verbose=0,
                    learning_rate=1e-2)
    assert len(peak) >= rows // batch
    # Start-up (the tf.data pipeline's buffers, XLA's compilation) takes a fixed ~170 MB
    # within the first 20 batches; from then on, 225 more batches must not add to it.
    compiled = peak[len(peak) // 10]
    assert max(peak) - compiled < budget, (max(peak) - compiled) / 2**20
    assert history.nll[0] < 1.5  # it learnt: a unit-variance target starts near 1.4


# -- the estimators --------------------------------------------------------------------------


def _regression(n=128, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 5.0, 0.2] + [0.0, 10.0, -1.0]
    y = X @ np.array([1.0, -0.4, 2.0]) + 0.3 * rng.normal(size=n)
    return X, y


def test_fit_from_a_dataset_equals_fit_from_the_arrays_in_the_same_order():
    from tfbnn import BayesianRegressor

    X, y = _regression()
    options = dict(hidden_units=(8,), epochs=1, batch_size=16, random_state=0, n_samples=5)
    from_arrays = BayesianRegressor(**options).fit(X, y)
    order = _in_memory_orders(0, 1, len(X))[0]
    dataset = tf.data.Dataset.from_tensor_slices((X[order], y[order])).batch(16)
    streamed = BayesianRegressor(**options).fit(dataset)
    for name in ("x_mean_", "x_scale_", "y_shift_", "y_scale_"):
        np.testing.assert_allclose(getattr(streamed, name), getattr(from_arrays, name),
                                   rtol=1e-10)
    assert streamed.input_shape_ == (3,) and streamed.n_features_in_ == 3
    np.testing.assert_allclose(streamed.predict(X), from_arrays.predict(X), rtol=1e-4,
                               atol=1e-4)


def test_a_classifier_finds_its_classes_in_the_stream():
    from tfbnn import BayesianClassifier

    X, y = _regression()
    labels = np.where(y > np.median(y), "high", "low")
    batches = [(X[i : i + 32], labels[i : i + 32]) for i in range(0, len(X), 32)]
    model = BayesianClassifier(hidden_units=(8,), epochs=20, random_state=0,
                               n_samples=5).fit(lambda: iter(batches))
    assert model.classes_.tolist() == ["high", "low"]
    assert model.score(X, labels) > 0.8


def test_a_stream_or_partial_fit_of_a_few_classes_does_not_warn_of_many():
    import warnings

    from tfbnn import BayesianClassifier
    from tfbnn.data import DataWarning

    X, y = _regression()
    three = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))  # 128 rows: 43 per class
    model = BayesianClassifier(hidden_units=(4,), epochs=1, random_state=0, n_samples=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        model.fit([(X[:64], three[:64]), (X[64:], three[64:])])
        BayesianClassifier(hidden_units=(4,), random_state=0, n_samples=5).partial_fit(
            X, three, classes=[0, 1, 2])
    assert model.classes_.tolist() == [0.0, 1.0, 2.0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit([(X, np.arange(len(X)))])
    # One warning, about the stream's rows (none from the probe of one row per class).
    assert [str(w.message)[:50] for w in caught if "classes" in str(w.message)] == [
        "fit(dataset): the stream's labels take 128 classes"]


@pytest.mark.parametrize("inference", ["ensemble", "laplace", "swag", "mc_dropout"])
def test_other_methods_train_from_a_stream(inference):
    from tfbnn import BayesianRegressor

    X, y = _regression()
    dataset = tf.data.Dataset.from_tensor_slices((X, y)).shuffle(128, seed=0).batch(32)
    options = {"ensemble": {"n_members": 2}, "laplace": {"refine_map": False},
               "swag": {"swag_epochs": 5}, "mc_dropout": {}}[inference]
    model = BayesianRegressor(hidden_units=(8,), epochs=30, learning_rate=1e-2,
                              inference=inference,
                              inference_options=options, random_state=0, n_samples=5)
    model.fit(dataset)
    assert model.score(X, y) > 0.5


def test_hmc_refuses_a_stream_and_says_what_to_use():
    from tfbnn import BayesianRegressor

    X, y = _regression()
    dataset = tf.data.Dataset.from_tensor_slices((X, y)).batch(32)
    with pytest.raises(ValueError, match="sgmcmc.*laplace"):
        BayesianRegressor(inference="hmc", epochs=1).fit(dataset)
    with pytest.raises(ValueError, match="pass no y"):
        BayesianRegressor(epochs=1).fit(dataset, y)


def test_partial_fit_over_chunks_approaches_the_one_shot_fit():
    from tfbnn import BayesianRegressor

    X, y = _regression(n=256)
    options = dict(hidden_units=(16,), batch_size=16, random_state=0, n_samples=10)
    one_shot = BayesianRegressor(epochs=20, **options).fit(X, y)
    chunked = BayesianRegressor(**options)
    for _ in range(20):
        for start in range(0, len(X), 64):
            chunked.partial_fit(X[start : start + 64], y[start : start + 64], n_train=len(X))
    assert len(chunked.history_["nll"]) == 20 * 4
    assert chunked.score(X, y) > one_shot.score(X, y) - 0.05
    assert chunked.score(X, y) > 0.9


def test_classifier_partial_fit_needs_the_classes_first():
    from tfbnn import BayesianClassifier

    X, y = _regression()
    labels = (y > 0).astype(int)
    model = BayesianClassifier(hidden_units=(8,), random_state=0, n_samples=5)
    with pytest.raises(ValueError, match="classes="):
        model.partial_fit(X[:64], labels[:64])
    model.partial_fit(X[:64], labels[:64], classes=[0, 1])
    model.partial_fit(X[64:], labels[64:])
    assert model.classes_.tolist() == [0, 1] and model.predict(X).shape == (len(X),)
    with pytest.raises(ValueError, match="not in classes"):
        model.partial_fit(X[:4], np.full(4, 7))


def test_partial_fit_keeps_the_frames_column_names():
    import pandas as pd

    from tfbnn import BayesianRegressor

    X, y = _regression(n=64)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    model = BayesianRegressor(hidden_units=(4,), random_state=0, n_samples=5)
    model.partial_fit(frame, y, n_train=64)
    assert model.feature_names_in_.tolist() == list(frame.columns)
    model.partial_fit(frame, y)
    with pytest.warns(UserWarning, match="feature names"):
        model.predict(X)  # fitted with names, given none: scikit-learn's warning
