"""The names and defaults the command line offers, known without importing the library.

`tfbnn --help`, `--version` and usage errors answer at once because declaring
the options imports nothing that imports TensorFlow (seconds, and most of a
gigabyte); the commands import the library only when they run. The choices
that the library keeps in registries (filled as TensorFlow code is imported) and
the estimators' defaults are therefore written out here, and
`tests/test_cli_startup.py` checks that each equals the library's own.
"""

from __future__ import annotations

from pathlib import Path

INFERENCE_METHODS = ("ensemble", "hmc", "laplace", "mc_dropout", "sgmcmc", "swag", "vi")
"""`tfbnn.inference.INFERENCE.names()`."""

PRIORS = ("laplace", "normal", "scale_mixture", "student_t")
"""`tfbnn.priors.PRIORS.names()`."""

REGRESSION_LIKELIHOODS = ("gaussian", "heteroscedastic", "poisson", "student_t")
"""`tfbnn.estimators.REGRESSION_LIKELIHOODS`."""

CLASSIFICATION_LIKELIHOODS = ("auto", "bernoulli", "categorical")
"""`tfbnn.estimators.CLASSIFICATION_LIKELIHOODS`."""

REGRESSION_CALIBRATION = ("quantile", "conformal", "conformal_normalized")
"""`tfbnn.estimators.REGRESSION_CALIBRATION`; the first is the default."""

CLASSIFICATION_CALIBRATION = ("temperature",)
"""`tfbnn.estimators.CLASSIFICATION_CALIBRATION`."""

ESTIMATOR_DEFAULTS = {
    "activation": "relu",
    "batch_size": 32,
    "epochs": "auto",
    "hidden_units": (50,),
    "inference": "vi",
    "learning_rate": 1e-3,
    "likelihood": "auto",
    "n_samples": 100,
    "prior": "normal",
    "validation_fraction": 0.0,
}
"""The `BayesianRegressor` (and `BayesianClassifier`) defaults that options show."""

UCI_DEFAULT_OUT_DIR = Path("benchmark_results") / "uci"
"""`tfbnn.benchmarks.uci.DEFAULT_OUT_DIR`."""
UCI_QUICK_OUT_DIR = Path("benchmark_results") / "uci-quick"
"""`tfbnn.benchmarks.uci.QUICK_OUT_DIR`."""
UCI_EPOCH_FACTOR = 10
"""`tfbnn.benchmarks.uci.EPOCH_FACTOR`."""
UCI_QUICK_EPOCHS = 20
"""`tfbnn.benchmarks.uci.QUICK_EPOCHS`."""
UCI_QUICK_SPLITS = 2
"""`tfbnn.benchmarks.uci.QUICK_SPLITS`."""
