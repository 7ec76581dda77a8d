"""Stochastic-gradient MCMC on minibatches: Langevin dynamics and cyclical SG-HMC.

Both samplers follow the minibatch estimate of the log posterior's gradient
(the prior plus `N / B` times the minibatch log-likelihood, the density of
`tfbnn.inference.mcmc.LogPosterior`) with injected Gaussian noise. Steps are
written per example, as in SGD: with `U(theta) = -log p(theta | D)`,

* SGLD: `theta <- theta - lr G grad U / N + sqrt(2 lr G T / N) * xi`;
* SG-HMC: `v <- (1 - a) v - lr G grad U / N + sqrt(2 a lr G T / N) * xi`,
  `theta <- theta + v`, with friction `a = 1 - momentum`;

`xi ~ Normal(0, I)` and `T` the temperature (1: the Bayesian posterior). `G` is
a diagonal preconditioner: the identity for the plain samplers, or pSGLD's
`1 / sqrt(v + lambda**2)` from a running average `v` of squared gradients, for
which Keras' RMSprop does the bookkeeping (`rmsprop_preconditioner`; like Li et
al., this leaves out the small correction term of a position-dependent `G`). The
cyclical schedule restarts a cosine step size `n_cycles` times; the first
`exploration` fraction of each cycle runs without noise (SGD with momentum, to
find a new mode), the rest samples it, and draws are kept at the end of each
cycle's sampling phase.

Every cycle (or, for SGLD, every block of steps) is one call of one compiled
function: a `tf.while_loop` over steps with the data held as tensors. Data larger
than memory comes as a `tfbnn.training.stream.Stream` of `(x, y)` batches, read in
its own order and on across passes, a compiled step per batch; the schedule is the
same, in steps (`ceil(N / B)` per epoch, `N` the stream's rows, `B` its first
batch's size).

#### References

Welling & Teh, "Bayesian learning via stochastic gradient Langevin dynamics",
ICML 2011.

Chen, Fox & Guestrin, "Stochastic gradient Hamiltonian Monte Carlo", ICML 2014.

Li, Chen, Chen & Carin, "Preconditioned stochastic gradient Langevin dynamics for
deep neural networks", AAAI 2016.

Zhang, Li, Zhang, Chen & Wilson, "Cyclical stochastic gradient MCMC for Bayesian
deep learning", ICLR 2020.
"""

from __future__ import annotations

import logging
import math
import time

import keras
import numpy as np
import tensorflow as tf

from tfbnn import models
from tfbnn.inference import diagnostics as diag
from tfbnn.inference.base import INFERENCE, FitSettings, check_no_strategy
from tfbnn.inference.mcmc import (
    LogPosterior,
    SampledPosterior,
    cached_runner,
    check_gamma_prior,
)
from tfbnn.optimizers import FlatOptimizer, program_key
from tfbnn.training.stream import Stream
from tfbnn.validation import check_fraction, check_int, check_option, check_positive

logger = logging.getLogger("tfbnn")

SAMPLERS = ("sghmc_cyclical", "sgld")
PRECONDITIONERS = ("rmsprop", "none")
#: Default per-example step size by preconditioner (the same for both samplers).
DEFAULT_LEARNING_RATE = {"rmsprop": 1e-3, "none": 0.01}
#: pSGLD's decay of the squared-gradient average and the floor `lambda` of its
#: preconditioner (Li et al., 2016).
RMSPROP_DECAY, RMSPROP_EPSILON = 0.99, 1e-5


def cyclical_schedule(steps_per_cycle: int, peak: float) -> np.ndarray:
    """Zhang et al.'s cosine step size within one cycle, from `peak` down to near 0."""
    k = np.arange(steps_per_cycle)
    return 0.5 * peak * (np.cos(np.pi * k / steps_per_cycle) + 1.0)


