"""The numerics of an equal mixture of `S` distributions, one block of inputs at a time.

A `tfbnn.Predictive` holds `S` posterior draws of a likelihood's parameters at
`B` inputs; its predictive distribution at each input is the equal mixture of
the `S` component distributions. An `(S, B)` float64 array is 800 MB for 100
draws at a million inputs, so the summaries are computed over blocks of inputs
(`row_blocks`), each with arrays of `S x block` values only.

Precision: the parameters, the component moments, densities and class
probabilities stay in float32, as the network emits them; every sum over the
draws is taken in float64. CDF values compared against a level are float64 where
the answer must be exact to float64 (in float32 the upper tail saturates at
`1 - 6e-8`); the upper half of the distribution is read through the survival
function, `F(x) - 1 = -S(x)`, which keeps its small values exact.

Quantiles: a mixture CDF has no inverse in closed form. `mixture_quantiles`
solves `F(x) = q` by Newton's method kept inside a bracket by bisection
(`increasing_root`), from the Cornish-Fisher expansion of the mixture's
moments, first with float32 CDFs to about `1e-6` standard deviations and then
with float64 ones, where one step usually suffices; inputs stop being evaluated
once they are solved. A discrete family is solved by bisection on the integers
(`integer_root`). Both stop after a bounded number of evaluations. The results
agree with a bisection of the float64 CDF to about `1e-11` standard deviations,
except where the mixture density vanishes between modes: there the CDF is flat
to float64 precision and any point of the flat stretch is a quantile.

#### Mathematical details

Cantelli's inequality gives a bracket for any distribution with mean `m` and
standard deviation `s`: `F(m - s sqrt((1 - q) / q)) <= q <= F(m + s sqrt(q / (1 - q)))`.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import special

tfd = tfp.distributions

#: How many values (draws x inputs x parameters) a block holds by default: about 16 MB
#: per float64 array, a few of which are alive at once.
BLOCK_VALUES = 1 << 21

#: A Newton iterate is final once its step is below this many standard deviations;
#: quadratic convergence then leaves an error of about its square: about float32's
#: resolution after the first stage, about `1e-12` after the float64 stage.
FLOAT32_TOL = 1e-3
FLOAT64_TOL = 1e-6

#: The most CDF evaluations of the float32 and the float64 stage of a quantile.
FLOAT32_ITERATIONS = 20
FLOAT64_ITERATIONS = 100


def rows_per_block(n_draws: int, n_params: int, values: int = BLOCK_VALUES) -> int:
    """The inputs in a block of `values` values, for `(S, rows, k)` parameters."""
    return max(1, values // max(1, n_draws * n_params))


def row_blocks(n_rows: int, block_rows: int) -> list[slice]:
    """Consecutive slices of at most `block_rows` rows covering `range(n_rows)` (one, empty,
    for no rows, so that summaries keep their shape)."""
    if n_rows == 0:
        return [slice(0, 0)]
    return [slice(i, min(i + block_rows, n_rows)) for i in range(0, n_rows, block_rows)]


def moments(dist) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(mean of the means, mean of the variances, variance of the means)` over the draws
    (axis 0) of `dist`, float64."""
    means, variances = dist.mean().numpy(), dist.variance().numpy()
    return (means.mean(axis=0, dtype=np.float64), variances.mean(axis=0, dtype=np.float64),
            means.var(axis=0, dtype=np.float64))


def log_mean_exp(log_values: np.ndarray) -> np.ndarray:
    """`log(mean(exp(log_values)))` over axis 0, without overflow, float64."""
    log_values = np.asarray(log_values, np.float64)
    peak = log_values.max(axis=0)
    return peak + np.log(np.mean(np.exp(log_values - peak), axis=0))


def entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy in nats of probabilities along the last axis."""
    probs = np.clip(probs, 1e-300, 1.0)
    return -np.sum(probs * np.log(probs), axis=-1)


def mixture_cdf(dist, x: np.ndarray) -> np.ndarray:
    """The mixture CDF at `x` (one value per input and target), float64."""
    return np.mean(dist.cdf(tf.constant(x[None], dist.dtype)).numpy(), axis=0, dtype=np.float64)


class _Components:
    """A block's component distributions, in float32 or float64, at all its inputs or some
    (the last subset asked for is kept, besides the whole block)."""

    def __init__(self, likelihood, params):
        self._likelihood, self._params = likelihood, params
        self._built = {}

    def dist(self, dtype, rows=None):
        key = (dtype, None if rows is None else rows.tobytes())
        if key not in self._built:
            if rows is not None:
                self._built = {k: v for k, v in self._built.items() if k[1] is None}
            params = self._params if rows is None else tf.gather(self._params, rows, axis=1)
            self._built[key] = self._likelihood.distribution(tf.cast(params, dtype))
        return self._built[key]


def _levels_function(components: _Components, dtype, q: float):
    """`(target, evaluate)` for `increasing_root`: `G(x) = target` at the mixture's
    `q`-quantile, with `G = F` below the median and `G = -S = F - 1` above, in `dtype`."""
    upper = q > 0.5

    def evaluate(x, rows):
        mass, density = _mass_and_density(components, dtype, rows, x, upper)
        return (np.mean(mass.numpy(), axis=0, dtype=np.float64) * (-1.0 if upper else 1.0),
                np.mean(density.numpy(), axis=0, dtype=np.float64))

    return (q - 1.0 if upper else q), evaluate


def _mass_and_density(components: _Components, dtype, rows, x, upper: bool):
    """`S(x)` if `upper`, else `F(x)`, in `dtype`, and the density, of each component.

    A Normal's are one `erfc` and one `exp` of the same standardised value: exact in
    both tails and to float precision near the median, which is what a comparison
    with a level needs (TFP's `ndtr` also evaluates `erf`, for relative precision
    there, at three times the cost). Other families' densities are read in float32,
    precise enough for a Newton step.
    """
    dist = components.dist(dtype, rows)
    values = tf.constant(x[None], dtype)
    if isinstance(dist, tfd.Normal):
        w = (values - dist.loc) / (dist.scale * math.sqrt(2.0))
        density = tf.exp(-w * w) / (dist.scale * math.sqrt(2.0 * math.pi))
        return 0.5 * tf.math.erfc(w if upper else -w), density
    mass = dist.survival_function(values) if upper else dist.cdf(values)
    density = components.dist(tf.float32, rows).prob(tf.constant(x[None], tf.float32))
    return mass, density


def increasing_root(evaluate, target, x, lo, hi, *, scale, tol: float, iterations: int):
    """Solves `G(x) = target` elementwise for an increasing `G`: Newton's method, with a
    bisection step wherever Newton would leave the bracket.

    Args:
        evaluate: `(x, rows) -> (G(x), G'(x))` at the inputs `rows` (indices along the
            first axis, or None for all of them), whose values `x` holds.
        target: the value to reach (broadcast against `x`).
        x: the first guess; `lo`, `hi`: a bracket, `G(lo) < target <= G(hi)`.
        scale: the size of `x` the tolerance is measured in.
        tol: an element is final once it took a Newton step shorter than `tol * scale`.
        iterations: the most evaluations of `G`; once an input is final, it is no longer
            evaluated.

    Returns:
        The solutions, float64, shaped like `x`.
    """
    x, lo, hi, scale, target = (np.array(a, np.float64)
                                for a in np.broadcast_arrays(x, lo, hi, scale, target))
    active = np.ones(len(x), bool)
    for _ in range(iterations):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        at, low, high = x[rows], lo[rows], hi[rows]
        value, slope = evaluate(at, None if rows.size == len(x) else rows)
        below = value < target[rows]
        low, high = np.where(below, at, low), np.where(below, high, at)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = (target[rows] - value) / slope
            newton = at + step
            final = np.abs(step) <= tol * scale[rows]
        keep = final | ((newton > low) & (newton < high))
        x[rows] = np.where(keep, newton, 0.5 * (low + high))
        lo[rows], hi[rows] = low, high
        active[rows] = ~final.reshape(len(rows), -1).all(axis=1)
    return x


def integer_root(cdf, target, lo, hi) -> np.ndarray:
    """The smallest integer `k` with `cdf(k) >= target`, elementwise, by bisection on the
    integers; `cdf` is increasing and `cdf(lo) < target <= cdf(hi)`."""
    lo, hi = np.floor(lo), np.ceil(hi)
    width = np.max(np.where(np.isfinite(hi - lo), hi - lo, 1.0), initial=1.0)
    for _ in range(int(math.ceil(math.log2(max(width, 2.0)))) + 1):
        mid = np.floor(0.5 * (lo + hi))
        reached = cdf(mid) >= target
        lo, hi = np.where(reached, lo, mid), np.where(reached, mid, hi)
    return hi


def cantelli_bracket(mean, sd, q):
    """`(lo, hi)` with `F(lo) < q <= F(hi)` for any distribution of mean `mean` and standard
    deviation `sd` (Cantelli's inequality, widened a little to make the first strict)."""
    with np.errstate(divide="ignore"):
        lo = mean - sd * np.sqrt((1.0 - q) / q)
        hi = mean + sd * np.sqrt(q / (1.0 - q))
    return lo - 1e-6 * (1.0 + np.abs(lo)), hi + 1e-6 * (1.0 + np.abs(hi))


def _bracket(dist64, mean, sd, q):
    """A bracket of the mixture's `q`-quantile: Cantelli's from the mixture's moments, or,
    where they are infinite, the smallest and largest component quantile."""
    lo, hi = cantelli_bracket(mean, sd, q)
    if np.all(np.isfinite(lo) & np.isfinite(hi)):
        return lo, hi
    component = dist64.quantile(tf.constant(q, dist64.dtype)).numpy()
    return component.min(axis=0) - 1e-6, component.max(axis=0) + 1e-6


def mixture_quantiles(likelihood, params, levels, mean, variance) -> list[np.ndarray]:
    """Quantiles of the equal mixture over axis 0 of `likelihood.distribution(params)`.

    Args:
        likelihood: a `tfbnn.likelihoods.Likelihood` (regression).
        params: `(S, rows, k)` float32 parameters.
        levels: probabilities in (0, 1).
        mean, variance: the mixture's moments, `(rows, d)`: the first guess is the
            Normal with these moments, and they bracket the answer.

    Returns:
        One `(rows, d)` float64 array per level, in the likelihood's units.
    """
    components = _Components(likelihood, params)
    sd = np.sqrt(variance)
    if likelihood.is_discrete:
        return [_solve_discrete(components, q, mean, sd) for q in levels]
    shape = _shape(components.dist(tf.float32), mean, variance)
    return [_solve(components, q, mean, sd, shape) for q in levels]


def _shape(dist32, mean, variance):
    """`(skewness, excess kurtosis)` of the mixture, were its components Normal, float32.

    They correct the first guess (Cornish-Fisher); where the components are not
    Normal the guess is only less good, and Newton's method needs a step more.
    """
    spread = dist32.mean().numpy() - mean.astype(np.float32)
    variances = dist32.variance().numpy()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # infinite variances
        squared = spread * spread
        third = np.mean(spread * (squared + 3 * variances), axis=0)
        fourth = np.mean(squared * (squared + 6 * variances) + 3 * variances * variances, axis=0)
        return third / variance**1.5, fourth / variance**2 - 3.0


def _first_guess(q, mean, sd, shape):
    """The `q`-quantile by the Cornish-Fisher expansion from the mixture's moments (the
    Normal's, where the expansion is not finite)."""
    z, (skew, kurtosis) = special.ndtri(q), shape
    with np.errstate(invalid="ignore", over="ignore"):
        corrected = (z + (z * z - 1) * skew / 6 + (z**3 - 3 * z) * kurtosis / 24
                     - (2 * z**3 - 5 * z) * skew * skew / 36)
        return mean + sd * np.where(np.isfinite(corrected), corrected, z)


def _solve_discrete(components: _Components, q: float, mean, sd) -> np.ndarray:
    dist64 = components.dist(tf.float64)
    lo, hi = _bracket(dist64, mean, sd, q)
    return integer_root(lambda x: mixture_cdf(dist64, x), q, lo, hi)


def _solve(components: _Components, q: float, mean, sd, shape) -> np.ndarray:
    lo, hi = _bracket(components.dist(tf.float64), mean, sd, q)
    scale = np.where(np.isfinite(sd) & (sd > 0), sd, hi - lo)
    guess = _first_guess(q, mean, sd, shape)
    guess = np.where(np.isfinite(guess), np.clip(guess, lo, hi), 0.5 * (lo + hi))
    for dtype, tol, iterations in ((tf.float32, FLOAT32_TOL, FLOAT32_ITERATIONS),
                                   (tf.float64, FLOAT64_TOL, FLOAT64_ITERATIONS)):
        target, evaluate = _levels_function(components, dtype, q)
        guess = increasing_root(evaluate, target, guess, lo, hi, scale=scale, tol=tol,
                                iterations=iterations)
    return guess


def component_quantile(likelihood, params, u) -> np.ndarray:
    """Each component's quantile at its own level: `(S, rows, d)` float64 for levels `u` of
    that shape (draws by inversion). A family without a quantile function must be discrete,
    and is inverted by bisection on the integers."""
    dist64 = likelihood.distribution(tf.cast(params, tf.float64))
    try:
        return dist64.quantile(tf.constant(u, tf.float64)).numpy()
    except NotImplementedError:
        if not likelihood.is_discrete:
            raise
    mean, variance = dist64.mean().numpy(), dist64.variance().numpy()
    lo, hi = cantelli_bracket(mean, np.sqrt(variance), u)
    return integer_root(lambda x: dist64.cdf(tf.constant(x, tf.float64)).numpy(), u, lo, hi)
