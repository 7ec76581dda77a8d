"""Mean-field Gaussian variational convolutions, 1-D to 3-D (Keras 3).

The layers take `keras.layers.Conv1D/2D/3D`'s arguments and name their posteriors
after its weights (`kernel_loc` has the Keras kernel's shape, `(*kernel_size,
in_channels, filters)`), so a trained Keras convolution's weights can be copied into
the posterior means. On every call a layer adds `kl_weight * KL[q || prior]` as a
layer loss, like the dense layers (`tfbnn.layers.variational`):

    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        tfbnn.layers.Conv2DFlipout(16, 3, activation="relu", kl_weight=1 / n_train),
        keras.layers.Flatten(),
        tfbnn.layers.DenseFlipout(10, kl_weight=1 / n_train),
    ])

Two estimators of the weight noise: reparameterization draws one kernel per call,
shared by the batch (Blundell et al., 2015); Flipout (Wen et al., 2018) gives every
example its own pseudo-independent perturbation at the cost of a second convolution:

    conv(x, loc) + conv(x * s_in, delta) * s_out,   delta = scale * eps,

with Rademacher signs `s_in` (over input channels) and `s_out` (over filters) drawn
per example and constant across positions, so the perturbation stays a convolution.

Under `tfbnn.layers.weight_samples(S)` a layer draws S full kernels and convolves
block s of the batch with kernel s.
"""

from __future__ import annotations

import math
import numbers

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
from tfbnn.validation import check_int, check_option

#: Keras convolution options these layers refuse when set: the prior regularises the
#: weights, and a constraint or LoRA would act on a point estimate, not a posterior.
_UNSUPPORTED = ("kernel_regularizer", "bias_regularizer", "kernel_constraint",
                "bias_constraint", "lora_rank", "lora_alpha")

#: TensorFlow's names of the channels-last layouts, by rank.
_CHANNELS_LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}


def _int_tuple(name: str, value, rank: int) -> tuple[int, ...]:
    """An int or `rank` ints (each >= 1) as a tuple of `rank` ints, as Keras reads them."""
    values = (value,) * rank if isinstance(value, numbers.Integral) else value
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"{name} must be an integer or {rank} integers, got {value!r}") from None
    if len(values) != rank:
        raise ValueError(f"{name} must be an integer or {rank} integers, got {value!r}")
    return tuple(check_int(name, v, 1) for v in values)


