"""tfbnn's variational LSTM and GRU: the layer contract, Keras's maths at zero posterior
scale, weights drawn once per sequence, the KL loss, vectorised sampling, training."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_checks import check_layer
from scipy import stats

import tfbnn
from tfbnn import likelihoods, priors
from tfbnn.layers import (
    DenseFlipout,
    GRUFlipout,
    GRUReparameterization,
    LearnedScale,
    LSTMFlipout,
    LSTMReparameterization,
    sample_outputs,
    weight_samples,
)

CLASSES = [LSTMReparameterization, LSTMFlipout, GRUReparameterization, GRUFlipout]
KERAS = {LSTMReparameterization: keras.layers.LSTM, LSTMFlipout: keras.layers.LSTM,
         GRUReparameterization: keras.layers.GRU, GRUFlipout: keras.layers.GRU}
#: Entries of our config that Keras's layers do not have.
TFBNN_ONLY = ("prior", "kl_weight", "posterior_scale_init", "prior_centered", "seed")
WEIGHTS = ("kernel", "recurrent_kernel", "bias")

#: A posterior scale small enough that the layer is its posterior mean, to float32 precision.
NO_NOISE = 1e-9


def _sequences(shape=(3, 5, 4), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _keras_twin(layer, weights, input_shape):
    """A Keras LSTM/GRU with `layer`'s configuration holding `weights` (name -> array)."""
    config = {k: v for k, v in layer.get_config().items() if k not in TFBNN_ONLY}
    twin = KERAS[type(layer)].from_config({**config, "name": f"twin_{layer.name}"})
    twin.build(input_shape)
    twin.set_weights([np.asarray(weights[name]) for name in WEIGHTS if name in weights])
    return twin


def _with_keras_weights(cls, kwargs, input_shape, seed=0):
    """Our layer at (almost) zero scale holding a randomly initialised Keras layer's weights,
    and that Keras layer."""
    layer = cls(posterior_scale_init=NO_NOISE, seed=seed, **kwargs)
    layer.build(input_shape)
    rng = np.random.default_rng(seed)
    weights = {name: 0.5 * rng.normal(size=getattr(layer, f"{name}_loc").shape)
               for name in layer.posterior_names}
    twin = _keras_twin(layer, weights, input_shape)
    for variable in twin.weights:  # copy Keras -> ours by Keras's own weight names
        getattr(layer, f"{variable.name}_loc").assign(variable)
    return layer, twin


def _as_list(outputs):
    return [np.asarray(o) for o in (outputs if isinstance(outputs, list | tuple) else [outputs])]


def _seed_state(layer):
    return np.asarray(layer.seed_generator.state)


# -- the shared layer contract ------------------------------------------------------------


