"""Hamiltonian Monte Carlo (NUTS or fixed-length HMC) over all weights of a network.

Chains run as batches: the log-density of a `(C, P)` batch of parameter
vectors is one vectorised program (`FunctionalModel.map`), and warm-up and
sampling are `tfp.mcmc.sample_chain` calls compiled with XLA. On several CPU
cores the chains are cut into equal groups, one batch per core, run side by side.
Likelihood parameters are sampled with the weights; a learned homoscedastic noise
scale gets a Gamma prior on its precision (see `tfbnn.inference.mcmc`). Chains
start by default from a short full-batch MAP optimisation of random Glorot-uniform
weights (`tfbnn.inference.mcmc.map_estimate`).

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
import time

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfbnn import models
from tfbnn.functional import FunctionalModel
from tfbnn.inference import diagnostics as diag
from tfbnn.inference.base import INFERENCE, FitSettings, check_no_strategy
from tfbnn.inference.inference_data import hmc_sample_stats
from tfbnn.inference.mcmc import (
    INITS,
    LogPosterior,
    SampledPosterior,
    cached_runner,
    check_full_batch_size,
    check_gamma_prior,
    map_estimate,
)
from tfbnn.inference.training_data import refuse_stream
from tfbnn.parallel import partition, resolve_threads, run_concurrently
from tfbnn.validation import check_int, check_option, check_positive, check_probability

logger = logging.getLogger("tfbnn")

KERNELS = ("nuts", "hmc")
MASS_MATRICES = ("diag", "identity")
#: The default tree depth limit of NUTS in the warm-up windows before the last.
WARMUP_TREE_DEPTH = 6
#: Kept draws per compiled call (at most): the granularity of progress reports.
CHUNK = 50


class DepthLimitedNUTS(tfp.mcmc.NoUTurnSampler):
    """TFP's No-U-Turn sampler whose trees stop at `depth` doublings, a tensor.

    `max_tree_depth` (static) sizes the sampler's U-turn memory as usual; the tree
    doubling loop of `NoUTurnSampler.one_step` reads the `max_tree_depth` property,
    which returns `depth` here (at most `max_tree_depth`). So one compiled program
    runs both the shallow warm-up windows and the full-depth steps.
    """

    def __init__(self, target_log_prob_fn, step_size, max_tree_depth: int, depth, **kwargs):
        super().__init__(target_log_prob_fn, step_size, max_tree_depth=max_tree_depth, **kwargs)
        self._depth = depth
        self._parameters["depth"] = depth  # `copy` (as TFP's step-size setters use) keeps it

    @property
    def max_tree_depth(self):
        return self._depth


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, max(1, min(n, limit)) + 1) if n % d == 0)


class _ChainRunner:
    """Compiled warm-up, sampling and evaluation for one architecture and set of options.

    Kept in the shared cache (`tfbnn.compiled`, through `mcmc.cached_runner`), so
    refitting the same architecture (the next split, 1 or 4 chains of a shape seen
    before) reuses the compiled XLA programs.
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
        self._advance = {}  # num_results -> compiled function
        self.evaluate = graph(self._evaluate)

    def kernel(self, x, y, scale, step_size, adaptation, depth=None):
        """The transition kernel on `z = theta / scale`; NUTS trees stop at `depth`
        doublings (a tensor, at most `max_tree_depth`; default `max_tree_depth`).

        A diagonal mass matrix `diag(1 / scale**2)` is the same as identity-mass
        HMC in coordinates rescaled by `scale`, which keeps to the stable
        `tfp.mcmc` kernels (the Jacobian is constant and drops out).
        `adaptation = (num_adaptation_steps, target_accept)` are tensors, so that
        changing them needs no new compilation.
        """
        target = lambda z: self.log_posterior(z * scale, x, y)  # noqa: E731
        if self.kernel_name == "nuts":
            inner = DepthLimitedNUTS(target, step_size, self.max_tree_depth,
                                     self.max_tree_depth if depth is None else depth)
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
        """The compiled `(state, results, x, y, scale, seed, num_burnin, between, depth)
        -> (states (R, C, P), trace, results)` for `R = num_results` kept draws.

        Burn-in length, thinning and the NUTS tree depth are tensors, so this one
        program serves both warm-up chunks and sampling chunks: compiling NUTS costs
        far more than running a chunk of it, so compiling it once is what matters.
        `results` must come from `bootstrap` with the same `scale`.
        """
        if num_results not in self._advance:
            def run(state, results, x, y, scale, seed, num_burnin, between, depth):
                # The kernel reads step size and adaptation counters from `results`;
                # the values given to its constructor here are not used.
                kernel = self.kernel(x, y, scale, tf.ones(()),
                                     (tf.constant(0), tf.constant(0.8)), depth)
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


