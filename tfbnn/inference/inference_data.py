"""Sampled posteriors as ArviZ `InferenceData`: draws per weight, sampler statistics.

The samplers (`tfbnn.inference.hmc`, `tfbnn.inference.sgmcmc`) keep their draws as
one `(T, C, P)` array over the network's flattened weights. `to_inference_data`
cuts it back into the network's weights, one ArviZ variable per Keras weight
(named by its path, e.g. `hmc_mlp.dense.kernel`) with `chain` and `draw`
dimensions, so that ArviZ's rank-normalised split R-hat and bulk/tail effective
sample sizes (`az.summary`, `az.rhat`, `az.ess`) and trace plots (`az.plot_trace`)
apply. Sampler statistics a method keeps as `sample_stats_` (a dict of `(T, C)`
arrays named as ArviZ names them: `lp`, `acceptance_rate`, `diverging`,
`n_steps`, `tree_depth`, `step_size`, `energy`) go into the `sample_stats` group.

ArviZ is optional (`pip install arviz`); it is imported when a conversion is asked for.

#### References

Kumar, Carroll, Hartikainen & Martin, "ArviZ a unified library for exploratory
analysis of Bayesian models in Python", JOSS 2019.

Vehtari, Gelman, Simpson, Carpenter & Bürkner, "Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC", Bayesian
Analysis 2021.
"""

from __future__ import annotations

import numpy as np


def import_arviz():
    """The `arviz` module, or an ImportError saying how to install it."""
    try:
        import arviz
    except ImportError as error:
        raise ImportError(
            "to_inference_data needs the optional dependency arviz: pip install arviz"
        ) from error
    return arviz


def weight_draws(model, draws) -> dict[str, np.ndarray]:
    """`{name: (C, T, *shape)}` per trainable weight of `model` from `(T, C, P)` draws.

    Names are the weights' Keras paths with "/" as "." (unique within a model).
    """
    draws = np.asarray(draws)
    if draws.ndim != 3:
        raise ValueError(f"draws must be (draws, chains, parameters), got shape {draws.shape}")
    variables = model.trainable_variables
    sizes = [int(np.prod(v.shape, dtype=np.int64)) for v in variables]
    if sum(sizes) != draws.shape[-1]:
        raise ValueError(
            f"draws have {draws.shape[-1]} parameters; the model has {sum(sizes)}")
    t, c = draws.shape[:2]
    out, start = {}, 0
    for variable, size in zip(variables, sizes):
        part = draws[:, :, start : start + size].reshape(t, c, *variable.shape)
        out[variable.path.replace("/", ".")] = np.swapaxes(part, 0, 1)
        start += size
    return out


def hmc_sample_stats(trace: dict, step_size: float) -> dict[str, np.ndarray]:
    """ArviZ's sample statistics `(T, C)` from an HMC/NUTS trace of `(T, C)` arrays
    (`target_log_prob`, `log_accept_ratio`, `divergent`, `leapfrogs`, and `energy`
    when the kernel reports it).

    A NUTS tree of depth `d` takes up to `2**d - 1` leapfrog steps, so the depth
    reported is `ceil(log2(n_steps + 1))` (Hoffman & Gelman 2014).
    """
    leapfrogs = np.asarray(trace["leapfrogs"])
    stats = {
        "lp": np.asarray(trace["target_log_prob"], np.float64),
        "acceptance_rate": np.exp(np.minimum(np.asarray(trace["log_accept_ratio"],
                                                        np.float64), 0.0)),
        "diverging": np.asarray(trace["divergent"], bool),
        "n_steps": leapfrogs.astype(np.int64),
        "tree_depth": np.ceil(np.log2(leapfrogs + 1.0)).astype(np.int64),
        "step_size": np.full(leapfrogs.shape, float(step_size)),
    }
    if "energy" in trace:
        stats["energy"] = np.asarray(trace["energy"], np.float64)
    return stats


def to_inference_data(method, chains: int | None = None):
    """An `arviz.InferenceData` of a fitted sampler's draws (`posterior`) and, where the
    sampler keeps them, its statistics (`sample_stats`).

    Args:
        method: a fitted sampled posterior (`inference="hmc"` or `"sgmcmc"`; the
            estimator's `inference_`).
        chains: cut one stored chain into this many consecutive chains of equal
            length (None: the chains as stored), e.g. SG-MCMC's cycles.

    Raises:
        ImportError: arviz is not installed.
        ValueError: the method holds no draws (not a sampler, or not fitted).
    """
    draws = getattr(method, "draws_", None)
    if draws is None:
        raise ValueError(
            f"{type(method).__name__} holds no posterior draws: to_inference_data needs a "
            "fitted sampler (inference='hmc' or 'sgmcmc')")
    az = import_arviz()
    stats = dict(getattr(method, "sample_stats_", None) or {})
    if chains is not None:
        draws, stats = _split(draws, chains), {k: _split(v, chains) for k, v in stats.items()}
    stats = {name: np.swapaxes(np.asarray(value), 0, 1) for name, value in stats.items()}
    return az.from_dict(posterior=weight_draws(method.model, draws),
                        sample_stats=stats or None,
                        attrs={"inference_library": "tfbnn",
                               "method": getattr(method, "name", type(method).__name__)})


def _split(values, chains: int) -> np.ndarray:
    """`(T, 1, ...)` as `(T / chains, chains, ...)`: consecutive blocks as chains."""
    values = np.asarray(values)
    if values.shape[1] != 1 or len(values) % chains:
        raise ValueError(f"cannot cut draws of shape {values.shape} into {chains} chains")
    blocks = values[:, 0].reshape(chains, len(values) // chains, *values.shape[2:])
    return np.swapaxes(blocks, 0, 1)
