"""Methods whose posterior is one Keras network with random layers (VI, MC dropout).

Such a method builds a network, trains it with `tfbnn.training.train`, and predicts
by calling it under `weight_samples(S)`: S draws in one vectorised call. Subclasses
only say how the network is built.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfbnn import compiled
from tfbnn.functional import FunctionalModel, architecture_key
from tfbnn.inference.base import (
    MODEL_FILE,
    FitSettings,
    Inference,
    load_network,
    seed_state,
    train_options,
    validation_split,
)
from tfbnn.training import train


class StochasticNetworkInference(Inference):
    """Base class: override `build_network(input_shape, n_targets, likelihood, settings, n_train)`,
    `input_shape` being one example's shape (`x.shape[1:]`).

    Subclasses set `jit_compile` in their constructor.
    """

    model = None
    likelihood = None

    def build_network(self, input_shape, n_targets, likelihood, settings: FitSettings,
                      n_train: int) -> keras.Model:
        raise NotImplementedError

    def fit(self, x, y, likelihood, settings: FitSettings):
        x_train, y_train, validation = validation_split(x, y, settings)
        model = self.build_network(x.shape[1:], y.shape[1], likelihood, settings, len(x_train))
        history = train(model, likelihood, x_train, y_train, validation_data=validation,
                        patience=settings.patience, **train_options(settings, self.jit_compile))
        self.model, self.likelihood = model, likelihood
        return history.as_dict()

    def _sample_params(self, x, n_samples, seed):
        return sample_with_seed(self.model, x, n_samples, seed)

    def save(self, directory: Path) -> None:
        self.model.save(Path(directory) / MODEL_FILE)

    def _restore(self, directory: Path) -> None:
        self.model = load_network(directory)


def sampler(model, n_samples: int):
    """A compiled `(theta, x, state) -> ((S, B, k) outputs, new state)` under S draws.

    Cached per architecture and draw count: every model of one architecture (the
    next split, a clone in cross-validation) reuses the traced function.
    """
    functional = FunctionalModel(model)

    def build():
        return tf.function(lambda theta, x, state: functional.sample(theta, state, x, n_samples),
                           reduce_retracing=True)

    return compiled.cached(("weight_sampler", architecture_key(model), int(n_samples)), build)


def sample_with_seed(model, x, n_samples: int, seed):
    """Draws `(S, B, k)` outputs of `model`.

    A given `seed` makes them repeatable; None advances the model's own generators,
    so every call draws afresh.
    """
    functional = FunctionalModel(model)
    state = functional.get_state() if seed is None else seed_state(seed, model)
    outputs, new_state = sampler(model, n_samples)(
        functional.get_params(), tf.convert_to_tensor(x, tf.float32), state
    )
    if seed is None:
        functional.set_state(new_state)
    return outputs