def _output_length(length, kernel: int, stride: int, padding: str, dilation: int):
    """One spatial output size, as `tf.nn.convolution` gives it (None stays None)."""
    if length is None:
        return None
    if padding == "valid":
        length -= (kernel - 1) * dilation  # "same" and "causal" pad to keep the length
    return -(-length // stride)


class ConvVariational(VariationalLayer):
    """Base class of the variational convolutions; subclasses set `rank` (1, 2 or 3)
    and override `_apply_kernel`.

    Args:
        filters: number of output channels.
        kernel_size: an int, or `rank` ints: the window's size.
        strides: an int, or `rank` ints (not > 1 together with `dilation_rate > 1`).
        padding: "valid", "same", or for 1-D also "causal" (case-insensitive).
        data_format: "channels_last", "channels_first", or None for Keras'
            `image_data_format()`.
        dilation_rate: an int, or `rank` ints.
        groups: only 1 (grouped convolutions are not supported).
        activation: a Keras activation name or function.
        use_bias: whether the layer has a (variational) bias.
        kernel_initializer, bias_initializer: initializers of the posterior means.
        kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint,
            lora_rank, lora_alpha: accepted so a Keras convolution's config can be
            passed as it is, and refused unless None.
        prior, kl_weight, posterior_scale_init, prior_centered, seed: see
            `tfbnn.layers.posterior.VariationalLayer`.
    """

    #: The number of spatial axes; set by the concrete classes.
    rank: int | None = None

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate=1, groups: int = 1,
                 activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, lora_alpha=None,
                 prior=None, kl_weight: float = 1.0, posterior_scale_init: float = 1e-3,
                 seed: int | None = None, prior_centered: bool = False, **kwargs):
        if self.rank is None:
            raise TypeError(f"{type(self).__name__} has no rank: use Conv1D/2D/3D... layers")
        super().__init__(prior=prior, kl_weight=kl_weight,
                         posterior_scale_init=posterior_scale_init,
                         prior_centered=prior_centered, seed=seed, **kwargs)
        given = dict(zip(_UNSUPPORTED, (kernel_regularizer, bias_regularizer, kernel_constraint,
                                        bias_constraint, lora_rank, lora_alpha)))
        for name, value in given.items():
            if value is not None:
                raise ValueError(f"{type(self).__name__} does not support {name}={value!r}: "
                                 "its weights are random, with a prior, not point values to "
                                 "regularise, constrain or adapt")
        if check_int("groups", groups, 1) != 1:
            raise ValueError(f"{type(self).__name__} supports only groups=1, got groups={groups}")
        self.filters = check_int("filters", filters, 1)
        self.kernel_size = _int_tuple("kernel_size", kernel_size, self.rank)
        self.strides = _int_tuple("strides", strides, self.rank)
        self.dilation_rate = _int_tuple("dilation_rate", dilation_rate, self.rank)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"strides > 1 cannot be combined with dilation_rate > 1, got "
                             f"strides={self.strides}, dilation_rate={self.dilation_rate}")
        paddings = ("valid", "same", "causal") if self.rank == 1 else ("valid", "same")
        self.padding = check_option("padding", str(padding).lower(), paddings)
        self.data_format = check_option(
            "data_format", data_format or keras.config.image_data_format(),
            ("channels_last", "channels_first"))
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=self.rank + 2)

    @property
    def channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        n_in = input_shape[self.channel_axis]
        if n_in is None or len(input_shape) != self.rank + 2:
            raise ValueError(f"{self.name}: expected inputs of rank {self.rank + 2} with a known "
                             f"channel axis ({self.data_format}), got shape {input_shape}")
        output_shape = self.compute_output_shape(input_shape)
        if any(d is not None and d <= 0 for d in output_shape[1:]):
            raise ValueError(f"{self.name}: inputs of shape {input_shape} are too small for "
                             f"kernel_size={self.kernel_size} with padding={self.padding!r}, "
                             f"dilation_rate={self.dilation_rate} (output {output_shape})")
        self.add_posterior("kernel", (*self.kernel_size, n_in, self.filters),
                           self.kernel_initializer)
        if self.use_bias:
            self.add_posterior("bias", (self.filters,), self.bias_initializer)
        self.finish_build()
        self.input_spec = keras.layers.InputSpec(ndim=self.rank + 2, axes={self.channel_axis: n_in})

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        spatial = range(1, self.rank + 1) if self.data_format == "channels_last" else range(
            2, self.rank + 2)
        for i, axis in enumerate(spatial):
            shape[axis] = _output_length(shape[axis], self.kernel_size[i], self.strides[i],
                                         self.padding, self.dilation_rate[i])
        shape[self.channel_axis] = self.filters
        return tuple(shape)

    # -- the convolution --------------------------------------------------------------

    def convolve(self, inputs, kernel):
        """Channels-last `inputs` (causally padded if need be) convolved with `kernel`,
        which is cast to the inputs' dtype."""
        # The format is spelled out: eager gradients of a 3-D convolution without it fail.
        return tf.nn.convolution(
            inputs, tf.cast(kernel, inputs.dtype), strides=self.strides,
            padding="VALID" if self.padding == "causal" else self.padding.upper(),
            data_format=_CHANNELS_LAST[self.rank], dilations=self.dilation_rate)

    def per_example(self, values):
        """`(B, C)` values shaped to broadcast over the positions of a channels-last
        `(B, ..., C)` feature map."""
        return tf.reshape(values, [-1, *[1] * self.rank, values.shape[-1]])

    def _add_bias(self, outputs, bias):
        """Adds one bias `(filters,)`, or one per leading sample block `(S, filters)`,
        to channels-last outputs."""
        shape = [*bias.shape[:-1], *[1] * (self.rank + 1), self.filters]
        return outputs + tf.reshape(tf.cast(bias, outputs.dtype), shape)

    # -- forward pass -----------------------------------------------------------------

    def row_noise_widths(self, n_in: int) -> list[int]:
        """Widths of the per-example noise `_apply_kernel` consumes (uniform on (-1, 1),
        see `tfbnn.layers.sampling.random_symmetric`)."""
        raise NotImplementedError

    def call(self, inputs):
        # The work runs channels last: TensorFlow's CPU convolutions lack some
        # channels-first cases (3-D), and the noise and bias then broadcast one way.
        channels_first = self.data_format == "channels_first"
        x = tf.transpose(inputs, [0, *range(2, self.rank + 2), 1]) if channels_first else inputs
        if self.padding == "causal":
            x = tf.pad(x, [[0, 0], [self.dilation_rate[0] * (self.kernel_size[0] - 1), 0], [0, 0]])
        n_samples = current_weight_samples()
        if n_samples is None:
            outputs = self._call_sampled(x)
        else:
            outputs = self._call_vectorised(x, n_samples)
        if channels_first:
            outputs = tf.transpose(outputs, [0, self.rank + 1, *range(1, self.rank + 1)])
        return self.activation(outputs)

    def _call_sampled(self, x):
        """One weight draw (and, for Flipout, per-example signs), and the KL loss."""
        kernel = self.posterior_params("kernel")
        kernel_shape = self.kernel_loc.shape
        n_kernel = math.prod(kernel_shape)
        widths = self.row_noise_widths(kernel_shape[-2])
        # One uniform draw per call feeds the kernel's normals and every per-example
        # noise (as the dense layers do): each random op costs more than its arithmetic.
        width = sum(widths)
        batch = tf.shape(x)[:1]
        flat = random_symmetric(n_kernel + batch * width if width else [n_kernel],
                                self.seed_generator)
        kernel_noise, row_noise = tf.split(flat, [n_kernel, -1]) if width else (flat, None)
        row_noises = tf.split(tf.reshape(row_noise, [-1, width]), widths, axis=1) if width else []
        outputs, kernel_sample = self._apply_kernel(
            x, kernel, tf.reshape(normal_from(kernel_noise), kernel_shape), row_noises)
        kl = self.weight_kl("kernel", kernel, kernel_sample)
        if self.use_bias:
            bias = self.posterior_params("bias")
            bias_sample = self.sample_posterior(bias)  # see `normal_from`: not cut from `flat`
            outputs = self._add_bias(outputs, bias_sample)
            kl = kl + self.weight_kl("bias", bias, bias_sample)
        self.add_kl_loss(kl, batch[0])
        return outputs

    def _apply_kernel(self, inputs, kernel, kernel_noise, row_noises):
        """Returns `(inputs convolved with the sampled kernel, the float32 kernel sample)`.

        `inputs` are channels last; `kernel` is the float32 `(loc, scale)` pair,
        `kernel_noise` float32 standard normals of the kernel's shape, `row_noises`
        `(B, width)` float32 noise uniform on (-1, 1), per `row_noise_widths`.
        """
        raise NotImplementedError

    def _call_vectorised(self, inputs, n_samples):
        # S full kernel samples, one per block of rows. `tf.map_fn` runs one
        # convolution per sample inside a single graph loop: TensorFlow's convolutions
        # take one kernel, and `vectorized_map` falls back to such a loop for a
        # per-sample kernel. The alternative, folding the samples into the channel
        # axis of one grouped convolution, measured on 2 CPU cores (`sample_outputs`
        # of a digits net, two 3x3 Conv2DFlipout layers and two dense layers):
        # S=100, B=360: 160 ms here against 168 ms grouped, 252 against 484 ms under
        # XLA; S=100, B=32: 62 against 50 ms, 62 against 81 ms under XLA. Grouped
        # 3-D convolutions do not run on CPU without XLA at all.
        x = split_samples(inputs, n_samples)
        kernels = tf.cast(self.sample_posterior(self.posterior_params("kernel"), [n_samples]),
                          x.dtype)
        outputs = tf.map_fn(lambda args: self.convolve(*args), (x, kernels),
                            fn_output_signature=x.dtype)
        if self.use_bias:
            biases = self.sample_posterior(self.posterior_params("bias"), [n_samples])
            outputs = self._add_bias(outputs, biases)
        return merge_samples(outputs)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "groups": 1,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


