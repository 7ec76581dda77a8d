"""The one predictive summary every posterior method returns.

A `Predictive` is built from `S` posterior draws of the likelihood's parameters at
`B` inputs, `params` of shape `(S, B, k)`. The predictive distribution is the
equal mixture `p(y | x) = (1/S) sum_s p(y | theta_s(x))`; everything below is a
property of that mixture, computed exactly from the components (no extra sampling
except for `samples`):

* `mean`, `var = aleatoric_var + epistemic_var` (law of total variance:
  the mean of the component variances plus the variance of the component means);
* `cdf`, `quantile`, `interval` of the mixture (see `tfbnn.mixture`);
* `log_prob(y)`: `logsumexp_s log p(y | theta_s) - log S`, per example;
* for classification: `probs`, `entropy` (total), `expected_entropy` (aleatoric)
  and `mutual_information` (epistemic).

Every summary is computed over blocks of `chunk_rows` inputs, so its memory is
bounded by the block whatever `B` is (`samples`, `(S, B, d)` itself, excepted).
The parameters themselves may be given as a `DrawnParams`, which draws those of a
block of inputs when a summary reads them: then not even `(S, B, k)` is held
(the estimators' `predict_distribution` does this).

Regression outputs are mapped back to the user's units through `y = shift + scale * z`
(the estimators train on standardised targets).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import cached_property

import numpy as np
import tensorflow as tf

from tfbnn import mixture
from tfbnn.validation import check_int, check_level, check_option, check_probability


class Predictive:
    """Posterior predictive distribution at a batch of inputs.

    Args:
        likelihood: the `tfbnn.likelihoods.Likelihood` that maps `params` to distributions.
        params: `(S, B, k)` likelihood parameters, one slice per posterior draw: an
            array, or a `DrawnParams` that draws them a block of inputs at a time.
        shift, scale: affine map from the model's target units to the user's
            (regression only): `y = shift + scale * z`; scalars, `(d,)`, or `(B, d)`
            for a map of its own at each input.
        squeeze: `"auto"` (the default) returns `(B,)` rather than `(B, 1)` when the
            parameters stand for one target dimension, `(B, d)` for `d > 1`; True or
            False to decide (the estimators return the shape of the `y` they were
            fitted on).
        classes: class labels for classification (default `0..K-1`).
        seed: seeds `samples`.
        chunk_rows: how many inputs a summary works on at once (default: about
            two million values, `S x chunk_rows x k`); it bounds the memory, not the
            results.
    """

    def __init__(self, likelihood, params, *, shift=0.0, scale=1.0, squeeze="auto",
                 classes=None, seed=None, chunk_rows=None):
        if not isinstance(params, DrawnParams):
            # Also half-precision outputs (mixed precision) become float32.
            params = tf.cast(params, tf.float32)
            if params.shape.rank != 3:
                raise ValueError(f"params must have shape (S, B, k), got {tuple(params.shape)}")
        self.likelihood = likelihood
        self.params = params
        self.n_draws, self.n_inputs, n_params = (int(n) for n in params.shape)
        self._shift = np.asarray(shift, np.float64)
        self._scale = np.asarray(scale, np.float64)
        self._seed = seed
        self._chunk_rows = (mixture.rows_per_block(self.n_draws, n_params) if chunk_rows is None
                            else check_int("chunk_rows", chunk_rows, minimum=1))
        self.is_classification = bool(likelihood.is_classification)
        # One input's distribution tells the target (or class) layout of all of them.
        corner = params[:1, :1]
        self._n_targets = int(likelihood.distribution(corner).batch_shape[-1])
        if check_option("squeeze", squeeze, ["auto", True, False]) == "auto":
            squeeze = not self.is_classification and self._n_targets == 1
        self._squeeze = bool(squeeze)
        if self.is_classification:
            n_classes = int(likelihood.class_probs(corner).shape[-1])
            self.classes = np.arange(n_classes) if classes is None else np.asarray(classes)

    # -- the constructor's arguments --------------------------------------------------

    @property
    def shift(self) -> np.ndarray:
        """The `shift` of the map `y = shift + scale * z` to the user's units."""
        return self._shift

    @property
    def scale(self) -> np.ndarray:
        """The `scale` of the map `y = shift + scale * z` to the user's units."""
        return self._scale

    @property
    def squeeze(self) -> bool:
        """Whether a single target comes back as `(B,)` rather than `(B, 1)` (what
        `squeeze="auto"` resolved to)."""
        return self._squeeze

    @property
    def seed(self):
        """The seed of `samples`."""
        return self._seed

    @property
    def chunk_rows(self) -> int:
        """How many inputs a summary works on at once."""
        return self._chunk_rows

    # -- blocks of inputs -------------------------------------------------------------

    def row_blocks(self) -> list[slice]:
        """The consecutive blocks of inputs the summaries are computed over."""
        return mixture.row_blocks(self.n_inputs, self._chunk_rows)

    def _over_blocks(self, compute):
        """`compute(rows, params)` on each block of inputs, joined along the inputs (a tuple
        of arrays is joined item by item)."""
        parts = [compute(rows, self.params[:, rows]) for rows in self.row_blocks()]
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate(items) for items in zip(*parts, strict=True))
        return np.concatenate(parts)

    def _affine(self, rows):
        """`(shift, scale)` for the inputs `rows` (a map given per input is sliced)."""
        def part(array):
            per_input = array.ndim >= 2 and array.shape[0] == self.n_inputs
            return array[rows] if per_input else array
        return part(self._shift), part(self._scale)

    # -- helpers ------------------------------------------------------------------

    def _out(self, array):
        array = np.asarray(array)
        if self._squeeze and array.ndim >= 1 and array.shape[-1] == 1:
            return array[..., 0]
        return array

    def _to_model_units(self, y):
        y = np.asarray(y, np.float64)
        if y.ndim == 1:
            if self._n_targets != 1:
                raise ValueError(f"y must have shape (n, {self._n_targets}), got {y.shape}")
            y = y[:, None]
        if y.shape != (self.n_inputs, self._n_targets):
            raise ValueError(
                f"y has shape {y.shape}; this predictive is for {(self.n_inputs, self._n_targets)}"
            )
        return (y - self._shift) / self._scale

    def _require_regression(self, what):
        if self.is_classification:
            raise AttributeError(f"{what} is defined for regression predictives only")

    def _require_classification(self, what):
        if not self.is_classification:
            raise AttributeError(f"{what} is defined for classification predictives only")

    # -- regression moments ---------------------------------------------------------

    @cached_property
    def _moments(self):
        """`(mean of the means, mean of the variances, variance of the means)`, `(B, d)`
        float64 in model units."""
        return self._over_blocks(
            lambda rows, params: mixture.moments(self.likelihood.distribution(params)))

    @property
    def mean(self) -> np.ndarray:
        """Predictive mean, `(B, d)` or `(B,)` for one target.

        For classification it is the class probabilities, `probs`.
        """
        if self.is_classification:
            return self.probs
        return self._out(self._shift + self._scale * self._moments[0])

    @property
    def aleatoric_var(self) -> np.ndarray:
        """Mean over draws of the likelihood's variance: noise in the data."""
        self._require_regression("aleatoric_var")
        return self._out(self._scale**2 * self._moments[1])

    @property
    def epistemic_var(self) -> np.ndarray:
        """Variance over draws of the likelihood's mean: what the model does not know."""
        self._require_regression("epistemic_var")
        return self._out(self._scale**2 * self._moments[2])

    @property
    def var(self) -> np.ndarray:
        """Total predictive variance, `aleatoric_var + epistemic_var`."""
        return self.aleatoric_var + self.epistemic_var

    @property
    def std(self) -> np.ndarray:
        """Total predictive standard deviation."""
        return np.sqrt(self.var)

    # -- the mixture's distribution function ----------------------------------------

    def _dist64(self, params):
        # CDFs in float64: in float32 the upper tail saturates at 1 - 3e-8.
        return self.likelihood.distribution(tf.cast(params, tf.float64))

    def cdf(self, y) -> np.ndarray:
        """Predictive CDF at `y` (user units), `(B, d)` (`(B,)` squeezed); the PIT values
        when `y` is the truth."""
        self._require_regression("cdf")
        z = self._to_model_units(y)
        return self._out(self._over_blocks(
            lambda rows, params: mixture.mixture_cdf(self._dist64(params), z[rows])))

    def quantile(self, q) -> np.ndarray:
        """The `q`-quantile of the predictive mixture, `(B, d)` (`(B,)` squeezed), in user
        units."""
        self._require_regression("quantile")
        return self._quantiles([check_probability("q", q)])[0]

    def interval(self, level: float = 0.95):
        """Central predictive interval `(lower, upper)` holding `level` of the mass."""
        self._require_regression("interval")
        tail = (1.0 - check_level(level)) / 2.0
        lower, upper = self._quantiles([tail, 1.0 - tail])
        return lower, upper

    def _quantiles(self, levels):
        known = self.__dict__.get("_moments")  # else each block's, from the same parameters

        def solve(rows, params):
            mean, mean_var, var_mean = (
                mixture.moments(self.likelihood.distribution(params)) if known is None
                else (part[rows] for part in known))
            found = mixture.mixture_quantiles(self.likelihood, params, levels, mean,
                                              mean_var + var_mean)
            shift, scale = self._affine(rows)
            return tuple(shift + scale * z for z in found)

        return [self._out(z) for z in self._over_blocks(solve)]

    # -- draws and densities ----------------------------------------------------------

    @property
    def samples(self) -> np.ndarray:
        """One draw of `y` per posterior draw, `(S, B, d)` (`(S, B)` squeezed) in user units
        (labels for classes): `draw()` with the predictive's `seed`."""
        return self.draw()

    def draw(self, rng=None, rows=None) -> np.ndarray:
        """One draw of `y` per posterior draw at the inputs `rows`, as `samples` gives them.

        Draws are made by inversion, each from its own uniform number, and the
        uniforms are taken from `rng` input after input: drawing a data set's
        inputs in consecutive parts from one generator gives the same values as
        drawing them all at once.

        Args:
            rng: a `numpy.random.Generator`, or a seed for one (default: `seed`).
            rows: a slice of the inputs (default: all of them).

        Returns:
            `(S, n, d)` (`(S, n)` squeezed) in user units, or labels for classes.
        """
        rng = np.random.default_rng(self._seed if rng is None else rng)
        rows = slice(None) if rows is None else rows
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise ValueError(f"rows must be a slice of consecutive inputs, got {rows!r}")
        start, stop, _ = rows.indices(self.n_inputs)
        blocks = mixture.row_blocks(max(stop - start, 0), self._chunk_rows)
        parts = [self._draw_block(rng, slice(start + b.start, start + b.stop)) for b in blocks]
        return np.concatenate(parts, axis=1)

    def _draw_block(self, rng, rows):
        params = self.params[:, rows]
        width = 1 if self.is_classification else self._n_targets
        # Uniforms laid out input by input (in (0, 1): a zero would draw -inf).
        u = np.maximum(rng.random((rows.stop - rows.start, self.n_draws, width)), 2.0**-60)
        u = u.transpose(1, 0, 2)
        if self.is_classification:
            cumulative = np.cumsum(self._component_probs(params), axis=-1)
            index = np.minimum((cumulative < u).sum(axis=-1), len(self.classes) - 1)
            return self.classes[index]
        shift, scale = self._affine(rows)
        return self._out(shift + scale * mixture.component_quantile(self.likelihood, params, u))

    def log_prob(self, y) -> np.ndarray:
        """Log predictive density of `y` at each input, `(B,)`, in user units.

        For classification `y` holds class labels (as in `classes`).
        """
        if self.is_classification:
            index = self.class_index(y)

            def block(rows, params):
                chosen = np.take_along_axis(self._component_probs(params),
                                            index[None, rows, None], -1)[..., 0]
                return mixture.log_mean_exp(np.log(np.maximum(chosen, 1e-300)))

            return self._over_blocks(block)
        z = self._to_model_units(y)

        def block(rows, params):
            values = tf.constant(z[rows][None], tf.float32)
            return mixture.log_mean_exp(self.likelihood.log_prob(values, params).numpy())

        jacobian = np.sum(np.log(np.broadcast_to(self._scale, z.shape)), axis=-1)
        return self._over_blocks(block) - jacobian

    # -- classification -------------------------------------------------------------

    def class_index(self, y) -> np.ndarray:
        """The column of each label of `y` in `probs`, `(B,)` (labels as in `classes`)."""
        return label_index(y, self.classes)

    def _component_probs(self, params):
        return self.likelihood.class_probs(params).numpy().astype(np.float64)  # (S, rows, K)

    @cached_property
    def _class_summaries(self):
        """`(probs, expected entropy)`: the averages over draws of each draw's class
        probabilities `(B, K)` and of their entropy `(B,)`."""
        def block(rows, params):
            probs = self._component_probs(params)
            return probs.mean(axis=0), mixture.entropy(probs).mean(axis=0)

        return self._over_blocks(block)

    @property
    def probs(self) -> np.ndarray:
        """Posterior-averaged class probabilities, `(B, K)`."""
        self._require_classification("probs")
        return self._class_summaries[0]

    @property
    def predicted_class(self) -> np.ndarray:
        """The most probable label at each input (argmax of `probs`), from `classes`."""
        self._require_classification("predicted_class")
        return self.classes[self.probs.argmax(axis=-1)]

    @property
    def entropy(self) -> np.ndarray:
        """Entropy of the averaged probabilities (total uncertainty), nats."""
        return mixture.entropy(self.probs)

    @property
    def expected_entropy(self) -> np.ndarray:
        """Average entropy of each draw's probabilities (aleatoric uncertainty), nats."""
        self._require_classification("expected_entropy")
        return self._class_summaries[1]

    @property
    def mutual_information(self) -> np.ndarray:
        """`entropy - expected_entropy` (epistemic uncertainty; BALD), nats, >= 0."""
        return np.maximum(self.entropy - self.expected_entropy, 0.0)

    def __repr__(self) -> str:
        kind = "classification" if self.is_classification else "regression"
        _, b, k = self.params.shape
        return f"Predictive({kind}, draws={self.n_draws}, inputs={b}, params={k})"


