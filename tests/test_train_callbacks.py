"""Keras' own callbacks in tfbnn.train: logs, the optimizer they see, saving and resuming,
variables they change, and ensembles."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfbnn import likelihoods, models
from tfbnn.training import train

N = 32
UNIT_GAUSSIAN = likelihoods.Gaussian(scale=1.0)
LEARNED = likelihoods.Gaussian(trainable=True)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(N, 2)).astype("float32")
    y = (2.0 * x[:, :1] - x[:, 1:] + 0.1 * rng.normal(size=(N, 1))).astype("float32")
    return x, y


def _linear(seed=0):
    """nll = (y - x w - b)^2 / 2 + const under `UNIT_GAUSSIAN`."""
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(
        1, kernel_initializer=keras.initializers.GlorotUniform(seed))])


def _sgd_steps(model, x, y, rates):
    """Full-batch SGD on the linear model's mean nll, one step per rate, in NumPy."""
    w, b = (v.numpy().astype(np.float64) for v in model.weights)
    for rate in rates:
        residual = x @ w + b - y
        w, b = w - rate * x.T @ residual / len(x), b - rate * residual.mean(axis=0)
    return w, b


def _bayesian(seed=0):
    return models.bayesian_mlp(2, LEARNED, hidden_units=(8,), estimator="flipout",
                               kl_weight=1 / N, seed=seed)


def _members(n):
    return [models.mlp(2, LEARNED.n_network_outputs(1), hidden_units=(4,), seed=10 * i,
                       output_layers=LEARNED.output_layers(1)) for i in range(n)]


class _Record(keras.callbacks.Callback):
    """Per epoch: the logs, the weights and the learning rate callbacks see."""

    def __init__(self):
        super().__init__()
        self.logs, self.weights, self.rates = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))
        self.weights.append([np.array(w) for w in self.model.get_weights()])


FIT = dict(batch_size=N, seed=0, verbose=0, jit_compile=False)


# -- logs ---------------------------------------------------------------------------------


def test_tensorboard_event_file_holds_nll_kl_and_the_learning_rate(tmp_path):
    # Keras' TensorBoard callback writes scalars through the tensorboard package.
    pytest.importorskip("tensorboard")
    x, y = _data()
    history = train(_bayesian(), LEARNED, x, y, epochs=3, validation_data=(x, y),
                    callbacks=[keras.callbacks.TensorBoard(str(tmp_path))], **FIT)
    scalars = {}  # (folder, tag) -> {epoch: value}; validation values drop their val_
    for folder in ("train", "validation"):
        for path in (tmp_path / folder).glob("events.out.tfevents.*"):
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                for value in event.summary.value:
                    if value.tag.startswith("epoch_"):
                        scalars.setdefault((folder, value.tag), {})[event.step] = float(
                            tf.make_ndarray(value.tensor))
    for folder, tag, logged in [("train", "epoch_nll", history.nll),
                                ("train", "epoch_kl", history.kl),
                                ("train", "epoch_loss", history.loss),
                                ("validation", "epoch_nll", history.val_nll)]:
        written = scalars[folder, tag]
        assert sorted(written) == [0, 1, 2]
        np.testing.assert_allclose([written[e] for e in range(3)], logged, rtol=1e-6)
    assert scalars["train", "epoch_learning_rate"][0] == pytest.approx(1e-3)


def test_csv_logger_rows_have_every_column(tmp_path):
    x, y = _data()
    path = tmp_path / "log.csv"
    history = train(_bayesian(), LEARNED, x, y, epochs=3, validation_data=(x, y),
                    callbacks=[keras.callbacks.CSVLogger(str(path))], **FIT)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert set(rows[0]) == {"epoch", "nll", "kl", "loss", "val_nll"}
    for name in ("nll", "kl", "loss", "val_nll"):
        np.testing.assert_allclose([float(r[name]) for r in rows], getattr(history, name),
                                   rtol=1e-6)


# -- the learning rate --------------------------------------------------------------------


