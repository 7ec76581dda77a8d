"""tfbnn: Bayesian neural networks for TensorFlow and Keras 3.

Quick start::

    import tfbnn
    model = tfbnn.BayesianRegressor(hidden_units=(50,), epochs=400).fit(X_train, y_train)
    dist = model.predict_distribution(X_test)
    dist.mean, dist.std, dist.epistemic_var, dist.interval(0.95)
"""

from tfbnn import inference, layers, likelihoods, priors  # noqa: E402
from tfbnn.estimators import BayesianClassifier, BayesianRegressor  # noqa: E402
from tfbnn.persistence import ModelFileError, load  # noqa: E402
from tfbnn.predictive import Predictive  # noqa: E402
from tfbnn.training import NonFiniteLossError, train  # noqa: E402
from tfbnn.version import __version__  # noqa: E402

__all__ = [
    "BayesianClassifier",
    "BayesianRegressor",
    "ModelFileError",
    "NonFiniteLossError",
    "Predictive",
    "__version__",
    "inference",
    "layers",
    "likelihoods",
    "load",
    "priors",
    "train",
]