class DrawnParams:
    """`(S, B, k)` likelihood parameters drawn a block of inputs at a time, when read.

    `draw(x)` returns the `(S, len(x), k)` parameters of `S` posterior draws at
    the consecutive inputs `x` (e.g. an inference method's `sample_params` with a
    fixed seed). The inputs are cut on a fixed grid of `grid_rows`, and each input's
    parameters are always those of its grid block, so every summary of a
    `Predictive` built on them, and every slice read here, refers to the same
    draws. Recently read blocks are kept up to `cache_values` values, 32 MB by
    default (all of a predictive of up to 40,000 inputs with 100 draws of 2
    parameters, as `tfbnn predict` reads them; a few blocks of a larger one).

    Indexing `[draws, rows]` with slices (consecutive rows) gives a float32
    tensor; `numpy()` (or `np.asarray`) materialises all of it.

    Args:
        draw: the function drawing the parameters of a block of inputs.
        inputs: the inputs, `(B, ...)`, as `draw` takes them.
        grid_rows: the inputs drawn at once.
        cache_values: how many parameter values to keep once drawn.
    """

    def __init__(self, draw, inputs, grid_rows: int, cache_values: int = 4 * mixture.BLOCK_VALUES):
        self._draw, self._inputs = draw, inputs
        self._grid = check_int("grid_rows", grid_rows, minimum=1)
        self._cache, self._cache_values = OrderedDict(), cache_values
        if len(inputs) == 0:
            raise ValueError("DrawnParams needs at least one input")
        first = self._block(0)
        self.shape = (int(first.shape[0]), len(inputs), int(first.shape[-1]))

    def _block(self, index: int) -> tf.Tensor:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        rows = self._inputs[index * self._grid:(index + 1) * self._grid]
        block = tf.cast(self._draw(rows), tf.float32)
        self._cache[index] = block
        while len(self._cache) > 1 and sum(
                int(tf.size(b)) for b in self._cache.values()) > self._cache_values:
            self._cache.popitem(last=False)
        return block

    def __getitem__(self, key) -> tf.Tensor:
        draws, rows = key if isinstance(key, tuple) and len(key) == 2 else (None, None)
        if not (isinstance(draws, slice) and isinstance(rows, slice)):
            raise IndexError(f"DrawnParams takes [draws, rows] with two slices, got {key!r}")
        start, stop, step = rows.indices(self.shape[1])
        if step != 1:
            raise IndexError(f"DrawnParams reads consecutive rows, got the step {step}")
        stop = max(start, stop)
        first, last = start // self._grid, max(start, stop - 1) // self._grid
        parts = [self._block(g)[:, max(start - g * self._grid, 0):stop - g * self._grid]
                 for g in range(first, last + 1)]
        return tf.concat(parts, axis=1)[draws]

    def numpy(self) -> np.ndarray:
        """All the parameters, `(S, B, k)` float32."""
        return self[:, :].numpy()

    def __array__(self, dtype=None, copy=None):
        return self.numpy() if dtype is None else self.numpy().astype(dtype)

    def __repr__(self) -> str:
        return f"DrawnParams(shape={self.shape}, grid_rows={self._grid})"


