"""Keras 3 layers for Bayesian neural networks."""

from tfbnn.layers.dropout import MCDropout
from tfbnn.layers.heads import LearnedScale
from tfbnn.layers.sampling import sample_outputs, weight_samples
from tfbnn.layers.variational import (
    DenseFlipout,
    DenseLocalReparameterization,
    DenseReparameterization,
    DenseVariational,
    set_kl_weight,
    variational_layers,
)

__all__ = [
    "DenseFlipout",
    "DenseLocalReparameterization",
    "DenseReparameterization",
    "DenseVariational",
    "LearnedScale",
    "MCDropout",
    "sample_outputs",
    "set_kl_weight",
    "variational_layers",
    "weight_samples",
]
