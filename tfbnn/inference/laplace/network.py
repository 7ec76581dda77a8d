"""A Keras network as the curvature code sees it: Bayesian dense layers, their inputs and Jacobians.

A dense layer `l` computes `z_l = a_l W_l` from its inputs with a column of ones,
`a_l = [h_{l-1}, 1]`, and weights `W_l = [kernel; bias]`. The output Jacobian of its
weights at one example is `a_l (x) dz_L/dz_l` (`tfbnn.inference.laplace.curvature`),
so a forward pass that records each `a_l` and the Jacobians of the outputs with
respect to the pre-activations `z_l` (one reverse-mode Jacobian through zero
perturbations added to each `z_l`) is all the GGN, the KFAC factors and the
linearised predictive need. The last layer's Jacobian is the identity.

With only the last layer Bayesian, the network in front of it may be anything (a
conv net, a recurrent net, custom layers): its output, the last layer's input
features, comes from a Keras sub-model and the last layer is a linear model in them.
With every layer Bayesian the network must be an MLP of Dense layers.
"""

from __future__ import annotations

from functools import cached_property

import keras
import numpy as np
import tensorflow as tf

from tfbnn.inference.laplace.curvature import BLOCK_FLOATS, FullCurvature
from tfbnn.inference.laplace.options import SubsetOfWeights
from tfbnn.inference.laplace.rows import Rows
from tfbnn.layers.heads import LearnedScale


def split_last_dense(model):
    """`(last Dense layer, the layers after it)` of a Sequential or functional model.

    The last layer with weights must be a linear `keras.layers.Dense` with a bias,
    on 2-D inputs `(batch, features)`, followed only by likelihood heads (layers such
    as `tfbnn.layers.LearnedScale`); otherwise a ValueError (a TypeError for
    something that is not a Keras model) says what does not fit. That the heads
    follow it in a chain to the output is checked on data (`Network.check_outputs`).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a Keras model, got {type(model).__name__}")
    if not model.built or not hasattr(model, "inputs"):
        raise ValueError(
            f"model {model.name!r} must be a built Sequential or functional Keras model with "
            "known inputs (give it a keras.Input); subclassed models are not supported")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r} must have one input and one output, has "
                         f"{len(model.inputs)} and {len(model.outputs)}")
    layers = inner_layers(model)
    dense = [i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ValueError(f"model {model.name!r} has no keras.layers.Dense layer at its top "
                         "level; the Laplace approximation puts its posterior on the last one")
    last, heads = layers[dense[-1]], layers[dense[-1] + 1 :]
    weighted = [h.name for h in heads if h.weights and not isinstance(h, LearnedScale)]
    if weighted:
        raise ValueError(f"The last layer with weights of model {model.name!r} must be a "
                         f"keras.layers.Dense; after {last.name!r} come {weighted}")
    check_dense(last, model)
    if last.activation is not keras.activations.linear:
        raise ValueError(
            f"The last Dense layer {last.name!r} must be linear: its outputs are the "
            f"likelihood's parameters (logits for classification), got activation="
            f"{keras.activations.serialize(last.activation)!r}")
    if len(last.input.shape) != 2:
        raise ValueError(
            f"The last Dense layer {last.name!r} must take 2-D inputs (batch, features), got "
            f"shape {tuple(last.input.shape)}; flatten or pool the features before it")
    return last, heads


def inner_layers(model) -> list:
    """The model's layers in order, without its input layers."""
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def check_dense(layer, model) -> None:
    """Refuses a Dense layer without a bias."""
    if not layer.use_bias:
        raise ValueError(f"The Dense layer {layer.name!r} of model {model.name!r} needs a bias "
                         "(use_bias=True)")


def mlp_layers(model, last) -> list:
    """The Dense layers of `model` up to `last` if they make an MLP, else a ValueError.

    With one input, one output and no layer but Dense ones before `last`, the layers
    form a chain (a branch would need a merge layer)."""
    layers = inner_layers(model)
    dense = layers[: layers.index(last) + 1]
    for layer in dense:
        if not isinstance(layer, keras.layers.Dense):
            raise ValueError(
                f"subset_of_weights='all' needs an MLP of keras.layers.Dense layers; model "
                f"{model.name!r} has {layer.name!r} ({type(layer).__name__}) in it; use "
                "subset_of_weights='last_layer'")
        check_dense(layer, model)
    return dense


def is_mlp(model) -> bool:
    """Whether every layer of `model` up to its last Dense layer is a Dense layer."""
    try:
        mlp_layers(model, split_last_dense(model)[0])
    except ValueError:
        return False
    return True


