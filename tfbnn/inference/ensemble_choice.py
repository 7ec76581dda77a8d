"""How a deep ensemble's members are trained, chosen on held-out training rows.

The paper's members (Lakshminarayanan et al., 2017: a heteroscedastic Gaussian,
fast-gradient-sign inputs of 0.01 of each feature's range, Goodfellow et al., 2015)
help on noisy data and can cost nearly noise-free data a great deal: there
the adversarial step asks a member to predict the same target a step away in every
input, which widens its noise to about `epsilon * |grad f|_1`, and heteroscedastic
members fit the mean worse where they can call it noise (Seitzer et al., 2022; the
references are in `tfbnn.inference.ensemble.DeepEnsemble`). Which holds for a data
set is not known in advance, so `member_candidates` lists the settings an
estimator's `"auto"` options leave open, and `choose` keeps the paper's members
unless another setting's mixture has a lower negative log-likelihood on rows held
out of the training data by more than `MARGIN` standard errors of the paired
per-row difference. A few dozen held-out rows (boston) are too few to tell
settings apart that differ by a tenth of a nat, and chosen by their means alone the
settings that overfit small data sets win by chance; the margin keeps the default
unless the evidence is clear, as the one-standard-error rule does (Hastie,
Tibshirani and Friedman, _The Elements of Statistical Learning_, 2009, section 7.10).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfbnn import likelihoods
from tfbnn.functional import FunctionalModel
from tfbnn.inference.training_data import TrainingData

AUTO = "auto"
#: The paper's adversarial step, a fraction of each input feature's range.
PAPER_EPSILON = 0.01
#: `noise=`: chosen on held-out rows, or the likelihood's own per-input noise, or one
#: learned noise scale per member.
NOISE_OPTIONS = (AUTO, "heteroscedastic", "homoscedastic")
#: Fewer held-out rows than this choose nothing: the paper's setting is kept.
MIN_HELD_OUT = 20
#: Another setting replaces the paper's when its held-out NLL is lower by more than this
#: many standard errors of the per-row difference.
MARGIN = 2.0
#: Per-row NLLs are clipped here, so that one diverged row still compares.
MAX_NLL = 1e6


class Members(NamedTuple):
    """Trained members: the Keras network of one, the likelihood they trained under
    (with its scale floor), and their flat parameters `(M, P)`."""

    model: object
    likelihood: object
    thetas: np.ndarray


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One way of training the members: `homoscedastic` replaces a heteroscedastic
    Gaussian by a Gaussian with one learned scale (same `(loc, raw scale)` outputs);
    `epsilon` is the adversarial step as a fraction of each feature's range, or None."""

    homoscedastic: bool
    epsilon: float | None

    def likelihood(self, likelihood):
        """The likelihood the members train under."""
        if not self.homoscedastic:
            return likelihood
        return likelihoods.Gaussian(trainable=True, min_scale=likelihood.min_scale)

    def describe(self, scores=None) -> dict:
        """The choice as JSON-ready values, with every candidate's mean held-out NLL
        (`scores`: candidate -> mean) if any."""
        return {"noise": "homoscedastic" if self.homoscedastic else "as the likelihood",
                "adversarial_epsilon": self.epsilon,
                "held_out_nll": None if scores is None else [
                    {**dataclasses.asdict(c), "nll": float(v)} for c, v in scores.items()]}


def member_candidates(likelihood, noise: str, epsilon) -> list[Candidate]:
    """The settings left open by `noise` and `adversarial_epsilon` (`"auto"` or fixed),
    the paper's first.

    `"auto"` epsilon is chosen (the paper's 0.01 or none) for continuous targets and is
    the paper's 0.01 for labels and counts; `"auto"` noise is chosen (per input or one
    scale, the latter without the adversarial step) for a heteroscedastic Gaussian and is
    the likelihood's own otherwise.
    """
    heteroscedastic = isinstance(likelihood, likelihoods.HeteroscedasticGaussian)
    if noise != AUTO and not heteroscedastic:
        raise ValueError(f"noise={noise!r} applies to likelihood='heteroscedastic' only, not "
                         f"{likelihood!r}; leave noise='auto'")
    if epsilon == AUTO:
        epsilons = [PAPER_EPSILON] if likelihood.is_discrete else [PAPER_EPSILON, None]
    else:
        epsilons = [epsilon]
    candidates = [Candidate(noise == "homoscedastic", e) for e in epsilons]
    if noise == AUTO and heteroscedastic:
        candidates.append(Candidate(True, None if epsilon == AUTO else epsilon))
    return list(dict.fromkeys(candidates))


def selection_rows(data: TrainingData, fraction: float, seed):
    """`(rows fitted, (x, y) held out)` to choose on: the estimator's validation rows if
    it holds some out, else `fraction` of the training rows at random; None for a
    stream or fewer than `MIN_HELD_OUT` rows to hold out."""
    if data.streamed:
        return None
    if data.validation is not None:
        return (data, data.validation) if len(data.validation[0]) >= MIN_HELD_OUT else None
    n_held = int(round(fraction * data.n_rows))
    if n_held < MIN_HELD_OUT or data.n_rows - n_held < MIN_HELD_OUT:
        return None
    order = np.random.default_rng(seed).permutation(data.n_rows)
    held, kept = order[:n_held], order[n_held:]
    fitted = dataclasses.replace(data, x=data.x[kept], y=data.y[kept], n_rows=len(kept))
    return fitted, (data.x[held], data.y[held])


def choose(nlls: dict) -> Candidate:
    """The candidate to keep, from each candidate's per-row held-out NLLs (the paper's
    first): the lowest mean among the paper's and those better than it by more than
    `MARGIN` standard errors of the paired difference."""
    candidates = list(nlls)
    reference = nlls[candidates[0]]
    clear = [candidates[0]]
    for candidate in candidates[1:]:
        diff = nlls[candidate] - reference
        error = diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else math.inf
        if diff.mean() + MARGIN * error < 0:
            clear.append(candidate)
    return min(clear, key=lambda c: nlls[c].mean())


def held_out_nll(members: Members, held_out) -> np.ndarray:
    """The negative log-likelihood of the members' equal mixture at each held-out row
    (at most `MAX_NLL`)."""
    x, y = held_out
    # Eager: a traced program per candidate's architecture would be used once.
    params = FunctionalModel(members.model).map(tf.constant(members.thetas, tf.float32),
                                                tf.constant(x, tf.float32))
    log_lik = members.likelihood.log_prob(tf.constant(y[None], tf.float32), params)
    mixture = tf.reduce_logsumexp(log_lik, axis=0) - math.log(len(members.thetas))
    nll = -np.asarray(mixture, np.float64)
    return np.where(np.isnan(nll), MAX_NLL, np.minimum(nll, MAX_NLL))
