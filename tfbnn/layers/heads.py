"""Output heads that complete a likelihood's parameters."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def raw_for_scale(scale, min_scale: float = 0.0) -> np.ndarray:
    """The raw weight `r` with `softplus(r) + min_scale = scale` (float64).

    `softplus^-1(e) = log(expm1(e)) = e + log(-expm1(-e))`, the second form staying
    finite for large `e = scale - min_scale`. A scale at or below the floor maps to
    the raw weight of a scale just above it.
    """
    excess = np.maximum(np.asarray(scale, np.float64) - min_scale, 1e-12)
    return excess + np.log(-np.expm1(-excess))


@keras.saving.register_keras_serializable(package="tfbnn")
class LearnedScale(keras.layers.Layer):
    """Appends a learned, input-independent noise scale to a location output.

    Given `(..., d)` locations it returns `(..., 2 * d)`: the locations followed by a
    raw scale per target dimension, which the likelihood maps through
    `softplus(raw) + min_scale`. This is how homoscedastic noise is learned while
    staying an ordinary weight of the model.

    Args:
        initial_scale: the noise scale at initialisation.
        min_scale: the floor the likelihood adds (so the initial scale is exact).
    """

    def __init__(self, initial_scale: float = 1.0, min_scale: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not initial_scale > min_scale >= 0:
            raise ValueError(
                f"initial_scale must exceed min_scale >= 0, got initial_scale={initial_scale!r}, "
                f"min_scale={min_scale!r}"
            )
        self.initial_scale = float(initial_scale)
        self.min_scale = float(min_scale)

    def build(self, input_shape):
        raw = float(raw_for_scale(self.initial_scale, self.min_scale))
        self.raw_scale = self.add_weight(
            name="raw_scale",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(raw),
        )

    def call(self, inputs):
        raw = tf.broadcast_to(tf.cast(self.raw_scale, inputs.dtype), tf.shape(inputs))
        return tf.concat([inputs, raw], axis=-1)

    def compute_output_shape(self, input_shape):
        last = None if input_shape[-1] is None else 2 * input_shape[-1]
        return (*input_shape[:-1], last)

    def get_config(self):
        return {
            **super().get_config(),
            "initial_scale": self.initial_scale,
            "min_scale": self.min_scale,
        }
