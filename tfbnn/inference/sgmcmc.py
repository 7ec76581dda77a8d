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
which Keras' RMSprop does the bookkeeping (`rmsprop_preconditioner`).

Where draws are kept, the update targets the posterior:

* noise is injected at a constant step size (the cyclical schedule's cosine only
  runs in each cycle's noise-free exploration, Zhang et al.'s search for a new
  mode; the first cycle starts from a noise-free MAP run of `map_steps`);
* the preconditioner is frozen (adapted during exploration and the first
  `ADAPT_FRACTION` of each sampling phase, whose draws are discarded), so a
  position-dependent `G` needs no correction term `Gamma` (Ma, Chen & Fox 2015):
  for a fixed `G` the discretised dynamics leave the posterior invariant up to the
  step-size error, while pSGLD's moving `G` without `Gamma` widens it;
* the minibatch gradient's noise, whose variance per weight is about
  `(1 - B/N) v` (sampling `B` of `N` rows without replacement), is kept below
  `GRADIENT_NOISE_SHARE` of the injected variance `2 a lr G / N` (`a` the
  friction, 1 for SGLD) by capping each weight's step `lr G`: the bias it causes
  (Chen et al. 2014, section 3) then stays small at any data size, and the run's
  epochs, not its steps, set how far the chain mixes. Rows are read in a fresh
  permutation per epoch, so the gradient noise partly cancels within an epoch;
  it is bounded, not subtracted.

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

