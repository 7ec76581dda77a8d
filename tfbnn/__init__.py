"""tfbnn: Bayesian neural networks for TensorFlow and Keras 3."""

__version__ = "0.1.0"

from tfbnn import layers, likelihoods, priors  # noqa: E402

__all__ = ["layers", "likelihoods", "priors", "__version__"]
