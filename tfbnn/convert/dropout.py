"""A Keras model with Dropout made an MC dropout model: dropout that stays on to predict.

Shared by `tfbnn.posthoc.MCDropout` (a model users trained themselves) and the
estimators' `inference="mc_dropout"` on a `network=` (which adds the method's
weight decay).
"""

from __future__ import annotations

import keras

from tfbnn.convert.rebuild import rebuild, regularized, walk_layers
from tfbnn.layers.dropout import MCDropout


def dropout_layers(model) -> list:
    """Every dropout layer of `model` (`keras.layers.Dropout` and its subclasses, and
    `tfbnn.layers.MCDropout`), nested models included."""
    return [layer for layer in walk_layers(model)
            if isinstance(layer, keras.layers.Dropout | MCDropout)]


def with_mc_dropout(model, rate=None, seed=None, weight_decay=None) -> keras.Model:
    """A copy of `model` (same weights) in which every `keras.layers.Dropout` is a
    `tfbnn.layers.MCDropout` of its rate (or `rate`); `MCDropout` layers stay.

    Args:
        model: a built Sequential or functional Keras model with dropout layers.
        rate: None keeps each layer's rate; a number replaces them all.
        seed: seeds the masks, `seed + i` for the i-th Dropout layer.
        weight_decay: None, or `(kernel, bias)`: L2 decay `bias` on every layer's
            biases and normalisation scales and offsets, `kernel` on its other weights.

    Raises:
        ValueError: no dropout layer, or one `MCDropout` cannot stand for (a subclass
            such as `SpatialDropout1D`, or a `noise_shape`: units are dropped
            independently).
    """
    layers = dropout_layers(model)
    if not layers:
        raise ValueError(f"model {model.name!r} has no keras.layers.Dropout layer; MC dropout "
                         "samples the dropout masks it was trained with")
    other = [f"{layer.name} ({type(layer).__name__})" for layer in layers
             if isinstance(layer, keras.layers.Dropout) and (
                 type(layer) is not keras.layers.Dropout or layer.noise_shape is not None)]
    if other:
        raise ValueError(f"MC dropout supports plain keras.layers.Dropout layers (no "
                         f"noise_shape); model {model.name!r} has {other}")
    index = {id(layer): i for i, layer in enumerate(
        layer for layer in layers if type(layer) is keras.layers.Dropout)}

    def replace(layer):
        if id(layer) in index:
            layer_seed = None if seed is None else seed + index[id(layer)]
            return MCDropout(layer.rate if rate is None else rate, seed=layer_seed,
                             name=layer.name)
        return None if weight_decay is None else regularized(layer, *weight_decay)

    return rebuild(model, replace)[0]
