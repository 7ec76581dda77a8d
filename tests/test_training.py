"""tfbnn.training.train: the compiled training loop, early stopping, divergence, reuse."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfbnn
from tfbnn import compiled, likelihoods, models, training
from tfbnn.functional import FunctionalModel
from tfbnn.layers import variational_layers
from tfbnn.training import NonFiniteLossError, loop, runner_for, train

LIKELIHOOD = likelihoods.Gaussian(trainable=True)
N = 64


def _data(seed=0, slope=2.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(N, 2)).astype("float32")
    y = (slope * x[:, :1] - x[:, 1:] + 0.1 * rng.normal(size=(N, 1))).astype("float32")
    return x, y


def _model(seed=0, hidden_units=(8,), **kwargs):
    return models.bayesian_mlp(2, LIKELIHOOD, hidden_units=hidden_units, estimator="flipout",
                               kl_weight=1 / N, seed=seed, **kwargs)


def _weights(model):
    return [np.array(v) for v in model.variables]  # trainable weights and seed states


def _assert_weights_equal(model, weights):
    for now, before in zip(_weights(model), weights, strict=True):
        np.testing.assert_array_equal(now, before)


# -- what train reports ------------------------------------------------------------------


def test_history_reports_nll_and_kl_separately_as_the_model_computes_them():
    # A vanishing learning rate and posterior scale leave the weights at their
    # means: every epoch's KL term is kl_weight * KL at the initial weights and
    # the NLL is that of the deterministic network.
    x, y = _data()
    model = _model(posterior_scale_init=1e-6)
    history = train(model, LIKELIHOOD, x, y, epochs=3, batch_size=16, learning_rate=1e-12,
                    seed=0, verbose=0, jit_compile=False)
    kl = sum(
        layer.kl_weight * (float(layer.prior.kl_divergence(layer.kernel_posterior()))
                           + float(layer.prior.kl_divergence(layer.bias_posterior())))
        for layer in variational_layers(model)
    )
    nll = -float(tf.reduce_mean(LIKELIHOOD.log_prob(y, model(x))))
    assert len(history.nll) == len(history.kl) == len(history.loss) == 3
    np.testing.assert_allclose(history.kl, kl, rtol=1e-4)
    np.testing.assert_allclose(history.nll, nll, rtol=1e-3)
    np.testing.assert_allclose(history.loss, np.add(history.nll, history.kl), rtol=1e-6)
    assert history.val_nll == [] and history.stopped_epoch is None


def test_training_decreases_the_loss_and_updates_the_model():
    x, y = _data()
    model = _model()
    before = _weights(model)
    history = train(model, LIKELIHOOD, x, y, epochs=40, batch_size=16, learning_rate=1e-2,
                    seed=0, verbose=0)
    assert len(history.nll) == 40
    assert all(np.isfinite(history.loss))
    # The KL term (weights starting with tiny posterior scales) decreases slowly.
    assert np.mean(history.nll[-5:]) < 0.5 * np.mean(history.nll[:5])
    assert np.mean(history.loss[-5:]) < np.mean(history.loss[:5])
    assert all(k > 0 for k in history.kl)
    # The KL term is part of the objective: it falls as the posterior widens.
    assert history.kl[-1] < 0.8 * history.kl[0]
    assert not np.allclose(_weights(model)[0], before[0])
    # The fit is real: the predictive mean is close to the targets.
    mean = LIKELIHOOD.distribution(model(x)).mean().numpy()
    assert np.sqrt(np.mean((mean - y) ** 2)) < 0.5 * np.std(y)


def test_progress_bar_is_shown_only_when_verbose(capsys):
    x, y = _data()
    train(_model(), LIKELIHOOD, x, y, epochs=2, batch_size=16, verbose=1, jit_compile=False)
    assert "2/2" in capsys.readouterr().out
    train(_model(), LIKELIHOOD, x, y, epochs=2, batch_size=16, verbose=0, jit_compile=False)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"epochs": 2.5}, "epochs must be an integer >= 1, got 2.5"),
        ({"epochs": 2, "batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"epochs": 2, "learning_rate": 0.0},
         "learning_rate must be a positive finite number, got 0.0"),
        ({"epochs": 2, "learning_rate": float("nan")}, "learning_rate must be .*got nan"),
        ({"epochs": 2, "optimizer": "adamm"}, "Unknown optimizer='adamm'"),
        ({"epochs": 2, "learning_rate": 0.1, "optimizer": keras.optimizers.SGD(
            keras.optimizers.schedules.ExponentialDecay(0.1, 1, 0.5))},
         "learning_rate=0.1 cannot replace the learning-rate schedule of the given SGD"),
    ],
)
def test_invalid_settings_raise(kwargs, message):
    x, y = _data()
    with pytest.raises(ValueError, match=message):
        train(_model(), LIKELIHOOD, x, y, verbose=0, **kwargs)


# -- epochs per compiled call ------------------------------------------------------------


@pytest.mark.parametrize("steps", [1, 3, 16, 250, 999, 1000, 1001, 5000])
def test_epochs_per_call_is_about_a_thousand_steps(steps):
    k = loop.epochs_per_call(steps)
    assert k >= 1
    assert k == 1 or k * steps <= 1000
    assert (k + 1) * steps > 1000  # the most epochs within the budget


class _RecordWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([np.array(w) for w in self.model.get_weights()])


def test_chunked_epochs_give_the_same_result_as_one_epoch_per_call(monkeypatch):
    # Callbacks force one epoch per compiled call; without them, several epochs
    # run per call (here 4 + a short last chunk of 2). The data orders and
    # updates must be the same either way, and exactly `epochs` are run.
    x, y = _data()
    per_epoch, chunked = _model(), _model()
    recorder = _RecordWeights()
    h1 = train(per_epoch, LIKELIHOOD, x, y, epochs=6, batch_size=16, seed=3, verbose=0,
               callbacks=[recorder], jit_compile=False)
    monkeypatch.setattr(loop, "epochs_per_call", lambda *args, **kwargs: 4)
    h2 = train(chunked, LIKELIHOOD, x, y, epochs=6, batch_size=16, seed=3, verbose=0,
               jit_compile=False)
    assert len(recorder.weights) == 6 and len(h2.loss) == 6
    np.testing.assert_allclose(h1.loss, h2.loss, rtol=1e-5)
    for a, b in zip(_weights(per_epoch), _weights(chunked), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# -- validation and early stopping ----------------------------------------------------------


def test_validation_nll_is_reported_every_epoch_without_early_stopping():
    x, y = _data()
    xv, yv = _data(seed=1)
    history = train(_model(), LIKELIHOOD, x, y, epochs=5, batch_size=16, validation_data=(xv, yv),
                    seed=0, verbose=0, jit_compile=False)
    assert len(history.val_nll) == 5 and all(np.isfinite(history.val_nll))
    assert history.stopped_epoch is None


def test_early_stopping_stops_and_restores_the_best_weights():
    # Validation targets follow the opposite slope: fitting the training data
    # makes the validation NLL worse, so training must stop early.
    x, y = _data(slope=2.0)
    x_val, y_val = _data(seed=1, slope=-2.0)
    model = _model()
    recorder = _RecordWeights()
    history = train(model, LIKELIHOOD, x, y, epochs=200, batch_size=16, learning_rate=1e-2,
                    validation_data=(x_val, y_val), patience=3, seed=0, verbose=0,
                    callbacks=[recorder], jit_compile=False)
    assert history.stopped_epoch is not None and history.stopped_epoch < 200
    assert len(history.val_nll) == len(history.nll) == history.stopped_epoch
    best = int(np.argmin(history.val_nll))
    assert history.stopped_epoch == best + 1 + 3  # patience epochs without improvement
    for now, at_best in zip(model.get_weights(), recorder.weights[best], strict=True):
        np.testing.assert_array_equal(now, at_best)
    assert not np.allclose(model.get_weights()[0], recorder.weights[-1][0])


# -- divergence -------------------------------------------------------------------------------


def test_non_finite_loss_raises_and_leaves_the_weights_untouched():
    x, y = _data()
    model = _model()
    before = _weights(model)
    with pytest.raises(NonFiniteLossError, match=r"non-finite at epoch 1 \(nll=.*learning_rate"):
        train(model, LIKELIHOOD, x, y * 1e30, epochs=5, batch_size=16, seed=0, verbose=0,
              jit_compile=False)
    _assert_weights_equal(model, before)


def test_divergence_after_good_epochs_also_leaves_the_weights_as_before_training():
    # One step per epoch: epoch 1 is evaluated at the initial weights, then the
    # huge step sends them to infinity. With validation data the Keras model is
    # updated every epoch, so this checks that the update is undone.
    x, y = _data()
    model = _model()
    before = _weights(model)
    with pytest.raises(NonFiniteLossError, match="non-finite at epoch 2.*learning_rate"):
        train(model, LIKELIHOOD, x, y, epochs=5, batch_size=N, learning_rate=1e30,
              validation_data=(x, y), seed=0, verbose=0, jit_compile=False)
    _assert_weights_equal(model, before)


def test_non_finite_loss_error_is_a_floating_point_error():
    assert issubclass(NonFiniteLossError, FloatingPointError)


# -- compiled code is shared across models of one architecture -------------------------------


def test_runner_is_reused_across_models_of_the_same_architecture():
    x, y = _data()
    first, second, twin = _model(seed=1), _model(seed=2), _model(seed=2)
    runner = runner_for(first, LIKELIHOOD, 16, jit_compile=False)
    assert runner_for(second, LIKELIHOOD, 16, jit_compile=False) is runner
    assert runner_for(_model(hidden_units=(4,)), LIKELIHOOD, 16, jit_compile=False) is not runner
    assert runner_for(first, likelihoods.Gaussian(), 16, jit_compile=False) is not runner
    assert runner_for(first, LIKELIHOOD, 8, jit_compile=False) is not runner

    train(first, LIKELIHOOD, x, y, epochs=3, batch_size=16, seed=0, verbose=0, jit_compile=False)
    traces = runner.run_epochs.experimental_get_tracing_count()
    h_shared = train(second, LIKELIHOOD, x, y, epochs=3, batch_size=16, seed=0, verbose=0,
                     jit_compile=False)
    assert runner.run_epochs.experimental_get_tracing_count() == traces, "retraced"

    # The shared runner (built from `first`) trains `second` exactly as a runner
    # built from `second`'s twin trains the twin.
    compiled.clear_cache()
    h_own = train(twin, LIKELIHOOD, x, y, epochs=3, batch_size=16, seed=0, verbose=0,
                  jit_compile=False)
    assert runner_for(twin, LIKELIHOOD, 16, jit_compile=False) is not runner
    np.testing.assert_allclose(h_shared.loss, h_own.loss, rtol=1e-6)
    for a, b in zip(_weights(second), _weights(twin), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_runner_serves_different_epoch_counts():
    # A second chunk length relaxes the compiled input shape; the epoch count
    # must then be read at run time (this used to fail on the second fit).
    x, y = _data()
    for epochs in (2, 3, 4):
        history = train(_model(), LIKELIHOOD, x, y, epochs=epochs, batch_size=16, verbose=0,
                        jit_compile=False)
        assert len(history.nll) == epochs


# -- adversarial training (fast gradient sign) ----------------------------------------------


def test_adversarial_inputs_step_along_the_sign_of_the_input_gradient():
    # A linear model with fixed noise: d nll / d x = (w x + b - y) w / sigma^2.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    likelihood = likelihoods.Gaussian(scale=1.0)
    runner = training.EpochRunner(model, likelihood, 4, jit_compile=False, adversarial=True)
    theta = runner.functional.get_params()
    rng = np.random.default_rng(0)
    xb = tf.constant(rng.normal(size=(4, 3)), tf.float32)
    yb = tf.constant(rng.normal(size=(4, 1)), tf.float32)
    epsilon = tf.constant([0.1, 0.2, 0.0])
    x_adv = runner.adversarial_inputs(theta, runner.functional.get_state(), xb, yb, epsilon)
    w, b = (v.numpy() for v in model.weights)
    residual = xb.numpy() @ w + b - yb.numpy()
    expected = xb.numpy() + epsilon.numpy() * np.sign(residual * w[:, 0])
    np.testing.assert_allclose(x_adv.numpy(), expected, rtol=1e-6)


def test_zero_adversarial_step_doubles_the_loss_which_adam_ignores():
    # With epsilon = 0 the adversarial inputs are the inputs: the loss doubles, and Adam's
    # updates do not depend on the gradient's scale, so training follows the same path.
    x, y = _data()
    plain, twin = (models.mlp(2, LIKELIHOOD.n_network_outputs(1), hidden_units=(8,), seed=1,
                              output_layers=LIKELIHOOD.output_layers(1)) for _ in range(2))
    train(plain, LIKELIHOOD, x, y, epochs=3, batch_size=16, seed=0, verbose=0, jit_compile=False)
    train(twin, LIKELIHOOD, x, y, epochs=3, batch_size=16, seed=0, verbose=0, jit_compile=False,
          adversarial_epsilon=0.0)
    for a, b in zip(plain.weights, twin.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("epsilon", [-0.1, [0.1, 0.2, 0.3, 0.4, 0.5], float("nan"), [[0.1]]])
def test_bad_adversarial_epsilon_is_refused(epsilon):
    x, y = _data()
    with pytest.raises(ValueError, match="adversarial_epsilon must be a non-negative number"):
        train(_model(), LIKELIHOOD, x, y, epochs=1, verbose=0, jit_compile=False,
              adversarial_epsilon=epsilon)


# -- ensembles trained in groups on several threads ------------------------------------------


def _members(n, seed=0):
    return [models.mlp(2, LIKELIHOOD.n_network_outputs(1), hidden_units=(8,), seed=seed + 10 * i,
                       output_layers=LIKELIHOOD.output_layers(1)) for i in range(n)]


@pytest.mark.parametrize("threads", [2, 3])
def test_members_train_the_same_in_groups_on_threads_as_in_one_program(threads):
    # Members are independent: cutting 5 into groups (3 + 2 padded to 3 + 3, or 2 + 2 + 1
    # padded to 2 + 2 + 2) changes the speed, not the weights or the reported means.
    x, y = _data()
    one, grouped = _members(5), _members(5)
    kwargs = dict(epochs=4, batch_size=16, seed=3, verbose=0, jit_compile=False,
                  validation_data=(x[:16], y[:16]))
    h_one = train(one, LIKELIHOOD, x, y, threads=1, **kwargs)
    h_grouped = train(grouped, LIKELIHOOD, x, y, threads=threads, **kwargs)
    for a, b in zip(one, grouped):
        for va, vb in zip(a.weights, b.weights):
            np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_grouped.nll, h_one.nll, rtol=1e-5)
    np.testing.assert_allclose(h_grouped.val_nll, h_one.val_nll, rtol=1e-5)
    # The members did train apart: each one's weights moved differently.
    assert not np.allclose(one[0].weights[0].numpy(), one[1].weights[0].numpy())


def test_history_of_an_ensemble_is_the_mean_over_its_members():
    # With a vanishing step the weights stay put, so each epoch's NLL is the mean over
    # members of their full-batch NLL (batch = all rows); a padded copy must not count.
    x, y = _data()
    members = _members(3)
    history = train(members, LIKELIHOOD, x, y, epochs=2, batch_size=N, learning_rate=1e-12,
                    seed=0, verbose=0, jit_compile=False, threads=2)
    expected = np.mean([-float(tf.reduce_mean(LIKELIHOOD.log_prob(y, m(x)))) for m in members])
    np.testing.assert_allclose(history.nll, expected, rtol=1e-5)


@pytest.mark.parametrize("threads", [0, -1, 1.5, "many", True])
def test_bad_threads_are_refused(threads):
    x, y = _data()
    with pytest.raises(ValueError, match="threads must be 'auto' or an integer >= 1"):
        train(_members(2), LIKELIHOOD, x, y, epochs=1, verbose=0, jit_compile=False,
              threads=threads)


def test_each_member_stops_early_on_its_own_validation_nll_and_keeps_its_best_weights():
    # Validation targets follow a gentler slope, so fitting first helps, then hurts; the
    # members, started apart, reach their best epochs at different times.
    x, y = _data(slope=2.0)
    x_val, y_val = _data(seed=1, slope=0.5)
    members = _members(3)
    snapshots = []
    history = train(members, LIKELIHOOD, x, y, epochs=200, batch_size=16, learning_rate=1e-2,
                    validation_data=(x_val, y_val), patience=3, seed=0, verbose=0,
                    jit_compile=False, threads=2,
                    epoch_hook=lambda epoch, theta: snapshots.append(theta.numpy().copy()))
    thetas = np.stack(snapshots)  # (epochs run, M, P)
    runner = runner_for(members[0], LIKELIHOOD, 16, jit_compile=False, n_members=2)
    state = FunctionalModel(members[0]).get_state()
    member_nll = np.stack([runner.val_nll(tf.constant(x_val), tf.constant(y_val),
                                          tf.constant(t), state)[1].numpy() for t in thetas])
    best = np.argmin(member_nll, axis=0)  # each member's best epoch
    # Training ran until the last member to peak had waited 3 epochs.
    assert history.stopped_epoch == len(thetas) == best.max() + 1 + 3 < 200
    final = np.stack([FunctionalModel(m).get_params().numpy() for m in members])
    np.testing.assert_array_equal(final, thetas[best, np.arange(3)])
    # Each member's own validation NLL decides: their best epochs differ (9, 7, 6 here).
    assert len(set(best.tolist())) == 3


# -- any Keras optimizer ------------------------------------------------------------------------


def _linear(seed=0):
    """A linear model under a unit-scale Gaussian: nll = (y - x w - b)^2 / 2 + const."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
        1, kernel_initializer=keras.initializers.GlorotUniform(seed))])
    return model, likelihoods.Gaussian(scale=1.0)


