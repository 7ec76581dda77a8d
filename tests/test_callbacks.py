"""tfbnn.callbacks and tfbnn.keras_metrics under `model.fit`: KL annealing, and the
NLL and KL terms of the loss in Keras' logs."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

import tfbnn
from tfbnn import likelihoods
from tfbnn.callbacks import KLAnnealing, cyclical_factor, linear_factor
from tfbnn.keras_metrics import KLTracker, NegativeLogLikelihood, track_kl
from tfbnn.layers import (
    DenseFlipout,
    DenseLocalReparameterization,
    LearnedScale,
    set_kl_weight,
    variational_layers,
)

N = 40
LIKELIHOOD = likelihoods.Gaussian(trainable=True)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3 * rng.normal(size=(N, 1))).astype("float32")
    return x, y


def _model(kl_weight=1 / N, functional=False):
    layers = [DenseFlipout(8, activation="relu", kl_weight=kl_weight, seed=1),
              DenseLocalReparameterization(1, kl_weight=kl_weight, seed=2), LearnedScale()]
    if not functional:
        return keras.Sequential([keras.Input((3,)), *layers])
    inputs = keras.Input((3,))
    h = inputs
    for layer in layers:
        h = layer(h)
    return keras.Model(inputs, h)


def _compile(model, learning_rate=0.0, tracked=True, jit_compile=False):
    """Compiles with the NLL metric and (if `tracked`) the KL tracker. XLA only where
    a test needs it (compiling costs more than these few steps)."""
    if tracked:
        track_kl(model)
    model.compile(keras.optimizers.SGD(learning_rate),
                  loss=likelihoods.NegativeLogLikelihood(LIKELIHOOD),
                  metrics=[NegativeLogLikelihood(LIKELIHOOD)], jit_compile=jit_compile)
    return model


def _unit_kl(model):
    """The summed KL of the model's layers at weight 1 (closed form: draw-independent)."""
    set_kl_weight(model, 1.0)
    model(_data()[0][:2], training=True)
    return float(sum(model.losses))


# -- the schedules --------------------------------------------------------------------------


def test_linear_factor_rises_from_zero_to_one_and_stays():
    assert [linear_factor(e, 4) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_cyclical_factor_follows_fu_et_al():
    # 8 epochs, 2 cycles of 4 epochs, rising over the first half of each.
    assert [cyclical_factor(e, 8, 2, 0.5) for e in range(8)] == [0, 0.5, 1, 1, 0, 0.5, 1, 1]
    # 10 epochs, 3 cycles of 10/3 epochs: position e mod 4, over 10/3.
    assert cyclical_factor(3, 10, 3, 1.0) == pytest.approx(0.9)
    assert cyclical_factor(4, 10, 3, 1.0) == 0.0


# -- annealing under model.fit --------------------------------------------------------------


@pytest.mark.parametrize("schedule, expected", [
    ("linear", [0.0, 0.5, 1.0, 1.0, 1.0]),
    ("cyclical", [0.0, 0.5, 1.0, 0.0, 0.5]),  # n_epochs=6, 2 cycles of 3, ramp 2/3
    (lambda epoch: 0.1 * (epoch + 1) ** 2, [0.1, 0.4, 0.9, 1.6, 2.5]),
])
def test_annealing_changes_the_logged_kl_term_exactly_as_scheduled(schedule, expected):
    model = _model()
    unit_kl = _unit_kl(model)
    set_kl_weight(model, 1 / N)
    # A zero learning rate keeps the weights, so the KL is the same every step and
    # the logged term is weight(epoch) * KL. Once under XLA: the weight is not a constant.
    _compile(model, jit_compile=schedule == "linear")
    n_epochs = 2 if schedule == "linear" else 6
    annealing = KLAnnealing(schedule, n_epochs=n_epochs, n_cycles=2, ramp=2 / 3)
    history = model.fit(*_data(), epochs=5, batch_size=16, verbose=0,
                        callbacks=[annealing]).history
    weights = np.array(expected) / N
    np.testing.assert_allclose(history["kl_weight"], weights, rtol=1e-6)
    np.testing.assert_allclose(history["kl"], weights * unit_kl, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(history["loss"], np.add(history["nll"], history["kl"]),
                               rtol=1e-5)


@pytest.mark.parametrize("schedule, expected", [
    ("linear", [0.0, 0.5, 1.0, 1.0, 1.0]),
    ("cyclical", [0.0, 0.5, 1.0, 0.0, 0.5]),
])
def test_annealing_under_tfbnn_train_changes_the_kl_term_exactly_as_scheduled(schedule,
                                                                              expected):
    model = _model()
    unit_kl = _unit_kl(model)
    set_kl_weight(model, 1 / N)
    annealing = KLAnnealing(schedule, n_epochs=2 if schedule == "linear" else 6, n_cycles=2,
                            ramp=2 / 3)
    history = tfbnn.train(model, LIKELIHOOD, *_data(), epochs=5, batch_size=16, verbose=0,
                          optimizer=keras.optimizers.SGD(0.0), callbacks=[annealing])
    np.testing.assert_allclose(history.kl, np.array(expected) / N * unit_kl, rtol=1e-5,
                               atol=1e-7)
    assert [layer.kl_weight for layer in variational_layers(model)] == [expected[-1] / N] * 2


def test_annealing_targets_a_given_weight_and_by_default_the_whole_run():
    model = _compile(_model())
    history = model.fit(*_data(), epochs=4, batch_size=16, verbose=0,
                        callbacks=[KLAnnealing(weight=0.2)]).history
    np.testing.assert_allclose(history["kl_weight"], [0.0, 0.05, 0.1, 0.15], rtol=1e-6)
    assert model.layers[0].kl_weight == pytest.approx(0.15)


def test_set_kl_weight_between_fits_takes_effect_without_recompiling():
    model = _model()
    unit_kl = _unit_kl(model)
    _compile(model, jit_compile=True)
    for weight in (0.5, 0.0, 2.0):
        set_kl_weight(model, weight)
        history = model.fit(*_data(), epochs=1, batch_size=16, verbose=0).history
        np.testing.assert_allclose(history["kl"], [weight * unit_kl], rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"schedule": "cosine"}, r"Unknown schedule='cosine'; expected one of \['linear', 'cyclical'\]"),
    ({"n_epochs": 0}, "n_epochs must be an integer >= 1, got 0"),
    ({"n_cycles": 2.5}, "n_cycles must be an integer >= 1, got 2.5"),
    ({"ramp": 0.0}, r"ramp must be in \(0, 1\], got 0.0"),
    ({"ramp": 1.5}, r"ramp must be in \(0, 1\], got 1.5"),
    ({"weight": -1.0}, "weight must be .*got -1.0"),
])
def test_annealing_rejects_invalid_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KLAnnealing(**kwargs)


