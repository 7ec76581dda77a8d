"""What every posterior method provides, and the registry the estimators choose from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfbnn import likelihoods
from tfbnn.predictive import SAMPLE_VALUES
from tfbnn.registry import Registry

INFERENCE = Registry("inference")

#: Methods whose fit resumes from checkpoints: those trained by one `tfbnn.train`
#: run (SWAG: its pre-training, with `n_models=1`; Laplace: its MAP network). An ensemble's members
#: train as one stacked program that checkpoints do not capture yet, and the
#: samplers (hmc, sgmcmc) do not train through `tfbnn.train`.
RESUMABLE = ("vi", "mc_dropout", "swag", "laplace")

#: The file a method saves its Keras network in, inside its folder.
MODEL_FILE = "model.keras"


def load_network(directory) -> keras.Model:
    """The Keras network a method saved in `directory` (no pickle: `safe_mode=True`)."""
    return keras.saving.load_model(Path(directory) / MODEL_FILE, safe_mode=True)


def check_likelihood(likelihood) -> likelihoods.Likelihood:
    """`likelihood` if it is a `tfbnn.likelihoods.Likelihood`, else a ValueError."""
    if not isinstance(likelihood, likelihoods.Likelihood):
        raise ValueError(f"likelihood must be a tfbnn.likelihoods.Likelihood, got {likelihood!r}")
    return likelihood


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """The training settings an estimator hands to its inference method.

    `optimizer` is what `tfbnn.training.train` takes: None (Adam), a name, a Keras
    config dict or a Keras optimizer instance. `learning_rate` is the step size of
    None or a named optimizer; a config or an instance brings its own rate (or
    schedule).

    `network` is None (the MLP of `hidden_units` and `activation`) or the user's
    function `(input_shape, n_outputs) -> keras.Model`; `tfbnn.models.network`
    builds either.

    `strategy` is None or a `tf.distribute.Strategy` that `tfbnn.train` shares every
    minibatch between (`tfbnn.training.distributed`); methods that do not train with
    `tfbnn.train` refuse it (`check_no_strategy`).

    `checkpoint` is None or a `tfbnn.training.checkpoint.TrainingCheckpoint`
    that the method's (first) `tfbnn.train` call runs with; only the methods in
    `RESUMABLE` take one.
    """

    hidden_units: tuple[int, ...] = (50,)
    activation: str = "relu"
    prior: object = None
    epochs: int = 400
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: object = None
    validation_fraction: float = 0.0
    patience: int | None = None
    seed: int | None = None
    verbose: int = 0
    network: object = None
    strategy: object = None
    checkpoint: object = None

    def optimizer_options(self) -> dict:
        """`optimizer` and `learning_rate` as `tfbnn.train` (and `tfbnn.optimizers.get`)
        take them: the learning rate applies to None or a named optimizer only."""
        own_rate = self.optimizer is not None and not isinstance(self.optimizer, str)
        return {"optimizer": self.optimizer,
                "learning_rate": None if own_rate else self.learning_rate}


class Inference:
    """A way of getting a posterior over a network's weights.

    Subclasses are registered with `@INFERENCE.register("name")`, take their
    method-specific options as keyword arguments, and implement:

    * `fit(x, y, likelihood, settings)`: train on standardised in-memory arrays
      and return a training history dict (lists per epoch) or None;
    * `_sample_params(x, n_samples, seed)`: `(S, B, k)` likelihood parameters from
      `S` posterior draws at inputs `x` (vectorised: no Python loop over draws);
    * `save(directory)` / `_restore(directory)` and `get_config()`.
    """

    name = "inference"
    #: The regression likelihood an estimator's `likelihood="auto"` resolves to.
    auto_likelihood = "gaussian"

    def get_config(self) -> dict:
        return {}

    def fit(self, x, y, likelihood, settings: FitSettings):
        raise NotImplementedError

    def sample_params(self, x, n_samples: int, seed=None,
                      max_rows: int = SAMPLE_VALUES) -> tf.Tensor:
        """`(S, B, k)` parameters, computed in blocks of inputs to bound memory."""
        x = np.asarray(x, np.float32)
        block = max(1, max_rows // max(int(n_samples), 1))
        parts = [self._sample_params(x[i : i + block], int(n_samples), seed)
                 for i in range(0, len(x), block)]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)

    def _sample_params(self, x, n_samples: int, seed):
        raise NotImplementedError

    def save(self, directory: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path, config: dict, likelihood) -> Inference:
        method = cls(**config)
        method.likelihood = likelihood
        method._restore(Path(directory))
        return method

    def _restore(self, directory: Path) -> None:
        raise NotImplementedError


def train_options(settings: FitSettings, jit_compile: bool) -> dict:
    """The keyword arguments of `tfbnn.training.train` that come from the settings."""
    return {
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        **settings.optimizer_options(),
        "seed": settings.seed,
        "verbose": settings.verbose,
        "jit_compile": jit_compile,
        "strategy": settings.strategy,
        "callbacks": [settings.checkpoint] if settings.checkpoint is not None else None,
    }


def check_no_strategy(settings: FitSettings, method: str) -> None:
    """Refuses a `tf.distribute` strategy for a method that cannot use one."""
    if settings.strategy is not None:
        raise ValueError(f"inference={method!r} does not run under a tf.distribute strategy "
                         "(strategy= is for 'vi', 'mc_dropout', 'ensemble', 'swag' and "
                         "'laplace'); pass strategy=None")


def validation_split(x, y, settings: FitSettings):
    """Holds out `validation_fraction` of the rows (at random) to monitor training.

    Returns `(x_train, y_train, (x_val, y_val) or None)`.
    """
    fraction = settings.validation_fraction
    if not fraction:
        return x, y, None
    n_val = int(round(fraction * len(x)))
    if n_val < 1 or n_val >= len(x):
        raise ValueError(
            f"validation_fraction={fraction} leaves no rows for training or validation "
            f"out of {len(x)}"
        )
    order = np.random.default_rng(settings.seed).permutation(len(x))
    val, tr = order[:n_val], order[n_val:]
    return x[tr], y[tr], (x[val], y[val])


def check_resumable(method: Inference) -> None:
    """Refuses checkpointing for a method that cannot resume from checkpoints."""
    if method.name not in RESUMABLE:
        raise ValueError(
            f"inference={method.name!r} cannot be checkpointed: resuming works for "
            f"{list(RESUMABLE)} only")
    n_models = getattr(method, "n_models", 1)
    if n_models != 1:
        raise ValueError(
            f"inference={method.name!r} with n_models={n_models} cannot be checkpointed: "
            "its models train as one stacked program, as an ensemble's do; use "
            "inference_options={'n_models': 1}")


def get(name: str, options: dict | None = None) -> Inference:
    """An inference method by registered name, with its keyword options."""
    cls = INFERENCE.get(name)
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"inference_options must be a dict of keyword options, got {options!r}")
    options = dict(options or {})
    try:
        return cls(**options)
    except TypeError as err:
        raise ValueError(f"Invalid inference_options for inference={name!r}: {err}") from None


def seed_state(seed, model) -> list[tf.Tensor]:
    """The model's non-trainable state with every seed generator set from `seed`.

    Used for repeatable predictions: the same `seed` gives the same draws. Other
    non-trainable values (e.g. normalisation statistics) are kept as they are.
    """
    rng = np.random.default_rng(seed)
    state = []
    for variable in model.non_trainable_variables:
        if variable.path.endswith("seed_generator_state"):
            state.append(tf.constant(rng.integers(0, 2**31 - 1, size=2), variable.dtype))
        else:
            state.append(tf.convert_to_tensor(variable))
    return state
