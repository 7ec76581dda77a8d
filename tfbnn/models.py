"""Builders of the networks the estimators train: tfbnn's MLPs, and the user's own
architecture (`network=fn`) with the likelihood's output layers appended."""

from __future__ import annotations

import inspect
import random

import keras

from tfbnn.convert.rebuild import is_graph_model, walk_layers, with_weight_decay
from tfbnn.layers.variational import (
    DenseFlipout,
    DenseLocalReparameterization,
    DenseReparameterization,
)
from tfbnn.validation import check_option

#: Gradient estimators of the variational layers, by the names TFP users know.
VARIATIONAL_LAYERS = {
    "reparameterization": DenseReparameterization,
    "flipout": DenseFlipout,
    "local_reparameterization": DenseLocalReparameterization,
}


def check_hidden_units(hidden_units) -> tuple[int, ...]:
    """Validates a sequence of hidden-layer widths (may be empty: a linear model)."""
    if isinstance(hidden_units, int):
        hidden_units = (hidden_units,)
    try:
        units = tuple(hidden_units)
    except TypeError:
        raise ValueError(f"hidden_units must be a sequence of positive integers, got {hidden_units!r}") from None
    for u in units:
        if isinstance(u, bool) or not isinstance(u, int) or u < 1:
            raise ValueError(f"hidden_units must be positive integers, got {hidden_units!r}")
    return units


def check_input_shape(input_shape) -> tuple[int, ...]:
    """One example's shape as a tuple of positive ints (an int `n` is `(n,)`)."""
    shape = (input_shape,) if isinstance(input_shape, int) else input_shape
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(f"input_shape must be a tuple of positive integers, got {input_shape!r}")
    return shape


def mlp_width(input_shape) -> int:
    """The input width of an MLP on examples of `input_shape`: `(n_features,)` only."""
    input_shape = check_input_shape(input_shape)
    if len(input_shape) != 1:
        raise ValueError(
            f"tfbnn's MLP takes rows of features, x of shape (n, n_features); got examples "
            f"of shape {input_shape}: give a network= for other inputs")
    return input_shape[0]


class UnsavedNetwork:
    """Stands for the `network` function of an estimator loaded from disk.

    Functions are not saved (tfbnn never pickles); the fitted Keras models, which
    hold the architecture, are. The loaded estimator predicts, calibrates and
    saves as before; fitting it again needs the function:
    `estimator.set_params(network=fn)`.
    """

    def __init__(self, name: str):
        self.name = str(name)

    @property
    def message(self) -> str:
        return (f"This estimator's network function {self.name!r} was not saved with it "
                "(functions are not stored; the fitted model is): pass it again, "
                "estimator.set_params(network=fn), to fit")

    def __call__(self, *args, **kwargs):
        raise ValueError(self.message)

    def __repr__(self) -> str:
        return f"UnsavedNetwork({self.name!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, UnsavedNetwork) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("UnsavedNetwork", self.name))


def network_name(fn) -> str:
    """A readable name of a network function, `module.qualified_name` where it has one."""
    if isinstance(fn, UnsavedNetwork):
        return fn.name
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else repr(fn)


def check_network(network):
    """`network` if it is None or a function; a ValueError if it is a loaded estimator's
    `UnsavedNetwork` (fitting needs the function again) or not callable."""
    if isinstance(network, UnsavedNetwork):
        raise ValueError(network.message)
    if network is not None and not callable(network):
        raise ValueError(
            "network must be None (tfbnn's MLP) or a function (input_shape, n_outputs) -> "
            f"keras.Model, got {network!r}")
    return network


def user_network(fn, input_shape, n_outputs: int, *, seed=None) -> keras.Model:
    """`fn(input_shape, n_outputs)`, checked: a built Keras model from examples of
    `input_shape` to `n_outputs` outputs.

    With `seed`, Python's `random` is seeded around the call and restored after:
    Keras draws the seeds of unseeded initializers (and layers' seed generators)
    from it, so a seed gives the same initial weights every time and other seeds
    (ensemble members) give other ones. Initializers given their own seed keep it.
    """
    check_network(fn)
    input_shape = check_input_shape(input_shape)
    state = random.getstate()
    try:
        if seed is not None:
            random.seed(seed)
        model = fn(input_shape, int(n_outputs))
    finally:
        if seed is not None:
            random.setstate(state)
    call = f"network(input_shape={input_shape}, n_outputs={n_outputs})"
    if not isinstance(model, keras.Model):
        raise TypeError(f"{call} must return a keras.Model, got {type(model).__name__}")
    if not model.built:
        model.build((None, *input_shape))
    inputs = model.inputs if is_graph_model(model) else [keras.KerasTensor((None, *input_shape))]
    got = tuple(inputs[0].shape[1:]) if len(inputs) == 1 else None
    if got is None or any(g not in (None, d) for g, d in zip(got, input_shape)) or (
            len(got) != len(input_shape)):
        raise ValueError(f"{call} returned a model taking inputs {[i.shape for i in inputs]}; "
                         f"it must take one input of shape (None, *{input_shape})")
    last = walk_layers(model)[-1] if is_graph_model(model) and model.layers else None
    activation = getattr(last, "activation", None)
    if activation is not None and activation is not keras.activations.linear:
        raise ValueError(
            f"{call} returned a model ending in activation "
            f"{getattr(activation, '__name__', activation)!r} (layer {last.name!r}); its outputs "
            "must be linear: they are the likelihood's parameters (logits, locations), which "
            "the likelihood maps itself")
    output = model.compute_output_spec(keras.KerasTensor((None, *input_shape)))
    if not isinstance(output, keras.KerasTensor) or tuple(output.shape[1:]) != (n_outputs,):
        shape = getattr(output, "shape", output)
        raise ValueError(
            f"{call} returned a model with output {shape}; it must end in (None, "
            f"{n_outputs}): n_outputs linear units, the likelihood's parameters (the "
            "estimator appends the likelihood's output layers)")
    return model


