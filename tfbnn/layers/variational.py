"""Mean-field Gaussian variational dense layers (Keras 3, TFP distributions inside).

Each weight `w` has a posterior `Normal(loc, softplus(rho))` and a prior from
`tfbnn.priors`. On every training call the layer adds
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
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfbnn import priors as priors_lib
from tfbnn.layers.sampling import (
    current_weight_samples,
    merge_samples,
    random_normal,
    split_samples,
)
from tfbnn.validation import check_int, check_non_negative, check_number

tfd = tfp.distributions


def _inverse_softplus(value: float) -> float:
    return math.log(math.expm1(value))


class DenseVariational(keras.layers.Layer):
    """Base class of the variational dense layers; subclasses override `_apply_kernel`.

    Args:
        units: output width.
        activation: a Keras activation name or function (as in `keras.layers.Dense`).
        use_bias: whether the layer has a (variational) bias.
        prior: a `tfbnn.priors.Prior`, a registered prior name, or None for Normal(0, 1).
        kl_weight: factor on the KL layer loss; set it to `1 / n_train`.
        kernel_initializer: initializer of the posterior means of the kernel.
        posterior_scale_init: initial posterior standard deviation of every weight.
        seed: an int seed for the layer's weight noise (reproducible sampling).
    """

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        prior=None,
        kl_weight: float = 1.0,
        kernel_initializer="glorot_uniform",
        posterior_scale_init: float = 1e-3,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_int("units", units, 1)
        kl_weight = check_non_negative("kl_weight", kl_weight)
        posterior_scale_init = check_number("posterior_scale_init", posterior_scale_init, 0, 1e3)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.prior = priors_lib.get(prior)
        self.kl_weight = kl_weight
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.posterior_scale_init = float(posterior_scale_init)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        n_in = input_shape[-1]
        if n_in is None:
            raise ValueError(f"{self.name}: the last input dimension must be known, got {input_shape}")
        rho = keras.initializers.Constant(_inverse_softplus(self.posterior_scale_init))
        self.kernel_loc = self.add_weight(
            name="kernel_loc", shape=(n_in, self.units), initializer=self.kernel_initializer
        )
        self.kernel_rho = self.add_weight(name="kernel_rho", shape=(n_in, self.units), initializer=rho)
        if self.use_bias:
            self.bias_loc = self.add_weight(name="bias_loc", shape=(self.units,), initializer="zeros")
            self.bias_rho = self.add_weight(name="bias_rho", shape=(self.units,), initializer=rho)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: n_in})

    # -- posteriors ------------------------------------------------------------------

    def _scale(self, rho):
        return tf.math.softplus(tf.cast(rho, self.compute_dtype))

    def kernel_posterior(self) -> tfd.Normal:
        """The variational posterior of the kernel, elementwise."""
        return tfd.Normal(tf.cast(self.kernel_loc, self.compute_dtype), self._scale(self.kernel_rho))

    def bias_posterior(self) -> tfd.Normal:
        return tfd.Normal(tf.cast(self.bias_loc, self.compute_dtype), self._scale(self.bias_rho))

    def _noise(self, shape):
        return random_normal(shape, self.seed_generator, self.compute_dtype)

    def _sample(self, posterior: tfd.Normal, leading=()):
        shape = tf.concat([leading, tf.shape(posterior.loc)], 0)
        return posterior.loc + posterior.scale * self._noise(shape)

    # -- forward pass -----------------------------------------------------------------

    def call(self, inputs):
        n_samples = current_weight_samples()
        if n_samples is not None:
            return self.activation(self._call_vectorised(inputs, n_samples))
        kernel = self.kernel_posterior()
        shapes = self._noise_shapes(inputs)
        n_kernel_noises = len(shapes)
        if self.use_bias:
            shapes.append(tf.constant([self.units]))
        # One random draw per call, split into every noise tensor the layer needs:
        # each random op costs far more than its arithmetic in a small network.
        sizes = tf.stack([tf.reduce_prod(shape) for shape in shapes])
        flat = random_normal(tf.reduce_sum(sizes)[tf.newaxis], self.seed_generator,
                             self.compute_dtype)
        noises = [tf.reshape(part, shape)
                  for part, shape in zip(tf.split(flat, sizes), shapes)]
        outputs, kernel_sample = self._apply_kernel(inputs, kernel, noises[:n_kernel_noises])
        if kernel_sample is None and not self.prior.has_closed_form_kl:
            kernel_sample = self._sample(kernel)  # seeded, unlike the prior's own draw
        kl = self.prior.kl_divergence(kernel, kernel_sample)
        if self.use_bias:
            bias = self.bias_posterior()
            bias_sample = bias.loc + bias.scale * noises[-1]
            outputs = outputs + bias_sample
            kl = kl + self.prior.kl_divergence(bias, bias_sample)
        if self.kl_weight:
            self.add_loss(self.kl_weight * kl)
        return self.activation(outputs)

    def _noise_shapes(self, inputs) -> list:
        """Shapes of the standard-normal noise tensors `_apply_kernel` consumes."""
        raise NotImplementedError

    def _apply_kernel(self, inputs, kernel: tfd.Normal, noises):
        """Returns `(inputs @ sampled kernel, the kernel sample or None)`."""
        raise NotImplementedError

    def _output_shape(self, inputs):
        return tf.concat([tf.shape(inputs)[:-1], [self.units]], 0)

    def _call_vectorised(self, inputs, n_samples):
        # S full weight samples, one per block of rows: coherent function draws.
        x = split_samples(inputs, n_samples)
        kernels = self._sample(self.kernel_posterior(), [n_samples])
        outputs = tf.einsum("sb...i,sio->sb...o", x, kernels)
        if self.use_bias:
            biases = self._sample(self.bias_posterior(), [n_samples])
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
            "prior": keras.saving.serialize_keras_object(self.prior),
            "kl_weight": self.kl_weight,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "posterior_scale_init": self.posterior_scale_init,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["prior"] = priors_lib.get(config.get("prior"))
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfbnn")
class DenseReparameterization(DenseVariational):
    """One kernel sample per call, shared by the whole batch (Blundell et al., 2015)."""

    def _noise_shapes(self, inputs):
        return [tf.shape(self.kernel_loc)]

    def _apply_kernel(self, inputs, kernel, noises):
        sample = kernel.loc + kernel.scale * noises[0]
        return tf.einsum("...i,io->...o", inputs, sample), sample


@keras.saving.register_keras_serializable(package="tfbnn")
class DenseFlipout(DenseVariational):
    """Flipout: per-example sign flips decorrelate the gradient noise (Wen et al., 2018)."""

    def _noise_shapes(self, inputs):
        return [tf.shape(self.kernel_loc), tf.shape(inputs), self._output_shape(inputs)]

    def _apply_kernel(self, inputs, kernel, noises):
        kernel_noise, input_noise, output_noise = noises
        delta = kernel.scale * kernel_noise
        # The sign of a standard normal is a Rademacher variable.
        sign_in, sign_out = tf.sign(input_noise), tf.sign(output_noise)
        mean = tf.einsum("...i,io->...o", inputs, kernel.loc)
        perturbation = tf.einsum("...i,io->...o", inputs * sign_in, delta) * sign_out
        return mean + perturbation, kernel.loc + delta


@keras.saving.register_keras_serializable(package="tfbnn")
class DenseLocalReparameterization(DenseVariational):
    """Samples pre-activations from their Gaussian marginal (Kingma et al., 2015)."""

    def _noise_shapes(self, inputs):
        return [self._output_shape(inputs)]

    def _apply_kernel(self, inputs, kernel, noises):
        mean = tf.einsum("...i,io->...o", inputs, kernel.loc)
        var = tf.einsum("...i,io->...o", tf.square(inputs), tf.square(kernel.scale))
        outputs = mean + tf.sqrt(var + 1e-12) * noises[0]
        # Closed-form KLs ignore the sample; MC ones draw their own kernel sample.
        return outputs, None


def variational_layers(model) -> list[DenseVariational]:
    """All tfbnn variational layers inside `model`, nested models included."""
    return [layer for layer in model._flatten_layers() if isinstance(layer, DenseVariational)]


def set_kl_weight(model, kl_weight: float) -> None:
    """Sets `kl_weight` on every variational layer of `model` (e.g. `1 / n_train`)."""
    kl_weight = check_non_negative("kl_weight", kl_weight)
    for layer in variational_layers(model):
        layer.kl_weight = kl_weight