@pytest.mark.parametrize("cls, kwargs, n_trainable, n_state", [
    (LSTMReparameterization, {"units": 3, "seed": 1, "return_sequences": True}, 6, 2),
    (LSTMFlipout, {"units": 2, "use_bias": False, "go_backwards": True, "prior": "scale_mixture",
                   "kl_weight": 0.1, "prior_centered": True, "unit_forget_bias": False,
                   "recurrent_initializer": "glorot_normal"}, 4, 4),
    (GRUReparameterization, {"units": 2, "reset_after": False, "activation": "relu",
                             "prior_centered": True, "name": "custom"}, 6, 5),
    (GRUFlipout, {"units": 3, "return_sequences": True, "go_backwards": True, "unroll": True,
                  "prior": priors.StudentT(5.0, 0.0, 0.5), "posterior_scale_init": 0.05}, 6, 2),
])
def test_recurrent_layers_pass_the_layer_checks(cls, kwargs, n_trainable, n_state, tmp_path):
    # Non-trainable: the seed generator's state, kl_weight, and the prior centres if any.
    steps = (5, kwargs["units"]) if kwargs.get("return_sequences") else (kwargs["units"],)
    layer = check_layer(cls, kwargs, (4, 5, 2), expected_output_shape=(4, *steps),
                        expected_num_trainable_weights=n_trainable,
                        expected_num_non_trainable_variables=n_state,
                        expected_num_losses=1, stochastic=True, tmp_path=tmp_path)
    assert layer.posterior_names == WEIGHTS[:n_trainable // 2]


@pytest.mark.parametrize("cls, keras_cls, bias_shape", [
    (LSTMFlipout, keras.layers.LSTM, (12,)),
    (GRUFlipout, keras.layers.GRU, (2, 9)),
])
def test_posterior_means_start_as_keras_initialises_its_weights(cls, keras_cls, bias_shape):
    layer, twin = cls(3), keras_cls(3)
    layer.build((None, 4, 2))
    twin.build((None, 4, 2))
    for variable in twin.weights:
        ours = np.asarray(getattr(layer, f"{variable.name}_loc"))
        assert ours.shape == tuple(variable.shape)
    assert layer.bias_loc.shape == bias_shape
    # The forget gate's bias starts at one (unit_forget_bias), as in Keras.
    np.testing.assert_array_equal(np.asarray(layer.bias_loc), np.asarray(twin.weights[2]))
    # Orthogonal recurrent kernel: orthonormal rows.
    kernel = np.asarray(layer.recurrent_kernel_loc)
    np.testing.assert_allclose(kernel @ kernel.T, np.eye(3), atol=1e-5)


# -- Keras's LSTM and GRU at zero posterior scale ----------------------------------------------


@pytest.mark.parametrize("cls, kwargs", [
    (LSTMReparameterization, {}),
    (LSTMFlipout, {"return_sequences": True}),
    (LSTMReparameterization, {"go_backwards": True, "return_sequences": True}),
    (LSTMFlipout, {"go_backwards": True, "unit_forget_bias": False, "return_state": True}),
    (LSTMReparameterization, {"use_bias": False, "activation": "relu",
                              "recurrent_activation": "hard_sigmoid"}),
    (LSTMReparameterization, {"unroll": True, "return_sequences": True}),
    (GRUReparameterization, {"return_sequences": True}),
    (GRUFlipout, {"go_backwards": True}),
    (GRUReparameterization, {"reset_after": False, "return_sequences": True,
                             "go_backwards": True}),
    (GRUFlipout, {"reset_after": False, "return_state": True}),
    (GRUFlipout, {"use_bias": False, "unroll": True}),
])
def test_keras_weights_as_posterior_means_give_the_keras_layer(cls, kwargs):
    x = _sequences()
    layer, twin = _with_keras_weights(cls, {"units": 6, **kwargs}, x.shape)
    ours, theirs = _as_list(layer(x)), _as_list(twin(x))
    assert len(ours) == len(theirs) == 1 + kwargs.get("return_state", False) * layer.n_states
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-6)


@pytest.mark.parametrize("cls, kwargs", [
    (LSTMFlipout, {"return_sequences": True}),
    (LSTMReparameterization, {"go_backwards": True, "zero_output_for_mask": True,
                              "return_sequences": True}),
    (GRUReparameterization, {"return_state": True}),
    (GRUFlipout, {"go_backwards": True, "zero_output_for_mask": True}),
])
def test_masked_steps_and_initial_states_follow_keras(cls, kwargs):
    x = _sequences((4, 6, 3), seed=1)
    x[0, 4:] = 0.0  # padding at the end
    x[1, 2] = 0.0  # a skipped step inside
    x[2, :2] = 0.0  # padding at the start
    layer, twin = _with_keras_weights(cls, {"units": 5, **kwargs}, x.shape, seed=2)
    initial = [np.random.default_rng(3).normal(size=(4, 5)).astype("float32")
               for _ in range(layer.n_states)]

    def model(rnn):
        inputs = keras.Input((6, 3))
        states = [keras.Input((5,)) for _ in initial]
        outputs = rnn(keras.layers.Masking(0.0)(inputs), initial_state=states)
        return keras.Model([inputs, *states], outputs)

    ours, theirs = model(layer), model(twin)
    for a, b in zip(_as_list(ours([x, *initial])), _as_list(theirs([x, *initial]))):
        np.testing.assert_allclose(a, b, atol=2e-6)
    # The mask goes on with the sequences, as Keras passes it on.
    mask = ours.layers[-1].compute_mask(x, tf.constant(np.any(x != 0, axis=-1)))
    output_mask = mask[0] if kwargs.get("return_state") else mask
    assert (output_mask is not None) == kwargs.get("return_sequences", False)


