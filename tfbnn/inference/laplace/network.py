"""The MLP as the curvature code sees it: Bayesian dense layers, their inputs and Jacobians.

A dense layer `l` computes `z_l = a_l W_l` from its inputs with a column of ones,
`a_l = [h_{l-1}, 1]`, and weights `W_l = [kernel; bias]`. The output Jacobian of its
weights at one example is `a_l (x) dz_L/dz_l` (`tfbnn.inference.laplace.curvature`),
so a forward pass that records each `a_l` and the Jacobians of the outputs with
respect to the pre-activations `z_l` (one reverse-mode Jacobian through zero
perturbations added to each `z_l`) is all the GGN, the KFAC factors and the
linearised predictive need. The last layer's Jacobian is the identity.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfbnn.inference.laplace.curvature import BLOCK_FLOATS, FullCurvature
from tfbnn.inference.laplace.options import SubsetOfWeights


class Network:
    """An MLP's dense layers as the Laplace approximation needs them.

    Args:
        model: a Keras MLP of Dense layers, possibly followed by likelihood heads.
        subset: a `SubsetOfWeights`: the Bayesian layers (the last one, or all).

    Attributes:
        dense: every Dense layer; `heads`, the layers after the last one.
        first: index in `dense` of the first Bayesian layer.
        shapes: `[(n_in + 1, n_out), ...]` of the Bayesian layers.
        n_outputs, n_params: the network's output width and the Bayesian weight count.
        slice: where the Bayesian weights sit in `FunctionalModel(model)`'s parameter vector.
    """

    def __init__(self, model, subset):
        self.model = model
        self.dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        self.heads = model.layers[model.layers.index(self.dense[-1]) + 1 :]
        self.first = len(self.dense) - 1 if subset == SubsetOfWeights.LAST_LAYER else 0
        layers = self.dense[self.first :]
        self.shapes = [(int(d.kernel.shape[0]) + 1, int(d.kernel.shape[1])) for d in layers]
        self.n_outputs = int(self.dense[-1].units)
        self.n_params = sum(a * b for a, b in self.shapes)
        self.slice = self._parameter_slice(layers)
        signature = [tf.TensorSpec((None, int(self.dense[0].kernel.shape[0])), tf.float32)]
        self._jacobians = tf.function(self._jacobians_fn, input_signature=signature)
        self._outputs = tf.function(self._outputs_fn, input_signature=signature)

    def _parameter_slice(self, layers) -> slice:
        """The subset's variables are consecutive (kernel, bias per layer) in the
        FunctionalModel's parameter vector, in exactly the row-major layout of
        `[kernel; bias]` that the curvature uses."""
        variables = list(self.model.trainable_variables)
        wanted = [v for d in layers for v in (d.kernel, d.bias)]
        index = next(i for i, v in enumerate(variables) if v is wanted[0])
        if any(variables[index + i] is not v for i, v in enumerate(wanted)):
            raise ValueError("The Laplace layers' weights are not contiguous in the model")
        start = sum(int(np.prod(v.shape)) for v in variables[:index])
        return slice(start, start + self.n_params)

    @property
    def last_layer_only(self) -> bool:
        return self.first == len(self.dense) - 1

    @property
    def last_shape(self) -> tuple[int, int]:
        return self.shapes[-1]

    # -- compiled passes

    def _forward(self, x, tape=None):
        """`(f, inputs of the subset layers, pre-activation perturbations)`."""
        h, acts, eps = x, [], []
        for i, layer in enumerate(self.dense):
            if i >= self.first:
                acts.append(h)
            z = tf.matmul(h, layer.kernel.value) + layer.bias.value
            if tape is not None and self.first <= i < len(self.dense) - 1:
                e = tf.zeros_like(z)
                tape.watch(e)
                eps.append(e)
                z = z + e
            h = layer.activation(z)
        ones = tf.ones_like(x[:, :1])
        return h, [tf.concat([a, ones], axis=-1) for a in acts], eps

    def _outputs_fn(self, x):
        f, acts, _ = self._forward(x)
        return f, acts

    def _jacobians_fn(self, x):
        with tf.GradientTape() as tape:
            f, acts, eps = self._forward(x, tape)
            total = tf.reduce_sum(f, axis=0)
        jz = [tf.transpose(j, (1, 0, 2)) for j in tape.jacobian(total, eps)] if eps else []
        return f, acts, jz

    def jacobians(self, x):
        """float64 `(f (B, k), acts [(B, n_in + 1)], jz [(B, k, n_out) or None])`; the
        last layer's Jacobian is the identity, None."""
        x = tf.convert_to_tensor(x, tf.float32)
        if self.last_layer_only:
            f, acts = self._outputs(x)
            jz = []
        else:
            f, acts, jz = self._jacobians(x)
            jz = [j.numpy().astype(np.float64) for j in jz]
        acts = [a.numpy().astype(np.float64) for a in acts]
        return f.numpy().astype(np.float64), acts, [*jz, None]

    def apply_heads(self, f):
        """Network outputs `(S, B, k)` -> likelihood parameters `(S, B, n_params)`."""
        s, b, k = f.shape
        out = tf.constant(f.reshape(s * b, k), tf.float32)
        for layer in self.heads:
            out = layer(out)
        return tf.reshape(out, (s, b, -1))

    # -- row blocks (bounded working memory)

    def block_rows(self, n_params=None) -> int:
        """Rows per block so that one block's Jacobians hold about `BLOCK_FLOATS` floats."""
        widest = max(max(a, b) for a, b in self.shapes)
        per_row = self.n_outputs * max(widest, n_params or 0) + sum(a for a, _ in self.shapes)
        return max(1, BLOCK_FLOATS // per_row)

    def features(self, x):
        """float64 inputs (with ones) of the last layer, `(N, H + 1)`."""
        rows = self.block_rows()
        return np.concatenate([
            self._outputs(tf.constant(x[i : i + rows]))[1][-1].numpy().astype(np.float64)
            for i in range(0, len(x), rows)])

    def blocks(self, x, theta, phi=None, n_params=None):
        """Yields `(rows, f, acts, jz)` over row blocks of `x` (float64), with the last
        layer at `theta` when it alone is Bayesian (`phi`: its features, if known)."""
        rows = self.block_rows(n_params)
        for start in range(0, len(x), rows):
            sl = slice(start, start + rows)
            if self.last_layer_only:
                a = self.features(x[sl]) if phi is None else phi[sl]
                yield sl, a @ theta.reshape(self.shapes[0]), [a], [None]
            else:
                yield (sl, *self.jacobians(x[sl]))

    def curvature(self, structure, likelihood, noise_scale, x, y, theta, phi=None):
        """The GGN of `structure` (a `Curvature` class) over `x`, and `log p(y | theta)`."""
        curvature = structure(self.shapes)
        nll = 0.0
        for sl, f, acts, jz in self.blocks(x, theta, phi, curvature.n_params):
            curvature.accumulate(acts, jz, likelihood.output_hessian_sqrt(f, noise_scale))
            nll += float(np.sum(likelihood.output_nll(f, y[sl], noise_scale)))
        return curvature.finalize(len(x)), -nll

    def unit_noise_eigenvalues(self, x) -> np.ndarray:
        """Eigenvalues (clipped at zero) of `J^T J` over the Bayesian weights: the full
        GGN under Gaussian noise of unit scale, `Lambda = I`."""
        ggn = FullCurvature(self.shapes)
        eye = np.eye(self.n_outputs)
        rows = self.block_rows(ggn.n_params)
        for start in range(0, len(x), rows):
            f, acts, jz = self.jacobians(x[start : start + rows])
            ggn.accumulate(acts, jz, np.broadcast_to(eye, (len(f), *eye.shape)))
        eigenvalues = np.linalg.eigvalsh(0.5 * (ggn.ggn + ggn.ggn.T))  # no eigenvectors needed
        return np.clip(eigenvalues, 0.0, None)
