"""A Keras model seen as a pure function of one flat parameter vector.

Training loops, samplers and curvature estimates all want the same thing: the
network as `f(theta, state, x)` with every trainable weight packed into one vector
`theta`. Compiled code then updates a few large tensors instead of many small
ones, needs no variable writes inside loops, and can be reused for any model of
the same architecture (the next split, the next ensemble member).
"""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import tensorflow as tf

from tfbnn import compiled
from tfbnn.layers.heads import LearnedScale
from tfbnn.layers.sampling import split_samples, weight_samples

#: Dense layers at most this wide run per member as one matrix-vector product per unit
#: (XLA's CPU batched matrix product is slow for outputs one or two units wide).
NARROW_UNITS = 4


class FunctionalModel:
    """Wraps a built Keras model as `(theta, state, x) -> (outputs, state, layer_loss)`.

    `theta` holds every trainable variable, flattened and concatenated in
    `model.trainable_variables` order; `state` is the list of non-trainable values
    (seed-generator states, normalisation statistics), threaded through calls so
    randomness advances without side effects.
    """

    def __init__(self, model):
        if not model.built:
            raise ValueError("The model must be built (called once, or given an Input) first")
        self.model = model
        #: The rank of one input batch, `(B, ...)`: 2 for rows of features, 4 for images.
        self.input_rank = input_rank(model)
        self.shapes = [tuple(int(d) for d in v.shape) for v in model.trainable_variables]
        self.sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.size = int(sum(self.sizes))

    # -- packing ------------------------------------------------------------------

    def flatten(self, values) -> tf.Tensor:
        return tf.concat([tf.reshape(tf.convert_to_tensor(v), [-1]) for v in values], axis=0)

    def unflatten(self, theta) -> list[tf.Tensor]:
        """Splits `(..., P)` into tensors of shapes `(..., *variable_shape)`."""
        lead = tf.shape(theta)[:-1]
        parts = tf.split(theta, self.sizes, axis=-1)
        return [tf.reshape(p, tf.concat([lead, s], 0)) for p, s in zip(parts, self.shapes)]

    def get_params(self) -> tf.Tensor:
        return self.flatten(self.model.trainable_variables)

    def set_params(self, theta) -> None:
        for variable, value in zip(self.model.trainable_variables, self.unflatten(theta)):
            variable.assign(value)

    def get_state(self) -> list[tf.Tensor]:
        return [tf.convert_to_tensor(v) for v in self.model.non_trainable_variables]

    def set_state(self, state) -> None:
        for variable, value in zip(self.model.non_trainable_variables, state):
            variable.assign(value)

    # -- evaluation ---------------------------------------------------------------

    @property
    def is_dense_stack(self) -> bool:
        """Whether the model is a `keras.Sequential` of plain Dense layers (no
        regularizer, no LoRA), optionally ending in a `LearnedScale` head: then `map`
        evaluates many parameter vectors as batched matrix products."""

        def plain(layer):
            if isinstance(layer, LearnedScale):
                return True
            return type(layer) is keras.layers.Dense and not (
                layer.kernel_regularizer or layer.bias_regularizer or layer.activity_regularizer
                or layer.lora_enabled
            )

        layers = getattr(self.model, "layers", None)
        return (isinstance(self.model, keras.Sequential) and self.input_rank == 2
                and all(plain(layer) for layer in layers))

    def _batched_dense(self, thetas, x):
        """`map` of a dense stack as batched matrix products (the maths of
        `vectorized_map` over a Keras call, which XLA compiles slowly).

        Inputs shared by all members (posterior draws, MCMC chains) go through the
        first layer as one `(B, n) x (n, M * units)` product and stay batch-major,
        `(B, M, .)`; per-member inputs stay member-major, `(M, B, .)`.
        """
        values = iter(self.unflatten(thetas))
        shared = x.shape.rank == 2
        per_member = (lambda v: v[tf.newaxis]) if shared else (lambda v: v[:, tf.newaxis, :])
        h = x
        for layer in self.model.layers:
            if isinstance(layer, LearnedScale):
                raw = per_member(next(values))
                width = tf.concat([tf.shape(h)[:-1], tf.shape(raw)[-1:]], 0)
                h = tf.concat([h, tf.broadcast_to(raw, width)], axis=-1)
                continue
            kernel = next(values)
            if h.shape.rank == 2:
                m, n_in, n_out = tf.unstack(tf.shape(kernel))
                wide = tf.reshape(tf.transpose(kernel, [1, 0, 2]), [n_in, m * n_out])
                h = tf.reshape(tf.matmul(h, wide), [tf.shape(h)[0], m, n_out])
            elif not shared and layer.units <= NARROW_UNITS:
                # A narrow output (a regression head): one matrix-vector product per unit.
                h = tf.stack([tf.einsum("mbi,mi->mb", h, kernel[..., j])
                              for j in range(layer.units)], axis=-1)
            else:
                h = tf.einsum("bmi,mio->bmo" if shared else "mbi,mio->mbo", h, kernel)
            if layer.use_bias:
                h = h + per_member(next(values))
            h = layer.activation(h)
        return tf.transpose(h, [1, 0, 2]) if shared else h

    def __call__(self, theta, state, x, training: bool = True):
        outputs, state, losses = self.model.stateless_call(
            self.unflatten(theta), list(state), x, training=training, return_losses=True
        )
        layer_loss = tf.add_n([tf.cast(term, theta.dtype) for term in losses]) if losses else (
            tf.zeros((), theta.dtype)
        )
        return outputs, list(state), layer_loss

    def sample(self, theta, state, x, n_samples: int):
        """`(S, B, k)` outputs under `S = n_samples` weight samples of the model's random
        layers (`tfbnn.layers.weight_samples`: one call on `x` tiled S times), and the
        new state."""
        tiled = tf.tile(x, tf.concat([[n_samples], tf.ones([tf.rank(x) - 1], tf.int32)], 0))
        with weight_samples(n_samples):
            outputs, state = self.model.stateless_call(
                self.unflatten(theta), list(state), tiled, training=False)
        return split_samples(outputs, n_samples), state

    def map(self, thetas, x, state=None, training: bool = False):
        """Outputs for a batch of parameter vectors `(M, P)`: `(M, B, k)`.

        `x` is shared `(B, ...)` or per member `(M, B, ...)`. One vectorised
        program, not a loop: ensemble members, MCMC chains and posterior draws of
        deterministic networks all evaluate this way. Plain dense stacks run as
        batched matrix products; other models through `map_members`, with the
        state (seed generators) shared and not advanced.
        """
        if self.is_dense_stack:
            return self._batched_dense(thetas, x)
        state = self.get_state() if state is None else list(state)
        if x.shape.rank > self.input_rank:
            return map_members(
                lambda args: self(args[0], state, args[1], training=training)[0], (thetas, x))
        return map_members(lambda t: self(t, state, x, training=training)[0], thetas)


