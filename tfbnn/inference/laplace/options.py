"""The Laplace approximation's options: plain strings, one enum member (documented) each."""

from __future__ import annotations

import enum

from tfbnn.validation import check_option, check_positive


class SubsetOfWeights(enum.StrEnum):
    """Which weights get a posterior; the others stay at their MAP values."""

    LAST_LAYER = "last_layer"
    """The last dense layer's kernel and bias: cheap, and exact Bayesian linear
    regression on the learned features."""
    ALL = "all"
    """Every dense layer's kernel and bias."""


class HessianStructure(enum.StrEnum):
    """How the generalised Gauss-Newton curvature is stored."""

    FULL = "full"
    """One dense `P x P` matrix: exact, `P^2` memory."""
    DIAG = "diag"
    """Its diagonal: `P` memory, ignores all correlations between weights."""
    KRON = "kron"
    """One Kronecker product `A (x) B` per layer (KFAC): keeps the correlations
    within a layer at the memory of its input and output widths squared."""


class PredType(enum.StrEnum):
    """How predictive draws are made."""

    GLM = "glm"
    """Linearise the network at the MAP: outputs `f ~ N(f_MAP(x), J Sigma J^T)`
    (exact Gaussian for regression; logits sampled from it for classification)."""
    NN = "nn"
    """Sample weights from the posterior and run the network on each draw."""


class PriorPrecisionMethod(enum.StrEnum):
    """How the prior precision is set when not given as a number."""

    MARGLIK = "marglik"
    """Maximise the Laplace marginal likelihood (the evidence) over the precision."""
    PRIOR = "prior"
    """Use the prior's `1 / scale^2` as it is."""


class SigmaNoiseMethod(enum.StrEnum):
    """How a learned Gaussian noise scale is set (a fixed one is always kept)."""

    MARGLIK = "marglik"
    """Maximise the Laplace marginal likelihood over the noise, jointly with the
    prior precision: MacKay's `sigma^2 = ||r||^2 / (N - gamma)`, counting the
    well-determined weights `gamma` over the whole network with its full GGN. Used
    by the posterior and the predictive. For one target dimension; with several,
    the trained scales are kept."""
    MAP = "map"
    """Keep the scale learned with the MAP network (it fits the training residuals,
    which an over-fitted network has made too small)."""


def check_enum(name: str, value, enum_cls):
    """`value` as a member of `enum_cls`, else a ValueError listing the allowed strings."""
    return enum_cls(check_option(name, value, [member.value for member in enum_cls]))


def check_prior_precision(value):
    """A `PriorPrecisionMethod` name, or a positive number (as a float)."""
    if isinstance(value, str):
        return check_enum("prior_precision", value, PriorPrecisionMethod)
    return check_positive("prior_precision", value)
