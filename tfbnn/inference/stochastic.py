"""Methods whose posterior is one Keras network with random layers (VI, MC dropout).

Such a method builds a network, trains it with `tfbnn.training.train`, and predicts
by calling it under `weight_samples(S)`: S draws in one vectorised call. Subclasses
only say how the network is built.
"""

from __future__ import annotations

import dataclasses
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
)
from tfbnn.inference.training_data import training_data
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
        """Trains a new network on arrays, or on a `Stream` of batches (`y` None)."""
        data = training_data(x, y, settings)
        model = self.build_network(data.example_shape, data.n_targets, likelihood, settings,
                                   data.n_rows)
        history = train(model, likelihood, data.x, data.y, validation_data=data.validation,
                        patience=settings.patience, **train_options(settings, self.jit_compile))
        self.model, self.likelihood = model, likelihood
        self.optimizer_state, self.partial_calls = history.optimizer_state, 0
        return history.as_dict()

    def partial_fit(self, x, y, likelihood, settings: FitSettings, n_train: int):
        """One pass over the chunk `(x, y)` (or a `Stream`, `y` None), continuing from the
        current weights and optimizer state; a first call builds the network.

        `n_train` is the training-set size the KL term is scaled by (`kl_weight = 1 /
        n_train`). The optimizer state lives in this object: a loaded model continues
        from its weights with a fresh optimizer state.
        """
        data = training_data(x, y, dataclasses.replace(settings, validation_fraction=0.0))
        if self.model is None:
            self.model = self.build_network(data.example_shape, data.n_targets, likelihood,
                                            settings, n_train)
            self.likelihood, self.optimizer_state, self.partial_calls = likelihood, None, 0
        # A different data order per chunk, repeatable from the seed.
        seed = None if settings.seed is None else settings.seed + self.partial_calls
        options = {**train_options(settings, self.jit_compile), "epochs": 1, "seed": seed}
        history = train(self.model, likelihood, data.x, data.y, n_train=n_train,
                        optimizer_state=getattr(self, "optimizer_state", None), **options)
        self.optimizer_state = history.optimizer_state
        self.partial_calls = getattr(self, "partial_calls", 0) + 1
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
        return compiled.function(
            lambda theta, x, state: functional.sample(theta, state, x, n_samples),
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