def test_learning_rate_scheduler_sets_the_step_size_of_each_epoch():
    # One full-batch SGD step per epoch at the scheduled rate; from epoch 2 the rate is 0,
    # and the weights no longer move.
    x, y = _data()
    model = _linear()
    rates = [0.3, 0.1, 0.0, 0.0]
    expected = _sgd_steps(model, x, y, rates)
    record = _Record()
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, rate: rates[epoch])
    train(model, UNIT_GAUSSIAN, x, y, epochs=4, optimizer=keras.optimizers.SGD(0.5),
          callbacks=[scheduler, record], **FIT)
    assert record.rates == pytest.approx(rates)
    for now, value in zip(model.weights, expected, strict=True):
        np.testing.assert_allclose(now.numpy(), value, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(record.weights[0][0], record.weights[1][0])
    for later in record.weights[2:]:
        for a, b in zip(later, record.weights[1], strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("monitor", ["nll", "loss", "val_nll"])
def test_reduce_lr_on_plateau_lowers_the_rate_the_loop_uses(monitor):
    # min_delta is so large that no epoch counts as an improvement after the first:
    # the rate halves at the end of every later epoch.
    x, y = _data()
    model = _linear()
    expected = _sgd_steps(model, x, y, [0.4, 0.4, 0.2, 0.1])
    record = _Record()
    reduce = keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=0,
                                               min_delta=1e9, min_lr=0.0)
    train(model, UNIT_GAUSSIAN, x, y, epochs=4, optimizer=keras.optimizers.SGD(0.4),
          validation_data=(x, y), callbacks=[reduce, record], **FIT)
    assert record.rates == pytest.approx([0.4, 0.4, 0.2, 0.1])
    for now, value in zip(model.weights, expected, strict=True):
        np.testing.assert_allclose(now.numpy(), value, rtol=1e-5, atol=1e-6)


def test_the_optimizer_callbacks_see_counts_the_steps_and_leaves_with_the_run():
    x, y = _data()
    model = _linear()
    counts = []
    count = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: counts.append(int(model.optimizer.iterations)))
    train(model, UNIT_GAUSSIAN, x, y, epochs=3, callbacks=[count], **{**FIT, "batch_size": 8})
    assert counts == [4, 8, 12]
    assert not hasattr(model, "optimizer")
    # A compiled model keeps its own optimizer, also when training fails.
    own = keras.optimizers.RMSprop()
    model.compile(own, "mse")
    with pytest.raises(RuntimeError, match="stop here"):
        train(model, UNIT_GAUSSIAN, x, y, epochs=3, callbacks=[_Interrupt(1)], **FIT)
    assert model.optimizer is own


# -- saving and resuming ------------------------------------------------------------------


def test_model_checkpoint_saves_the_weights_of_each_epochs_end(tmp_path):
    x, y = _data()
    record = _Record()
    path = str(tmp_path / "epoch{epoch}.weights.h5")
    train(_bayesian(), LEARNED, x, y, epochs=3, callbacks=[
        record, keras.callbacks.ModelCheckpoint(path, save_weights_only=True)], **FIT)
    for epoch, weights in enumerate(record.weights):
        saved = _bayesian(seed=5)
        saved.load_weights(path.format(epoch=epoch + 1))
        for a, b in zip(saved.get_weights(), weights, strict=True):
            np.testing.assert_array_equal(a, b)


def test_model_checkpoint_keeps_the_whole_model_of_the_best_epoch(tmp_path):
    x, y = _data()
    record = _Record()
    path = str(tmp_path / "best.keras")
    history = train(_bayesian(), LEARNED, x, y, epochs=4, validation_data=(x[:8], -y[:8]),
                    callbacks=[record, keras.callbacks.ModelCheckpoint(
                        path, monitor="val_nll", save_best_only=True)], **FIT)
    best = int(np.argmin(history.val_nll))
    assert best < 3  # the check below is not merely the last epoch
    for a, b in zip(keras.models.load_model(path).get_weights(), record.weights[best],
                    strict=True):
        np.testing.assert_array_equal(a, b)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("stop here")


