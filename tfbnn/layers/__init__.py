"""Keras 3 layers for Bayesian neural networks."""

from tfbnn.layers.conv import (
    Conv1DFlipout,
    Conv1DReparameterization,
    Conv2DFlipout,
    Conv2DReparameterization,
    Conv3DFlipout,
    Conv3DReparameterization,
    ConvVariational,
)
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
    "Conv1DFlipout",
    "Conv1DReparameterization",
    "Conv2DFlipout",
    "Conv2DReparameterization",
    "Conv3DFlipout",
    "Conv3DReparameterization",
    "ConvVariational",
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
