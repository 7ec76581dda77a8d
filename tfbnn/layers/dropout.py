"""Monte Carlo dropout: dropout that stays on when predicting (Gal & Ghahramani, 2016).

    model = keras.Sequential([
        keras.Input((n_features,)),
        tfbnn.layers.MCDropout(0.05, seed=0),
        keras.layers.Dense(50, activation="relu"),
        tfbnn.layers.MCDropout(0.05, seed=1),
        keras.layers.Dense(1),
    ])

Each forward pass drops a fresh set of units, so repeated calls are draws from the
approximate posterior over networks. Under `tfbnn.layers.weight_samples(S)` the
layer draws one mask per sample block (shape `(S, 1, units)`, or `(S, 1, ...)` over
all the feature axes of, e.g., a conv net's feature maps), so the `S` blocks of a
tiled batch are `S` coherent function draws, like the variational layers' weight
samples.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfbnn.layers.sampling import (
    current_weight_samples,
    merge_samples,
    random_uniform,
    split_samples,
)
from tfbnn.validation import check_fraction


@keras.saving.register_keras_serializable(package="tfbnn")
class MCDropout(keras.layers.Layer):
    """Inverted dropout that is active in training and at prediction.

    Each unit is zeroed with probability `rate` and the survivors are scaled by
    `1 / (1 - rate)`. Unlike `keras.layers.Dropout` it ignores the `training`
    flag: dropping units at test time is what turns the network into a sample
    from the approximate posterior.

    Args:
        rate: the probability of dropping a unit, in [0, 1).
        seed: an int seed for the masks (reproducible sampling).

    #### References

    [1]: Yarin Gal and Zoubin Ghahramani. Dropout as a Bayesian Approximation:
         Representing Model Uncertainty in Deep Learning. In _ICML_, 2016.
         https://arxiv.org/abs/1506.02142
    """

    def __init__(self, rate: float = 0.05, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_fraction("rate", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs):
        if self.rate == 0.0:
            return inputs
        n_samples = current_weight_samples()
        if n_samples is None:
            return inputs * self._mask(tf.shape(inputs), inputs.dtype)
        # One mask per sample block, shared by its rows: a coherent function draw.
        x = split_samples(inputs, n_samples)
        shape = tf.concat([[n_samples, 1], tf.shape(x)[2:]], 0)
        return merge_samples(x * self._mask(shape, inputs.dtype))

    def _mask(self, shape, dtype):
        keep = random_uniform(shape, self.seed_generator, dtype) >= self.rate
        return tf.cast(keep, dtype) / tf.cast(1.0 - self.rate, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