def test_backup_and_restore_resumes_an_interrupted_fit_exactly(tmp_path):
    # Adam's moments and the flipout layers' seed states are part of the backup: the
    # resumed fit ends exactly where an uninterrupted one does.
    x, y = _data()
    fit = dict(epochs=5, optimizer=keras.optimizers.Adam(0.05), **{**FIT, "batch_size": 8})
    whole = _bayesian()
    h_whole = train(whole, LEARNED, x, y, **fit)

    model = _bayesian()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="stop here"):
        train(model, LEARNED, x, y, callbacks=[backup, _Interrupt(3)], **fit)
    resumed = train(model, LEARNED, x, y, callbacks=[backup], **fit)
    assert len(resumed.loss) == 2  # epochs 4 and 5
    np.testing.assert_allclose(resumed.loss, h_whole.loss[3:], rtol=1e-6)
    for a, b in zip(model.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not (tmp_path / "backup").exists()  # removed once the fit completed


@pytest.mark.parametrize("callback", [
    keras.callbacks.ModelCheckpoint("m.weights.h5", save_weights_only=True, save_freq=2),
    keras.callbacks.BackupAndRestore("backup", save_freq=2),
])
def test_saving_every_few_batches_is_refused(callback):
    x, y = _data()
    with pytest.raises(ValueError, match=r"save_freq=2\) is not supported by tfbnn.train"):
        train(_linear(), UNIT_GAUSSIAN, x, y, epochs=1, callbacks=[callback], **FIT)


# -- variables set by callbacks -----------------------------------------------------------


class _ScaledPenalty(keras.layers.Layer):
    """A dense layer adding `weight * sum(kernel ** 2)`; `weight` is non-trainable."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 1), name="kernel",
                                      initializer=keras.initializers.Constant(0.5))
        self.weight = self.add_weight(shape=(), name="weight", trainable=False,
                                      initializer="ones")

    def call(self, x):
        self.add_loss(self.weight * keras.ops.sum(self.kernel ** 2))
        return keras.ops.matmul(x, self.kernel)


def test_a_non_trainable_variable_a_callback_sets_is_used_from_the_next_epoch():
    # The KL-like term of every epoch is exactly weight(epoch) * sum(kernel^2): the
    # vanishing learning rate leaves the kernel where it started.
    x, y = _data()
    layer = _ScaledPenalty()
    model = keras.Sequential([keras.Input((2,)), layer])
    weights = [0.0, 0.25, 1.0, 3.0]
    anneal = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: layer.weight.assign(weights[epoch]))
    history = train(model, UNIT_GAUSSIAN, x, y, epochs=4, learning_rate=1e-12,
                    callbacks=[anneal], **{**FIT, "batch_size": 8})
    np.testing.assert_allclose(history.kl, np.multiply(weights, 2 * 0.5**2), rtol=1e-6)
    assert float(layer.weight) == 3.0


def test_weights_a_callback_sets_are_trained_from():
    x, y = _data()
    model = _linear()
    record = _Record()
    reset = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: model.set_weights(
        [np.zeros((2, 1), "float32"), np.zeros(1, "float32")]) if epoch == 1 else None)
    train(model, UNIT_GAUSSIAN, x, y, epochs=3, optimizer=keras.optimizers.SGD(0.1),
          callbacks=[reset, record], **FIT)
    zero = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    for now, value in zip(model.weights, _sgd_steps(zero, x, y, [0.1]), strict=True):
        np.testing.assert_allclose(now.numpy(), value, rtol=1e-5, atol=1e-6)


# -- ensembles ----------------------------------------------------------------------------


def test_ensemble_logs_hold_each_members_values_and_their_mean(tmp_path):
    x, y = _data()
    members = _members(3)
    record = _Record()
    history = train(members, LEARNED, x, y, epochs=2, validation_data=(x, y), threads=2,
                    callbacks=[record, keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))],
                    **FIT)
    for epoch, logs in enumerate(record.logs):
        for name in ("nll", "kl", "loss"):
            values = [logs[f"{name}_member_{i}"] for i in range(3)]
            assert logs[name] == pytest.approx(np.mean(values), rel=1e-6)
            assert getattr(history, name)[epoch] == pytest.approx(logs[name], rel=1e-6)
        assert len({logs[f"nll_member_{i}"] for i in range(3)}) == 3
        assert {f"val_nll_member_{i}" for i in range(3)} <= set(logs)
        assert logs["val_nll"] == history.val_nll[epoch]
    with open(tmp_path / "log.csv") as f:
        assert "nll_member_2" in next(csv.reader(f))
    assert record.weights[-1][0].shape == members[0].get_weights()[0].shape  # the first member


def test_ensemble_learning_rate_and_stopping_apply_to_every_member():
    x, y = _data()
    members = _members(3)
    before = [m.get_weights() for m in members]
    frozen = keras.callbacks.LearningRateScheduler(lambda epoch, rate: 0.0)
    train(members, LEARNED, x, y, epochs=2, callbacks=[frozen], threads=2, **FIT)
    for member, weights in zip(members, before):
        for a, b in zip(member.get_weights(), weights, strict=True):
            np.testing.assert_array_equal(a, b)
    stop = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(members[0], "stop_training", epoch == 1))
    history = train(members, LEARNED, x, y, epochs=10, callbacks=[stop], threads=2, **FIT)
    assert history.stopped_epoch == 2 and len(history.loss) == 2


@pytest.mark.parametrize("callback, message", [
    (keras.callbacks.ModelCheckpoint("m.weights.h5", save_weights_only=True),
     "ModelCheckpoint cannot be used when training an ensemble"),
    (keras.callbacks.BackupAndRestore("backup"),
     "BackupAndRestore cannot be used when training an ensemble"),
    (keras.callbacks.EarlyStopping(monitor="val_nll", restore_best_weights=True),
     r"restore only the ensemble's first member: pass patience="),
])
def test_callbacks_that_would_save_one_member_are_refused_for_ensembles(callback, message):
    x, y = _data()
    with pytest.raises(ValueError, match=message):
        train(_members(2), LEARNED, x, y, epochs=1, callbacks=[callback], **FIT)


def test_early_stopping_on_val_nll_needs_no_mode():
    # Validation targets of the opposite sign: the validation NLL rises from the start.
    x, y = _data()
    model = _linear()
    stopping = keras.callbacks.EarlyStopping(monitor="val_nll", patience=2)
    history = train(model, UNIT_GAUSSIAN, x, y, epochs=50, optimizer=keras.optimizers.SGD(0.5),
                    validation_data=(x, -y), callbacks=[stopping], **FIT)
    assert stopping.mode == "min"
    assert history.stopped_epoch == 3 and np.argmin(history.val_nll) == 0
