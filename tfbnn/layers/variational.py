"""Mean-field Gaussian variational dense layers (Keras 3, TFP distributions inside).

Each weight `w` has a posterior `Normal(loc, softplus(rho))` and a prior from
`tfbnn.priors`. On every call the layer adds
`kl_weight * KL[q(w) || p(w)]` as a layer loss; with `kl_weight = 1 / N` for N
training examples and a per-example mean negative log-likelihood as the compiled
loss, `model.fit` minimises the negative ELBO per example:

    model = keras.Sequential([
        keras.Input((n_features,)),
        tfbnn.layers.DenseFlipout(50, activation="relu", kl_weight=1 / n_train),
        tfbnn.layers.DenseFlipout(1, kl_weight=1 / n_train),
        tfbnn.layers.LearnedScale(),
    ])
    model.compile("adam", loss=tfbnn.likelihoods.NegativeLogLikelihood(
        tfbnn.likelihoods.Gaussian(trainable=True)))

The three subclasses differ only in how the kernel meets the inputs
(`_apply_kernel`): one shared weight sample (reparameterization), Flipout's
pseudo-independent per-example perturbations (Wen et al., 2018), or sampling the
pre-activations directly (local reparameterization, Kingma et al., 2015).

`kl_weight` lives in a non-trainable float32 variable of the layer (one of
`model.non_trainable_variables`), read by every training step: `set_kl_weight`
(or `tfbnn.callbacks.KLAnnealing`) between epochs changes the next step's loss,
under `model.fit` as under `tfbnn.train`, without recompiling. Under a
mixed-precision policy the posterior parameters, the weight noise and the KL stay
in float32; only the products with the inputs run in the policy's compute dtype.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfbnn.layers.posterior import VariationalLayer
from tfbnn.layers.sampling import (
    current_weight_samples,
    merge_samples,
    normal_from,
    rademacher,
    random_symmetric,
    split_samples,
)
from tfbnn.validation import check_int

#: Floor under the pre-activation variance of local reparameterization, per dtype:
#: 1e-12 underflows to zero in float16, and the square root's gradient at zero is inf.
_VARIANCE_FLOOR = {"float16": 1e-7}


class DenseVariational(VariationalLayer):
    """Base class of the variational dense layers; subclasses override `_apply_kernel`.

    Args:
        units: output width.
        activation: a Keras activation name or function (as in `keras.layers.Dense`).
        use_bias: whether the layer has a (variational) bias.
        kernel_initializer: initializer of the posterior means of the kernel.
        prior, kl_weight, posterior_scale_init, prior_centered, seed: see
            `tfbnn.layers.posterior.VariationalLayer`.
    """

    # The shared arguments are spelled out (not left to **kwargs) so the signature
    # shows them: users' tools and `tfbnn.models.mlp` look for `seed` in it.
    def __init__(self, units: int, activation=None, use_bias: bool = True, prior=None,
                 kl_weight: float = 1.0, kernel_initializer="glorot_uniform",
                 posterior_scale_init: float = 1e-3, seed: int | None = None,
                 prior_centered: bool = False, **kwargs):
        super().__init__(prior=prior, kl_weight=kl_weight,
                         posterior_scale_init=posterior_scale_init,
                         prior_centered=prior_centered, seed=seed, **kwargs)
        self.units = check_int("units", units, 1)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        n_in = input_shape[-1]
        if n_in is None:
            raise ValueError(f"{self.name}: the last input dimension must be known, got {input_shape}")
        self.add_posterior("kernel", (n_in, self.units), self.kernel_initializer)
        if self.use_bias:
            self.add_posterior("bias", (self.units,))
        self.finish_build()
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: n_in})

    def kernel_params(self):
        """`(loc, scale)` of the kernel's posterior, float32 tensors."""
        return self.posterior_params("kernel")

    def bias_params(self):
        """`(loc, scale)` of the bias's posterior, float32 tensors."""
        return self.posterior_params("bias")

    def kernel_posterior(self):
        """The variational posterior of the kernel, elementwise (a `tfd.Normal`)."""
        return self.posterior("kernel")

    def bias_posterior(self):
        """The variational posterior of the bias, elementwise (a `tfd.Normal`)."""
        return self.posterior("bias")

    # -- forward pass -----------------------------------------------------------------

    #: Whether `_apply_kernel` needs standard-normal noise of the kernel's shape.
    kernel_noise = True

    def row_noise_widths(self) -> list[int]:
        """Widths of the per-row noise `_apply_kernel` consumes (uniform on (-1, 1),
        see `tfbnn.layers.sampling.random_symmetric`)."""
        raise NotImplementedError

    def call(self, inputs):
        n_samples = current_weight_samples()
        if n_samples is not None:
            return self.activation(self._call_vectorised(inputs, n_samples))
        # Rows of a 2-D matrix: plain matrix products, and noise of static widths.
        n_in = self.kernel_loc.shape[0]
        x = inputs if len(inputs.shape) == 2 else tf.reshape(inputs, [-1, n_in])
        widths = self.row_noise_widths()
        n_kernel, width = n_in * self.units * self.kernel_noise, sum(widths)
        # One uniform draw per call feeds the kernel's normals and every per-row noise:
        # each random op costs far more than its arithmetic in a small network.
        size = n_kernel + tf.shape(x)[:1] * width if width else [n_kernel]
        flat = random_symmetric(size, self.seed_generator)
        kernel_noise, row_noise = tf.split(flat, [n_kernel, -1]) if width else (flat, None)
        row_noises = tf.split(tf.reshape(row_noise, [-1, width]), widths, axis=1) if width else []
        kernel_noise = (tf.reshape(normal_from(kernel_noise), [n_in, self.units])
                        if self.kernel_noise else None)
        kernel = self.kernel_params()
        outputs, kernel_sample = self._apply_kernel(x, kernel, kernel_noise, row_noises)
        kl = self.weight_kl("kernel", kernel, kernel_sample)
        if self.use_bias:
            bias = self.bias_params()
            bias_sample = self.sample_posterior(bias)  # see `normal_from`: not cut from `flat`
            outputs = outputs + tf.cast(bias_sample, outputs.dtype)
            kl = kl + self.weight_kl("bias", bias, bias_sample)
        self.add_kl_loss(kl, tf.shape(inputs)[0])
        if len(inputs.shape) != 2:
            outputs = tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [self.units]], 0))
        return self.activation(outputs)

    def _apply_kernel(self, x, kernel, kernel_noise, row_noises):
        """Returns `(x @ sampled kernel, the float32 kernel sample or None)`.

        `x` is `(rows, n_in)` in the compute dtype; `kernel` the float32 `(loc,
        scale)` pair; `kernel_noise` float32 standard normals of the kernel's shape
        (or None), `row_noises` `(rows, width)` float32 noise uniform on (-1, 1), per
        `row_noise_widths`.
        """
        raise NotImplementedError

    def _call_vectorised(self, inputs, n_samples):
        # S full weight samples, one per block of rows: coherent function draws.
        x = split_samples(inputs, n_samples)
        kernels = tf.cast(self.sample_posterior(self.kernel_params(), [n_samples]), x.dtype)
        outputs = tf.einsum("sb...i,sio->sb...o", x, kernels)
        if self.use_bias:
            biases = tf.cast(self.sample_posterior(self.bias_params(), [n_samples]), x.dtype)
            broadcast = [n_samples] + [1] * (len(outputs.shape) - 2) + [self.units]
            outputs = outputs + tf.reshape(biases, broadcast)
        return merge_samples(outputs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="tfbnn")