#: The default `max_rows` of `Inference.sample_params`: `drawn_params` draws blocks of
#: `SAMPLE_VALUES // S` inputs, as `sample_params` does on all inputs at once, so that
#: both give the same draws.
SAMPLE_VALUES = 200_000


def drawn_params(method, xs, n_samples: int, seed) -> DrawnParams:
    """An inference `method`'s `(S, n, k)` parameters at the model inputs `xs`, drawn a
    block of rows at a time with one seed: `seed`, or a fresh one when it is None."""
    seed = fixed_seed(seed)
    grid = max(1, SAMPLE_VALUES // n_samples)
    return DrawnParams(
        lambda x: method.sample_params(x, n_samples, seed=seed, max_rows=SAMPLE_VALUES),
        xs, grid_rows=grid)


def fixed_seed(seed):
    """`seed`, or a fresh random one for None: one seed for all of a predictive's blocks."""
    return int(np.random.default_rng().integers(2**31 - 1)) if seed is None else seed


def label_index(labels, classes) -> np.ndarray:
    """The position of each of `labels` in `classes`, `(n,)`; a ValueError names an unknown one."""
    lookup = {label: i for i, label in enumerate(np.asarray(classes).tolist())}
    try:
        return np.array([lookup[label] for label in np.asarray(labels).reshape(-1).tolist()],
                        dtype=int)
    except KeyError as err:
        raise ValueError(f"Unknown class label {err.args[0]!r}; known: {list(lookup)}") from None
