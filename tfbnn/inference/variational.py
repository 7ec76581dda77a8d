"""Mean-field Gaussian variational inference (Bayes by Backprop)."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfbnn import models
from tfbnn.functional import FunctionalModel
from tfbnn.inference.base import (
    INFERENCE,
    FitSettings,
    Inference,
    seed_state,
    train_options,
    validation_split,
)
from tfbnn.layers.sampling import split_samples, weight_samples
from tfbnn.training import train

MODEL_FILE = "model.keras"


@INFERENCE.register("vi")
class VariationalInference(Inference):
    """Fits a factorised Gaussian posterior by maximising the ELBO (KL scaled by 1/N).

    Args:
        estimator: gradient estimator of the variational layers, one of
            "local_reparameterization" (default: lowest variance for dense layers),
            "flipout", "reparameterization".
        posterior_scale_init: initial posterior standard deviation of every weight.
        jit_compile: train with XLA.
    """

    name = "vi"

    def __init__(self, estimator: str = "local_reparameterization",
                 posterior_scale_init: float = 1e-3, jit_compile: bool = True):
        if estimator not in models.VARIATIONAL_LAYERS:
            raise ValueError(
                f"Unknown estimator={estimator!r}; expected one of {list(models.VARIATIONAL_LAYERS)}"
            )
        self.estimator = estimator
        self.posterior_scale_init = float(posterior_scale_init)
        self.jit_compile = bool(jit_compile)
        self.model = None
        self.likelihood = None
        self._samplers = {}

    def get_config(self):
        return {
            "estimator": self.estimator,
            "posterior_scale_init": self.posterior_scale_init,
            "jit_compile": self.jit_compile,
        }

    def fit(self, x, y, likelihood, settings: FitSettings):
        x_train, y_train, validation = validation_split(x, y, settings)
        model = models.bayesian_mlp(
            x.shape[1],
            likelihood,
            y.shape[1],
            hidden_units=settings.hidden_units,
            activation=settings.activation,
            estimator=self.estimator,
            prior=settings.prior,
            kl_weight=1.0 / len(x_train),
            posterior_scale_init=self.posterior_scale_init,
            seed=settings.seed,
        )
        history = train(model, likelihood, x_train, y_train, validation_data=validation,
                        patience=settings.patience, **train_options(settings, self.jit_compile))
        self.model, self.likelihood, self._samplers = model, likelihood, {}
        return history.as_dict()

    def _sample_params(self, x, n_samples, seed):
        return sample_with_seed(self.model, self._samplers, x, n_samples, seed)

    def save(self, directory: Path) -> None:
        self.model.save(Path(directory) / MODEL_FILE)

    def _restore(self, directory: Path) -> None:
        self.model = keras.saving.load_model(Path(directory) / MODEL_FILE, safe_mode=True)
        self._samplers = {}


def sampler(model, n_samples: int):
    """A compiled `(x, state) -> ((S, B, k) outputs, new state)` for `model` under S draws."""
    functional = FunctionalModel(model)

    @tf.function(reduce_retracing=True)
    def sample(x, state):
        tiled = tf.tile(x, [n_samples, 1])
        with weight_samples(n_samples):
            outputs, state = model.stateless_call(
                functional.unflatten(functional.get_params()), state, tiled, training=False
            )
        return split_samples(outputs, n_samples), state

    return sample


def sample_with_seed(model, samplers: dict, x, n_samples: int, seed):
    """Draws `(S, B, k)` outputs; a given `seed` makes them repeatable, None advances the
    model's own generators so every call draws afresh."""
    if n_samples not in samplers:
        samplers[n_samples] = sampler(model, n_samples)
    functional = FunctionalModel(model)
    state = functional.get_state() if seed is None else seed_state(seed, model)
    outputs, new_state = samplers[n_samples](tf.convert_to_tensor(x, tf.float32), state)
    if seed is None:
        functional.set_state(new_state)
    return outputs
