"""How a user's Keras model meets a tfbnn likelihood: its outputs are the likelihood's parameters.

As for tfbnn's own networks, the model emits the parameters the likelihood reads:
a location (and, for a learned Gaussian noise, a raw scale appended by a
`tfbnn.layers.LearnedScale` head), a location and a raw scale per input
("heteroscedastic"), logits ("bernoulli", "categorical") or log rates ("poisson").
"""

from __future__ import annotations

from tfbnn import likelihoods as lik
from tfbnn.layers.heads import LearnedScale


def resolve_likelihood(likelihood, width: int, heads=()) -> lik.Likelihood:
    """`likelihood` (a name, config or `tfbnn.likelihoods.Likelihood`) for a model whose
    last layer emits `width` values per input, followed by the layers `heads`.

    "categorical" takes its number of classes from `width`; a learned noise scale
    ("gaussian", "student_t") takes the floor of the model's `LearnedScale` head.
    """
    if isinstance(likelihood, str):
        options = {}
        if likelihood == "categorical":
            options["n_classes"] = width
        scales = [h for h in heads if isinstance(h, LearnedScale)]
        if likelihood in ("gaussian", "student_t") and scales:
            options["min_scale"] = scales[0].min_scale
        return lik.get(likelihood, **options)
    return lik.get(likelihood)


def output_width(model) -> int:
    """The number of values `model` emits per input (its output's last axis)."""
    shape = model.outputs[0].shape if hasattr(model, "outputs") else None
    if shape is None or len(shape) != 2 or shape[-1] is None:
        raise ValueError(f"model must emit a 2-D output (batch, parameters), got shape "
                         f"{None if shape is None else tuple(shape)}")
    return int(shape[-1])


def check_output_width(likelihood, width: int) -> int:
    """The target dimensions `d` of a model emitting `width` parameters of `likelihood`,
    else a ValueError saying what the likelihood takes."""
    try:
        d = likelihood.n_targets(width)
        fits = d is not None and likelihood.n_params(d) == width
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"The model emits {width} values per input, not the parameters of {likelihood!r} "
            f"({likelihood.n_params(1)} per target dimension). A learned Gaussian noise needs a "
            "tfbnn.layers.LearnedScale head after the last Dense layer; or give a fixed "
            "noise, tfbnn.likelihoods.Gaussian(scale=...), or 'heteroscedastic'")
    return d