def with_heads(model, heads, name: str, input_shape) -> keras.Model:
    """`model` followed by the layers `heads` (a likelihood's output layers), as one flat
    Sequential or functional model where `model` is one (a subclassed model is nested)."""
    if not heads:
        return model
    if isinstance(model, keras.Sequential):
        (inputs,) = model.inputs
        return keras.Sequential(
            [keras.Input(batch_shape=inputs.shape, dtype=inputs.dtype), *model.layers, *heads],
            name=name)
    if is_graph_model(model):
        inputs, outputs = model.inputs, model.outputs[0]
    else:  # subclassed: no graph to extend
        inputs = keras.Input(input_shape)
        outputs = model(inputs)
    for layer in heads:
        outputs = layer(outputs)
    return keras.Model(inputs, outputs, name=name)


def mlp(n_features: int, n_outputs: int, *, hidden_units=(50,), activation="relu",
        output_layers=(), dense=None, name="mlp", seed=None, **dense_kwargs) -> keras.Sequential:
    """A multilayer perceptron: `hidden_units` layers of `dense`, then `n_outputs` linear units.

    Args:
        n_features: input width.
        n_outputs: width of the last (linear) layer.
        hidden_units: widths of the hidden layers.
        activation: hidden-layer activation.
        output_layers: extra Keras layers appended at the end (likelihood heads).
        dense: the dense layer class (`keras.layers.Dense` by default).
        seed: seeds the weight initialisers (and the layers' noise, where they take a
            `seed`), varied per layer.
        dense_kwargs: passed to every dense layer.
    """
    dense = dense or keras.layers.Dense
    takes_seed = "seed" in inspect.signature(dense).parameters
    layers = [keras.Input((n_features,))]
    widths = [*check_hidden_units(hidden_units), n_outputs]
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        kwargs = dict(dense_kwargs)
        if seed is not None:
            kwargs.setdefault("kernel_initializer", keras.initializers.GlorotUniform(seed + i))
            if takes_seed:
                kwargs["seed"] = seed + i
        layers.append(dense(width, activation=None if last else activation, **kwargs))
    layers.extend(output_layers)
    return keras.Sequential(layers, name=name)


def network(input_shape, n_targets: int, likelihood, settings, *, seed=None,
            name: str = "mlp", weight_decay: float | None = None) -> keras.Model:
    """The deterministic network of `settings` emitting `likelihood`'s parameters: what
    ensembles, SWAG, Laplace and the samplers put their posterior on.

    Without `settings.network`, the MLP of `settings.hidden_units` and
    `settings.activation`; with it, the user's network (`user_network`). Either
    way the likelihood's output layers come last.

    Args:
        input_shape: one example's shape, e.g. `x.shape[1:]` (an int `n` is `(n,)`).
        n_targets: target dimensions.
        likelihood: a `tfbnn.likelihoods.Likelihood`.
        settings: the `FitSettings` (hidden units, activation, network).
        seed: seeds the initial weights.
        name: the model's name.
        weight_decay: L2 decay on every weight (the MAP of a Normal prior), or None.
    """
    input_shape = check_input_shape(input_shape)
    n_outputs = likelihood.n_network_outputs(n_targets)
    heads = likelihood.output_layers(n_targets)
    if settings.network is not None:
        model = user_network(settings.network, input_shape, n_outputs, seed=seed)
        model = with_heads(model, heads, name, input_shape)
        return model if weight_decay is None else with_weight_decay(model, weight_decay)
    decay = {} if weight_decay is None else {
        "kernel_regularizer": keras.regularizers.L2(weight_decay),
        "bias_regularizer": keras.regularizers.L2(weight_decay)}
    return mlp(mlp_width(input_shape), n_outputs, hidden_units=settings.hidden_units,
               activation=settings.activation, output_layers=heads, name=name, seed=seed,
               **decay)


def bayesian_mlp(n_features: int, likelihood, n_targets: int = 1, *, hidden_units=(50,),
                 activation="relu", estimator="local_reparameterization", prior=None,
                 kl_weight=1.0, posterior_scale_init=1e-3, seed=None) -> keras.Sequential:
    """A mean-field variational MLP whose outputs are `likelihood`'s parameters.

    Args:
        n_features: input width.
        likelihood: a `tfbnn.likelihoods.Likelihood`; sets the output width and heads.
        n_targets: target dimensions.
        hidden_units, activation: the hidden layers.
        estimator: the gradient estimator, one of `VARIATIONAL_LAYERS`.
        prior: the weight prior (see `tfbnn.priors.get`).
        kl_weight: weight of each layer's KL loss; `1 / n_train` gives the ELBO per example.
        posterior_scale_init: initial posterior standard deviation of the weights.
        seed: seeds the layers' sampling noise.
    """
    check_option("estimator", estimator, VARIATIONAL_LAYERS)
    return mlp(
        n_features,
        likelihood.n_network_outputs(n_targets),
        hidden_units=hidden_units,
        activation=activation,
        output_layers=likelihood.output_layers(n_targets),
        dense=VARIATIONAL_LAYERS[estimator],
        name="bayesian_mlp",
        prior=prior,
        kl_weight=kl_weight,
        posterior_scale_init=posterior_scale_init,
        seed=seed,
    )
