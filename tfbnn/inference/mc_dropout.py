"""Monte Carlo dropout (Gal & Ghahramani, 2016)."""

from __future__ import annotations

import keras

from tfbnn import models
from tfbnn.convert.dropout import dropout_layers, with_mc_dropout
from tfbnn.inference.base import INFERENCE, FitSettings, check_likelihood
from tfbnn.inference.stochastic import StochasticNetworkInference
from tfbnn.layers.dropout import MCDropout
from tfbnn.models import check_hidden_units
from tfbnn.validation import check_positive, check_probability


def dropout_mlp(n_features: int, likelihood, n_targets: int, *, hidden_units=(50,),
                activation="relu", rate=0.05, kernel_regularizer=None,
                bias_regularizer=None, input_dropout=True, seed=None) -> keras.Sequential:
    """An MLP with `MCDropout(rate)` before every Dense layer (inputs included, as in
    the paper's UCI networks), emitting `likelihood`'s parameters."""
    layers = [keras.Input((n_features,))]
    widths = [*check_hidden_units(hidden_units), likelihood.n_network_outputs(n_targets)]
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        layer_seed = None if seed is None else seed + i
        init = "glorot_uniform" if seed is None else keras.initializers.GlorotUniform(layer_seed)
        if i or input_dropout:
            layers.append(MCDropout(rate, seed=layer_seed))
        layers.append(keras.layers.Dense(
            width, activation=None if last else activation, kernel_initializer=init,
            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
        ))
    layers.extend(likelihood.output_layers(n_targets))
    return keras.Sequential(layers, name="mc_dropout_mlp")


def network_dropout_rate(network) -> float:
    """The largest dropout rate of a user's network; a ValueError if it has no dropout
    layer (MC dropout would have nothing to sample)."""
    layers = dropout_layers(network)
    if not layers:
        raise ValueError(
            "inference='mc_dropout' samples the network's dropout masks, and this network "
            "has no Dropout layer: add keras.layers.Dropout where units should be dropped "
            "(e.g. before each Dense layer), or choose another inference ('vi', "
            "'ensemble', 'swag', 'laplace')")
    return max(layer.rate for layer in layers)


@INFERENCE.register("mc_dropout")
class MCDropoutInference(StochasticNetworkInference):
    """Dropout training read as variational inference; dropout stays on to predict.

    Every Dense layer is preceded by an `MCDropout` layer (inputs optionally) and
    carries the weight decay that makes dropout training the variational objective
    of a Gaussian prior with length-scale `l`. Prediction draws `S` dropout masks,
    one per posterior sample, in one vectorised call.

    #### Mathematical details

    Gal & Ghahramani minimise `(1/2N) sum ||y - f(x)||^2 + lambda sum ||W||^2`
    with weight decay `lambda = p l^2 / (2 N tau)`, where `p = 1 - dropout_rate` is
    the keep probability and `tau` the noise precision: the squared error is the
    Gaussian negative log-likelihood divided by `tau`. tfbnn's training loss is the
    mean negative log-likelihood itself (`tau/2 ||y - f||^2` for a Gaussian), so in
    its units the same objective has

        kernels: lambda = p l^2 / (2N),   biases: l^2 / (2N)

    (the biases are not dropped), independent of `tau`. The noise precision is then
    the likelihood's business: learned with the network for the estimators' default
    `Gaussian(trainable=True)`, or given through a fixed-scale likelihood
    (`likelihood=Gaussian(scale=1 / sqrt(tau))`, in the target's units). The same
    decay serves every tfbnn likelihood (Student-t, heteroscedastic, Poisson,
    Bernoulli, Categorical) as the KL term of the same approximate posterior.

    With an estimator's own `network=fn`, the network's own Dropout layers are
    sampled: each `keras.layers.Dropout` becomes an `MCDropout` of the same rate
    (`dropout_rate` and `input_dropout` shape tfbnn's MLP only), and every weight
    gets the decay above with the network's dropout rate as `p` (the largest rate,
    if they differ; biases, normalisation scales and offsets without `p`). A
    network without Dropout is refused.

    Args:
        dropout_rate: probability of dropping a unit, in (0, 1). The paper's UCI grid
            is 0.005, 0.01, 0.05, 0.1; default 0.05.
        length_scale: the prior length-scale `l` > 0 (the paper uses 1e-2 with
            standardised inputs).
        input_dropout: also drop input features, as the paper's UCI networks do. With
            one or two inputs this is harsh (a dropped input leaves the network only
            its bias) and hides the growth of the uncertainty away from the data;
            set it False there.
        jit_compile: train with XLA.

    #### References

    [1]: Yarin Gal and Zoubin Ghahramani. Dropout as a Bayesian Approximation:
         Representing Model Uncertainty in Deep Learning. In _ICML_, 2016.
         https://arxiv.org/abs/1506.02142
    """

    name = "mc_dropout"

    def __init__(self, dropout_rate: float = 0.05, length_scale: float = 1e-2,
                 input_dropout: bool = True, jit_compile: bool = True):
        self.input_dropout = bool(input_dropout)
        self.dropout_rate = check_probability("dropout_rate", dropout_rate)
        self.length_scale = check_positive("length_scale", length_scale)
        self.jit_compile = bool(jit_compile)

    def get_config(self):
        return {
            "dropout_rate": self.dropout_rate,
            "length_scale": self.length_scale,
            "input_dropout": self.input_dropout,
            "jit_compile": self.jit_compile,
        }

    def weight_decay(self, n_train: int, rate: float | None = None) -> tuple[float, float]:
        """`(kernel, bias)` L2 coefficients for `n_train` examples and the dropout `rate`
        (default `dropout_rate`); see the class docs."""
        rate = self.dropout_rate if rate is None else rate
        bias = self.length_scale**2 / (2.0 * n_train)
        return (1.0 - rate) * bias, bias

    def build_network(self, input_shape, n_targets, likelihood, settings: FitSettings,
                      n_train: int):
        check_likelihood(likelihood)
        if settings.network is not None:
            network = models.network(input_shape, n_targets, likelihood, settings,
                                     seed=settings.seed, name="mc_dropout_network")
            decay = self.weight_decay(n_train, network_dropout_rate(network))
            return with_mc_dropout(network, seed=settings.seed, weight_decay=decay)
        kernel_decay, bias_decay = self.weight_decay(n_train)
        return dropout_mlp(
            models.mlp_width(input_shape), likelihood, n_targets,
            hidden_units=settings.hidden_units,
            activation=settings.activation,
            rate=self.dropout_rate,
            input_dropout=self.input_dropout,
            kernel_regularizer=keras.regularizers.L2(kernel_decay),
            bias_regularizer=keras.regularizers.L2(bias_decay),
            seed=settings.seed,
        )