def _full_batch_steps(model, x, y, steps, update):
    """NumPy gradient descent on the mean nll over all rows: `update(t, params, grads)`."""
    w, b = (v.numpy().astype(np.float64) for v in model.weights)
    for t in range(1, steps + 1):
        residual = x @ w + b - y  # d nll / d prediction, per row
        w, b = update(t, [w, b], [x.T @ residual / len(x), residual.mean(axis=0)])
    return w, b


def test_default_adam_follows_its_update_rule_across_chunks(monkeypatch):
    # One full-batch step per epoch, 7 epochs in chunks of 3 + 3 + 1: Adam's moments and
    # step count carry over between compiled calls.
    x, y = _data()
    model, likelihood = _linear()
    moments = {}

    def adam(t, params, grads, lr=0.01, b1=0.9, b2=0.999):
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            m, v = moments.get(i, (0.0, 0.0))
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
            moments[i] = m, v
            out.append(p - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + 1e-7))
        return out

    expected = _full_batch_steps(model, x, y, 7, adam)
    monkeypatch.setattr(loop, "epochs_per_call", lambda *args, **kwargs: 3)
    train(model, likelihood, x, y, epochs=7, batch_size=N, learning_rate=0.01, seed=0,
          verbose=0, jit_compile=False)
    for variable, value in zip(model.weights, expected, strict=True):
        np.testing.assert_allclose(variable.numpy(), value, rtol=1e-4, atol=1e-6)