def test_annealing_refuses_a_bad_factor_and_a_model_without_variational_layers():
    model = _compile(_model())
    with pytest.raises(ValueError, match="factor must be .*got -1"):
        model.fit(*_data(), epochs=1, verbose=0, callbacks=[KLAnnealing(lambda epoch: -1)])
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.compile("sgd", loss=likelihoods.NegativeLogLikelihood(LIKELIHOOD))
    with pytest.raises(ValueError, match="has no tfbnn variational layers"):
        plain.fit(*_data(), epochs=1, verbose=0, callbacks=[KLAnnealing()])


# -- nll and kl in the logs ----------------------------------------------------------------


@pytest.mark.parametrize("functional", [False, True])
def test_history_and_csv_logger_hold_nll_and_kl_that_add_up_to_the_loss(functional, tmp_path):
    x, y = _data(seed=3)
    model = _compile(_model(functional=functional), learning_rate=0.05)
    path = tmp_path / "log.csv"
    # 40 rows in batches of 16: a short last batch, weighted by its size like the loss.
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_data=(x, y),
                        callbacks=[keras.callbacks.CSVLogger(str(path))]).history
    for prefix in ("", "val_"):
        loss, nll, kl = (np.array(history[prefix + key]) for key in ("loss", "nll", "kl"))
        assert np.all(kl > 0)
        np.testing.assert_allclose(loss, nll + kl, rtol=1e-5)
    assert history["loss"][-1] < history["loss"][0]  # it trained
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    np.testing.assert_allclose([float(r["kl"]) for r in rows], history["kl"], rtol=1e-6)
    np.testing.assert_allclose([float(r["nll"]) for r in rows], history["nll"], rtol=1e-6)


def test_nll_metric_is_the_compiled_loss_without_the_kl():
    model = _compile(_model(kl_weight=0.0), tracked=False)
    history = model.fit(*_data(), epochs=2, batch_size=16, verbose=0).history
    assert "kl" not in history  # not tracked
    np.testing.assert_allclose(history["nll"], history["loss"], rtol=1e-6)


def test_track_kl_is_idempotent_and_refuses_models_without_variational_layers():
    model = _model()
    tracker = track_kl(model)
    assert isinstance(tracker, KLTracker) and track_kl(model) is tracker
    assert model.kl_tracker is tracker
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="has no tfbnn variational layers"):
        track_kl(plain)


def test_a_compiled_model_with_the_metrics_saves_loads_and_trains_on(tmp_path):
    model = _compile(_model(), learning_rate=0.01)
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    set_kl_weight(model, 0.125)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert [layer.kl_weight for layer in loaded.layers[:2]] == [0.125, 0.125]
    track_kl(loaded)
    history = loaded.fit(x, y, epochs=1, verbose=0).history
    np.testing.assert_allclose(history["loss"], np.add(history["nll"], history["kl"]), rtol=1e-5)
    metric = NegativeLogLikelihood(likelihoods.StudentT(df=3.0), name="robust_nll")
    copy = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(copy, NegativeLogLikelihood) and copy.name == "robust_nll"
    assert copy.likelihood.get_config() == metric.likelihood.get_config()


def test_tensorboard_records_nll_kl_and_the_kl_weight(tmp_path):
    import tensorflow as tf

    model = _compile(_model(), learning_rate=0.01)
    model.fit(*_data(), epochs=2, batch_size=16, verbose=0,
              callbacks=[KLAnnealing(n_epochs=2),
                         keras.callbacks.TensorBoard(str(tmp_path), write_graph=False)])
    scalars = {}
    for path in (tmp_path / "train").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if not value.tag.startswith("epoch_"):
                    continue
                number = float(tf.make_ndarray(value.tensor))
                scalars.setdefault(value.tag, []).append(number)
    assert {"epoch_loss", "epoch_nll", "epoch_kl", "epoch_kl_weight"} <= set(scalars)
    assert scalars["epoch_kl"][0] == 0.0 and scalars["epoch_kl"][1] > 0
    np.testing.assert_allclose(scalars["epoch_kl_weight"], [0.0, 0.5 / N], rtol=1e-6)
