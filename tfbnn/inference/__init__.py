"""Posterior methods behind one predictive API, chosen by name (`inference="vi"`, ...).

Importing each method's module registers it in `INFERENCE`.
"""

from tfbnn.inference import (  # noqa: F401
    ensemble,
    hmc,
    laplace,
    mc_dropout,
    sgmcmc,
    swag,
    variational,
)
from tfbnn.inference.base import INFERENCE, FitSettings, Inference, get

__all__ = ["INFERENCE", "FitSettings", "Inference", "get"]