def test_sgd_with_a_schedule_takes_the_scheduled_steps():
    x, y = _data()
    model, likelihood = _linear()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5)
    expected = _full_batch_steps(model, x, y, 4, lambda t, params, grads: [
        p - 0.5 * 0.5 ** (t - 1) * g for p, g in zip(params, grads)])
    train(model, likelihood, x, y, epochs=4, batch_size=N, optimizer=keras.optimizers.SGD(
        schedule), seed=0, verbose=0, jit_compile=False)
    for variable, value in zip(model.weights, expected, strict=True):
        np.testing.assert_allclose(variable.numpy(), value, rtol=1e-5, atol=1e-6)


def test_an_optimizer_by_name_takes_the_learning_rate():
    x, y = _data()
    model, likelihood = _linear()
    expected = _full_batch_steps(model, x, y, 3, lambda t, params, grads: [
        p - 0.2 * g for p, g in zip(params, grads)])
    user = keras.optimizers.SGD(0.2)
    train(model, likelihood, x, y, epochs=3, batch_size=N, optimizer=user, seed=0, verbose=0,
          jit_compile=False)
    for variable, value in zip(model.weights, expected, strict=True):
        np.testing.assert_allclose(variable.numpy(), value, rtol=1e-5, atol=1e-6)
    assert int(user.iterations.numpy()) == 0  # the user's instance is left alone
    twin, _ = _linear()
    train(twin, likelihood, x, y, epochs=3, batch_size=N, optimizer="sgd", learning_rate=0.2,
          seed=0, verbose=0, jit_compile=False)
    for a, b in zip(model.weights, twin.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_one_program_serves_every_constant_learning_rate():
    model = _model()
    runner = runner_for(model, LIKELIHOOD, 16, jit_compile=False,
                        optimizer=keras.optimizers.Adam(0.1))
    assert runner_for(model, LIKELIHOOD, 16, jit_compile=False, optimizer="adam") is runner
    assert runner_for(model, LIKELIHOOD, 16, jit_compile=False, optimizer="sgd") is not runner
    assert runner_for(model, LIKELIHOOD, 16, jit_compile=False,
                      optimizer=keras.optimizers.Adam(0.1, beta_1=0.5)) is not runner


def test_an_ensemble_of_variational_members_trains_in_groups_of_one():
    """Members that are not plain dense stacks run through `vectorized_map`; with one
    member per group its gradient loses the static member axis, which the loop needs."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 2)).astype("float32")
    y = (x[:, 0] - x[:, 1]).astype("float32")

    def member(seed):
        return keras.Sequential([keras.Input((2,)), tfbnn.layers.DenseFlipout(4, seed=seed),
                                 tfbnn.layers.DenseFlipout(1, seed=seed + 1),
                                 tfbnn.layers.LearnedScale()])

    members = [member(0), member(10)]
    before = [m.get_weights()[0].copy() for m in members]
    history = tfbnn.train(members, tfbnn.likelihoods.Gaussian(trainable=True), x, y, epochs=2,
                          threads=2, verbose=0, jit_compile=False)
    assert len(history.nll) == 2 and np.isfinite(history.loss).all()
    assert all(not np.allclose(m.get_weights()[0], b) for m, b in zip(members, before))


def test_adversarial_epsilon_may_be_given_per_entry_of_an_example():
    np.testing.assert_allclose(loop.adversarial_step([0.1, 0.2], (3, 2)).numpy(),
                               [[0.1, 0.2]] * 3)
    assert loop.adversarial_step(None, 4).shape == (4,)
    with pytest.raises(ValueError, match=r"broadcasts to one example's shape \(3, 2\)"):
        loop.adversarial_step([0.1, 0.2, 0.3], (3, 2))


def _image_or_sequence_net(input_shape, seed):
    keras.utils.set_random_seed(seed)
    first = (keras.layers.Conv2D(2, 3, activation="relu") if len(input_shape) == 3
             else keras.layers.Conv1D(2, 2, activation="relu"))
    return keras.Sequential([keras.Input(input_shape), first, keras.layers.Flatten(),
                             keras.layers.Dense(LIKELIHOOD.n_network_outputs(1)),
                             *LIKELIHOOD.output_layers(1)])


@pytest.mark.parametrize("input_shape", [(5, 5, 1), (6, 2)], ids=["images", "sequences"])
def test_train_takes_images_and_sequences_alone_and_as_an_ensemble(input_shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, *input_shape)).astype("float32")
    y = x.reshape(32, -1).mean(axis=1, keepdims=True).astype("float32")
    model = _image_or_sequence_net(input_shape, 0)
    history = train(model, LIKELIHOOD, x, y, epochs=3, batch_size=8, seed=0, verbose=0,
                    jit_compile=False, validation_data=(x[:8], y[:8]))
    assert np.isfinite(history.nll + history.val_nll).all()
    members = [_image_or_sequence_net(input_shape, s) for s in (1, 2)]
    before = [m.get_weights() for m in members]
    history = train(members, LIKELIHOOD, x, y, epochs=2, batch_size=8, seed=0, verbose=0,
                    jit_compile=False, threads=1, adversarial_epsilon=0.01)
    assert np.isfinite(history.nll).all()
    for member, weights in zip(members, before):  # every member trained
        assert not np.allclose(member.get_weights()[0], weights[0])


def test_ensemble_members_with_batch_normalisation_are_refused():
    def member():
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(4),
                                 keras.layers.BatchNormalization(name="norm"),
                                 keras.layers.Dense(1), *LIKELIHOOD.output_layers(1)])

    x, y = _data()
    with pytest.raises(ValueError, match=r"BatchNormalization \(\['norm'\]\) cannot be trained"):
        train([member(), member()], LIKELIHOOD, x, y, epochs=1, verbose=0)
