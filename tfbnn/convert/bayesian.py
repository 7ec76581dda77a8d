"""`bayesianize`: a trained (or untrained) Keras model made Bayesian, layer by layer."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from tfbnn import priors as priors_lib
from tfbnn.convert.rebuild import check_model, rebuild, walk_layers
from tfbnn.convert.table import (
    convertible_types,
    estimator_names,
    estimators,
    variational_arguments,
)
from tfbnn.layers.heads import raw_for_scale
from tfbnn.validation import check_int, check_non_negative, check_positive

#: The floor under MOPED's posterior scales `delta * |w|` (a zero weight needs some spread).
MOPED_MIN_SCALE = 1e-6


def bayesianize(model, layers="all", *, estimator="flipout", prior=None, kl_weight=None,
                moped_delta=None, prior_from_weights=False, posterior_scale_init=1e-3,
                seed=None) -> keras.Model:
    """A new model whose chosen layers are tfbnn variational layers.

    Every convertible layer (`tfbnn.convert.CONVERSIONS`: Dense, LSTM, GRU) that
    `layers` selects becomes the variational layer of `estimator`, with the same
    architecture (see `tfbnn.convert.table` for which options carry over) and the
    original weights as posterior means. Every other layer (normalisation,
    pooling, dropout, custom layers, ...) is copied with its weights; nested
    Sequential and functional models are converted too. `model` is not changed.
    The result compiles, fits, saves as `.keras` and loads with `safe_mode=True`.

    With `moped_delta` the posterior scales come from the weights (MOPED [1]):
    each weight `w` gets `Normal(w, delta * |w|)` (at least `MOPED_MIN_SCALE`);
    otherwise every scale is `posterior_scale_init`. With `prior_from_weights`
    the prior is centred on the weights, `prior(w_i - w)`, as MOPED's empirical
    prior does; otherwise it is `prior` itself (zero-mean for tfbnn's priors).

    Args:
        model: a built Sequential or functional Keras model (layers inside a
            subclassed model are not converted).
        layers: "all" convertible layers; a list of layer names; or an int `k`,
            the last `k` convertible layers (e.g. 1: Bayesian last layer).
        estimator: the gradient estimator, "flipout" (default),
            "reparameterization" or "local_reparameterization" (dense layers
            only); or a dict from Keras class name to estimator, e.g.
            `{"Dense": "local_reparameterization", "Conv2D": "flipout"}`.
        prior: the weight prior (`tfbnn.priors.get`: None is Normal(0, 1)).
        kl_weight: the factor on every converted layer's KL loss, e.g. `1 / n_train`
            to train on the per-example ELBO; None keeps the layers' default 1.
        moped_delta: MOPED's relative posterior scale `delta > 0`, or None.
        prior_from_weights: centre each weight's prior on its value.
        posterior_scale_init: the posterior scale of every weight without MOPED.
        seed: seeds the converted layers' weight noise (`seed + i` for the i-th).

    Returns:
        The new Keras model.

    Raises:
        ValueError: an unbuilt model, nothing to convert, an unknown or
            unconvertible layer name, `k` larger than the convertible layer count,
            an estimator a layer does not have, or a layer option the variational
            layer cannot honour (a constraint, LoRA).
        TypeError: not a Sequential or functional Keras model.

    Example:
        >>> import keras, numpy as np, tfbnn
        >>> net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
        ...                         keras.layers.Dense(1)])
        >>> bnn = tfbnn.bayesianize(net, moped_delta=0.1, kl_weight=1 / 100)
        >>> [type(layer).__name__ for layer in bnn.layers]
        ['DenseFlipout', 'DenseFlipout']
        >>> tuple(tfbnn.layers.sample_outputs(bnn, np.zeros((4, 3), "float32"), 5).shape)
        (5, 4, 1)

    #### References

    [1]: Ranganath Krishnan, Mahesh Subedar and Omesh Tickoo. Specifying Weight
         Priors in Bayesian Deep Neural Networks with Empirical Bayes. In _AAAI_,
         2020. https://arxiv.org/abs/1906.05323
    """
    check_model(model)
    chosen = select_layers(model, layers)
    options = layer_options(prior, kl_weight, posterior_scale_init, prior_from_weights)
    moped_delta = None if moped_delta is None else check_positive("moped_delta", moped_delta)
    seed = None if seed is None else check_int("seed", seed)
    plans = conversion_plans(chosen, estimator, options, seed)

    def replace(layer):
        if id(layer) not in plans:
            return None
        cls, arguments = plans[id(layer)]
        return cls(**arguments)

    new_model, pairs = rebuild(model, replace)
    for old, new in pairs:
        if id(old) in plans:
            set_posterior(new, old, moped_delta, prior_from_weights)
    return new_model


def layer_options(prior, kl_weight, posterior_scale_init, prior_from_weights) -> dict:
    """The arguments every converted layer shares, checked."""
    options = {
        "prior": priors_lib.get(prior),
        "posterior_scale_init": check_positive("posterior_scale_init", posterior_scale_init),
        "prior_centered": bool(prior_from_weights),
    }
    if kl_weight is not None:
        options["kl_weight"] = check_non_negative("kl_weight", kl_weight)
    return options


def conversion_plans(chosen, estimator, options: dict, seed) -> dict:
    """`id(layer) -> (tfbnn class, its arguments)` for every chosen layer, all checked
    before anything is copied; warns (at `bayesianize`'s caller) of dropped regularizers."""
    plans = {}
    for i, layer in enumerate(chosen):
        cls = layer_class(layer, estimator)
        arguments, dropped = variational_arguments(layer, cls)
        if dropped:
            warnings.warn(
                f"Layer {layer.name!r}: {', '.join(dropped)} dropped; the prior's KL term "
                "takes the place of weight decay in a variational layer", stacklevel=3)
        layer_seed = None if seed is None else seed + i
        plans[id(layer)] = (cls, {**arguments, **options, "seed": layer_seed})
    return plans


def convertible_layers(model) -> list:
    """The layers of `model` that `bayesianize` can convert, in the model's order."""
    return [layer for layer in walk_layers(model) if estimators(layer) is not None]


def select_layers(model, layers) -> list:
    """The convertible layers that `layers` ("all", names, or a count from the end) picks."""
    candidates = convertible_layers(model)
    if not candidates:
        raise ValueError(
            f"Model {model.name!r} has no layer bayesianize can convert (it converts "
            f"{convertible_types()})")
    if isinstance(layers, str) and layers == "all":
        return candidates
    if isinstance(layers, int) and not isinstance(layers, bool):
        if not 1 <= layers <= len(candidates):
            raise ValueError(
                f"layers={layers} asks for the last {layers} convertible layers; model "
                f"{model.name!r} has {len(candidates)}: {[c.name for c in candidates]}")
        return candidates[-layers:]
    if isinstance(layers, str) or not isinstance(layers, list | tuple):
        raise TypeError(f"layers must be 'all', a list of layer names or an int, got {layers!r}")
    by_name = {layer.name: layer for layer in walk_layers(model)}
    for name in layers:
        if name not in by_name:
            raise ValueError(
                f"Unknown layer name {name!r}; the convertible layers of model "
                f"{model.name!r} are {[c.name for c in candidates]}")
        if estimators(by_name[name]) is None:
            raise ValueError(
                f"Layer {name!r} is a {type(by_name[name]).__name__}, which bayesianize "
                f"cannot convert; it converts {convertible_types()}")
    wanted = set(layers)
    return [layer for layer in candidates if layer.name in wanted]


def layer_class(layer, estimator):
    """The tfbnn class that `layer` becomes under `estimator` (a name or a dict by class)."""
    row = estimators(layer)
    kind = type(layer).__name__
    if isinstance(estimator, dict):
        if kind not in estimator:
            raise ValueError(
                f"estimator has no entry for layer {layer.name!r}'s class {kind!r}; it maps "
                f"{sorted(estimator)}")
        name = estimator[kind]
    elif isinstance(estimator, str):
        name = estimator
    else:
        raise TypeError(f"estimator must be a name or a dict by layer class, got {estimator!r}")
    if name not in row:
        if name not in estimator_names():
            raise ValueError(f"Unknown estimator={name!r}; expected one of {estimator_names()}")
        raise ValueError(
            f"Layer {layer.name!r} ({kind}) has no {name!r} estimator; expected one of "
            f"{sorted(row)}")
    return row[name]


def keras_weight(layer, name: str) -> np.ndarray:
    """The Keras layer's weight `name` (`kernel`, `bias`, ...; a recurrent layer keeps
    them on its cell)."""
    owner = layer if hasattr(layer, name) else getattr(layer, "cell", layer)
    return keras.ops.convert_to_numpy(getattr(owner, name))


def set_posterior(new, old, moped_delta, prior_from_weights: bool) -> None:
    """Copies `old`'s weights into `new`'s posterior means (and prior centres), and
    MOPED's scales `delta * |w|` when `moped_delta` is set."""
    for name in new.posterior_names:
        weight = keras_weight(old, name)
        loc = getattr(new, f"{name}_loc")
        if tuple(loc.shape) != weight.shape:
            raise ValueError(
                f"Layer {old.name!r}: {name} of shape {weight.shape} does not fit "
                f"{type(new).__name__}'s {name}_loc of shape {tuple(loc.shape)}")
        loc.assign(weight)
        if moped_delta is not None:
            scale = np.maximum(moped_delta * np.abs(weight), MOPED_MIN_SCALE)
            getattr(new, f"{name}_rho").assign(raw_for_scale(scale).astype(np.float32))
        if prior_from_weights:
            new.set_prior_loc(name, weight)