class ConvReparameterization(ConvVariational):
    """One kernel sample per call, shared by the whole batch (Blundell et al., 2015)."""

    def row_noise_widths(self, n_in):
        return []

    def _apply_kernel(self, inputs, kernel, kernel_noise, row_noises):
        loc, scale = kernel
        sample = loc + scale * kernel_noise
        return self.convolve(inputs, sample), sample


class ConvFlipout(ConvVariational):
    """Flipout: per-example sign flips of one shared perturbation (Wen et al., 2018)."""

    def row_noise_widths(self, n_in):
        return [n_in, self.filters]

    def _apply_kernel(self, inputs, kernel, kernel_noise, row_noises):
        loc, scale = kernel
        delta = scale * kernel_noise
        sign_in, sign_out = (self.per_example(rademacher(noise, inputs.dtype))
                             for noise in row_noises)
        mean = self.convolve(inputs, loc)
        perturbation = self.convolve(inputs * sign_in, delta) * sign_out
        return mean + perturbation, loc + delta


# The concrete layers: a rank each, so `keras.layers.ConvND`'s arguments carry over.


@keras.saving.register_keras_serializable(package="tfbnn")
class Conv1DReparameterization(ConvReparameterization):
    """1-D convolution with one kernel sample per call (see `ConvVariational`)."""

    rank = 1


@keras.saving.register_keras_serializable(package="tfbnn")
class Conv2DReparameterization(ConvReparameterization):
    """2-D convolution with one kernel sample per call (see `ConvVariational`)."""

    rank = 2


@keras.saving.register_keras_serializable(package="tfbnn")
class Conv3DReparameterization(ConvReparameterization):
    """3-D convolution with one kernel sample per call (see `ConvVariational`)."""

    rank = 3


@keras.saving.register_keras_serializable(package="tfbnn")
class Conv1DFlipout(ConvFlipout):
    """1-D convolution with Flipout weight noise (see `ConvVariational`)."""

    rank = 1


@keras.saving.register_keras_serializable(package="tfbnn")
class Conv2DFlipout(ConvFlipout):
    """2-D convolution with Flipout weight noise (see `ConvVariational`)."""

    rank = 2


@keras.saving.register_keras_serializable(package="tfbnn")
class Conv3DFlipout(ConvFlipout):
    """3-D convolution with Flipout weight noise (see `ConvVariational`)."""

    rank = 3
