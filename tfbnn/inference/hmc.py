"""Hamiltonian Monte Carlo (NUTS or fixed-length HMC) over all weights of a network.

Chains run as batches: the log-density of a `(C, P)` batch of parameter
vectors is one vectorised program (`FunctionalModel.map`), and warm-up and
sampling are `tfp.mcmc.sample_chain` calls compiled with XLA. On several CPU
cores the chains are cut into equal groups, one batch per core, run side by side. Likelihood
parameters are sampled with the weights; a learned homoscedastic noise scale
gets a Gamma prior on its precision (see `LogPosterior`).

#### References

Stan Development Team, "Stan Reference Manual", section "HMC algorithm parameters"
(the windowed warm-up adaptation of step size and diagonal mass matrix).

Hoffman & Gelman, "The No-U-Turn Sampler: adaptively setting path lengths in
Hamiltonian Monte Carlo", JMLR 2014 (NUTS and dual-averaging step-size adaptation).

Neal, "MCMC using Hamiltonian dynamics", Handbook of Markov Chain Monte Carlo, 2011.

Neal, "Bayesian Learning for Neural Networks", 1996 (HMC for network weights).
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfbnn import models
from tfbnn import priors as priors_lib
from tfbnn._options import check_option
from tfbnn._parallel import partition, resolve_threads, run_concurrently
from tfbnn.functional import FunctionalModel, architecture_key
from tfbnn.inference import diagnostics as diag
from tfbnn.inference.base import (
    INFERENCE,
    MODEL_FILE,
    FitSettings,
    Inference,
    load_network,
)

tfd = tfp.distributions
logger = logging.getLogger("tfbnn")

DRAWS_FILE = "draws.npz"
KERNELS = ("nuts", "hmc")
INITS = ("map", "prior")
MASS_MATRICES = ("diag", "identity")
#: Name of the `LearnedScale` weight that holds a homoscedastic noise scale.
NOISE_WEIGHT = "raw_scale"
#: Adam step size of the MAP initialisation (full batch, standardised data).
MAP_LEARNING_RATE = 1e-2
#: Kept draws per compiled call (at most): the granularity of progress reports.
CHUNK = 50


# -- the log-density ------------------------------------------------------------------


class LogPosterior:
    """Unnormalised log posterior of a deterministic network's flat parameter vector.

    `log p(theta | D) = log p(w) + log p(r) + sum_n log p(y_n | x_n, theta)`, where
    `w` are the network weights under `prior` and `r` the raw noise weights of a
    learned scale (if the model has one), `sigma = softplus(r) + min_scale`. The
    precision `tau = 1 / sigma**2` has a `Gamma(concentration, rate)` prior; the
    sampler moves in the unconstrained `r`, so the density picks up the Jacobian
    `|d tau / d r| = 2 sigma**-3 sigmoid(r)`.

    Args:
        model: a built Keras model whose outputs are the likelihood's parameters.
        likelihood: a `tfbnn.likelihoods.Likelihood`.
        prior: a `tfbnn.priors.Prior` on every weight except the noise.
        noise_precision_prior: `(concentration, rate)` of the Gamma prior on `tau`.
    """

    def __init__(self, model, likelihood, prior=None, noise_precision_prior=(3.0, 1.0)):
        self.functional = FunctionalModel(model)
        self.likelihood = likelihood
        self.prior = priors_lib.get(prior)
        self.noise_precision_prior = tuple(float(v) for v in noise_precision_prior)
        is_noise = np.concatenate([
            np.full(size, _is_noise_weight(v)) for v, size
            in zip(model.trainable_variables, self.functional.sizes)
        ])
        self.noise_index = np.flatnonzero(is_noise).astype(np.int32)
        self.weight_index = np.flatnonzero(~is_noise).astype(np.int32)
        self.min_scale = float(getattr(likelihood, "min_scale", 0.0))

    @property
    def size(self) -> int:
        return self.functional.size

    def log_prior(self, thetas) -> tf.Tensor:
        """Log prior density of `(..., P)` parameter vectors, shape `(...)`."""
        weights = tf.gather(thetas, self.weight_index, axis=-1)
        log_p = tf.reduce_sum(self.prior.to_distribution((), thetas.dtype).log_prob(weights), -1)
        if self.noise_index.size:
            raw = tf.gather(thetas, self.noise_index, axis=-1)
            sigma = tf.math.softplus(raw) + tf.cast(self.min_scale, thetas.dtype)
            concentration, rate = (tf.cast(v, thetas.dtype) for v in self.noise_precision_prior)
            log_jacobian = math.log(2.0) - 3.0 * tf.math.log(sigma) + tf.math.log_sigmoid(raw)
            gamma = tfd.Gamma(concentration, rate)
            log_p += tf.reduce_sum(gamma.log_prob(sigma**-2) + log_jacobian, -1)
        return log_p

    def log_likelihood(self, thetas, x, y) -> tf.Tensor:
        """Summed log-likelihood of `(x, y)` under each of `(M, P)` vectors, shape `(M,)`."""
        params = self.functional.map(thetas, x)
        # Tile the targets to the draws: `Categorical.log_prob` reshapes rather than
        # broadcasts its labels.
        y = tf.broadcast_to(y, tf.concat([tf.shape(params)[:1], tf.shape(y)], 0))
        return tf.reduce_sum(self.likelihood.log_prob(y, params), -1)

    def __call__(self, thetas, x, y, data_scale=1.0) -> tf.Tensor:
        """`log_prior + data_scale * log_likelihood` of `(M, P)` vectors; `data_scale = N / B`
        turns a minibatch into an unbiased estimate of the full-data term."""
        return self.log_prior(thetas) + data_scale * self.log_likelihood(thetas, x, y)

    def initial_state(self, n: int, init: str, seed) -> np.ndarray:
        """`(n, P)` starting points: Glorot-uniform weights ("map") or prior draws ("prior")."""
        rng = np.random.default_rng(seed)
        if init == "prior":
            return self._prior_draws(n, rng)
        parts = []
        for variable in self.functional.model.trainable_variables:
            value = np.broadcast_to(np.asarray(variable), (n, *variable.shape))
            if len(variable.shape) >= 2:
                # Fresh Glorot draws per chain so chains start in different places.
                limit = math.sqrt(6.0 / (variable.shape[-2] + variable.shape[-1]))
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
            sigma = np.maximum(tau**-0.5 - self.min_scale, 1e-6)
            theta[:, self.noise_index] = sigma + np.log(-np.expm1(-sigma))  # softplus⁻¹
        return theta

    def predictive_mean(self, params) -> tf.Tensor:
        """Per-draw predictive mean (class probabilities for classification), `(..., B, m)`."""
        if self.likelihood.is_classification:
            return self.likelihood.class_probs(params)
        return self.likelihood.distribution(params).mean()


def _is_noise_weight(variable) -> bool:
    return getattr(variable, "path", variable.name).split("/")[-1].split(":")[0] == NOISE_WEIGHT


def build_network(n_features: int, n_targets: int, likelihood, settings: FitSettings, name: str):
    """The deterministic network whose weights a sampler draws (a `models.mlp`)."""
    return models.mlp(
        n_features, likelihood.n_network_outputs(n_targets),
        hidden_units=settings.hidden_units, activation=settings.activation,
        output_layers=likelihood.output_layers(n_targets), seed=settings.seed, name=name,
    )


def map_objective_step(log_posterior: LogPosterior):
    """A `(theta, x, y, steps, learning_rate) -> theta` function: full-batch Adam on the
    negative log posterior per example of each row of `theta` `(C, P)`."""

    def run(theta, x, y, steps, learning_rate):
        n = tf.cast(tf.shape(x)[0], theta.dtype)
        beta1, beta2, eps = 0.9, 0.999, 1e-7

        def body(t, theta, m, v):
            with tf.GradientTape() as tape:
                tape.watch(theta)
                # Per example, so that Adam's step means the same at any data size.
                loss = -tf.reduce_sum(log_posterior(theta, x, y)) / n
            grad = tape.gradient(loss, theta)
            t = t + 1.0
            m = beta1 * m + (1.0 - beta1) * grad
            v = beta2 * v + (1.0 - beta2) * tf.square(grad)
            step = learning_rate * tf.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
            return t, theta - step * m / (tf.sqrt(v) + eps), m, v

        zeros = tf.zeros_like(theta)
        steps = tf.cast(steps, theta.dtype)
        _, theta, _, _ = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0.0), theta, zeros, zeros))
        return theta

    return run


# -- stored draws behind the predictive API ----------------------------------------------


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
        self._predict_fn = None

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
        if self._predict_fn is None:
            self._predict_fn = _predictor(self.model)
        return self._predict_fn(tf.constant(flat[index]), tf.convert_to_tensor(x, tf.float32))

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
        self._predict_fn = None


_PREDICTORS: dict[str, object] = {}


def _predictor(model):
    """A traced `(thetas (S, P), x) -> (S, B, k)` shared by models of one architecture
    (a reloaded model reuses the graph of the fitted one)."""
    key = architecture_key(model)
    if key not in _PREDICTORS:
        functional = FunctionalModel(model)
        _PREDICTORS[key] = tf.function(lambda thetas, x: functional.map(thetas, x),
                                       reduce_retracing=True)
    return _PREDICTORS[key]


# -- HMC / NUTS -----------------------------------------------------------------------------


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_gamma_prior(value) -> tuple[float, float]:
    """Validates `noise_precision_prior = (concentration, rate)`."""
    try:
        concentration, rate = value
        return (_check_positive("noise_precision_prior concentration", concentration),
                _check_positive("noise_precision_prior rate", rate))
    except (TypeError, ValueError):
        raise ValueError(
            f"noise_precision_prior must be a pair (concentration, rate) of positive numbers, "
            f"got {value!r}"
        ) from None


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, max(1, min(n, limit)) + 1) if n % d == 0)


class _ChainRunner:
    """Compiled warm-up, sampling and evaluation for one architecture and set of options.

    Cached by `_runner_for`, so refitting the same architecture (the next split, 1 or
    4 chains of a shape seen before) reuses the compiled XLA programs.
    """

    def __init__(self, log_posterior: LogPosterior, kernel: str, max_tree_depth: int,
                 num_leapfrog_steps: int, jit_compile: bool = True):
        self.log_posterior = log_posterior
        self.kernel_name = kernel
        self.max_tree_depth = max_tree_depth
        self.num_leapfrog_steps = num_leapfrog_steps
        self.jit_compile = jit_compile
        # Only the sampler is worth XLA's compile time; the one-off pieces run as
        # plain graphs.
        graph = lambda f: tf.function(f, reduce_retracing=True)  # noqa: E731
        self.bootstrap = graph(self._bootstrap)
        self.map_fit = graph(lambda *args: map_objective_step(self.log_posterior)(*args))
        self._advance = {}  # num_results -> compiled function
        self.evaluate = graph(self._evaluate)

    def kernel(self, x, y, scale, step_size, adaptation):
        """The transition kernel on `z = theta / scale`.

        A diagonal mass matrix `diag(1 / scale**2)` is the same as identity-mass
        HMC in coordinates rescaled by `scale`, which keeps to the stable
        `tfp.mcmc` kernels (the Jacobian is constant and drops out).
        `adaptation = (num_adaptation_steps, target_accept)` are tensors, so that
        changing them needs no new compilation.
        """
        target = lambda z: self.log_posterior(z * scale, x, y)  # noqa: E731
        if self.kernel_name == "nuts":
            inner = tfp.mcmc.NoUTurnSampler(target, step_size, max_tree_depth=self.max_tree_depth)
        else:
            inner = tfp.mcmc.HamiltonianMonteCarlo(target, step_size, self.num_leapfrog_steps)
        # One step size shared by all chains (acceptance averaged over chains): a
        # chain stuck in a poor region cannot drag its own step size to zero. With
        # num_adaptation_steps = 0 the step size simply stays as given.
        num_adaptation_steps, target_accept = adaptation
        return tfp.mcmc.DualAveragingStepSizeAdaptation(
            inner, num_adaptation_steps, target_accept_prob=target_accept)

    def _bootstrap(self, state, x, y, scale, step_size, adaptation):
        kernel = self.kernel(x, y, scale, step_size, adaptation)
        return kernel.bootstrap_results(state / scale)

    def advance(self, num_results: int):
        """The compiled `(state, results, x, y, scale, seed, num_burnin, between) ->
        (states (R, C, P), trace, results)` for `R = num_results` kept draws.

        Burn-in length and thinning are tensors, so this one program serves both
        warm-up chunks and sampling chunks: NUTS takes seconds to compile and
        microseconds per leapfrog step, so compiling it once is what matters.
        `results` must come from `bootstrap` with the same `scale`.
        """
        if num_results not in self._advance:
            def run(state, results, x, y, scale, seed, num_burnin, between):
                # The kernel reads step size and adaptation counters from `results`;
                # the values given to its constructor here are not used.
                kernel = self.kernel(x, y, scale, tf.ones(()),
                                     (tf.constant(0), tf.constant(0.8)))
                out = tfp.mcmc.sample_chain(
                    num_results=num_results, num_burnin_steps=num_burnin,
                    num_steps_between_results=between, current_state=state / scale,
                    previous_kernel_results=results, kernel=kernel, trace_fn=self._trace,
                    return_final_kernel_results=True, seed=seed)
                return out.all_states * scale, out.trace, out.final_kernel_results
            self._advance[num_results] = tf.function(run, jit_compile=self.jit_compile,
                                                     reduce_retracing=True)
        return self._advance[num_results]

    def _trace(self, state, results):
        inner = getattr(results, "inner_results", results)
        if self.kernel_name == "nuts":
            divergent, leapfrogs = inner.has_divergence, inner.leapfrogs_taken
            target = inner.target_log_prob
        else:
            target = inner.accepted_results.target_log_prob
            leapfrogs = tf.fill(tf.shape(target), tf.constant(self.num_leapfrog_steps, tf.int32))
            # Fixed-length HMC has no tree to flag divergence: an energy error above 1000.
            divergent = ~(inner.log_accept_ratio > -1000.0)
        return {"target_log_prob": target, "log_accept_ratio": inner.log_accept_ratio,
                "divergent": divergent, "leapfrogs": leapfrogs}

    def _evaluate(self, thetas, x, y, x_probe):
        """Log-likelihood of `(x, y)` `(M,)` and predictive means at `x_probe` `(M, K, m)`."""
        log_lik = self.log_posterior.log_likelihood(thetas, x, y)
        params = self.log_posterior.functional.map(thetas, x_probe)
        return log_lik, self.log_posterior.predictive_mean(params)


_RUNNERS: dict[tuple, _ChainRunner] = {}


def _runner_for(log_posterior: LogPosterior, **options) -> _ChainRunner:
    lp = log_posterior
    key = (architecture_key(lp.functional.model), repr(lp.likelihood), repr(lp.prior),
           lp.noise_precision_prior, tuple(sorted(options.items())))
    runner = _RUNNERS.get(key)
    if runner is None:
        runner = _RUNNERS[key] = _ChainRunner(lp, **options)
    else:
        # Same architecture: the compiled code reads the weights through `thetas`
        # only, so the new model simply takes the place of the old.
        runner.log_posterior = lp
    return runner


def _step_size(results) -> float:
    """The step size the adaptation kernel hands to the next step."""
    return float(results.new_step_size)


def _mean_step_size(chains) -> float:
    """The groups' step sizes, averaged."""
    return float(np.mean([_step_size(results) for _, results, _ in chains]))