@pytest.mark.parametrize("cls", [LSTMFlipout, GRUReparameterization])
def test_bidirectional_over_a_mask_zero_embedding_follows_keras(cls):
    tokens = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 0, 0], [5, 3, 0, 0, 0]])

    def model(rnn):
        return keras.Sequential([keras.Input((5,), dtype="int32"),
                                 keras.layers.Embedding(10, 3, mask_zero=True),
                                 keras.layers.Bidirectional(rnn)])

    ours = model(cls(4, return_sequences=True, posterior_scale_init=NO_NOISE, seed=0))
    theirs = model(KERAS[cls](4, return_sequences=True))
    theirs.set_weights([np.random.default_rng(4).normal(size=w.shape) * 0.5
                        for w in theirs.get_weights()])
    ours.layers[0].set_weights(theirs.layers[0].get_weights())
    for direction in ("forward_layer", "backward_layer"):
        layer, twin = getattr(ours.layers[1], direction), getattr(theirs.layers[1], direction)
        assert layer.go_backwards == twin.go_backwards
        for variable in twin.weights:
            getattr(layer, f"{variable.name}_loc").assign(variable)
    np.testing.assert_allclose(np.asarray(ours(tokens)), np.asarray(theirs(tokens)), atol=2e-6)
    assert len(ours.losses) == 2  # a KL term per direction


# -- weights drawn once per sequence -------------------------------------------------------


def _drawn_weights(layer, noise):
    return {name: getattr(layer, f"{name}_loc") + layer.posterior_params(name)[1] * noise[name]
            for name in layer.posterior_names}


@pytest.mark.parametrize("cls", [LSTMReparameterization, GRUReparameterization])
def test_reparameterization_uses_one_weight_sample_for_every_sequence_and_step(cls):
    x = _sequences((4, 7, 3))
    layer = cls(5, return_sequences=True, posterior_scale_init=0.3, seed=4)
    layer.build(x.shape)
    state = _seed_state(layer)
    out = np.asarray(layer(x))
    layer.seed_generator.state.assign(state)  # the same draw again, seen from outside
    noise, rows = layer.draw_noise(len(x))
    assert rows == []
    # A deterministic Keras layer holding that one draw gives every output at every step.
    twin = _keras_twin(layer, _drawn_weights(layer, noise), x.shape)
    np.testing.assert_allclose(out, np.asarray(twin(x)), atol=2e-5)
    assert not np.allclose(out, np.asarray(layer(x)), atol=1e-3)  # the next call draws anew


@pytest.mark.parametrize("cls", [LSTMFlipout, GRUFlipout])
def test_flipout_gives_each_sequence_its_own_weights_for_all_of_its_steps(cls):
    x = np.tile(_sequences((1, 6, 3)), (4, 1, 1))  # four copies of one sequence
    layer = cls(5, return_sequences=True, posterior_scale_init=0.3, seed=5)
    layer.build(x.shape)
    state = _seed_state(layer)
    out = np.asarray(layer(x))
    # Copies of one sequence come out different: each has its own perturbation.
    assert np.all(np.abs(out[1:] - out[0]).max(axis=(1, 2)) > 1e-3)
    layer.seed_generator.state.assign(state)
    noise, rows = layer.draw_noise(len(x))
    kernel_in, kernel_out, recurrent_in, recurrent_out = (np.sign(np.asarray(r)) for r in rows)
    loc = {name: np.asarray(getattr(layer, f"{name}_loc")) for name in layer.posterior_names}
    delta = {name: np.asarray(layer.posterior_params(name)[1] * noise[name])
             for name in layer.posterior_names}
    for b in range(len(x)):
        # Sequence b is a deterministic layer with weights W + dW * outer(s_in, s_out).
        weights = {
            "kernel": loc["kernel"] + delta["kernel"] * np.outer(kernel_in[b], kernel_out[b]),
            "recurrent_kernel": loc["recurrent_kernel"]
            + delta["recurrent_kernel"] * np.outer(recurrent_in[b], recurrent_out[b]),
            "bias": loc["bias"] + delta["bias"],  # one shared bias sample
        }
        twin = _keras_twin(layer, weights, x.shape)
        np.testing.assert_allclose(out[b], np.asarray(twin(x[b:b + 1]))[0], atol=2e-5)