class DenseReparameterization(DenseVariational):
    """One kernel sample per call, shared by the whole batch (Blundell et al., 2015)."""

    def row_noise_widths(self):
        return []

    def _apply_kernel(self, x, kernel, kernel_noise, row_noises):
        loc, scale = kernel
        sample = loc + scale * kernel_noise
        return tf.matmul(x, tf.cast(sample, x.dtype)), sample


@keras.saving.register_keras_serializable(package="tfbnn")
class DenseFlipout(DenseVariational):
    """Flipout: per-example sign flips decorrelate the gradient noise (Wen et al., 2018)."""

    def row_noise_widths(self):
        return [self.kernel_loc.shape[0], self.units]

    def _apply_kernel(self, x, kernel, kernel_noise, row_noises):
        loc, scale = kernel
        delta = scale * kernel_noise
        dtype = x.dtype
        sign_in, sign_out = (rademacher(noise, dtype) for noise in row_noises)
        mean = tf.matmul(x, tf.cast(loc, dtype))
        perturbation = tf.matmul(x * sign_in, tf.cast(delta, dtype)) * sign_out
        return mean + perturbation, loc + delta


@keras.saving.register_keras_serializable(package="tfbnn")
class DenseLocalReparameterization(DenseVariational):
    """Samples pre-activations from their Gaussian marginal (Kingma et al., 2015)."""

    kernel_noise = False

    def row_noise_widths(self):
        return [self.units]

    def _apply_kernel(self, x, kernel, kernel_noise, row_noises):
        loc, scale = kernel
        dtype = x.dtype
        mean = tf.matmul(x, tf.cast(loc, dtype))
        var = tf.matmul(tf.square(x), tf.cast(tf.square(scale), dtype))
        floor = _VARIANCE_FLOOR.get(dtype.name, 1e-12)
        outputs = mean + tf.sqrt(var + floor) * normal_from(row_noises[0], dtype)
        # Closed-form KLs ignore the sample; MC ones draw their own kernel sample.
        return outputs, None
