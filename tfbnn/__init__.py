"""tfbnn: Bayesian neural networks for TensorFlow and Keras 3.

Quick start::

    import tfbnn
    model = tfbnn.BayesianRegressor(hidden_units=(50,), epochs=400).fit(X_train, y_train)
    dist = model.predict_distribution(X_test)
    dist.mean, dist.std, dist.epistemic_var, dist.interval(0.95)

The names below are imported on first use (module `__getattr__`, PEP 562), and
any submodule is reachable as an attribute too (`tfbnn.metrics`). In a program,
`import tfbnn` also imports the modules that define tfbnn's Keras classes, so
`keras.saving.load_model` finds them; only the command line (the `tfbnn` script,
`python -m tfbnn`) skips that, so its `--help` answers without importing TensorFlow.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tfbnn import xla_cache
from tfbnn.version import __version__

# Before TensorFlow compiles anything: TFBNN_XLA_CACHE keeps compiled programs on disk.
xla_cache.configure_from_environment()

if TYPE_CHECKING:  # what static tools see: the same names, imported eagerly
    from tfbnn import (
        callbacks,
        convert,
        inference,
        keras_metrics,
        layers,
        likelihoods,
        posthoc,
        priors,
    )
    from tfbnn.compiled import clear_cache
    from tfbnn.convert import bayesianize
    from tfbnn.data import DataWarning
    from tfbnn.estimators import BayesianClassifier, BayesianRegressor
    from tfbnn.persistence import ModelFileError, load
    from tfbnn.predictive import Predictive
    from tfbnn.training import NonFiniteLossError, train

_HOMES = {
    "BayesianClassifier": "tfbnn.estimators",
    "BayesianRegressor": "tfbnn.estimators",
    "DataWarning": "tfbnn.data",
    "ModelFileError": "tfbnn.persistence",
    "NonFiniteLossError": "tfbnn.training",
    "Predictive": "tfbnn.predictive",
    "bayesianize": "tfbnn.convert",
    "clear_cache": "tfbnn.compiled",
    "load": "tfbnn.persistence",
    "train": "tfbnn.training",
}
"""The module each public name (other than a submodule) is defined in."""

__all__ = [
    "BayesianClassifier",
    "BayesianRegressor",
    "DataWarning",
    "ModelFileError",
    "NonFiniteLossError",
    "Predictive",
    "__version__",
    "bayesianize",
    "callbacks",
    "clear_cache",
    "convert",
    "inference",
    "keras_metrics",
    "layers",
    "likelihoods",
    "load",
    "posthoc",
    "priors",
    "train",
    "xla_cache",
]


def __getattr__(name: str):
    if name == "load":  # it rebuilds estimators by class name: they register when imported
        importlib.import_module("tfbnn.estimators")
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise  # a submodule that fails to import its own dependencies
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # found once; later lookups are ordinary
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _started_as_command_line() -> bool:
    """Whether this process is tfbnn's command line: the `tfbnn` script, or `python -m
    tfbnn` (while the package imports, `sys.argv[0]` is still "-m")."""
    argv = getattr(sys, "argv", None) or [""]
    if Path(argv[0]).name == "tfbnn":
        return True
    original = list(getattr(sys, "orig_argv", []))
    if argv[0] != "-m" or "-m" not in original[:-1]:
        return False
    return original[original.index("-m") + 1].split(".")[0] == "tfbnn"


if not _started_as_command_line():
    # Keras finds custom classes only once they are registered, i.e. imported.
    from tfbnn import keras_metrics, layers, likelihoods, priors  # noqa: F401