@pytest.mark.parametrize("cls", CLASSES)
def test_same_seed_gives_the_same_draws_and_successive_calls_differ(cls):
    x = _sequences((3, 4, 2))
    a, b, c = (cls(3, posterior_scale_init=0.2, seed=seed) for seed in (7, 7, 8))
    for layer in (a, b, c):
        layer.build(x.shape)
        layer.set_weights(a.get_weights())  # the same posterior: only the seeds differ
    first = [np.asarray(layer(x)) for layer in (a, b, c)]
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.allclose(first[0], first[2])
    second = [np.asarray(layer(x)) for layer in (a, b)]
    np.testing.assert_array_equal(second[0], second[1])
    assert not np.allclose(first[0], second[0])


def test_xla_compiled_calls_give_the_eager_outputs_and_gradients():
    # tfbnn.train compiles with XLA by default: the loop needs a static bound there.
    # XLA draws other random numbers than TensorFlow's kernels for the same seed, so
    # the posterior is (almost) a point: the loop, masks and gradients are compared.
    x = _sequences((3, 5, 2))
    mask = tf.constant(np.arange(5) < np.array([[5], [3], [1]]))
    layer = LSTMFlipout(4, return_sequences=True, posterior_scale_init=NO_NOISE, seed=9)
    layer.build(x.shape)

    def loss_and_gradients(sequences, mask):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(sequences, mask=mask) ** 2)
        return loss, tape.gradient(loss, layer.trainable_variables)

    eager = loss_and_gradients(x, mask)
    compiled = tf.function(loss_and_gradients, jit_compile=True)(x, mask)
    for a, b in zip(tf.nest.flatten(eager), tf.nest.flatten(compiled), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


# -- the KL layer loss -------------------------------------------------------------------


def _known_posterior(layer, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for name in layer.posterior_names:
        shape = getattr(layer, f"{name}_loc").shape
        loc, scale = rng.normal(size=shape), rng.uniform(0.05, 0.8, size=shape)
        getattr(layer, f"{name}_loc").assign(loc.astype("float32"))
        getattr(layer, f"{name}_rho").assign(np.log(np.expm1(scale)).astype("float32"))
        params[name] = (loc, scale)
    return params


@pytest.mark.parametrize("cls", CLASSES)
def test_kl_loss_is_kl_weight_times_the_closed_form_kl(cls):
    layer = cls(3, prior=priors.Normal(loc=0.2, scale=0.7), kl_weight=0.37, seed=0)
    layer.build((None, 4, 2))
    params = _known_posterior(layer)
    layer(_sequences((2, 4, 2)))
    (loss,) = layer.losses
    by_hand = sum(np.sum(np.log(0.7 / s) + (s**2 + (m - 0.2) ** 2) / (2 * 0.7**2) - 0.5)
                  for m, s in params.values())
    assert set(params) == set(WEIGHTS)
    np.testing.assert_allclose(float(loss), 0.37 * by_hand, rtol=1e-5)


@pytest.mark.parametrize("cls", [LSTMFlipout, GRUReparameterization])
def test_monte_carlo_kl_loss_is_evaluated_at_the_weights_the_call_drew(cls):
    layer = cls(3, prior=priors.Laplace(0.0, 0.3), kl_weight=0.5, seed=6)
    layer.build((None, 4, 2))
    params = _known_posterior(layer, seed=1)
    state = _seed_state(layer)
    layer(_sequences((2, 4, 2)))
    (loss,) = layer.losses
    layer.seed_generator.state.assign(state)
    noise, _ = layer.draw_noise(2)
    by_hand = 0.0
    for name, (loc, scale) in params.items():
        w = loc + scale * np.asarray(noise[name], np.float64)
        by_hand += np.sum(stats.norm.logpdf(w, loc, scale) - stats.laplace.logpdf(w, 0.0, 0.3))
    np.testing.assert_allclose(float(loss), 0.5 * by_hand, rtol=1e-4)


# -- vectorised sampling: weight_samples(S) -------------------------------------------------


@pytest.mark.parametrize("cls, kwargs", [
    (LSTMReparameterization, {"return_sequences": True}),
    (LSTMFlipout, {"go_backwards": True}),
    (GRUReparameterization, {"reset_after": False, "return_sequences": True}),
    (GRUFlipout, {}),
])
def test_vectorised_samples_equal_a_loop_of_single_weight_draws(cls, kwargs):
    x, n_samples = _sequences((2, 5, 3)), 4
    layer = cls(4, posterior_scale_init=0.3, seed=7, **kwargs)
    layer.build(x.shape)
    _known_posterior(layer, seed=2)
    state = _seed_state(layer)
    with weight_samples(n_samples):
        out = np.asarray(layer(np.tile(x, (n_samples, 1, 1))))
    assert layer.losses == []  # prediction: no KL term
    blocks = out.reshape(n_samples, len(x), *out.shape[1:])
    layer.seed_generator.state.assign(state)
    draws = layer.sample_weights(n_samples)
    for s in range(n_samples):  # block s is a deterministic layer holding draw s
        twin = _keras_twin(layer, {name: draws[name][s] for name in draws}, x.shape)
        np.testing.assert_allclose(blocks[s], np.asarray(twin(x)), atol=2e-5)
    assert np.all(np.abs(blocks[1:] - blocks[0]).max(axis=tuple(range(1, blocks.ndim))) > 1e-3)


def test_vectorised_sampling_is_one_program_whatever_the_number_of_draws():
    layer = LSTMFlipout(4, seed=0)
    layer.build((None, 5, 3))

    def graph_size(n_samples):
        @tf.function
        def call(x):
            with weight_samples(n_samples):
                return layer(x)
        graph = call.get_concrete_function(tf.TensorSpec((None, 5, 3))).graph.as_graph_def()
        return len(graph.node) + sum(len(f.node_def) for f in graph.library.function)

    assert graph_size(2) == graph_size(16)


# -- mixed precision ---------------------------------------------------------------------


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("cls", [LSTMFlipout, GRUReparameterization])
def test_mixed_precision_keeps_weights_and_kl_in_float32_and_computes_in_float16(
        cls, mixed_float16):
    x = _sequences((3, 5, 2))
    layer = cls(4, return_sequences=True, posterior_scale_init=0.1, seed=8)
    reference = cls(4, return_sequences=True, seed=8, dtype="float32")
    layer.build(x.shape)
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    assert {v.dtype for v in layer.weights} == {"float32"}
    with tf.GradientTape() as tape:
        out = layer(x)
        loss = tf.reduce_sum(tf.cast(out, "float32")) + layer.losses[0]
    assert out.dtype == "float16" and layer.losses[0].dtype == "float32"
    gradients = tape.gradient(loss, layer.trainable_variables)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in gradients)
    # The same draw in float32 gives the same outputs, to float16's precision.
    np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(reference(x)), atol=1e-2)
    with weight_samples(3):
        assert layer(np.tile(x, (3, 1, 1))).dtype == "float16"