def feature_extractor(model, last):
    """`x -> the input of last` in inference mode (Dropout off, BatchNormalization on
    its moving statistics): the layers before it for a Sequential model, a sub-model
    of the graph for a functional one."""
    if isinstance(model, keras.Sequential):
        front = inner_layers(model)[: inner_layers(model).index(last)]

        def extract(x):
            for layer in front:
                x = layer(x, training=False)
            return x

        return extract
    try:
        sub_model = keras.Model(model.inputs[0], last.input)
    except ValueError as err:
        raise ValueError(f"The input of the last Dense layer {last.name!r} of model "
                         f"{model.name!r} is not computed from the model's input: {err}") from None
    return lambda x: sub_model(x, training=False)


class Network:
    """A network's Bayesian dense layers as the Laplace approximation needs them.

    Args:
        model: a Keras model whose last layer with weights is a linear Dense layer
            (see `split_last_dense`); for `subset="all"` an MLP of Dense layers.
        subset: a `SubsetOfWeights`: the Bayesian layers (the last one, or all).

    Attributes:
        dense: the Bayesian Dense layers; `last`, the last one; `heads`, the layers after it.
        shapes: `[(n_in + 1, n_out), ...]` of the Bayesian layers.
        n_outputs, n_params: the last layer's width and the Bayesian weight count.
    """

    def __init__(self, model, subset):
        self.model = model
        self.last, self.heads = split_last_dense(model)
        self.dense = (mlp_layers(model, self.last) if subset == SubsetOfWeights.ALL
                      else [self.last])
        self.shapes = [(int(d.kernel.shape[0]) + 1, int(d.kernel.shape[1])) for d in self.dense]
        self.n_outputs = int(self.last.units)
        self.n_params = sum(a * b for a, b in self.shapes)
        spec = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)]
        self._features = tf.function(feature_extractor(model, self.last), input_signature=spec)
        self._jacobians = tf.function(self._jacobians_fn, input_signature=spec)
        self._outputs = tf.function(lambda x: model(x, training=False), input_signature=spec)

    @cached_property
    def slice(self) -> slice:
        """Where the Bayesian weights sit in `FunctionalModel(model)`'s parameter vector.

        The subset's variables are consecutive (kernel, bias per layer), in exactly the
        row-major layout of `[kernel; bias]` that the curvature uses."""
        variables = list(self.model.trainable_variables)
        wanted = [v for d in self.dense for v in (d.kernel, d.bias)]
        index = next((i for i, v in enumerate(variables) if v is wanted[0]), None)
        if index is None or any(variables[index + i] is not v for i, v in enumerate(wanted)):
            raise ValueError("The Laplace layers' weights are not contiguous trainable weights "
                             "of the model")
        start = sum(int(np.prod(v.shape)) for v in variables[:index])
        return slice(start, start + self.n_params)

    @property
    def last_layer_only(self) -> bool:
        return len(self.dense) == 1

    @property
    def last_shape(self) -> tuple[int, int]:
        return self.shapes[-1]

    def weights(self) -> np.ndarray:
        """`(P,)` float64: the Bayesian layers' current `[kernel; bias]`, flattened."""
        return np.concatenate([
            np.concatenate([np.asarray(d.kernel), np.asarray(d.bias)[None]]).ravel()
            for d in self.dense]).astype(np.float64)

    # -- compiled passes

    def _jacobians_fn(self, x):
        """`(f, inputs of the Dense layers, Jacobians of f in the hidden pre-activations)`,
        by a forward pass of the MLP with zero perturbations of the pre-activations."""
        with tf.GradientTape() as tape:
            h, acts, eps = x, [], []
            for i, layer in enumerate(self.dense):
                acts.append(h)
                z = tf.matmul(h, layer.kernel.value) + layer.bias.value
                if i < len(self.dense) - 1:
                    e = tf.zeros_like(z)
                    tape.watch(e)
                    eps.append(e)
                    z = z + e
                h = layer.activation(z)
            total = tf.reduce_sum(h, axis=0)
        ones = tf.ones_like(x[:, :1])
        jz = [tf.transpose(j, (1, 0, 2)) for j in tape.jacobian(total, eps)] if eps else []
        return h, [tf.concat([a, ones], axis=-1) for a in acts], jz

    def features(self, x) -> np.ndarray:
        """float64 inputs (with ones) of the last layer, `(B, H + 1)`, for inputs `x`."""
        phi = self._features(tf.convert_to_tensor(x, tf.float32)).numpy().astype(np.float64)
        return np.concatenate([phi, np.ones((len(phi), 1))], axis=-1)

    def jacobians(self, x):
        """float64 `(f (B, k), acts [(B, n_in + 1)], jz [(B, k, n_out) or None])` at the
        model's weights; the last layer's Jacobian is the identity, None."""
        if self.last_layer_only:
            a = self.features(x)
            return a @ self.weights().reshape(self.last_shape), [a], [None]
        f, acts, jz = self._jacobians(tf.convert_to_tensor(x, tf.float32))
        jz = [j.numpy().astype(np.float64) for j in jz]
        acts = [a.numpy().astype(np.float64) for a in acts]
        return f.numpy().astype(np.float64), acts, [*jz, None]

    def check_outputs(self, x) -> None:
        """Refuses a model whose output at `x` is not its last Dense layer's output `phi W`
        passed through the heads (a skip connection around it, a shared last layer)."""
        a = self.features(x)
        f = a @ np.concatenate([np.asarray(self.last.kernel), np.asarray(self.last.bias)[None]])
        expected = apply_layers(self.heads, f[None])[0].numpy()
        actual = np.asarray(self._outputs(tf.convert_to_tensor(x, tf.float32)))
        if actual.shape != expected.shape or not np.allclose(actual, expected, rtol=1e-3,
                                                             atol=1e-4):
            raise ValueError(
                f"The output of model {self.model.name!r} is not its last Dense layer "
                f"{self.last.name!r} applied to that layer's input (and the heads after it): "
                "is the last layer shared, or is there a connection around it?")

    # -- row blocks (bounded working memory)

    def block_rows(self, n_params=None) -> int:
        """Rows per block so that one block's Jacobians hold about `BLOCK_FLOATS` floats."""
        widest = max(max(a, b) for a, b in self.shapes)
        per_row = self.n_outputs * max(widest, n_params or 0) + sum(a for a, _ in self.shapes)
        return max(1, BLOCK_FLOATS // per_row)

    def feature_rows(self, rows):
        """The last layer's features and the targets of `rows`, in memory (`Rows`)."""
        blocks = list(self.blocks(rows, self.weights()))
        return Rows(np.concatenate([b[2][-1] for b in blocks]),
                    np.concatenate([b[0] for b in blocks]), features=True)

    def blocks(self, rows, theta, n_params=None):
        """Yields `(y, f, acts, jz)` over blocks of `rows` (a `Rows` of inputs, or of the
        last layer's features), with the last layer at `theta` when it alone is Bayesian
        (the model's weights otherwise)."""
        for x, y in rows.blocks(self.block_rows(n_params)):
            if self.last_layer_only:
                a = x if rows.features else self.features(x)
                yield y, a @ theta.reshape(self.last_shape), [a], [None]
            else:
                yield (y, *self.jacobians(x))

    def curvature(self, structure, likelihood, noise_scale, rows, theta):
        """The GGN of `structure` (a `Curvature` class) over `rows`, `log p(y | theta)` and
        the number of rows."""
        curvature = structure(self.shapes)
        nll, n_data = 0.0, 0
        for y, f, acts, jz in self.blocks(rows, theta, curvature.n_params):
            curvature.accumulate(acts, jz, likelihood.output_hessian_sqrt(f, noise_scale))
            nll += float(np.sum(likelihood.output_nll(f, y, noise_scale)))
            n_data += len(f)
        return curvature.finalize(n_data), -nll, n_data

    def residual_statistics(self, rows, theta):
        """`(||y - f||^2, n)` over `rows` with the outputs `f` at `theta`."""
        sq_norm, n_data = 0.0, 0
        for y, f, _, _ in self.blocks(rows, theta):
            sq_norm += float(np.sum((y - f) ** 2))
            n_data += len(f)
        return sq_norm, n_data

    def unit_noise_eigenvalues(self, rows) -> np.ndarray:
        """Eigenvalues (clipped at zero) of `J^T J` over the Bayesian weights: the full
        GGN under Gaussian noise of unit scale, `Lambda = I`."""
        ggn = FullCurvature(self.shapes)
        eye = np.eye(self.n_outputs)
        for _, f, acts, jz in self.blocks(rows, self.weights(), ggn.n_params):
            ggn.accumulate(acts, jz, np.broadcast_to(eye, (len(f), *eye.shape)))
        eigenvalues = np.linalg.eigvalsh(0.5 * (ggn.ggn + ggn.ggn.T))  # no eigenvectors needed
        return np.clip(eigenvalues, 0.0, None)


def apply_layers(layers, f):
    """Network outputs `(S, B, k)` through `layers` (likelihood heads): `(S, B, n_params)`."""
    s, b, k = f.shape
    out = tf.constant(np.reshape(f, (s * b, k)), tf.float32)
    for layer in layers:
        out = layer(out)
    return tf.reshape(out, (s, b, -1))