def input_rank(model) -> int:
    """The rank of `model`'s input batches (2 when the model does not say: rows of features)."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    return len(inputs[0].shape) if inputs else 2


def map_members(fn, elems):
    """`fn` over the leading axis of `elems` (a tensor or a tuple of them), stacked.

    One vectorised program (`tf.vectorized_map`) where every op has a vectorised
    form. A convolution with a different kernel per member has none; then, with a
    static member count (training), `fn` runs once per member, unrolled in the
    graph: the while loop `vectorized_map` falls back to cannot be differentiated
    under XLA. Without one (predictions from any number of draws), that while loop
    it is.
    """
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.CRITICAL)  # pfor logs its refusal, or its fallback, at length
    try:
        try:
            return tf.vectorized_map(fn, elems, fallback_to_while_loop=False)
        except ValueError:
            n = tf.nest.flatten(elems)[0].shape[0]
            if n is None:
                return tf.vectorized_map(fn, elems, fallback_to_while_loop=True)
        outs = [fn(tf.nest.map_structure(lambda e, i=i: e[i], elems)) for i in range(n)]
        return tf.nest.map_structure(lambda *parts: tf.stack(parts), *outs)
    finally:
        tf_logger.setLevel(level)


#: Config entries that do not change the compiled function: names, seeds, and the KL
#: weight (a variable read from the state at every call).
_RUN_TIME_ENTRIES = ("name", "seed", "kl_weight")


def map_params(model, thetas, x) -> tf.Tensor:
    """`(M, B, k)` outputs of `model` for parameter vectors `thetas` `(M, P)` at inputs
    `x`: `FunctionalModel.map`, traced once per architecture and kept in the compiled
    cache, so every model of that architecture (ensemble members, stored MCMC draws,
    SWAG samples, a reloaded model) reuses it."""
    def build():
        functional = FunctionalModel(model)
        return compiled.function(lambda thetas, x: functional.map(thetas, x),
                                 reduce_retracing=True)

    program = compiled.cached(("params_map", architecture_key(model)), build)
    return program(tf.convert_to_tensor(thetas, tf.float32), tf.convert_to_tensor(x, tf.float32))


def _strip_identity(config):
    """A model config without names, seeds and run-time values: equal for models of the
    same architecture."""
    if isinstance(config, dict):
        return {k: _strip_identity(v) for k, v in config.items() if k not in _RUN_TIME_ENTRIES}
    if isinstance(config, list | tuple):
        return [_strip_identity(v) for v in config]
    return config


def architecture_key(model) -> str:
    """A string equal for two models that compute the same function of the same parameters."""
    return json.dumps(_strip_identity(model.get_config()), sort_keys=True, default=str)
