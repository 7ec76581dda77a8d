"""Bayesian recurrent layers: LSTM and GRU with mean-field Gaussian weights.

`LSTMReparameterization`, `LSTMFlipout`, `GRUReparameterization` and `GRUFlipout`
take the arguments of `keras.layers.LSTM` / `keras.layers.GRU` (plus tfbnn's
`prior`, `kl_weight`, `posterior_scale_init`, `seed`, `prior_centered`) and hold
a posterior for each Keras weight, in Keras's layout and gate order: `kernel`
`(n_in, gates * units)`, `recurrent_kernel` `(units, gates * units)` and `bias`
(`(gates * units,)`, or `(2, 3 * units)` for a GRU with `reset_after`). Copying a
trained Keras layer's weights into the `*_loc` variables therefore gives the
Keras layer back as the posterior mean.

The weights are drawn once per call, that is once per sequence, never per time
step: reparameterization draws one sample of every weight shared by the batch;
Flipout gives each sequence its own sign vectors, reused at every step. The
input projections of all time steps are one matrix product before the loop.
Under `tfbnn.layers.weight_samples(S)` the layer draws `S` samples and applies
sample `s` to block `s` of the batch, with batched matrix products inside the
recurrence. Masks (from `keras.layers.Masking` or an `Embedding(mask_zero=True)`),
`initial_state`, `go_backwards`, `return_sequences`, `return_state` and `unroll`
behave as in Keras.

    model = keras.Sequential([
        keras.Input((n_steps, n_features)),
        tfbnn.layers.LSTMFlipout(32, kl_weight=1 / n_train),
        tfbnn.layers.DenseFlipout(1, kl_weight=1 / n_train),
        tfbnn.layers.LearnedScale(),
    ])
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from tfbnn.layers.posterior import VariationalLayer
from tfbnn.layers.recurrence import run_recurrence
from tfbnn.layers.recurrent_weights import BlockSamples, FlipoutWeights, SharedSample
from tfbnn.layers.sampling import current_weight_samples, random_normal
from tfbnn.validation import check_int

#: Options of `keras.layers.LSTM` / `GRU` these layers do not have: the values that
#: mean "unused" (a Keras layer's `get_config()` carries them) and why the rest is refused.
_KERAS_ONLY_OPTIONS = {
    **{name: ((None,), "the prior takes the place of regularizers and constraints")
       for name in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                    "kernel_constraint", "recurrent_constraint", "bias_constraint")},
    "dropout": ((0,), "the weights are random already; use tfbnn.layers.MCDropout on the inputs"),
    "recurrent_dropout": ((0,), "the recurrent weights are random already"),
    "stateful": ((False,), "states are not kept between batches"),
    "use_cudnn": (("auto", False), "the layer runs its own loop"),
}


def _refuse_keras_only_options(layer_name: str, kwargs: dict) -> None:
    """Drops the Keras-only options at their unused values from `kwargs`, refuses others."""
    for name, (unused, reason) in _KERAS_ONLY_OPTIONS.items():
        if name not in kwargs:
            continue
        value = kwargs.pop(name)
        if value not in unused:
            raise ValueError(f"{layer_name} does not support {name}={value!r} ({reason}); "
                             f"leave it at {unused[0]!r}")


class RecurrentVariational(VariationalLayer):
    """Base class of the variational recurrent layers: arguments, weights, the loop.

    Subclasses give the cell: `n_gates`, `n_states`, `bias_shape`, `split_bias`,
    `recurrent_splits` and `cell_step`; the final classes set `flipout`.

    Args:
        units, activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, return_sequences, return_state,
            go_backwards, unroll, zero_output_for_mask: as in `keras.layers.LSTM`;
            the initializers give the posterior means.
        prior, kl_weight, posterior_scale_init, prior_centered, seed: see
            `tfbnn.layers.posterior.VariationalLayer`.
    """

    n_gates: int
    n_states: int
    #: Flipout (per-sequence sign flips) instead of one shared sample.
    flipout = False
    #: States are never kept between calls (`keras.layers.Bidirectional` reads this).
    stateful = False

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, prior=None, kl_weight: float = 1.0,
                 posterior_scale_init: float = 1e-3, seed: int | None = None,
                 prior_centered: bool = False, **kwargs):
        _refuse_keras_only_options(type(self).__name__, kwargs)
        super().__init__(prior=prior, kl_weight=kl_weight,
                         posterior_scale_init=posterior_scale_init,
                         prior_centered=prior_centered, seed=seed, **kwargs)
        self.units = check_int("units", units, 1)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True

    # -- the cell (subclasses) ----------------------------------------------------------

    def bias_shape(self) -> tuple[int, ...]:
        """The shape of the bias, as in the Keras layer."""
        return (self.n_gates * self.units,)

    def bias_init(self):
        """The initializer of the bias's posterior mean."""
        return self.bias_initializer

    def split_bias(self, bias):
        """`(input_bias, recurrent_bias or None)` of a bias sample (leading axes allowed)."""
        return bias, None

    def recurrent_splits(self) -> list[int]:
        """Column widths of the recurrent kernel's parts, as `cell_step` uses them."""
        return [self.n_gates * self.units]

    def cell_step(self, projection, states, recurrent):
        """One time step: `projection` is `x_t @ kernel + input_bias`, `recurrent(h,
        part)` the product with the recurrent kernel. Returns `(h, new_states)`."""
        raise NotImplementedError

    # -- weights ------------------------------------------------------------------------

    def build(self, sequences_shape, initial_state_shape=None):
        if len(sequences_shape) != 3 or sequences_shape[-1] is None:
            raise ValueError(f"{self.name} expects sequences (batch, time, features) with a known "
                             f"number of features, got input shape {tuple(sequences_shape)}")
        n_in, width = sequences_shape[-1], self.n_gates * self.units
        self.add_posterior("kernel", (n_in, width), self.kernel_initializer)
        self.add_posterior("recurrent_kernel", (self.units, width), self.recurrent_initializer)
        if self.use_bias:
            self.add_posterior("bias", self.bias_shape(), self.bias_init())
        self.finish_build()
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: n_in})

    def row_noise_widths(self) -> list[int]:
        """Widths of the per-sequence noise: Flipout's sign vectors (see `FlipoutWeights`)."""
        if not self.flipout:
            return []
        n_in, width = self.kernel_loc.shape
        return [n_in, width, self.units, width]

    def _weight_shapes(self):
        """The shapes of the weight tensors and their sizes, in `posterior_names` order."""
        shapes = [tuple(getattr(self, f"{name}_loc").shape) for name in self.posterior_names]
        return shapes, [int(np.prod(shape)) for shape in shapes]

    def draw_noise(self, batch_size):
        """The standard normals of one call: `({name: noise of the weight's shape},
        [per-sequence noises, of the widths row_noise_widths gives])`, cut from one
        float32 draw (a random op costs more than its arithmetic in a small network)."""
        shapes, sizes = self._weight_shapes()
        widths = self.row_noise_widths()
        size = tf.reshape(sum(sizes) + batch_size * sum(widths), [1])
        *pieces, rows = tf.split(random_normal(size, self.seed_generator), [*sizes, -1])
        noise = {name: tf.reshape(piece, shape)
                 for name, piece, shape in zip(self.posterior_names, pieces, shapes)}
        row_noises = tf.split(tf.reshape(rows, [-1, sum(widths)]), widths, axis=1) if widths else []
        return noise, row_noises

    def sample_weights(self, n_samples: int) -> dict:
        """`n_samples` independent draws of every weight tensor: `{name: (S, *shape)}`."""
        shapes, sizes = self._weight_shapes()
        noise = random_normal([n_samples, sum(sizes)], self.seed_generator)
        samples = {}
        for name, piece, shape in zip(self.posterior_names, tf.split(noise, sizes, axis=1), shapes):
            loc, scale = self.posterior_params(name)
            samples[name] = loc + scale * tf.reshape(piece, [n_samples, *shape])
        return samples

    def _call_weights(self, batch_size):
        """One call's weights (and its KL loss): a shared sample, or Flipout's."""
        noise, row_noises = self.draw_noise(batch_size)
        params = {name: self.posterior_params(name) for name in self.posterior_names}
        deltas = {name: params[name][1] * noise[name] for name in self.posterior_names}
        samples = {name: params[name][0] + deltas[name] for name in self.posterior_names}
        self.add_kl_loss(tf.add_n([self.weight_kl(name, params[name], samples[name])
                                   for name in self.posterior_names]), batch_size)
        biases = self.split_bias(samples["bias"]) if self.use_bias else (None, None)
        splits, dtype = self.recurrent_splits(), self.compute_dtype
        if not self.flipout:
            return SharedSample(samples["kernel"], samples["recurrent_kernel"], *biases,
                                splits, dtype)
        pairs = [(params[name][0], deltas[name]) for name in ("kernel", "recurrent_kernel")]
        signs = [tf.sign(row) for row in row_noises]  # the sign of a normal is Rademacher
        return FlipoutWeights(*pairs, *biases, signs, splits, dtype)

    def _block_weights(self, n_samples: int):
        """`n_samples` full weight draws, one per block of rows (`weight_samples`)."""
        samples = self.sample_weights(n_samples)
        biases = self.split_bias(samples["bias"]) if self.use_bias else (None, None)
        return BlockSamples(samples["kernel"], samples["recurrent_kernel"], *biases,
                            self.recurrent_splits(), self.compute_dtype)

    # -- forward pass -----------------------------------------------------------------

    def call(self, sequences, initial_state=None, mask=None):
        batch_size = tf.shape(sequences)[0]
        n_samples = current_weight_samples()
        weights = (self._call_weights(batch_size) if n_samples is None
                   else self._block_weights(n_samples))
        output, states = run_recurrence(
            functools.partial(self.cell_step, recurrent=weights.recurrent),
            weights.project_inputs(sequences), self._initial_states(initial_state, batch_size),
            mask=mask, go_backwards=self.go_backwards, unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask,
            return_sequences=self.return_sequences)
        return [output, *states] if self.return_state else output

    def _initial_states(self, initial_state, batch_size):
        if initial_state is None:
            return (tf.zeros([batch_size, self.units], self.compute_dtype),) * self.n_states
        states = initial_state if isinstance(initial_state, list | tuple) else [initial_state]
        if len(states) != self.n_states:
            raise ValueError(f"{self.name} expects initial_state as {self.n_states} tensor(s) of "
                             f"shape (batch, {self.units}), got {len(states)}")
        return tuple(tf.cast(state, self.compute_dtype) for state in states)

    def compute_mask(self, sequences, mask=None):
        output_mask = mask if self.return_sequences else None
        return [output_mask] + [None] * self.n_states if self.return_state else output_mask

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        output = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        return [output] + [(batch, self.units)] * self.n_states if self.return_state else output

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }


