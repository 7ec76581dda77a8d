"""Keras models made Bayesian: `bayesianize`, its conversion table, and the layer-by-layer
rebuilding it shares with the estimators' own networks.

* `bayesian`: `bayesianize` (with MOPED's weight-derived posteriors and priors);
* `table`: `CONVERSIONS`, Keras layer class -> tfbnn variational layers by estimator;
* `rebuild`: `rebuild` (a copy of a model with some layers replaced) and
  `with_weight_decay`;
* `dropout`: `with_mc_dropout`, Dropout layers that stay on at prediction.
"""

from tfbnn.convert.bayesian import MOPED_MIN_SCALE, bayesianize, convertible_layers
from tfbnn.convert.dropout import with_mc_dropout
from tfbnn.convert.rebuild import rebuild, walk_layers, with_weight_decay
from tfbnn.convert.table import CONVERSIONS, convertible_types

__all__ = [
    "CONVERSIONS",
    "MOPED_MIN_SCALE",
    "bayesianize",
    "convertible_layers",
    "convertible_types",
    "rebuild",
    "walk_layers",
    "with_mc_dropout",
    "with_weight_decay",
]
