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

import weakref

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfbnn import priors as priors_lib
from tfbnn.layers.heads import raw_for_scale
from tfbnn.layers.sampling import (
    current_weight_samples,
    merge_samples,
    random_normal,
    split_samples,
)
from tfbnn.validation import check_int, check_non_negative, check_number

tfd = tfp.distributions


#: Floor under the pre-activation variance of local reparameterization, per dtype:
#: 1e-12 underflows to zero in float16, and the square root's gradient at zero is inf.
_VARIANCE_FLOOR = {"float16": 1e-7}


class DenseVariational(keras.layers.Layer):
    """Base class of the variational dense layers; subclasses override `_apply_kernel`.

    Args:
        units: output width.
        activation: a Keras activation name or function (as in `keras.layers.Dense`).
        use_bias: whether the layer has a (variational) bias.
        prior: a `tfbnn.priors.Prior`, a registered prior name, or None for Normal(0, 1).
        kl_weight: factor on the KL layer loss; set it to `1 / n_train`. Held in a
            non-trainable float32 variable, so changing it (`set_kl_weight`, or
            assigning `layer.kl_weight`) takes effect at the next training step.
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
        posterior_scale_init = check_number("posterior_scale_init", posterior_scale_init, 0, 1e3)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.prior = priors_lib.get(prior)
        self.kl_weight_variable = None
        self.kl_weight = kl_weight
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.posterior_scale_init = float(posterior_scale_init)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._kl_tracker = None

    # -- the KL weight ------------------------------------------------------------------

    @property
    def kl_weight(self) -> float:
        """The factor on the KL layer loss, as a Python float.

        The number last set (e.g. exactly `1 / n`), unless the variable was changed
        since (loaded weights, a direct assign): then the variable's float32 value.
        """
        if self.kl_weight_variable is None:
            return self._kl_weight_value
        value = float(keras.ops.convert_to_numpy(self.kl_weight_variable))
        return self._kl_weight_value if value == float(np.float32(self._kl_weight_value)) else value

    @kl_weight.setter
    def kl_weight(self, value: float) -> None:
        self._kl_weight_value = check_non_negative("kl_weight", value)
        if self.kl_weight_variable is not None:
            self.kl_weight_variable.assign(self._kl_weight_value)

    def report_kl_to(self, tracker) -> None:
        """Makes every call report its KL term to `tracker` (`tracker.record(layer,
        term, batch_size)`); see `tfbnn.keras_metrics.track_kl`. None stops it."""
        self._kl_tracker = None if tracker is None else weakref.ref(tracker)

    # -- weights ------------------------------------------------------------------------

    def build(self, input_shape):
        n_in = input_shape[-1]
        if n_in is None:
            raise ValueError(f"{self.name}: the last input dimension must be known, got {input_shape}")
        rho = keras.initializers.Constant(float(raw_for_scale(self.posterior_scale_init)))
        # Not autocast: under mixed precision the posterior stays float32 and `call`
        # casts only what meets the inputs.
        self.kernel_loc = self.add_weight(
            name="kernel_loc", shape=(n_in, self.units), initializer=self.kernel_initializer,
            autocast=False,
        )
        self.kernel_rho = self.add_weight(name="kernel_rho", shape=(n_in, self.units),
                                          initializer=rho, autocast=False)
        if self.use_bias:
            self.bias_loc = self.add_weight(name="bias_loc", shape=(self.units,),
                                            initializer="zeros", autocast=False)
            self.bias_rho = self.add_weight(name="bias_rho", shape=(self.units,),
                                            initializer=rho, autocast=False)
        self.kl_weight_variable = self.add_weight(
            name="kl_weight", shape=(), dtype="float32", trainable=False, autocast=False,
            initializer=keras.initializers.Constant(self._kl_weight_value),
        )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: n_in})

    # -- posteriors ------------------------------------------------------------------

    def kernel_params(self):
        """`(loc, scale)` of the kernel's posterior, float32 tensors."""
        return self.kernel_loc.value, tf.math.softplus(self.kernel_rho.value)

    def bias_params(self):
        """`(loc, scale)` of the bias's posterior, float32 tensors."""
        return self.bias_loc.value, tf.math.softplus(self.bias_rho.value)

    def kernel_posterior(self) -> tfd.Normal:
        """The variational posterior of the kernel, elementwise."""
        return tfd.Normal(*self.kernel_params())

    def bias_posterior(self) -> tfd.Normal:
        return tfd.Normal(*self.bias_params())

    def _sample(self, params, leading=()):
        loc, scale = params
        shape = tf.concat([leading, tf.shape(loc)], 0)
        return loc + scale * random_normal(shape, self.seed_generator, loc.dtype)

    def _kl(self, params, sample):
        """KL[q || prior] of one weight tensor; `sample` is the draw the forward pass
        used (or None), for priors without a closed form."""
        if sample is None and not self.prior.has_closed_form_kl:
            sample = self._sample(params)  # seeded, unlike the prior's own draw
        return self.prior.normal_kl(*params, sample)

    # -- forward pass -----------------------------------------------------------------

    #: Whether `_apply_kernel` needs standard-normal noise of the kernel's shape.
    kernel_noise = True

    def row_noise_widths(self) -> list[int]:
        """Widths of the per-row standard-normal noise `_apply_kernel` consumes."""
        raise NotImplementedError

    def call(self, inputs):
        n_samples = current_weight_samples()
        if n_samples is not None:
            return self.activation(self._call_vectorised(inputs, n_samples))
        # Rows of a 2-D matrix: plain matrix products, and noise of static widths.
        n_in = self.kernel_loc.shape[0]
        x = inputs if len(inputs.shape) == 2 else tf.reshape(inputs, [-1, n_in])
        weight_rows = n_in * self.kernel_noise + self.use_bias
        widths = self.row_noise_widths()
        # One float32 random draw per call, cut into every noise tensor the layer
        # needs: each random op costs far more than its arithmetic in a small network.
        n_weight, width = weight_rows * self.units, sum(widths)
        size = n_weight + tf.shape(x)[:1] * width if width else [n_weight]
        flat = random_normal(size, self.seed_generator)
        weight_noise, row_noises = flat, []
        if width:
            weight_noise, row_noise = tf.split(flat, [n_weight, -1])
            row_noises = tf.split(tf.reshape(row_noise, [-1, width]), widths, axis=1)
        weight_noise = tf.reshape(weight_noise, [weight_rows, self.units])
        kernel = self.kernel_params()
        outputs, kernel_sample = self._apply_kernel(
            x, kernel, weight_noise[:n_in] if self.kernel_noise else None, row_noises)
        kl = self._kl(kernel, kernel_sample)
        if self.use_bias:
            bias = self.bias_params()
            bias_sample = bias[0] + bias[1] * weight_noise[-1]
            outputs = outputs + tf.cast(bias_sample, outputs.dtype)
            kl = kl + self._kl(bias, bias_sample)
        # The weight is read here, on every step: never a constant of the traced program.
        term = self.kl_weight_variable * kl
        self.add_loss(term)
        tracker = None if self._kl_tracker is None else self._kl_tracker()
        if tracker is not None:
            tracker.record(self, term, tf.shape(inputs)[0])
        if len(inputs.shape) != 2:
            outputs = tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [self.units]], 0))
        return self.activation(outputs)

    def _apply_kernel(self, x, kernel, kernel_noise, row_noises):
        """Returns `(x @ sampled kernel, the float32 kernel sample or None)`.

        `x` is `(rows, n_in)` in the compute dtype; `kernel` the float32 `(loc,
        scale)` pair; `kernel_noise` float32 standard normals of the kernel's shape
        (or None), `row_noises` `(rows, width)` ones, per `row_noise_widths`.
        """
        raise NotImplementedError

    def _call_vectorised(self, inputs, n_samples):
        # S full weight samples, one per block of rows: coherent function draws.
        x = split_samples(inputs, n_samples)
        kernels = tf.cast(self._sample(self.kernel_params(), [n_samples]), x.dtype)
        outputs = tf.einsum("sb...i,sio->sb...o", x, kernels)
        if self.use_bias:
            biases = tf.cast(self._sample(self.bias_params(), [n_samples]), x.dtype)
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
        # The sign of a standard normal is a Rademacher variable.
        sign_in, sign_out = (tf.cast(tf.sign(noise), dtype) for noise in row_noises)
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
        outputs = mean + tf.sqrt(var + floor) * tf.cast(row_noises[0], dtype)
        # Closed-form KLs ignore the sample; MC ones draw their own kernel sample.
        return outputs, None


def variational_layers(model) -> list[DenseVariational]:
    """All tfbnn variational layers inside `model`, nested models included."""
    return [layer for layer in model._flatten_layers() if isinstance(layer, DenseVariational)]


def set_kl_weight(model, kl_weight: float) -> None:
    """Sets `kl_weight` on every variational layer of `model` (e.g. `1 / n_train`).

    The layers read the weight from a variable on every call, so this takes effect
    at the next training step, also after `compile` and between `model.fit` epochs.
    """
    kl_weight = check_non_negative("kl_weight", kl_weight)
    for layer in variational_layers(model):
        layer.kl_weight = kl_weight
