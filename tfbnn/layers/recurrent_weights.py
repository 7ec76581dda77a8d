"""How the weights drawn for one call of a recurrent layer meet inputs and hidden states.

A recurrent layer draws its weights once per call, i.e. once per sequence, and the
same draw serves every time step. Each class here holds one call's draw and offers
the two products the recurrence needs:

- `project_inputs(x)`: `x @ kernel + input_bias` for all time steps at once,
  `(batch, time, n_in) -> (batch, time, gates * units)`, computed before the loop;
- `recurrent(h, part)`: `h @ recurrent_kernel[:, part] + recurrent_bias[part]` at
  one step, where the parts are column blocks of the recurrent kernel (GRU with
  `reset_after=False` applies its candidate block to `r * h`, not `h`).

`SharedSample` applies one sample to the whole batch (reparameterization),
`BlockSamples` applies sample `s` to the rows of block `s` (`weight_samples(S)`),
and `FlipoutWeights` perturbs each sequence with its own sign vectors, drawn once
and reused at every step (Wen et al., 2018). Weights arrive as float32 and are
cast once to the compute dtype.
"""

from __future__ import annotations

import tensorflow as tf


def _cast(value, dtype):
    return None if value is None else tf.cast(value, dtype)


def _split_columns(value, splits):
    """The column blocks of `value` (None stays None, one per block)."""
    return [None] * len(splits) if value is None else tf.split(value, splits, axis=-1)


def _time_distributed(x, kernel):
    """`(batch, time, n) @ (n, m)` as one matrix product over all rows."""
    rows = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), kernel)
    return tf.reshape(rows, tf.concat([tf.shape(x)[:-1], [kernel.shape[-1]]], 0))


def _add(value, bias):
    return value if bias is None else value + bias


class SharedSample:
    """One sample of every weight tensor, shared by every sequence of the batch.

    Args:
        kernel: `(n_in, gates * units)`; recurrent_kernel: `(units, gates * units)`.
        input_bias, recurrent_bias: `(gates * units,)` or None.
        splits: the column widths of the recurrent kernel's parts.
        dtype: the compute dtype.
    """

    def __init__(self, kernel, recurrent_kernel, input_bias, recurrent_bias, splits, dtype):
        self.kernel = tf.cast(kernel, dtype)
        self.input_bias = _cast(input_bias, dtype)
        self.recurrent_kernels = _split_columns(tf.cast(recurrent_kernel, dtype), splits)
        self.recurrent_biases = _split_columns(_cast(recurrent_bias, dtype), splits)

    def project_inputs(self, x):
        return _add(_time_distributed(x, self.kernel), self.input_bias)

    def recurrent(self, h, part=0):
        return _add(tf.matmul(h, self.recurrent_kernels[part]), self.recurrent_biases[part])


class BlockSamples(SharedSample):
    """`S` samples (leading axis of every weight), sample `s` for rows `s*B ... (s+1)*B`.

    The products are batched matrix products over the samples: no loop over draws.
    """

    def __init__(self, kernel, recurrent_kernel, input_bias, recurrent_bias, splits, dtype):
        super().__init__(kernel, recurrent_kernel, input_bias, recurrent_bias, splits, dtype)
        self.n_samples = kernel.shape[0]

    def _by_sample(self, rows, kernel, bias):
        """`(S * B, ..., n)` rows times the `(S, n, m)` kernels, plus `(S, m)` biases."""
        blocks = tf.reshape(rows, [self.n_samples, -1, rows.shape[-1]])
        product = tf.matmul(blocks, kernel)
        if bias is not None:
            product = product + bias[:, None, :]
        return tf.reshape(product, tf.concat([tf.shape(rows)[:-1], [kernel.shape[-1]]], 0))

    def project_inputs(self, x):
        return self._by_sample(x, self.kernel, self.input_bias)

    def recurrent(self, h, part=0):
        return self._by_sample(h, self.recurrent_kernels[part], self.recurrent_biases[part])


class FlipoutWeights:
    """Flipout: `x W + ((x * s_in) dW) * s_out`, with per-sequence signs.

    `W` is the posterior mean and `dW = scale * noise` one shared perturbation; the
    Rademacher sign vectors `s_in`, `s_out` (per row of the batch) make each
    sequence's effective weights `W + dW * outer(s_in, s_out)` a different draw.
    The kernel and the recurrent kernel have their own signs; the bias is one
    shared sample, as in `DenseFlipout`.

    Args:
        kernel, recurrent_kernel: `(mean, perturbation)` pairs, float32.
        input_bias, recurrent_bias: samples or None.
        signs: `(batch, n_in)`, `(batch, gates * units)`, `(batch, units)`,
            `(batch, gates * units)`: kernel in and out, recurrent kernel in and out.
        splits, dtype: as for `SharedSample`.
    """

    def __init__(self, kernel, recurrent_kernel, input_bias, recurrent_bias, signs, splits,
                 dtype):
        self.kernel, self.kernel_delta = (tf.cast(w, dtype) for w in kernel)
        self.input_bias = _cast(input_bias, dtype)
        self.sign_in, self.sign_out, self.recurrent_sign_in, recurrent_sign_out = (
            tf.cast(sign, dtype) for sign in signs)
        self.recurrent_sign_outs = _split_columns(recurrent_sign_out, splits)
        self.recurrent_kernels, self.recurrent_deltas = (
            _split_columns(tf.cast(w, dtype), splits) for w in recurrent_kernel)
        self.recurrent_biases = _split_columns(_cast(recurrent_bias, dtype), splits)

    def project_inputs(self, x):
        mean = _time_distributed(x, self.kernel)
        flipped = _time_distributed(x * self.sign_in[:, None, :], self.kernel_delta)
        return _add(mean + flipped * self.sign_out[:, None, :], self.input_bias)

    def recurrent(self, h, part=0):
        mean = tf.matmul(h, self.recurrent_kernels[part])
        flipped = tf.matmul(h * self.recurrent_sign_in, self.recurrent_deltas[part])
        return _add(mean + flipped * self.recurrent_sign_outs[part], self.recurrent_biases[part])
