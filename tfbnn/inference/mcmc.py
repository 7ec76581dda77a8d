"""What the samplers share: the log posterior of a network's flat weights, where chains
start, and the stored draws behind the predictive API.

HMC/NUTS (`tfbnn.inference.hmc`) and SG-MCMC (`tfbnn.inference.sgmcmc`) sample the
weights `theta` of one deterministic network, flattened into a vector
(`tfbnn.functional.FunctionalModel`). Both target the density of `LogPosterior`,
keep a set of draws, and predict by running the network once per kept draw
(`SampledPosterior`).

#### Mathematical details

With `w` the network weights and `r` the raw weights of a learned homoscedastic
noise scale `sigma = s(r)` (`Likelihood.noise_scale`), the unnormalised log
posterior is

    log p(theta | D) = log p(w) + log p(r) + sum_n log p(y_n | x_n, theta).

The noise precision `tau = sigma**-2` has a conjugate-style `Gamma(a, b)` prior;
the samplers move in the unconstrained `r`, so its density picks up the Jacobian
`|d tau / d r| = 2 sigma**-3 s'(r)` (change of variables).

#### References

Neal, "Bayesian Learning for Neural Networks", 1996 (Gamma priors on noise
precisions of Bayesian networks).

Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015 (the MAP start,
`map_estimate`: Keras' Adam through `tfbnn.optimizers.FlatOptimizer`).

Hernández-Lobato & Adams, "Probabilistic backpropagation for scalable learning of
Bayesian neural networks", ICML 2015 (a Gamma prior on the noise precision, in the
UCI regression protocol the benchmarks follow).
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfbnn import compiled
from tfbnn import priors as priors_lib
from tfbnn.functional import FunctionalModel, architecture_key, map_params
from tfbnn.inference.base import MODEL_FILE, Inference, load_network
from tfbnn.inference.inference_data import to_inference_data
from tfbnn.optimizers import FlatOptimizer, program_key
from tfbnn.validation import check_positive

tfd = tfp.distributions

#: The file a sampler saves its draws (and scalar diagnostics) in.
DRAWS_FILE = "draws.npz"
#: Where chains start: "map" (Glorot-uniform weights, then optimised by HMC) or "prior".
INITS = ("map", "prior")
#: Adam step size of the MAP initialisation (full batch, standardised data).
MAP_LEARNING_RATE = 1e-2


def check_gamma_prior(value) -> tuple[float, float]:
    """Validates `noise_precision_prior = (concentration, rate)`: two positive numbers."""
    try:
        concentration, rate = value
        return (check_positive("noise_precision_prior concentration", concentration),
                check_positive("noise_precision_prior rate", rate))
    except (TypeError, ValueError):
        raise ValueError(
            f"noise_precision_prior must be a pair (concentration, rate) of positive numbers, "
            f"got {value!r}"
        ) from None


def check_full_batch_size(n_weights: int, max_weights: int, n_rows: int,
                          max_gradients: int) -> None:
    """Refuses full-batch sampling of more than `max_weights` weights, saying why (each
    step a gradient over all `n_rows` rows, up to `max_gradients` per draw) and what
    to use instead."""
    if n_weights <= max_weights:
        return
    raise ValueError(
        f"inference='hmc' samples all {n_weights} weights of this network, more than "
        f"max_weights={max_weights}: every leapfrog step is a gradient over all {n_rows} "
        f"rows, up to {max_gradients} of them per draw, and NUTS mixes slowly in so many "
        "dimensions. Use inference='sgmcmc' (minibatch gradients), 'laplace' (last "
        "layer) or 'ensemble'; or raise max_weights in inference_options if you mean it")


class LogPosterior:
    """Unnormalised log posterior of a deterministic network's flat parameter vector.

    See the module docstring for the density. The noise weights are those the
    likelihood names (`Likelihood.noise_variables`); every other weight has `prior`.

    Args:
        model: a built Keras model whose outputs are the likelihood's parameters.
        likelihood: a `tfbnn.likelihoods.Likelihood`.
        prior: a `tfbnn.priors.Prior` (or a name) on every weight except the noise.
        noise_precision_prior: `(concentration, rate)` of the Gamma prior on `tau`.
    """

    def __init__(self, model, likelihood, prior=None, noise_precision_prior=(3.0, 1.0)):
        self.functional = FunctionalModel(model)
        self.likelihood = likelihood
        self.prior = priors_lib.get(prior)
        self.noise_precision_prior = tuple(float(v) for v in noise_precision_prior)
        noise = likelihood.noise_variables(model)
        is_noise = np.concatenate([
            np.full(size, any(variable is v for v in noise)) for variable, size
            in zip(model.trainable_variables, self.functional.sizes)
        ])
        self.noise_index = np.flatnonzero(is_noise).astype(np.int32)
        self.weight_index = np.flatnonzero(~is_noise).astype(np.int32)

    @property
    def size(self) -> int:
        """The number of parameters `P`."""
        return self.functional.size

    def key(self) -> tuple:
        """What compiled code evaluating this density depends on (not the weights' values)."""
        return (architecture_key(self.functional.model), repr(self.likelihood),
                repr(self.prior), self.noise_precision_prior)

    def log_prior(self, thetas) -> tf.Tensor:
        """Log prior density of `(..., P)` parameter vectors, shape `(...)`."""
        weights = take(thetas, self.weight_index)
        log_p = tf.reduce_sum(self.prior.to_distribution((), thetas.dtype).log_prob(weights), -1)
        if self.noise_index.size:
            raw = take(thetas, self.noise_index)
            log_p += tf.reduce_sum(self._log_noise_prior(raw), -1)
        return log_p

    def _log_noise_prior(self, raw) -> tf.Tensor:
        """Elementwise log density of raw noise weights: Gamma on `tau = s(r)**-2`, times
        `|d tau / d r| = 2 s(r)**-3 s'(r)`, with `s'` by automatic differentiation
        (`s` acts elementwise, so the gradient of its sum is its derivative)."""
        with tf.GradientTape() as tape:
            tape.watch(raw)
            sigma = self.likelihood.noise_scale(raw)
        slope = tape.gradient(sigma, raw)
        concentration, rate = (tf.cast(v, raw.dtype) for v in self.noise_precision_prior)
        log_jacobian = math.log(2.0) - 3.0 * tf.math.log(sigma) + tf.math.log(slope)
        return tfd.Gamma(concentration, rate).log_prob(sigma**-2) + log_jacobian

    def log_likelihood(self, thetas, x, y) -> tf.Tensor:
        """Summed log-likelihood of `(x, y)` under each of `(M, P)` vectors, shape `(M,)`."""
        params = self.functional.map(thetas, x)
        return tf.reduce_sum(self.likelihood.log_prob(y, params), -1)  # y broadcasts to draws

    def __call__(self, thetas, x, y, data_scale=1.0) -> tf.Tensor:
        """`log_prior + data_scale * log_likelihood` of `(M, P)` vectors; `data_scale = N / B`
        turns a minibatch into an unbiased estimate of the full-data term."""
        return self.log_prior(thetas) + data_scale * self.log_likelihood(thetas, x, y)

    def initial_state(self, n: int, init: str, seed) -> np.ndarray:
        """`(n, P)` starting points: Glorot-uniform weights ("map") or prior draws ("prior").

        With "map", weight matrices get fresh Glorot-uniform draws per chain (so
        chains start in different places) and every other weight (biases, the
        noise) keeps the model's initial value.
        """
        rng = np.random.default_rng(seed)
        if init == "prior":
            return self._prior_draws(n, rng)
        parts = []
        for variable in self.functional.model.trainable_variables:
            value = np.broadcast_to(np.asarray(variable), (n, *variable.shape))
            if len(variable.shape) >= 2:
                # Keras' Glorot fans: a convolution kernel's receptive field counts too.
                field = math.prod(variable.shape[:-2])
                limit = math.sqrt(6.0 / (field * (variable.shape[-2] + variable.shape[-1])))
                value = rng.uniform(-limit, limit, value.shape)
            parts.append(np.reshape(value, (n, -1)))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def _prior_draws(self, n, rng):
        theta = np.zeros((n, self.size), np.float32)
        seed = tf.constant(rng.integers(0, 2**31 - 1, size=2), tf.int32)
        dist = self.prior.to_distribution((n, self.weight_index.size), tf.float32)
        theta[:, self.weight_index] = dist.sample(seed=seed).numpy()
        if self.noise_index.size:
            concentration, rate = self.noise_precision_prior
            tau = rng.gamma(concentration, 1.0 / rate, size=(n, self.noise_index.size))
            theta[:, self.noise_index] = self.likelihood.noise_raw(tau**-0.5)
        return theta

    def predictive_mean(self, params) -> tf.Tensor:
        """Per-draw predictive mean (class probabilities for classification), `(..., B, m)`."""
        if self.likelihood.is_classification:
            return self.likelihood.class_probs(params)
        return self.likelihood.distribution(params).mean()


class _MapRunner:
    """Full-batch optimisation of the per-example negative log posterior of each row of
    `theta` `(C, P)`, as one graph: a `tf.while_loop` of Keras optimizer steps."""

    def __init__(self, log_posterior: LogPosterior, optimizer, shape):
        self.log_posterior = log_posterior
        self.optimizer = FlatOptimizer(optimizer, shape)
        self.run = tf.function(self._run, reduce_retracing=True)

    def _run(self, theta, state, x, y, steps):
        n = tf.cast(tf.shape(x)[0], theta.dtype)

        def body(i, theta, state):
            with tf.GradientTape() as tape:
                tape.watch(theta)
                # Per example, so that a step means the same at any data size. Rows
                # are independent and the optimizer elementwise: each chain moves
                # as if optimised alone.
                loss = -tf.reduce_sum(self.log_posterior(theta, x, y)) / n
            theta, state = self.optimizer.apply(state, tape.gradient(loss, theta), theta)
            return i + 1, theta, state

        return tf.while_loop(lambda i, *_: i < steps, body, (tf.constant(0), theta, state))[1]


def map_estimate(log_posterior: LogPosterior, theta, x, y, steps: int) -> tf.Tensor:
    """`steps` full-batch Adam steps (`MAP_LEARNING_RATE`) towards the posterior mode from
    each row of `theta` `(C, P)`; the compiled loop is cached like the sampler's."""
    adam = keras.optimizers.Adam(MAP_LEARNING_RATE)
    runner = cached_runner(
        "hmc_map", log_posterior, (tuple(theta.shape), program_key(adam)),
        lambda: _MapRunner(log_posterior, adam, theta.shape))
    state = runner.optimizer.initial_state(adam)
    return runner.run(theta, state, x, y, tf.constant(steps))


def take(thetas, index: np.ndarray) -> tf.Tensor:
    """`thetas[..., index]`: a slice when `index` is one contiguous run (the usual case: the
    noise weights come last), whose gradient inside a sampler's leapfrog step is a
    cheap pad rather than the scatter a gather's gradient needs."""
    if index.size and np.array_equal(index, np.arange(index[0], index[0] + index.size)):
        return thetas[..., int(index[0]) : int(index[0]) + index.size]
    return tf.gather(thetas, index, axis=-1)


def cached_runner(kind: str, log_posterior: LogPosterior, options: tuple, build):
    """The compiled sampler program of `kind` for this density and `options`, from the
    shared cache (`tfbnn.compiled`), built by `build()` the first time.

    A runner reads its density from `runner.log_posterior`. Its compiled code reads
    the weights through `theta` only, so a model of the same architecture,
    likelihood and prior simply takes the place of the one it was built with.
    """
    runner = compiled.cached((kind, *log_posterior.key(), options), build)
    runner.log_posterior = log_posterior
    return runner


class SampledPosterior(Inference):
    """Shared storage and prediction of methods that keep a set of weight draws.

    Subclasses fill `self.model` (the deterministic network), `self.draws_`
    (`(T, C, P)`: `T` kept draws of `C` chains) and `self.diagnostics_` in `fit`.
    """

    def __init__(self):
        self.model = None
        self.likelihood = None
        self.draws_ = None
        self.diagnostics_ = {}

    def to_inference_data(self):
        """The draws (and the sampler's statistics, if it keeps them) as an
        `arviz.InferenceData`: see `tfbnn.inference.inference_data.to_inference_data`."""
        return to_inference_data(self)

    def _sample_params(self, x, n_samples, seed):
        """`(S, B, k)` parameters from `S` of the stored draws.

        With `n_samples` at most the number stored, a subset without repetition,
        chosen by `seed` (a fixed seed gives the same subset every call; None a
        fresh one). With more, every stored draw is used in turn, cycling, so some
        appear more than once: MCMC cannot give more distinct draws than it kept.
        """
        flat = self.draws_.reshape(-1, self.draws_.shape[-1])
        total = len(flat)
        if n_samples >= total:
            index = np.arange(n_samples) % total
        else:
            index = np.sort(np.random.default_rng(seed).choice(total, n_samples, replace=False))
        return map_params(self.model, flat[index], x)

    @property
    def n_draws(self) -> int:
        """Number of stored draws (all chains)."""
        return 0 if self.draws_ is None else int(np.prod(self.draws_.shape[:2]))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.model.save(directory / MODEL_FILE)
        scalars = {f"diag_{k}": np.asarray(v, np.float64)
                   for k, v in self.diagnostics_.items() if isinstance(v, numbers.Real)}
        np.savez(directory / DRAWS_FILE, draws=self.draws_, **scalars)

    def _restore(self, directory: Path) -> None:
        directory = Path(directory)
        self.model = load_network(directory)
        with np.load(directory / DRAWS_FILE, allow_pickle=False) as data:
            draws = np.asarray(data["draws"], np.float32)
            self.diagnostics_ = {k[5:]: data[k].item() for k in data.files
                                 if k.startswith("diag_")}
        size = FunctionalModel(self.model).size
        if draws.ndim != 3 or draws.shape[-1] != size:
            raise ValueError(
                f"{directory / DRAWS_FILE} holds draws of shape {draws.shape}; the saved "
                f"model has {size} parameters"
            )
        self.draws_ = draws