def _step_size(results) -> float:
    """The step size the adaptation kernel hands to the next step."""
    return float(results.new_step_size)


def _mean_step_size(chains) -> float:
    """The groups' step sizes, averaged."""
    return float(np.mean([_step_size(results) for _, results, _ in chains]))


def _advance_groups(advance, chains, data, rng, num_burnin, between, depth):
    """One `advance` call per chain group `(state, results, scale)`, side by side, NUTS
    trees of at most `depth` doublings.

    Seeds are drawn here, in group order, so the draws do not depend on timing.
    """
    seeds = [_new_seed(rng) for _ in chains]
    burnin, between = tf.constant(num_burnin, tf.int32), tf.constant(between, tf.int32)
    depth = tf.constant(depth, tf.int32)
    return run_concurrently([
        functools.partial(advance, state, results, *data, scale, seed, burnin, between, depth)
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
    (restarted whenever the mass matrix or tree depth changes) and, per chain, a
    diagonal mass matrix in Stan's windows (shallow trees but in the last window,
    see `warmup_tree_depth`); the kept draws use the averaged step size. After
    sampling, `diagnostics_` holds split R-hat, effective sample sizes, acceptance
    rate, divergences and the step size, and a `ConvergenceWarning` is raised if
    the chains have not mixed (see `tfbnn.inference.diagnostics`).

    The estimator's `epochs`, `batch_size` and `learning_rate` are not used.

    Networks of more than `max_weights` weights are refused before any work:
    every leapfrog step is a gradient over the whole data set, up to
    `2**max_tree_depth` of them per draw, and NUTS mixes slowly in many
    dimensions. Such a network (a convolutional `network=`, a wide MLP) is
    better served by "sgmcmc" (minibatch gradients), "laplace" (last layer) or
    "ensemble".

    Args:
        kernel: "nuts" (No-U-Turn sampler, default) or "hmc" (fixed
            `num_leapfrog_steps`).
        n_chains: chains, run as vectorised groups (see `threads`).
        num_warmup: warm-up (adaptation) steps per chain, discarded.
        num_samples: draws kept per chain (after thinning).
        thin: keep every `thin`-th step (`num_samples * thin` sampling steps).
        target_accept: the acceptance rate the step size adaptation aims at.
        step_size: the initial leapfrog step size (adapted during warm-up).
        max_tree_depth: NUTS trees have at most `2**max_tree_depth - 1` leapfrog steps.
        warmup_tree_depth: the tree depth limit of the warm-up's windows before the last
            (None: `WARMUP_TREE_DEPTH`, 6, or `max_tree_depth` if lower). Those
            windows only estimate the mass matrix and a first step size, and on
            network posteriors NUTS trees run to any depth limit, so shallower trees
            make them several times cheaper; the last warm-up window (Stan's terminal
            buffer) and the draws use `max_tree_depth`, and the step size adapts
            afresh when the depth changes.
        num_leapfrog_steps: leapfrog steps per proposal of the "hmc" kernel.
        mass_matrix: "diag" (default: a diagonal mass matrix adapted per chain in
            Stan's windows during warm-up; needs `num_warmup >= 3 * min(50,
            num_samples)`, otherwise identity) or "identity".
        init: "map" (a short full-batch MAP optimisation from a random
            initialisation per chain; recommended) or "prior" (a prior draw).
        map_steps: Adam steps of the MAP initialisation.
        noise_precision_prior: `(concentration, rate)` of the Gamma prior on the
            noise precision `1 / sigma**2`, standardised units.
        max_weights: the largest network (weight count) sampled; 10,000 by default,
            about a tfbnn MLP of 100 hidden units on 100 features.
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
                 step_size: float = 0.01, max_tree_depth: int = 10, warmup_tree_depth=None,
                 num_leapfrog_steps: int = 16, mass_matrix: str = "diag", init: str = "map",
                 map_steps: int = 1000, noise_precision_prior=(3.0, 1.0),
                 max_weights: int = 10_000, threads="auto", jit_compile: bool = True):
        super().__init__()
        self.kernel = check_option("kernel", kernel, KERNELS)
        self.n_chains = check_int("n_chains", n_chains, 1)
        self.num_warmup = check_int("num_warmup", num_warmup, 0)
        self.num_samples = check_int("num_samples", num_samples, 4)
        self.thin = check_int("thin", thin, 1)
        self.target_accept = check_probability("target_accept", target_accept)
        self.step_size = check_positive("step_size", step_size)
        self.max_tree_depth = check_int("max_tree_depth", max_tree_depth, 1)
        self.warmup_tree_depth = None if warmup_tree_depth is None else (
            check_int("warmup_tree_depth", warmup_tree_depth, 1))
        if self.warmup_tree_depth is not None and self.warmup_tree_depth > self.max_tree_depth:
            raise ValueError(f"warmup_tree_depth={warmup_tree_depth!r} exceeds "
                             f"max_tree_depth={max_tree_depth!r}")
        self.num_leapfrog_steps = check_int("num_leapfrog_steps", num_leapfrog_steps, 1)
        self.mass_matrix = check_option("mass_matrix", mass_matrix, MASS_MATRICES)
        self.init = check_option("init", init, INITS)
        self.map_steps = check_int("map_steps", map_steps, 0)
        self.noise_precision_prior = check_gamma_prior(noise_precision_prior)
        self.max_weights = check_int("max_weights", max_weights, 1)
        resolve_threads(threads, self.n_chains)  # validates
        self.threads = threads
        self.jit_compile = bool(jit_compile)

    def get_config(self):
        return {
            "jit_compile": self.jit_compile,
            "kernel": self.kernel, "n_chains": self.n_chains, "num_warmup": self.num_warmup,
            "num_samples": self.num_samples, "thin": self.thin,
            "target_accept": self.target_accept, "step_size": self.step_size,
            "max_tree_depth": self.max_tree_depth, "warmup_tree_depth": self.warmup_tree_depth,
            "num_leapfrog_steps": self.num_leapfrog_steps, "mass_matrix": self.mass_matrix,
            "init": self.init,
            "map_steps": self.map_steps, "noise_precision_prior": list(self.noise_precision_prior),
            "max_weights": self.max_weights, "threads": self.threads,
        }

    def fit(self, x, y, likelihood, settings: FitSettings):
        check_no_strategy(settings, self.name)
        refuse_stream(x, "hmc", "inference='sgmcmc' (minibatch sampling), 'laplace', 'vi' or 'swag'")
        model = models.network(x.shape[1:], y.shape[1], likelihood, settings,
                               seed=settings.seed, name="hmc_mlp")
        check_full_batch_size(FunctionalModel(model).size, self.max_weights, len(x),
                              2**self.max_tree_depth)
        log_posterior = LogPosterior(model, likelihood, settings.prior, self.noise_precision_prior)
        options = (self.kernel, self.max_tree_depth, self.num_leapfrog_steps, self.jit_compile)
        runner = cached_runner("hmc_chains", log_posterior, options,
                               lambda: _ChainRunner(log_posterior, *options))
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
            state = map_estimate(log_posterior, state, *data, self.map_steps)
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
        self.model, self.likelihood, self.draws_ = model, likelihood, draws
        step_size = _mean_step_size(chains)
        self.diagnostics_ = self._diagnostics(runner, draws, trace, *data, step_size)
        self.diagnostics_.update(warmup_seconds=warmup_seconds, sampling_seconds=sampling_seconds)
        self.sample_stats_ = hmc_sample_stats(trace, step_size)  # for ArviZ
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
        plan = _warmup_plan(self.num_warmup, chunk, self.mass_matrix)
        shallow_depth = min(WARMUP_TREE_DEPTH, self.max_tree_depth) if (
            self.warmup_tree_depth is None) else self.warmup_tree_depth
        shallow = self.kernel == "nuts" and shallow_depth < self.max_tree_depth
        done = 0
        for i, (burnin, every, estimate) in enumerate(plan):
            last = i == len(plan) - 1
            if last and shallow and i:
                # Trees of full depth from here: the step size adapts afresh to them.
                chains = [(state, restart(state, scale, _step_size(results),
                                          self.num_warmup - done), scale)
                          for state, results, scale in chains]
            depth = self.max_tree_depth if last or not shallow else shallow_depth
            outs = _advance_groups(advance, chains, data, rng, burnin, every - 1, depth)
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
            outs = _advance_groups(advance, chains, data, rng, 0, self.thin - 1,
                                   self.max_tree_depth)
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
            "mean_tree_depth": diag.mean_tree_depth(trace["leapfrogs"]),
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
