"""Keras 3 layers for Bayesian neural networks."""

from tfbnn.layers.dropout import MCDropout
from tfbnn.layers.heads import LearnedScale
from tfbnn.layers.posterior import VariationalLayer, set_kl_weight, variational_layers
from tfbnn.layers.recurrent import (
    GRUFlipout,
    GRUReparameterization,
    LSTMFlipout,
    LSTMReparameterization,
)
from tfbnn.layers.sampling import sample_outputs, weight_samples
from tfbnn.layers.variational import (
    DenseFlipout,
    DenseLocalReparameterization,
    DenseReparameterization,
    DenseVariational,
)

__all__ = [
    "DenseFlipout",
    "DenseLocalReparameterization",
    "DenseReparameterization",
    "DenseVariational",
    "GRUFlipout",
    "GRUReparameterization",
    "LSTMFlipout",
    "LSTMReparameterization",
    "LearnedScale",
    "MCDropout",
    "VariationalLayer",
    "sample_outputs",
    "set_kl_weight",
    "variational_layers",
    "weight_samples",
]
