"""Builders of the networks the estimators train."""

from __future__ import annotations

import inspect

import keras

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


def network(n_features: int, n_targets: int, likelihood, settings, *, seed=None,
            name: str = "mlp") -> keras.Sequential:
    """The deterministic MLP of `settings` (hidden units, activation) emitting `likelihood`'s
    parameters: what ensembles, SWAG, Laplace and the samplers put their posterior on."""
    return mlp(
        n_features,
        likelihood.n_network_outputs(n_targets),
        hidden_units=settings.hidden_units,
        activation=settings.activation,
        output_layers=likelihood.output_layers(n_targets),
        name=name,
        seed=seed,
    )


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
