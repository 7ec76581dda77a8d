"""Convergence diagnostics of Markov chains: split R-hat, effective sample size, divergences.

All functions take draws shaped `(T, C, ...)`: `T` draws of each of `C` chains
(the layout `tfp.mcmc.sample_chain` returns for a batch of chains).

Weight-space R-hat of a neural network is expected to be large even when its
predictions are well sampled: hidden units can be permuted and many modes give
the same function. So the mixing check (`problems`) judges function space (the
training log-likelihood and the predictive mean at some inputs), divergences and
the effective sample size; the weight-space summary is reported alongside.

#### References

Vehtari, Gelman, Simpson, Carpenter & Bürkner, "Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC", Bayesian
Analysis 2021.

Gelman & Rubin, "Inference from iterative simulation using multiple sequences",
Statistical Science 1992.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

#: Chains count as not mixed above this split R-hat (Vehtari et al. 2021 suggest 1.01
#: for final results; 1.1 is the classic, lenient threshold).
RHAT_THRESHOLD = 1.1
#: An effective sample size below this many per chain counts as tiny.
MIN_ESS_PER_CHAIN = 5.0


class ConvergenceWarning(UserWarning):
    """The Markov chains have not mixed: their draws may misrepresent the posterior."""


def split_rhat(draws) -> np.ndarray:
    """Split R-hat of every quantity in `draws` `(T, C, ...)`, shape `(...)`.

    Needs `T >= 4` (each chain is split in halves, so one chain suffices).
    """
    draws = tf.convert_to_tensor(np.asarray(draws, np.float64))
    return tfp.mcmc.potential_scale_reduction(
        draws, independent_chain_ndims=1, split_chains=True
    ).numpy()


def mean_tree_depth(leapfrogs) -> float:
    """The mean depth of NUTS trees that took `leapfrogs` leapfrog steps each: a tree of
    depth `d` has up to `2**d - 1` steps, so a tree stopped early counts as the depth it
    reached, `ceil(log2(leapfrogs + 1))` (a fixed-length HMC proposal of `L` steps reads
    as the tree of that many)."""
    return float(np.mean(np.ceil(np.log2(np.asarray(leapfrogs, np.float64) + 1.0))))


def effective_sample_size(draws) -> np.ndarray:
    """Effective sample size over all chains of every quantity in `draws` `(T, C, ...)`.

    TFP's estimate with Geyer's initial positive sequence, capped as Stan caps it at
    `N log10(N)` for `N = T C` draws: anticorrelated chains drive the estimate's
    denominator `-1 + 2 sum(rho)` towards zero or below it, which would otherwise read
    as an enormous or negative sample size.
    """
    draws = np.asarray(draws, np.float64)
    total = draws.shape[0] * draws.shape[1]
    tensor = tf.convert_to_tensor(draws)
    # TFP's FFT autocorrelation takes the real part of a complex result on purpose;
    # silence the TensorFlow warning it logs about that cast.
    tf_logger = tf.get_logger()
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        if draws.shape[1] == 1:
            # Cross-chain ESS needs two chains; with one, the single-chain estimate.
            ess = tfp.mcmc.effective_sample_size(
                tensor[:, 0], filter_beyond_positive_pairs=True).numpy()
        else:
            ess = tfp.mcmc.effective_sample_size(
                tensor, cross_chain_dims=1, filter_beyond_positive_pairs=True).numpy()
    finally:
        tf_logger.setLevel(level)
    cap = total * math.log10(total)
    return np.where(ess > 0, np.minimum(ess, cap), np.where(np.isnan(ess), np.nan, cap))


def _finite(values) -> np.ndarray:
    values = np.asarray(values, np.float64).ravel()
    return values[np.isfinite(values)]


def _summary(values, reduce) -> float:
    values = _finite(values)
    return float(reduce(values)) if values.size else float("nan")


def summarize(params, log_lik, predictive=None) -> dict:
    """Mixing summary of chains.

    Args:
        params: `(T, C, P)` parameter draws.
        log_lik: `(T, C)` training log-likelihood of each draw.
        predictive: optional `(T, C, M)` predictive means at `M` inputs.

    Returns:
        A dict of floats: `rhat_params_max`, `ess_params_min`, `ess_params_median`,
        `rhat_log_lik`, `ess_log_lik` and, with `predictive`, `rhat_predictive_max`,
        `ess_predictive_min`.
    """
    params = np.asarray(params)
    if params.shape[0] < 4:
        raise ValueError(f"Diagnostics need at least 4 draws per chain, got {params.shape[0]}")
    rhat_p, ess_p = split_rhat(params), effective_sample_size(params)
    out = {
        "rhat_params_max": _summary(rhat_p, np.max),
        "ess_params_min": _summary(ess_p, np.min),
        "ess_params_median": _summary(ess_p, np.median),
        "rhat_log_lik": _summary(split_rhat(log_lik), np.max),
        "ess_log_lik": _summary(effective_sample_size(log_lik), np.min),
    }
    if predictive is not None:
        out["rhat_predictive_max"] = _summary(split_rhat(predictive), np.max)
        out["ess_predictive_min"] = _summary(effective_sample_size(predictive), np.min)
    return out


def problems(diagnostics: dict) -> list[str]:
    """Human-readable reasons why the chains in `diagnostics` look unmixed (empty if none)."""
    found = []
    n_chains = diagnostics.get("n_chains", 1)
    for key, what in (("rhat_log_lik", "the log-likelihood"),
                      ("rhat_predictive_max", "the predictive mean")):
        value = diagnostics.get(key)
        if value is not None and not value <= RHAT_THRESHOLD:
            found.append(f"split R-hat of {what} is {value:.3g} (> {RHAT_THRESHOLD})")
    min_ess = MIN_ESS_PER_CHAIN * n_chains
    for key, what in (("ess_log_lik", "the log-likelihood"),
                      ("ess_predictive_min", "the predictive mean")):
        value = diagnostics.get(key)
        if value is not None and not value >= min_ess:
            found.append(f"effective sample size of {what} is {value:.3g} (< {min_ess:g})")
    divergences = diagnostics.get("n_divergences", 0)
    if divergences:
        found.append(f"{divergences} divergent transitions after warm-up")
    return found


def warn_if_not_mixed(diagnostics: dict, method: str, stacklevel: int = 3) -> None:
    """Issues a `ConvergenceWarning` listing `problems(diagnostics)`, if any."""
    found = problems(diagnostics)
    if found:
        warnings.warn(
            f"{method}: the Markov chains have not mixed: " + "; ".join(found)
            + ". Predictions may misrepresent the posterior: run longer (num_warmup, "
            "num_samples), raise target_accept, or use more chains; see "
            "`inference_.diagnostics_`.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