# -- training --------------------------------------------------------------------------


def _sequence_regression(n=64, steps=6, seed=0):
    """Targets that need the whole sequence: a scaled sum over time plus the last step."""
    x = _sequences((n, steps, 2), seed=seed)
    y = (x[:, :, :1].sum(axis=1) / np.sqrt(steps) - 0.5 * x[:, -1, 1:]).astype("float32")
    return x, y


def _sequence_model(cls, n, steps=6):
    return keras.Sequential([
        keras.Input((steps, 2)),
        cls(8, kl_weight=1 / n, seed=1),
        DenseFlipout(1, kl_weight=1 / n, seed=2),
        LearnedScale(),
    ])


def _mean_squared_error(model, x, y):
    """Of the mean prediction over eight weight draws."""
    locs = np.asarray(sample_outputs(model, x, 8))[..., :1]
    return float(np.mean((locs.mean(axis=0) - y) ** 2))


def test_model_fit_on_sequences_decreases_the_loss_and_learns_the_targets():
    x, y = _sequence_regression()
    model = _sequence_model(LSTMFlipout, len(x))
    model.compile(keras.optimizers.Adam(0.05), jit_compile=False,
                  loss=likelihoods.NegativeLogLikelihood(likelihoods.Gaussian(trainable=True)))
    before = _mean_squared_error(model, x, y)
    history = model.fit(x, y, epochs=12, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert history[-1] < 0.8 * history[0], history
    assert _mean_squared_error(model, x, y) < 0.2 * min(before, float(y.var()))


@pytest.mark.slow  # tracing tfbnn.train's program costs seconds; model.fit above guards the layers
def test_tfbnn_train_fits_a_sequence_model():
    x, y = _sequence_regression(seed=1)
    model = _sequence_model(GRUReparameterization, len(x))
    before = _mean_squared_error(model, x, y)
    history = tfbnn.train(model, likelihoods.Gaussian(trainable=True), x, y, epochs=12,
                          batch_size=16, learning_rate=0.05, verbose=0, jit_compile=False)
    assert history.loss[-1] < 0.8 * history.loss[0], history.loss
    assert _mean_squared_error(model, x, y) < 0.2 * min(before, float(y.var()))


# -- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
def test_a_keras_layers_config_builds_the_bayesian_layer(cls):
    keras_config = KERAS[cls](5, return_sequences=True, go_backwards=True).get_config()
    layer = cls(**keras_config, kl_weight=0.1)
    assert layer.units == 5 and layer.return_sequences and layer.go_backwards
    assert layer(_sequences((2, 3, 4))).shape == (2, 3, 5)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("kwargs, message", [
    ({"units": 0}, "units must be an integer >= 1, got 0"),
    ({"units": 2.5}, "units must be an integer >= 1, got 2.5"),
    ({"units": 2, "activation": "wiggle"}, "wiggle"),
    ({"units": 2, "kl_weight": -1.0}, r"kl_weight must be .*got -1.0"),
    ({"units": 2, "dropout": 0.2}, r"does not support dropout=0.2 .*leave it at 0"),
    ({"units": 2, "recurrent_dropout": 0.1}, "does not support recurrent_dropout=0.1"),
    ({"units": 2, "stateful": True}, "does not support stateful=True"),
    ({"units": 2, "kernel_regularizer": "l2"}, r"does not support kernel_regularizer='l2' "
                                               r"\(the prior takes the place"),
    ({"units": 2, "recurrent_constraint": "non_neg"}, "does not support recurrent_constraint"),
    ({"units": 2, "use_cudnn": True}, "does not support use_cudnn=True"),
])
def test_invalid_or_unsupported_arguments_are_refused(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_inputs_and_initial_states_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"expects sequences \(batch, time, features\).*\(None, 3\)"):
        LSTMFlipout(2).build((None, 3))
    with pytest.raises(ValueError, match="known number of features"):
        GRUFlipout(2).build((None, 4, None))
    with pytest.raises(ValueError, match=r"initial_state as 2 tensor\(s\) of shape \(batch, 2\), got 1"):
        LSTMFlipout(2)(_sequences((1, 3, 2)), initial_state=[np.zeros((1, 2), "float32")])
    layer = GRUFlipout(2, unroll=True)
    with pytest.raises(ValueError, match="unroll=True needs sequences of a known length"):
        tf.function(layer).get_concrete_function(tf.TensorSpec((None, None, 2)))