def rmsprop_preconditioner() -> keras.optimizers.RMSprop:
    """The Keras RMSprop whose step of unit learning rate is pSGLD's preconditioned
    gradient `G * grad`, `G = 1 / sqrt(v + lambda**2)`, with `v` the running average
    of squared gradients (no bias correction, as in Li et al. 2016).

    Li et al. write `G = 1 / (lambda + sqrt(v))`; Keras adds its epsilon inside the
    root, so epsilon is `lambda**2`: the two agree within a factor `sqrt(2)` and
    share the bound `G <= 1 / lambda`.
    """
    return keras.optimizers.RMSprop(1.0, rho=RMSPROP_DECAY, epsilon=RMSPROP_EPSILON**2)


class _StepRunner:
    """The compiled block of SG-MCMC steps of one architecture, likelihood and sampler."""

    def __init__(self, log_posterior: LogPosterior, sampler: str, preconditioner: str,
                 jit_compile: bool = True):
        self.log_posterior = log_posterior
        self.sampler = sampler
        self.rmsprop = None
        if preconditioner == "rmsprop":
            self.rmsprop = FlatOptimizer(rmsprop_preconditioner(), (log_posterior.size,))
        self.run = tf.function(self._run, jit_compile=jit_compile, reduce_retracing=True)
        self.stream_step = tf.function(self._step, jit_compile=jit_compile,
                                       reduce_retracing=True)
        self.run_stream = tf.function(self._run_stream)

    def initial_moments(self) -> list:
        """The preconditioner's fresh state (empty without one)."""
        return [] if self.rmsprop is None else self.rmsprop.initial_state()

    def _precondition(self, moments, grad):
        """`(G * grad, G, moments)`: the preconditioned gradient, the preconditioner and
        its updated state. The first is Keras' RMSprop step from zero (negated); `G`
        is read from the squared-gradient average `v` it has just updated."""
        if self.rmsprop is None:
            return grad, tf.ones_like(grad), moments
        step, moments = self.rmsprop.apply(moments, grad, tf.zeros_like(grad))
        epsilon = self.rmsprop.optimizer.epsilon
        return -step, tf.math.rsqrt(self.rmsprop.slot(moments, "velocity") + epsilon), moments

    def _step(self, theta, velocity, moments, xb, yb, n, rate, noisy, seed, friction,
              temperature):
        """One step on the minibatch `(xb, yb)` of `n` training rows. Returns the new
        `theta`, `velocity`, `moments` and the minibatch's mean NLL per example."""
        batch = tf.cast(tf.shape(xb)[0], theta.dtype)
        with tf.GradientTape() as tape:
            tape.watch(theta)
            log_lik = self.log_posterior.log_likelihood(theta[tf.newaxis], xb, yb)[0]
            # Per-example potential U / N, U = -(log prior + N/B * minibatch log-lik).
            loss = -(self.log_posterior.log_prior(theta[tf.newaxis])[0]
                     + n / batch * log_lik) / n
        drift, precond, moments = self._precondition(moments, tape.gradient(loss, theta))
        # Noise only where the schedule injects it (cyclical SG-HMC explores without),
        # and from Philox: random numbers are the dearest part of a step under XLA on
        # CPU, the default generator dearer still.
        xi = tf.cond(
            noisy > 0,
            lambda: tf.random.stateless_normal(tf.shape(theta), seed=seed, alg="philox"),
            lambda: tf.zeros_like(theta))
        if self.sampler == "sgld":
            scale = tf.sqrt(2.0 * rate * precond * temperature / n) * noisy
            theta = theta - rate * drift + scale * xi
        else:
            scale = tf.sqrt(2.0 * friction * rate * precond * temperature / n) * noisy
            velocity = (1.0 - friction) * velocity - rate * drift + scale * xi
            theta = theta + velocity
        return theta, velocity, moments, -log_lik / batch

    @staticmethod
    def _draw_slots(keep, theta):
        """A zero buffer for the draws `keep` (draw slot per step, or -1) asks for."""
        n_keep = tf.maximum(tf.reduce_max(keep) + 1, 1)
        return tf.zeros(tf.stack([n_keep, tf.shape(theta)[0]]), theta.dtype)

    @staticmethod
    def _keep(kept, slot, theta):
        """`kept` with row `slot` set to `theta` (unchanged for slot -1)."""
        mask = tf.one_hot(slot, tf.shape(kept)[0], dtype=theta.dtype)[:, tf.newaxis]
        return kept * (1.0 - mask) + mask * theta[tf.newaxis]

    def _run(self, theta, velocity, moments, x, y, batches, rates, noisy, keep, seed, friction,
             temperature):
        """Steps over the rows of `batches` `(K, B)` (minibatch row indices).

        `rates`, `noisy` (0/1) and `keep` (draw slot, or -1) are per-step schedules;
        `moments` is the preconditioner's state (see `initial_moments`).
        Returns the new `theta`, `velocity`, `moments`, kept draws `(D, P)` and the
        mean minibatch negative log-likelihood per example.
        """
        n = tf.cast(tf.shape(x)[0], theta.dtype)

        def body(i, theta, velocity, moments, kept, nll_sum):
            idx = batches[i]
            theta, velocity, moments, nll = self._step(
                theta, velocity, moments, tf.gather(x, idx), tf.gather(y, idx), n, rates[i],
                noisy[i], seed + [0, i], friction, temperature)
            return i + 1, theta, velocity, moments, self._keep(kept, keep[i], theta), nll_sum + nll

        steps = tf.shape(batches)[0]
        _, theta, velocity, moments, kept, nll_sum = tf.while_loop(
            lambda i, *_: i < steps, body,
            (tf.constant(0), theta, velocity, moments, self._draw_slots(keep, theta),
             tf.zeros((), theta.dtype)))
        return theta, velocity, moments, kept, nll_sum / tf.cast(steps, theta.dtype)

    def _run_stream(self, theta, velocity, moments, batches, n, rates, noisy, keep, seed,
                    friction, temperature):
        """As `_run`, a step per `(x, y)` batch read from the iterator `batches` (the
        stream repeated) and `n` the training rows: one compiled step per batch, as
        XLA cannot compile the reading of a dataset."""
        kept, nll_sum = self._draw_slots(keep, theta), tf.zeros((), theta.dtype)
        for i in tf.range(tf.shape(rates)[0]):
            xb, yb = next(batches)
            theta, velocity, moments, nll = self.stream_step(
                theta, velocity, moments, xb, yb, n, rates[i], noisy[i], seed + [0, i],
                friction, temperature)
            kept, nll_sum = self._keep(kept, keep[i], theta), nll_sum + nll
        return theta, velocity, moments, kept, nll_sum / tf.cast(tf.shape(rates)[0], theta.dtype)


