"""Posterior methods behind one predictive API, chosen by name (`inference="vi"`, ...)."""

from tfbnn.inference import ensemble  # noqa: F401  (registers the method)
from tfbnn.inference import hmc  # noqa: F401  (registers the method)
from tfbnn.inference import laplace  # noqa: F401  (registers the method)
from tfbnn.inference import mc_dropout  # noqa: F401  (registers the method)
from tfbnn.inference import sgmcmc  # noqa: F401  (registers the method)
from tfbnn.inference import swag  # noqa: F401  (registers the method)
from tfbnn.inference import variational  # noqa: F401  (registers the method)
from tfbnn.inference.base import INFERENCE, FitSettings, Inference, get

__all__ = ["INFERENCE", "FitSettings", "Inference", "get"]