Ma, Chen & Fox, "A complete recipe for stochastic gradient MCMC", NeurIPS 2015 (the
correction term `Gamma` of a position-dependent preconditioner).
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
from tfbnn.inference.inference_data import to_inference_data
from tfbnn.inference.mcmc import (
    LogPosterior,
    SampledPosterior,
    cached_runner,
    check_gamma_prior,
)
from tfbnn.inference.sgmcmc_feeds import ArrayFeed, StreamFeed
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
#: The largest share of the injected noise that minibatch-gradient noise may add
#: where draws are taken (the bound on the step size it sets).
GRADIENT_NOISE_SHARE = 0.5
#: The share of a cycle's sampling phase that adapts the preconditioner (discarded).
ADAPT_FRACTION = 0.25
#: How far the running squared-gradient average may exceed the frozen one before it
#: takes over (a safety valve; in a stationary chain it stays within about 20%).
SPIKE = 4.0


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
        """The preconditioner's fresh state: RMSprop's, then the frozen average of
        squared gradients (empty without a preconditioner)."""
        if self.rmsprop is None:
            return []
        state = self.rmsprop.initial_state()
        return [*state, tf.zeros_like(self.rmsprop.slot(state, "velocity"))]

    def _step_sizes(self, moments, grad, rate, noisy, adapt, n, batch, friction):
        """Per-weight step sizes `eta` and the preconditioner's new state.

        Without a preconditioner `eta = rate`. With RMSprop, `eta = rate / sqrt(v)`;
        `v` is the running average of squared gradients where `adapt`, else the
        average frozen at the last adapting step, unless the running average (always
        kept) grows above `SPIKE` times it: a weight whose gradients grow by orders of
        magnitude (a unit coming alive) is slowed at once. Where noise is injected,
        `eta` is capped so that the minibatch gradient's noise, estimated as
        `(1 - B / N) v`, adds at most `GRADIENT_NOISE_SHARE` of the injected noise's
        variance.
        """
        if self.rmsprop is None:
            return tf.fill(tf.shape(grad), rate), moments
        _, state = self.rmsprop.apply(moments[:-1], grad, tf.zeros_like(grad))
        live = self.rmsprop.slot(state, "velocity")
        frozen = tf.where(adapt > 0, live, moments[-1])
        v = tf.maximum(frozen, live / SPIKE) + self.rmsprop.optimizer.epsilon
        eta = rate * tf.math.rsqrt(v)
        share = tf.maximum(1.0 - batch / n, 0.0)
        gain = 1.0 if self.sampler == "sgld" else friction
        # Injected variance 2 gain eta / N per step; the gradient's eta**2 (1 - B/N) v.
        cap = tf.math.divide_no_nan(2.0 * GRADIENT_NOISE_SHARE * gain, share * n * v)
        cap = tf.where(share > 0, cap, tf.fill(tf.shape(v), np.inf))
        return tf.where(noisy > 0, tf.minimum(eta, cap), eta), [*state, frozen]

    def _step(self, theta, velocity, moments, xb, yb, n, rate, noisy, adapt, seed, friction,
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
        grad = tape.gradient(loss, theta)
        eta, moments = self._step_sizes(moments, grad, rate, noisy, adapt, n,
                                                    batch, friction)
        # Noise only where the schedule injects it (exploration and the MAP start run
        # without), and from Philox: random numbers are the dearest part of a step
        # under XLA on CPU, the default generator dearer still.
        xi = tf.cond(
            noisy > 0,
            lambda: tf.random.stateless_normal(tf.shape(theta), seed=seed, alg="philox"),
            lambda: tf.zeros_like(theta))
        gain = 1.0 if self.sampler == "sgld" else friction
        scale = tf.sqrt(2.0 * gain * eta * temperature / n) * noisy
        if self.sampler == "sgld":
            theta = theta - eta * grad + scale * xi
        else:
            velocity = (1.0 - friction) * velocity - eta * grad + scale * xi
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

    def _run(self, theta, velocity, moments, x, y, batches, rates, noisy, adapt, keep, seed,
             friction, temperature):
        """Steps over the rows of `batches` `(K, B)` (minibatch row indices).

        `rates`, `noisy` (0/1), `adapt` (0/1: update the preconditioner) and `keep`
        (draw slot, or -1) are per-step schedules;
        `moments` is the preconditioner's state (see `initial_moments`).
        Returns the new `theta`, `velocity`, `moments`, kept draws `(D, P)` and the
        mean minibatch negative log-likelihood per example.
        """
        n = tf.cast(tf.shape(x)[0], theta.dtype)

        def body(i, theta, velocity, moments, kept, nll_sum):
            idx = batches[i]
            theta, velocity, moments, nll = self._step(
                theta, velocity, moments, tf.gather(x, idx), tf.gather(y, idx), n, rates[i],
                noisy[i], adapt[i], seed + [0, i], friction, temperature)
            return i + 1, theta, velocity, moments, self._keep(kept, keep[i], theta), nll_sum + nll

        steps = tf.shape(batches)[0]
        _, theta, velocity, moments, kept, nll_sum = tf.while_loop(
            lambda i, *_: i < steps, body,
            (tf.constant(0), theta, velocity, moments, self._draw_slots(keep, theta),
             tf.zeros((), theta.dtype)))
        return theta, velocity, moments, kept, nll_sum / tf.cast(steps, theta.dtype)

    def _run_stream(self, theta, velocity, moments, batches, n, rates, noisy, adapt, keep, seed,
                    friction, temperature):
        """As `_run`, a step per `(x, y)` batch read from the iterator `batches` (the
        stream repeated) and `n` the training rows: one compiled step per batch, as
        XLA cannot compile the reading of a dataset."""
        kept, nll_sum = self._draw_slots(keep, theta), tf.zeros((), theta.dtype)
        for i in tf.range(tf.shape(rates)[0]):
            xb, yb = next(batches)
            theta, velocity, moments, nll = self.stream_step(
                theta, velocity, moments, xb, yb, n, rates[i], noisy[i], adapt[i],
                seed + [0, i], friction, temperature)
            kept, nll_sum = self._keep(kept, keep[i], theta), nll_sum + nll
        return theta, velocity, moments, kept, nll_sum / tf.cast(tf.shape(rates)[0], theta.dtype)


@INFERENCE.register("sgmcmc")
class StochasticGradientMCMC(SampledPosterior):
    """Minibatch SG-MCMC: cyclical SG-HMC (default) or SGLD, from a MAP start.

    The run lasts `map_steps` (rounded up to whole epochs) plus the estimator's
    `epochs`, or more on small data: at least `min_steps`. It uses the estimator's
    `batch_size`, not its `learning_rate` (meant for Adam: see `learning_rate` here). Kept draws come from steps that inject
    the posterior's noise at a constant step size, with the preconditioner frozen
    (see the module docstring).

    Args:
        sampler: "sghmc_cyclical" (after Zhang et al. 2020: a cosine step size
            restarted `n_cycles` times; each cycle explores without noise, then
            samples at the step size the exploration ended with) or "sgld" (constant
            step size; the first `burnin` fraction of blocks adapts the
            preconditioner and is discarded).
        n_cycles: cycles of the cyclical schedule (for "sgld": blocks of steps).
        samples_per_cycle: draws kept per cycle (block), evenly spaced over its
            sampling phase after the preconditioner is frozen, the last at its end.
        exploration: fraction of each cycle without noise ("sghmc_cyclical").
        burnin: fraction of the blocks discarded before keeping draws ("sgld").
        preconditioner: "rmsprop" (default: pSGLD's diagonal preconditioner, Li et
            al. 2016, for SGLD and SG-HMC alike: step sizes per weight from a running
            average of squared gradients, so one step size suits data sets whose
            noise levels, and hence gradient scales, differ by orders of magnitude;
            frozen where draws are kept) or "none" (the plain samplers).
        learning_rate: per-example step size (the peak of the cyclical schedule);
            None takes 1e-3 with "rmsprop" and 0.01 with "none" (per example:
            with momentum 0.9, SG-HMC moves about ten times further per step than
            SGLD).
        momentum: `1 - friction` of SG-HMC.
        temperature: 1 samples the posterior; below 1 a sharpened ("cold") one.
        map_steps: noise-free steps (the sampler's update without noise: RMSprop
            with momentum for SG-HMC) from the random initialisation before the
            first cycle, rounded up to whole epochs; 0 starts sampling at once.
        min_steps: the fewest steps of the cycles (whole epochs per cycle).
        noise_precision_prior: `(concentration, rate)` of the Gamma prior on the
            noise precision of a learned Gaussian scale, standardised units.
        jit_compile: compile the step loop with XLA (False: a plain TensorFlow
            graph, quicker to build for tiny problems).
    """

    name = "sgmcmc"

    def __init__(self, sampler: str = "sghmc_cyclical", n_cycles: int = 10,
                 samples_per_cycle: int = 10, exploration: float = 0.1, burnin: float = 0.3,
                 learning_rate: float | None = None, momentum: float = 0.9,
                 temperature: float = 1.0, map_steps: int = 1000, min_steps: int = 10_000,
                 noise_precision_prior=(3.0, 1.0), preconditioner: str = "rmsprop",
                 jit_compile: bool = True):
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
        self.map_steps = check_int("map_steps", map_steps, 0)
        self.min_steps = check_int("min_steps", min_steps, 0)
        self.noise_precision_prior = check_gamma_prior(noise_precision_prior)
        self.jit_compile = bool(jit_compile)

    def get_config(self):
        return {
            "sampler": self.sampler, "n_cycles": self.n_cycles,
            "samples_per_cycle": self.samples_per_cycle, "exploration": self.exploration,
            "burnin": self.burnin, "learning_rate": self.learning_rate,
            "momentum": self.momentum, "temperature": self.temperature,
            "map_steps": self.map_steps, "min_steps": self.min_steps,
            "noise_precision_prior": list(self.noise_precision_prior),
            "preconditioner": self.preconditioner, "jit_compile": self.jit_compile,
        }

    @property
    def _learning_rate(self) -> float:
        return self.learning_rate or DEFAULT_LEARNING_RATE[self.preconditioner]

    def schedule(self, steps_per_cycle: int):
        """Per-step `(rates, noisy, adapt, keep)` of one cycle (block) that keeps draws.

        `noisy` marks the steps that inject noise, `adapt` those that update the
        preconditioner (it is frozen where draws are kept) and `keep` the draw slot
        of each step (-1: none). "sghmc_cyclical" explores (no noise) for the first
        `exploration` fraction, then samples at the step size reached there: the
        first `ADAPT_FRACTION` of its sampling phase adapts and is discarded. "sgld"
        keeps draws over the whole block (its burn-in blocks adapt instead).
        """
        peak, k, steps = self._learning_rate, self.samples_per_cycle, steps_per_cycle
        if self.sampler == "sgld":
            rates, noisy = np.full(steps, peak), np.ones(steps)
            first_kept, adapt = 0, np.zeros(steps)
        else:
            start = min(int(math.ceil(self.exploration * steps)), steps - 2)
            rates = cyclical_schedule(steps, peak)
            rates[start:] = rates[start]
            noisy = (np.arange(steps) >= start).astype(float)
            first_kept = start + max(1, int(round(ADAPT_FRACTION * (steps - start))))
            adapt = (np.arange(steps) < first_kept).astype(float)
        span = steps - first_kept
        at = np.unique((first_kept - 1 + span * np.arange(1, k + 1) / k).round().astype(int))
        keep = np.full(steps, -1)
        keep[at] = np.arange(len(at))
        return (rates.astype(np.float32), noisy.astype(np.float32), adapt.astype(np.float32),
                keep.astype(np.int32))

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
        seeds = rng.integers(0, 2**31 - 1, size=(self.n_cycles + 1, 2)).astype(np.int32)
        feed = StreamFeed(x) if streamed else ArrayFeed(x, y, settings.batch_size, rng)
        start = time.perf_counter()
        draws, nlls = self._sample(runner, feed, theta, seeds, settings)
        seconds = time.perf_counter() - start
        self.cycles_ = len(draws)  # kept cycles (blocks)
        draws = np.concatenate(draws)[:, np.newaxis, :]  # (T, 1, P): one chain
        self.model, self.likelihood, self.draws_ = model, likelihood, draws
        log_posterior.functional.set_params(draws[-1, 0])
        self.diagnostics_ = self._diagnostics(log_posterior, draws, feed.passes())
        self.diagnostics_["seconds"] = seconds
        logger.info("sgmcmc: %d cycles, %d draws in %.1f s", self.n_cycles, len(draws), seconds)
        return {"nll": nlls, "diagnostics": dict(self.diagnostics_)}

    def _sample(self, runner, feed, theta, seeds, settings: FitSettings):
        """Runs the MAP start and the cycles from `theta`, one compiled call each; returns
        the kept draws (a `(D, P)` array per kept cycle) and each cycle's mean minibatch
        NLL."""
        steps_per_epoch = -(-feed.n // feed.batch_size)
        epochs_per_cycle = max(1, settings.epochs // self.n_cycles,
                               -(-self.min_steps // (self.n_cycles * steps_per_epoch)))
        steps_per_cycle = epochs_per_cycle * steps_per_epoch
        if steps_per_cycle < 4:
            raise ValueError(
                f"epochs={settings.epochs} over n_cycles={self.n_cycles} leaves "
                f"{steps_per_cycle} steps per cycle; use more epochs or fewer cycles"
            )
        burnin_cycles = int(round(self.burnin * self.n_cycles)) if self.sampler == "sgld" else 0
        burnin_cycles = min(burnin_cycles, self.n_cycles - 1)
        kept = [tf.constant(v) for v in self.schedule(steps_per_cycle)]
        ones = tf.ones(steps_per_cycle)
        burning = [kept[0], ones, ones, tf.fill([steps_per_cycle], -1)]
        chain = (theta, tf.zeros_like(theta), runner.initial_moments())
        constants = (tf.constant(1.0 - self.momentum, tf.float32),
                     tf.constant(self.temperature, tf.float32))
        if self.map_steps:
            map_epochs = -(-self.map_steps // steps_per_epoch)
            chain = self._run(runner, feed, chain, map_epochs, self._map_schedule(
                map_epochs * steps_per_epoch), seeds[-1], constants, "the MAP start")[0]
        progress = keras.utils.Progbar(self.n_cycles, verbose=1, unit_name="cycle",
                                       stateful_metrics=["nll"]) if settings.verbose else None
        draws, nlls = [], []
        for cycle in range(self.n_cycles):
            schedule = burning if cycle < burnin_cycles else kept
            chain, draw, nll = self._run(runner, feed, chain, epochs_per_cycle, schedule,
                                         seeds[cycle], constants, f"cycle {cycle + 1}")
            if cycle >= burnin_cycles:
                draws.append(draw)
            nlls.append(nll)
            if progress is not None:
                progress.update(cycle + 1, [("nll", nll)])
        return draws, nlls

    def _map_schedule(self, steps: int) -> list:
        """The MAP start's schedule: constant step size, no noise, adapting, no draws."""
        return [tf.fill([steps], np.float32(self._learning_rate)), tf.zeros(steps),
                tf.ones(steps), tf.fill([steps], -1)]

    def _run(self, runner, feed, chain, epochs, schedule, seed, constants, what):
        """One compiled call: `((theta, velocity, moments), kept draws, mean NLL)`."""
        *chain, draws, nll = feed.run(runner, epochs, *chain, *schedule, tf.constant(seed),
                                      *constants)
        nll = float(nll)
        if not math.isfinite(nll) or not np.isfinite(chain[0].numpy()).all():
            raise FloatingPointError(
                f"{self.sampler} diverged in {what} (nll={nll}); lower learning_rate "
                f"(now {self._learning_rate})"
            )
        return tuple(chain), draws.numpy(), nll

    def _diagnostics(self, log_posterior, draws, batches) -> dict:
        """Summaries of the draws over the training data, read as `(x, y)` `batches`."""
        flat = tf.constant(draws[:, 0])
        log_lik = sum(np.concatenate([log_posterior.log_likelihood(flat[i : i + 256], xb, yb)
                                      .numpy() for i in range(0, len(flat), 256)])
                      for xb, yb in batches)
        # ArviZ's `lp`: the log posterior of each draw over all training rows.
        self.sample_stats_ = {"lp": (log_lik + log_posterior.log_prior(flat).numpy())[:, None]}
        out = {"sampler": self.sampler, "n_chains": 1, "num_draws": int(len(flat)),
               "mean_log_lik": float(np.mean(log_lik))}
        if len(flat) >= 4:
            # Across-cycle draws are meant to differ (new modes), so only the ESS of
            # the log-likelihood is reported; there is no between-chain R-hat.
            out["ess_log_lik"] = float(diag.effective_sample_size(log_lik[:, None]))
        return out

    def to_inference_data(self):
        """The draws (and each draw's log posterior `lp`) as an `arviz.InferenceData`,
        each kept cycle's draws as one chain (cycles start afresh, so ArviZ's R-hat
        compares them): see `tfbnn.inference.inference_data.to_inference_data`."""
        return to_inference_data(self, chains=self.cycles_)