def _advance_groups(advance, chains, data, rng, num_burnin, between):
    """One `advance` call per chain group `(state, results, scale)`, side by side.

    Seeds are drawn here, in group order, so the draws do not depend on timing.
    """
    seeds = [_new_seed(rng) for _ in chains]
    burnin, between = tf.constant(num_burnin, tf.int32), tf.constant(between, tf.int32)
    return run_concurrently([
        functools.partial(advance, state, results, *data, scale, seed, burnin, between)
        for (state, results, scale), seed in zip(chains, seeds)
    ])


def _new_seed(rng):
    return tf.constant(rng.integers(0, 2**31 - 1, size=2), tf.int32)


@INFERENCE.register("hmc")
class HamiltonianMonteCarlo(SampledPosterior):
    """Full-batch NUTS (or fixed-length HMC) with several chains run as batches.

    The log-density is the weight prior (`prior` of the estimator) plus the
    likelihood summed over the data; a learned noise scale is sampled too, with a
    Gamma prior on its precision in standardised target units. The chains are cut
    into `threads` equal groups; each group is one vectorised batch, and the groups
    run side by side on their own threads (on 2 cores, 4 chains as 2 groups of 2).
    Warm-up adapts one step size per group, shared by its chains, by dual averaging
    (restarted whenever the mass matrix changes) and, per chain, a diagonal mass
    matrix in Stan's windows; the kept draws use the averaged step size. After
    sampling, `diagnostics_` holds split R-hat, effective sample sizes, acceptance
    rate, divergences and the step size, and a `ConvergenceWarning` is raised if
    the chains have not mixed (see `tfbnn.inference.diagnostics`).

    The estimator's `epochs`, `batch_size` and `learning_rate` are not used.

    Args:
        kernel: "nuts" (No-U-Turn sampler, default) or "hmc" (fixed
            `num_leapfrog_steps`).
        n_chains: chains, run as vectorised groups (see `threads`).
        num_warmup: warm-up (adaptation) steps per chain, discarded.
        num_samples: draws kept per chain (after thinning).
        thin: keep every `thin`-th step (`num_samples * thin` sampling steps).
        target_accept: the acceptance rate the step size adaptation aims at.
        step_size: the initial leapfrog step size (adapted during warm-up).
        max_tree_depth: NUTS trees have at most `2**max_tree_depth` leapfrog steps.
        num_leapfrog_steps: leapfrog steps per proposal of the "hmc" kernel.
        mass_matrix: "diag" (default: a diagonal mass matrix adapted per chain in
            Stan's windows during warm-up; needs `num_warmup >= 3 * min(50,
            num_samples)`, otherwise identity) or "identity".
        init: "map" (a short full-batch MAP optimisation from a random
            initialisation per chain; recommended) or "prior" (a prior draw).
        map_steps: Adam steps of the MAP initialisation.
        noise_precision_prior: `(concentration, rate)` of the Gamma prior on the
            noise precision `1 / sigma**2`, standardised units.
        threads: the number of chain groups run side by side ("auto": the fewest
            equal groups that keep every CPU core busy). The draws depend on the
            grouping (each group adapts its own step size and has its own random
            stream): fix it, e.g. `threads=1`, for draws that are the same on
            machines with other core counts.
        jit_compile: compile warm-up and sampling with XLA (default: NUTS steps
            become far cheaper, but compiling takes seconds, once per architecture,
            likelihood and data shape). False runs them as plain TensorFlow graphs,
            which suits tiny problems.
    """

    name = "hmc"

    def __init__(self, kernel: str = "nuts", n_chains: int = 4, num_warmup: int = 500,
                 num_samples: int = 500, thin: int = 1, target_accept: float = 0.8,
                 step_size: float = 0.01, max_tree_depth: int = 10,
                 num_leapfrog_steps: int = 16, mass_matrix: str = "diag", init: str = "map",
                 map_steps: int = 1000, noise_precision_prior=(3.0, 1.0),
                 threads="auto", jit_compile: bool = True):
        super().__init__()
        self.kernel = check_option("kernel", kernel, KERNELS)
        self.n_chains = _check_int("n_chains", n_chains, 1)
        self.num_warmup = _check_int("num_warmup", num_warmup, 0)
        self.num_samples = _check_int("num_samples", num_samples, 4)
        self.thin = _check_int("thin", thin, 1)
        if isinstance(target_accept, bool) or not (
                isinstance(target_accept, numbers.Real) and 0.0 < target_accept < 1.0):
            raise ValueError(
                f"target_accept must be strictly between 0 and 1, got {target_accept!r}")
        self.target_accept = float(target_accept)
        self.step_size = _check_positive("step_size", step_size)
        self.max_tree_depth = _check_int("max_tree_depth", max_tree_depth, 1)
        self.num_leapfrog_steps = _check_int("num_leapfrog_steps", num_leapfrog_steps, 1)
        self.mass_matrix = check_option("mass_matrix", mass_matrix, MASS_MATRICES)
        self.init = check_option("init", init, INITS)
        self.map_steps = _check_int("map_steps", map_steps, 0)
        self.noise_precision_prior = check_gamma_prior(noise_precision_prior)
        resolve_threads(threads, self.n_chains)  # validates
        self.threads = threads
        self.jit_compile = bool(jit_compile)

    def get_config(self):
        return {
            "jit_compile": self.jit_compile,
            "kernel": self.kernel, "n_chains": self.n_chains, "num_warmup": self.num_warmup,
            "num_samples": self.num_samples, "thin": self.thin,
            "target_accept": self.target_accept, "step_size": self.step_size,
            "max_tree_depth": self.max_tree_depth,
            "num_leapfrog_steps": self.num_leapfrog_steps, "mass_matrix": self.mass_matrix,
            "init": self.init,
            "map_steps": self.map_steps, "noise_precision_prior": list(self.noise_precision_prior),
            "threads": self.threads,
        }

    def fit(self, x, y, likelihood, settings: FitSettings):
        model = build_network(x.shape[1], y.shape[1], likelihood, settings, "hmc_mlp")
        log_posterior = LogPosterior(model, likelihood, settings.prior, self.noise_precision_prior)
        runner = _runner_for(
            log_posterior, kernel=self.kernel, max_tree_depth=self.max_tree_depth,
            num_leapfrog_steps=self.num_leapfrog_steps, jit_compile=self.jit_compile)
        rng = np.random.default_rng(settings.seed)
        data = (tf.constant(x, tf.float32), tf.constant(y, tf.float32))
        # Warm-up and sampling run in chunks of `chunk` kept draws through one compiled
        # program. A fixed bound (not a fraction of the run) lets runs of other
        # lengths reuse it.
        chunk = _largest_divisor_at_most(
            self.num_samples, min(CHUNK, self.num_warmup) if self.num_warmup else CHUNK)
        verbose = settings.verbose

        start = time.perf_counter()
        state = tf.constant(log_posterior.initial_state(
            self.n_chains, self.init, rng.integers(2**31)), tf.float32)
        if self.init == "map" and self.map_steps:
            state = runner.map_fit(state, *data, tf.constant(self.map_steps),
                                   tf.constant(MAP_LEARNING_RATE))
            if not np.isfinite(state.numpy()).all():
                raise FloatingPointError("The MAP initialisation diverged; try init='prior'")
        groups = partition(self.n_chains,
                           resolve_threads(self.threads, self.n_chains, equal_groups=True))
        chains = self._warm_up(runner, [state[g] for g in groups], data, chunk, rng, verbose)
        warmup_seconds = time.perf_counter() - start
        logger.info("hmc: warm-up of %d steps x %d chains in %.1f s, step size %.3g",
                    self.num_warmup, self.n_chains, warmup_seconds, _mean_step_size(chains))

        start = time.perf_counter()
        draws, trace, chains = self._sample(runner, chains, data, chunk, rng, verbose)
        sampling_seconds = time.perf_counter() - start
        if not np.isfinite(draws).all():
            raise FloatingPointError("HMC produced non-finite parameters; lower step_size")

        FunctionalModel(model).set_params(draws[-1, 0])  # the saved model holds one draw
        self.model, self.likelihood, self.draws_, self._predict_fn = model, likelihood, draws, None
        self.diagnostics_ = self._diagnostics(runner, draws, trace, *data,
                                              _mean_step_size(chains))
        self.diagnostics_.update(warmup_seconds=warmup_seconds, sampling_seconds=sampling_seconds)
        logger.info("hmc: %d draws x %d chains in %.1f s; %s", self.num_samples, self.n_chains,
                    sampling_seconds, _format(self.diagnostics_))
        diag.warn_if_not_mixed(self.diagnostics_, "hmc", stacklevel=4)
        return {"diagnostics": dict(self.diagnostics_)}

    def _warm_up(self, runner, groups, data, chunk, rng, verbose):
        """Adapts step size (and mass matrix) of each group of chains (`(C_g, P)` starting
        states); returns the groups' chains `(state, results, scale)`."""
        target_accept = tf.constant(self.target_accept, tf.float32)

        def restart(state, scale, step_size, remaining):
            """Fresh dual averaging from `step_size` for the `remaining` warm-up steps;
            later steps run at its averaged step size."""
            return runner.bootstrap(state, *data, scale, tf.constant(step_size, tf.float32),
                                    (tf.constant(remaining, tf.int32), target_accept))

        # Per-chain posterior scales (the mass matrix) start at one.
        chains = [(state, restart(state, tf.ones_like(state), self.step_size, self.num_warmup),
                   tf.ones_like(state)) for state in groups]
        advance = runner.advance(chunk)
        progress = _progress(self.num_warmup, "warm-up", verbose)
        done = 0
        for burnin, every, estimate in _warmup_plan(self.num_warmup, chunk, self.mass_matrix):
            outs = _advance_groups(advance, chains, data, rng, burnin, every - 1)
            done += burnin + every * chunk
            updated = []
            for (states, _, results), (_, _, scale) in zip(outs, chains):
                if estimate:
                    # Stan's regularised variance of the window's draws, per chain; as
                    # in Stan, dual averaging restarts under the new metric.
                    variance = np.var(states.numpy(), axis=0, dtype=np.float64)
                    variance = chunk / (chunk + 5.0) * variance + 1e-3 * 5.0 / (chunk + 5.0)
                    scale = tf.constant(variance**0.5, tf.float32)
                    results = restart(states[-1], scale, _step_size(results),
                                      self.num_warmup - done)
                updated.append((states[-1], results, scale))
            chains = updated
            if progress is not None:
                progress.update(done, [("step_size", _mean_step_size(chains))])
        return chains

    def _sample(self, runner, chains, data, chunk, rng, verbose):
        """Runs the kept draws: `(draws (T, C, P), trace dict of (T, C), chains)`."""
        advance = runner.advance(chunk)
        progress = _progress(self.num_samples * self.thin, "sampling", verbose)
        draws, traces = [], []
        for i in range(self.num_samples // chunk):
            outs = _advance_groups(advance, chains, data, rng, 0, self.thin - 1)
            chains = [(states[-1], results, scale)
                      for (states, _, results), (_, _, scale) in zip(outs, chains)]
            draws.append(np.concatenate([states.numpy() for states, _, _ in outs], axis=1))
            traces.append({k: np.concatenate([trace[k].numpy() for _, trace, _ in outs], axis=1)
                           for k in outs[0][1]})
            if progress is not None:
                accept = np.mean(np.exp(np.minimum(traces[-1]["log_accept_ratio"], 0.0)))
                progress.update((i + 1) * chunk * self.thin, [("accept", float(accept))])
        trace = {k: np.concatenate([t[k] for t in traces]) for k in traces[0]}
        return np.concatenate(draws), trace, chains

    def _diagnostics(self, runner, draws, trace, x, y, step_size) -> dict:
        t, c, p = draws.shape
        # Function-space checks at up to 64 training inputs spread over the data.
        probe = tf.gather(x, np.linspace(0, int(x.shape[0]) - 1, min(64, int(x.shape[0])))
                          .astype(np.int32))
        flat = draws.reshape(t * c, p)
        log_lik, means = [], []
        for i in range(0, len(flat), 256):
            block = tf.constant(flat[i : i + 256])
            ll, mean = runner.evaluate(block, x, y, probe)
            log_lik.append(ll.numpy())
            means.append(mean.numpy().reshape(len(block), -1))
        log_lik = np.concatenate(log_lik).reshape(t, c)
        means = np.concatenate(means).reshape(t, c, -1)
        out = {
            "kernel": self.kernel,
            "n_chains": c,
            "num_draws_per_chain": t,
            "acceptance_rate": float(np.mean(np.exp(np.minimum(trace["log_accept_ratio"], 0.0)))),
            "n_divergences": int(np.sum(trace["divergent"])),
            "step_size": step_size,
            "mean_leapfrogs": float(np.mean(trace["leapfrogs"])),
            "mean_log_lik": float(np.mean(log_lik)),
        }
        out.update(diag.summarize(draws, log_lik, means))
        return out


def _warmup_plan(num_warmup: int, chunk: int, mass_matrix: str) -> list[tuple[int, int, bool]]:
    """Warm-up calls as `(burn-in steps, record every k-th step, estimate the mass matrix)`.

    Each call runs `burnin + k * chunk` steps. With a diagonal mass matrix, Stan's
    schedule in units of `chunk` steps: a fast first window (step size only), slow
    windows doubling in length, each ending in a new variance estimate from its
    `chunk` recorded draws, and a fast last window.
    """
    blocks, extra = divmod(num_warmup, chunk)
    if mass_matrix == "identity" or blocks < 3:
        bounds = np.linspace(0, num_warmup, max(1, min(10, blocks)) + 1).astype(int)
        return [(hi - lo - chunk, 1, False) for lo, hi in zip(bounds[:-1], bounds[1:])
                ] if num_warmup else []
    slow, remaining, size = [], blocks - 2, 1
    while remaining:
        size = remaining if remaining < 3 * size else size
        slow.append(size)
        remaining -= size
        size *= 2
    return [(extra, 1, False), *[(0, k, True) for k in slow], (0, 1, False)]


def _progress(total, name, verbose):
    if not verbose or total <= 0:
        return None
    logger.info("hmc: %s", name)
    return keras.utils.Progbar(total, verbose=1, unit_name="step")


def _format(diagnostics: dict) -> str:
    keys = ("acceptance_rate", "n_divergences", "step_size", "rhat_log_lik", "ess_log_lik",
            "rhat_predictive_max", "rhat_params_max", "ess_params_min")
    return ", ".join(f"{k}={diagnostics[k]:.3g}" for k in keys if k in diagnostics)
