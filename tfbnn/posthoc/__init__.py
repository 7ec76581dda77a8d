"""Uncertainty for Keras models you built and trained yourself, without training from scratch.

Each method returns the same `tfbnn.Predictive` as the estimators:

* `LastLayerLaplace(model, likelihood)`: a Laplace posterior on the last Dense layer
  of any trained model (a conv net, a recurrent net, ...), fitted from arrays or a
  `tf.data.Dataset`; the estimators' `inference="laplace"` code.
* `MCDropout(model, likelihood)`: dropout kept on at prediction in a model trained
  with `keras.layers.Dropout`, every other layer in inference mode.
* `DeepEnsemble(build_fn, n_members, likelihood)`: M members of your architecture,
  trained by `tfbnn.train` (vectorised when they share an architecture).

The model's outputs are the likelihood's parameters, as for tfbnn's own networks.
Each method saves to a folder (`save(path)`), and `load(path)` brings it back.
"""

from tfbnn.posthoc.dropout import MCDropout
from tfbnn.posthoc.ensemble import DeepEnsemble
from tfbnn.posthoc.laplace import LastLayerLaplace
from tfbnn.posthoc.saving import load

__all__ = ["DeepEnsemble", "LastLayerLaplace", "MCDropout", "load"]
