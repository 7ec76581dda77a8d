"""tfbnn: Bayesian neural networks for TensorFlow and Keras 3.

Quick start::

    import tfbnn
    model = tfbnn.BayesianRegressor(hidden_units=(50,), epochs=400).fit(X_train, y_train)
    dist = model.predict_distribution(X_test)
    dist.mean, dist.std, dist.epistemic_var, dist.interval(0.95)
"""

from tfbnn import callbacks, inference, keras_metrics, layers, likelihoods, priors
from tfbnn.compiled import clear_cache
from tfbnn.estimators import BayesianClassifier, BayesianRegressor
from tfbnn.persistence import ModelFileError, load
from tfbnn.predictive import Predictive
from tfbnn.training import NonFiniteLossError, train
from tfbnn.version import __version__

__all__ = [
    "BayesianClassifier",
    "BayesianRegressor",
    "ModelFileError",
    "NonFiniteLossError",
    "Predictive",
    "__version__",
    "callbacks",
    "clear_cache",
    "inference",
    "keras_metrics",
    "layers",
    "likelihoods",
    "load",
    "priors",
    "train",
]