class LSTMVariational(RecurrentVariational):
    """A variational LSTM (gate order input, forget, cell, output, as in Keras).

    Args:
        unit_forget_bias: start the forget gate's bias means at one (Keras's default).
        Others: see `RecurrentVariational` and `keras.layers.LSTM`.
    """

    n_gates, n_states = 4, 2

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias: bool = True, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, prior=None, kl_weight: float = 1.0,
                 posterior_scale_init: float = 1e-3, seed: int | None = None,
                 prior_centered: bool = False, **kwargs):
        super().__init__(
            units, activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask, prior=prior, kl_weight=kl_weight,
            posterior_scale_init=posterior_scale_init, seed=seed,
            prior_centered=prior_centered, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, others = self.units, self.bias_initializer

        def forget_gate_at_one(shape, dtype=None):
            return tf.concat([others((units,), dtype), tf.ones((units,), dtype),
                              others((2 * units,), dtype)], 0)
        return forget_gate_at_one

    def cell_step(self, projection, states, recurrent):
        h, c = states
        i, f, g, o = tf.split(projection + recurrent(h), 4, axis=-1)
        gate = self.recurrent_activation
        c = gate(f) * c + gate(i) * self.activation(g)
        h = gate(o) * self.activation(c)
        return h, (h, c)

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRUVariational(RecurrentVariational):
    """A variational GRU (gate order update, reset, candidate, as in Keras).

    Args:
        reset_after: apply the reset gate after the recurrent product, with a
            separate recurrent bias (bias `(2, 3 * units)`; Keras's default), or
            before it (bias `(3 * units,)`).
        Others: see `RecurrentVariational` and `keras.layers.GRU`.
    """

    n_gates, n_states = 3, 1

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, unroll: bool = False, reset_after: bool = True,
                 zero_output_for_mask: bool = False, prior=None, kl_weight: float = 1.0,
                 posterior_scale_init: float = 1e-3, seed: int | None = None,
                 prior_centered: bool = False, **kwargs):
        super().__init__(
            units, activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask, prior=prior, kl_weight=kl_weight,
            posterior_scale_init=posterior_scale_init, seed=seed,
            prior_centered=prior_centered, **kwargs)
        self.reset_after = bool(reset_after)

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def split_bias(self, bias):
        if not self.reset_after:
            return bias, None
        return bias[..., 0, :], bias[..., 1, :]

    def recurrent_splits(self):
        # Before the reset gate, the candidate's block multiplies r * h, not h.
        return [3 * self.units] if self.reset_after else [2 * self.units, self.units]

    def cell_step(self, projection, states, recurrent):
        (h,) = states
        x_z, x_r, x_h = tf.split(projection, 3, axis=-1)
        if self.reset_after:
            h_z, h_r, h_h = tf.split(recurrent(h), 3, axis=-1)
        else:
            h_z, h_r = tf.split(recurrent(h), 2, axis=-1)
        z = self.recurrent_activation(x_z + h_z)
        r = self.recurrent_activation(x_r + h_r)
        reset = r * h_h if self.reset_after else recurrent(r * h, part=1)
        candidate = self.activation(x_h + reset)
        h = z * h + (1 - z) * candidate
        return h, (h,)

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


@keras.saving.register_keras_serializable(package="tfbnn")
class LSTMReparameterization(LSTMVariational):
    """LSTM with one sample of all weights per call, shared by every sequence
    and every time step (Blundell et al., 2015; Fortunato et al., 2017)."""


@keras.saving.register_keras_serializable(package="tfbnn")
class LSTMFlipout(LSTMVariational):
    """LSTM with Flipout: per-sequence sign flips, drawn once and reused at every
    step, decorrelate the weight noise across the batch (Wen et al., 2018)."""

    flipout = True


@keras.saving.register_keras_serializable(package="tfbnn")
class GRUReparameterization(GRUVariational):
    """GRU with one sample of all weights per call, shared by every sequence and
    every time step (Blundell et al., 2015; Fortunato et al., 2017)."""


@keras.saving.register_keras_serializable(package="tfbnn")
class GRUFlipout(GRUVariational):
    """GRU with Flipout: per-sequence sign flips, drawn once and reused at every
    step, decorrelate the weight noise across the batch (Wen et al., 2018)."""

    flipout = True
