"""Rebuilding a Keras model layer by layer: a copy with some layers replaced.

`rebuild` is what `bayesianize` (Dense -> a variational layer), MC dropout on a
user's network (Dropout -> `MCDropout`) and weight decay on a user's network
(the same layers with L2 regularizers) share. It runs `keras.models.clone_model`,
which keeps a functional model's graph (shared layers stay shared, nested
Sequential and functional models are rebuilt too), and copies the weights of
every layer that keeps its class, so the copy computes what the original did.
"""

from __future__ import annotations

import keras
from keras.src.models.functional import Functional

#: Regularizers of the weights that are not multiplied by inputs (Gal & Ghahramani's
#: MC dropout decays them without the keep probability).
BIAS_REGULARIZERS = ("bias_regularizer", "beta_regularizer", "gamma_regularizer")


def is_graph_model(layer) -> bool:
    """Whether `layer` is a Sequential or functional Keras model, whose layers are known."""
    return isinstance(layer, keras.Sequential | Functional)


def walk_layers(model) -> list:
    """The layers of `model` in its order, those of nested Sequential and functional
    models in their place (subclassed models count as one layer: their insides are
    not known), each once."""
    found, seen = [], set()

    def visit(parent):
        for layer in parent.layers:
            if isinstance(layer, keras.layers.InputLayer) or id(layer) in seen:
                continue
            seen.add(id(layer))
            if is_graph_model(layer):
                visit(layer)
            else:
                found.append(layer)

    visit(model)
    return found


def check_model(model, what: str = "model") -> None:
    """Refuses what `rebuild` cannot copy: not a Keras model, not built, subclassed."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"{what} must be a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(
            f"{what} {model.name!r} is not built: give it an Input (keras.Input) or call "
            "it once on data first")
    if not is_graph_model(model):
        raise TypeError(
            f"{what} {model.name!r} is a subclassed {type(model).__name__}, whose layers "
            "Keras cannot rebuild; write it as a Sequential or functional model")


def clone_layer(layer):
    """A fresh layer from `layer`'s config (no weights yet), with a clear error when the
    config does not rebuild it (a custom layer without a complete `get_config`)."""
    try:
        return type(layer).from_config(layer.get_config())
    except (TypeError, ValueError, NotImplementedError) as err:
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) cannot be rebuilt from its "
            f"config ({err}); give it a get_config() returning every constructor argument"
        ) from None


def same_inputs(model):
    """New inputs of a functional model's shapes and names (`clone_model`'s own are
    renamed), or None for a Sequential model, whose clone keeps them."""
    if not isinstance(model, Functional):
        return None
    names = {id(layer.output): layer.name for layer in model.layers
             if isinstance(layer, keras.layers.InputLayer)}
    return keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=names.get(id(t))),
        model.input)


def rebuild(model, replace):
    """A copy of `model` in which each layer `l` with `replace(l)` not None becomes
    that layer; every other layer is cloned from its config.

    Every new layer of the same class as its original gets the original's weights
    (all of them, normalisation statistics included); other replacements are left
    to the caller.

    Args:
        model: a built Sequential or functional Keras model.
        replace: `layer -> new layer or None`, called once per layer (nested
            models' layers included, shared layers once).

    Returns:
        The new model and the `(old, new)` layer pairs.
    """
    check_model(model)
    pairs = []

    def clone(layer):
        new = replace(layer)
        new = clone_layer(layer) if new is None else new
        pairs.append((layer, new))
        return new

    new_model = keras.models.clone_model(model, input_tensors=same_inputs(model),
                                         clone_function=clone, recursive=True)
    for old, new in pairs:
        if type(new) is type(old):
            new.set_weights(old.get_weights())
    return new_model, pairs


def regularized(layer, kernel: float, bias: float):
    """`layer` rebuilt with L2 weight decay: `bias` on its biases and normalisation
    offsets and scales, `kernel` on its other weights (kernels, recurrent kernels,
    embeddings: the config's other `*_regularizer` entries); None if it has no
    weight regularizer to set."""
    config = layer.get_config()
    keys = [k for k in config if k.endswith("_regularizer") and k != "activity_regularizer"]
    if not keys:
        return None
    for key in keys:
        config[key] = keras.regularizers.L2(bias if key in BIAS_REGULARIZERS else kernel)
    return type(layer).from_config(config)


def with_weight_decay(model, kernel: float, bias: float | None = None):
    """A copy of `model` (same weights) with L2 decay `kernel` on every weight matrix and
    `bias` (default: `kernel`) on every other weight of its layers; replaces the
    layers' own regularizers (the decay stands for a Normal prior on every weight)."""
    bias = kernel if bias is None else bias
    return rebuild(model, lambda layer: regularized(layer, kernel, bias))[0]