def minibatch_rows(rng, n: int, batch_size: int, epochs: int) -> np.ndarray:
    """`(epochs * ceil(n / B), B)` row indices: a fresh permutation per epoch, wrapped
    so that every minibatch has `B` rows (static shapes for XLA). In-memory data is
    read in this order, one call per cycle after the cycles' noise seeds are drawn."""
    steps = -(-n // batch_size)
    rows = [np.resize(rng.permutation(n), steps * batch_size) for _ in range(epochs)]
    return np.concatenate(rows).reshape(-1, batch_size).astype(np.int32)


class ArrayFeed:
    """Minibatches of in-memory arrays, in the order of `minibatch_rows`."""

    def __init__(self, x, y, batch_size: int, rng):
        self.x, self.y = tf.constant(x, tf.float32), tf.constant(y, tf.float32)
        self.n, self.rng = len(x), rng
        self.batch_size = min(batch_size, self.n)

    def run(self, runner, epochs: int, theta, velocity, moments, *schedule):
        batches = tf.constant(minibatch_rows(self.rng, self.n, self.batch_size, epochs))
        return runner.run(theta, velocity, moments, self.x, self.y, batches, *schedule)

    def passes(self):
        """The training data as `(x, y)` batches (one: all rows)."""
        return [(self.x, self.y)]


class StreamFeed:
    """Minibatches of a `Stream`, in its own order, read on across passes (a cycle
    need not end with a pass). The batch size is that of its first batch."""

    def __init__(self, stream: Stream):
        self.dataset, self.n = stream.dataset, len(stream)
        self.batch_size = int(next(iter(self.dataset.take(1)))[0].shape[0])
        self.batches = iter(self.dataset.repeat())

    def run(self, runner, epochs: int, theta, velocity, moments, *schedule):
        return runner.run_stream(theta, velocity, moments, self.batches,
                                 tf.constant(self.n, theta.dtype), *schedule)

    def passes(self):
        return self.dataset


def _batches(rng, n: int, batch_size: int, epochs: int) -> np.ndarray:
    """`(epochs * ceil(n / B), B)` row indices: a fresh permutation per epoch, wrapped
    so that every minibatch has `B` rows (static shapes for XLA)."""
    steps = -(-n // batch_size)
    rows = [np.resize(rng.permutation(n), steps * batch_size) for _ in range(epochs)]
    return np.concatenate(rows).reshape(-1, batch_size).astype(np.int32)


@INFERENCE.register("sgmcmc")
class StochasticGradientMCMC(SampledPosterior):
    """Minibatch SG-MCMC: cyclical SG-HMC (default) or SGLD.

    The run lasts the estimator's `epochs` with its `batch_size` (the estimator's
    `learning_rate`, meant for Adam, is not used: see `learning_rate` here).

    Args:
        sampler: "sghmc_cyclical" (Zhang et al. 2020: cosine step size restarted
            `n_cycles` times; noise-free exploration, then sampling) or "sgld"
            (constant step size; the first `burnin` fraction is discarded).
        n_cycles: cycles of the cyclical schedule (for "sgld": blocks of steps, each
            ending in kept draws).
        samples_per_cycle: draws kept per cycle, evenly spaced over the end of its
            sampling phase (the last at the cycle's end).
        exploration: fraction of each cycle without noise ("sghmc_cyclical").
        burnin: fraction of the run discarded before keeping draws ("sgld").
        preconditioner: "rmsprop" (default: pSGLD's diagonal preconditioner, Li et
            al. 2016, for SGLD and SG-HMC alike: step sizes per weight from a running
            average of squared gradients, so one step size suits data sets whose
            noise levels, and hence gradient scales, differ by orders of magnitude)
            or "none" (the plain samplers).
        learning_rate: per-example step size (the peak of the cyclical schedule);
            None takes 1e-3 with "rmsprop" and 0.01 with "none" (per example:
            with momentum 0.9, SG-HMC moves about ten times further per step than
            SGLD).
        momentum: `1 - friction` of SG-HMC.
        temperature: 1 samples the posterior; below 1 a sharpened ("cold") one.
        noise_precision_prior: `(concentration, rate)` of the Gamma prior on the
            noise precision of a learned Gaussian scale, standardised units.
        jit_compile: compile the step loop with XLA (False: a plain TensorFlow
            graph, quicker to build for tiny problems).
    """

    name = "sgmcmc"

    def __init__(self, sampler: str = "sghmc_cyclical", n_cycles: int = 10,
                 samples_per_cycle: int = 5, exploration: float = 0.8, burnin: float = 0.5,
                 learning_rate: float | None = None, momentum: float = 0.9,
                 temperature: float = 1.0, noise_precision_prior=(3.0, 1.0),
                 preconditioner: str = "rmsprop", jit_compile: bool = True):
        super().__init__()
        self.sampler = check_option("sampler", sampler, SAMPLERS)
        self.preconditioner = check_option("preconditioner", preconditioner, PRECONDITIONERS)
        self.n_cycles = check_int("n_cycles", n_cycles, 1)
        self.samples_per_cycle = check_int("samples_per_cycle", samples_per_cycle, 1)
        self.exploration = check_fraction("exploration", exploration)
        self.burnin = check_fraction("burnin", burnin)
        self.learning_rate = None if learning_rate is None else check_positive(
            "learning_rate", learning_rate)
        self.momentum = check_fraction("momentum", momentum)
        self.temperature = check_positive("temperature", temperature)
        self.noise_precision_prior = check_gamma_prior(noise_precision_prior)
        self.jit_compile = bool(jit_compile)

    def get_config(self):
        return {
            "sampler": self.sampler, "n_cycles": self.n_cycles,
            "samples_per_cycle": self.samples_per_cycle, "exploration": self.exploration,
            "burnin": self.burnin, "learning_rate": self.learning_rate,
            "momentum": self.momentum, "temperature": self.temperature,
            "noise_precision_prior": list(self.noise_precision_prior),
            "preconditioner": self.preconditioner, "jit_compile": self.jit_compile,
        }

    @property
    def _learning_rate(self) -> float:
        return self.learning_rate or DEFAULT_LEARNING_RATE[self.preconditioner]

    def schedule(self, steps_per_cycle: int):
        """Per-step `(rates, noisy, keep)` of one cycle (block) of each kind.

        Returns the schedules of the first block and of every later block (they
        differ for SGLD, whose burn-in keeps nothing).
        """
        peak = self._learning_rate
        k = self.samples_per_cycle
        if self.sampler == "sgld":
            rates = np.full(steps_per_cycle, peak)
            noisy = np.ones(steps_per_cycle)
            start = 0
        else:
            rates = cyclical_schedule(steps_per_cycle, peak)
            start = min(int(math.ceil(self.exploration * steps_per_cycle)), steps_per_cycle - 1)
            noisy = (np.arange(steps_per_cycle) >= start).astype(float)
        # Keep `k` draws evenly spaced over the sampling phase's last half, ending at
        # its last step (the lowest step size, where the discretisation is best).
        first = start + (steps_per_cycle - start) // 2
        at = np.unique(np.linspace(first, steps_per_cycle - 1, k).round().astype(int))
        keep = np.full(steps_per_cycle, -1)
        keep[at] = np.arange(len(at))
        return rates.astype(np.float32), noisy.astype(np.float32), keep.astype(np.int32)

    def fit(self, x, y, likelihood, settings: FitSettings):
        """Samples from arrays `x, y`, or from `x` a `Stream` of batches (`y` None): the
        likelihood term scaled by its rows `N` (counted or given), the schedule in steps
        of `ceil(N / B)` per epoch, `B` the stream's first batch's size."""
        check_no_strategy(settings, self.name)
        streamed = isinstance(x, Stream)
        example_shape, n_targets = ((x.example_shape, x.n_targets) if streamed
                                    else (x.shape[1:], y.shape[1]))
        model = models.network(example_shape, n_targets, likelihood, settings,
                               seed=settings.seed, name="sgmcmc_mlp")
        log_posterior = LogPosterior(model, likelihood, settings.prior, self.noise_precision_prior)
        key = (self.sampler, self.preconditioner, self.jit_compile,
               program_key(rmsprop_preconditioner()) if self.preconditioner == "rmsprop" else "")
        runner = cached_runner(
            "sgmcmc_steps", log_posterior, key,
            lambda: _StepRunner(log_posterior, self.sampler, self.preconditioner,
                                self.jit_compile))
        rng = np.random.default_rng(settings.seed)
        theta = tf.constant(log_posterior.initial_state(1, "map", rng.integers(2**31))[0])
        # The noise seeds come before the data order, so a stream draws the same noise.
        seeds = rng.integers(0, 2**31 - 1, size=(self.n_cycles, 2)).astype(np.int32)
        feed = StreamFeed(x) if streamed else ArrayFeed(x, y, settings.batch_size, rng)
        start = time.perf_counter()
        draws, nlls = self._sample(runner, feed, theta, seeds, settings)
        seconds = time.perf_counter() - start
        draws = np.concatenate(draws)[:, np.newaxis, :]  # (T, 1, P): one chain
        self.model, self.likelihood, self.draws_ = model, likelihood, draws
        log_posterior.functional.set_params(draws[-1, 0])
        self.diagnostics_ = self._diagnostics(log_posterior, draws, feed.passes())
        self.diagnostics_["seconds"] = seconds
        logger.info("sgmcmc: %d cycles, %d draws in %.1f s", self.n_cycles, len(draws), seconds)
        return {"nll": nlls, "diagnostics": dict(self.diagnostics_)}

    def _sample(self, runner, feed, theta, seeds, settings: FitSettings):
        """Runs the cycles from `theta`, one compiled call each; returns the kept draws
        (a `(D, P)` array per cycle after burn-in) and each cycle's mean minibatch NLL."""
        steps_per_epoch = -(-feed.n // feed.batch_size)
        epochs_per_cycle = max(1, settings.epochs // self.n_cycles)
        steps_per_cycle = epochs_per_cycle * steps_per_epoch
        if steps_per_cycle < 4:
            raise ValueError(
                f"epochs={settings.epochs} over n_cycles={self.n_cycles} leaves "
                f"{steps_per_cycle} steps per cycle; use more epochs or fewer cycles"
            )
        rates, noisy, keep = self.schedule(steps_per_cycle)
        burnin_cycles = int(round(self.burnin * self.n_cycles)) if self.sampler == "sgld" else 0
        burnin_cycles = min(burnin_cycles, self.n_cycles - 1)
        velocity, moments = tf.zeros_like(theta), runner.initial_moments()
        constants = (tf.constant(1.0 - self.momentum, tf.float32),
                     tf.constant(self.temperature, tf.float32))
        no_keep = tf.constant(np.full_like(keep, -1))
        progress = keras.utils.Progbar(self.n_cycles, verbose=1, unit_name="cycle",
                                       stateful_metrics=["nll"]) if settings.verbose else None
        draws, nlls = [], []
        for cycle in range(self.n_cycles):
            keep_t = no_keep if cycle < burnin_cycles else tf.constant(keep)
            theta, velocity, moments, kept, nll = feed.run(
                runner, epochs_per_cycle, theta, velocity, moments, tf.constant(rates),
                tf.constant(noisy), keep_t, tf.constant(seeds[cycle]), *constants)
            nll = float(nll)
            if not math.isfinite(nll) or not np.isfinite(theta.numpy()).all():
                raise FloatingPointError(
                    f"{self.sampler} diverged in cycle {cycle + 1} (nll={nll}); lower "
                    f"learning_rate (now {self._learning_rate})"
                )
            if cycle >= burnin_cycles:
                draws.append(kept.numpy())
            nlls.append(nll)
            if progress is not None:
                progress.update(cycle + 1, [("nll", nll)])
        return draws, nlls

    def _diagnostics(self, log_posterior, draws, batches) -> dict:
        """Summaries of the draws over the training data, read as `(x, y)` `batches`."""
        flat = tf.constant(draws[:, 0])
        log_lik = sum(np.concatenate([log_posterior.log_likelihood(flat[i : i + 256], xb, yb)
                                      .numpy() for i in range(0, len(flat), 256)])
                      for xb, yb in batches)
        out = {"sampler": self.sampler, "n_chains": 1, "num_draws": int(len(flat)),
               "mean_log_lik": float(np.mean(log_lik))}
        if len(flat) >= 4:
            # Across-cycle draws are meant to differ (new modes), so only the ESS of
            # the log-likelihood is reported; there is no between-chain R-hat.
            out["ess_log_lik"] = float(diag.effective_sample_size(log_lik[:, None]))
        return out

