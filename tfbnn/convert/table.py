"""Which Keras layers `bayesianize` converts, into which tfbnn layers, and how.

`CONVERSIONS` maps a Keras layer class to its variational counterparts by gradient
estimator. Adding a layer kind is one entry: the tfbnn class takes the Keras
layer's architecture arguments (its constructor names them) and holds its weights
as posteriors `NAME_loc` / `NAME_rho` with the Keras layer's `NAME` layout.

A Keras layer's `get_config()` becomes the tfbnn layer's arguments by these rules:

* a weight regularizer is dropped, with a warning if it was set: the prior's KL
  term takes the place of weight decay;
* a constraint, a LoRA rank or a quantization is refused with a ValueError
  naming the layer unless unset: the variational layer could not honour it;
* an entry the tfbnn class takes (units, activation, filters, ...) is passed on;
* any other entry is dropped if it is an initializer (the trained weights are
  copied over it) or unset (None, or the Keras default), and refused otherwise.
"""

from __future__ import annotations

import inspect

import keras

from tfbnn.layers.conv import (
    Conv1DFlipout,
    Conv1DReparameterization,
    Conv2DFlipout,
    Conv2DReparameterization,
    Conv3DFlipout,
    Conv3DReparameterization,
)
from tfbnn.layers.recurrent import (
    GRUFlipout,
    GRUReparameterization,
    LSTMFlipout,
    LSTMReparameterization,
)
from tfbnn.layers.variational import (
    DenseFlipout,
    DenseLocalReparameterization,
    DenseReparameterization,
)

#: Keras layer class -> {gradient estimator: tfbnn variational layer class}.
CONVERSIONS = {
    keras.layers.Dense: {
        "reparameterization": DenseReparameterization,
        "flipout": DenseFlipout,
        "local_reparameterization": DenseLocalReparameterization,
    },
    keras.layers.Conv1D: {"reparameterization": Conv1DReparameterization, "flipout": Conv1DFlipout},
    keras.layers.Conv2D: {"reparameterization": Conv2DReparameterization, "flipout": Conv2DFlipout},
    keras.layers.Conv3D: {"reparameterization": Conv3DReparameterization, "flipout": Conv3DFlipout},
    keras.layers.LSTM: {"reparameterization": LSTMReparameterization, "flipout": LSTMFlipout},
    keras.layers.GRU: {"reparameterization": GRUReparameterization, "flipout": GRUFlipout},
}

#: Entries every Keras layer's config has, which every layer takes.
LAYER_ENTRIES = ("name", "trainable", "dtype")
#: Entries that only shape the initial weights, which are copied over anyway.
INITIALISATION_ENTRIES = ("unit_forget_bias",)
#: Entries a variational layer cannot honour, even where its signature names them
#: (as do constraints, `*_constraint`): refused unless unset.
REFUSED_ENTRIES = ("lora_rank", "lora_alpha", "quantization_config")


def estimators(layer) -> dict | None:
    """`{estimator: tfbnn class}` for `layer`'s exact class, or None if not convertible.

    Subclasses of a Keras layer are not converted: their `call` may differ.
    """
    return CONVERSIONS.get(type(layer))


def estimator_names() -> list[str]:
    """Every gradient estimator some conversion offers."""
    return sorted({name for row in CONVERSIONS.values() for name in row})


def convertible_types() -> list[str]:
    """The names of the Keras layer classes `bayesianize` converts."""
    return [cls.__name__ for cls in CONVERSIONS]


def _parameters(cls) -> dict:
    return {name: p for name, p in inspect.signature(cls).parameters.items()
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def variational_arguments(layer, cls) -> tuple[dict, list[str]]:
    """The arguments of `cls` that rebuild `layer`'s architecture, and the names of the
    regularizers dropped (see the module docs)."""
    accepted = _parameters(cls)
    defaults = _parameters(type(layer))
    arguments, dropped = {}, []
    for key, value in layer.get_config().items():
        unset = value is None or (key in defaults and _equal(value, defaults[key].default))
        if key.endswith("_regularizer"):
            if value is not None:
                dropped.append(key)
        elif key.endswith("_constraint") or key in REFUSED_ENTRIES:
            if not unset:
                raise ValueError(_refusal(layer, cls, key, value))
        elif key in accepted or key in LAYER_ENTRIES:
            arguments[key] = value
        elif not (unset or key.endswith("_initializer") or key in INITIALISATION_ENTRIES):
            raise ValueError(_refusal(layer, cls, key, value))
    return arguments, dropped


def _refusal(layer, cls, key, value) -> str:
    return (f"Layer {layer.name!r} ({type(layer).__name__}) has {key}={value!r}, which "
            f"{cls.__name__} cannot honour; rebuild the layer without it, or leave the layer "
            "out of `layers`")


def _equal(value, default) -> bool:
    try:
        return bool(value == default)
    except (TypeError, ValueError):
        return False
