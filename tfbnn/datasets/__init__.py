"""Small data sets shipped with tfbnn, for demos and examples.

See `README.md` in this folder for sources, licences and column units. Also
synthetic data made on the fly: `gap_data`, a 1-D regression with a gap in the
inputs, and `gap_ratio`, which measures how much more unsure a model is in the
gap than on the data.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from tfbnn.validation import check_int

CONCRETE_TARGET = "compressive_strength"
"""The target column of `concrete.csv`: compressive strength in MPa."""

_CONCRETE_FILE = "concrete.csv"

GAP_INPUTS = ((-3.0, -1.0), (1.0, 3.0))
"""The two intervals `gap_data` draws its inputs from; nothing lies in between."""

GAP_NOISE = 0.1
"""The standard deviation of `gap_data`'s Gaussian noise."""

GAP_X = np.linspace(-0.5, 0.5, 11)
"""Inputs in the middle of the gap, where `gap_ratio` averages the epistemic variance."""

__all__ = ["CONCRETE_TARGET", "GAP_INPUTS", "GAP_NOISE", "GAP_X", "concrete_path", "gap_data",
           "gap_ratio", "load_concrete"]


def concrete_path() -> Path:
    """Returns the path of the bundled `concrete.csv`.

    Raises:
        RuntimeError: If tfbnn is installed somewhere that has no real files,
            such as a zip archive.
    """
    resource = resources.files(__name__).joinpath(_CONCRETE_FILE)
    if not isinstance(resource, Path):
        raise RuntimeError(f"{_CONCRETE_FILE} is not a file on disk here: {resource}")
    return resource


def load_concrete(as_frame: bool = False):
    """Loads the UCI Concrete Compressive Strength data (1030 mixtures).

    Args:
        as_frame: Return the whole table as a pandas DataFrame (8 feature
            columns and `compressive_strength`) instead of arrays.

    Returns:
        `(X, y)` with float64 `X` of shape `(1030, 8)` and `y` of shape
        `(1030,)` in MPa, or the DataFrame if `as_frame` is true.

    Example:

    >>> X, y = load_concrete()
    >>> X.shape, y.shape
    ((1030, 8), (1030,))
    """
    with resources.files(__name__).joinpath(_CONCRETE_FILE).open("r") as file:
        frame = pd.read_csv(file)
    if as_frame:
        return frame
    X = frame.drop(columns=CONCRETE_TARGET).to_numpy(dtype=np.float64)
    return X, frame[CONCRETE_TARGET].to_numpy(dtype=np.float64)


def gap_data(n: int = 200, seed: int = 0):
    """Synthetic 1-D regression with a gap in the inputs: `y = sin(x) + noise`.

    Half the inputs are uniform in [-3, -1] and half in [1, 3] (`GAP_INPUTS`),
    so there are no data in (-1, 1); the noise is Gaussian with standard
    deviation 0.1 (`GAP_NOISE`). A model's epistemic uncertainty should be
    larger in the gap than on the data, which is what
    `tfbnn.demo.run_methods_demo` shows for every inference method.

    Args:
        n: number of points: the first `n // 2` in [-3, -1], the rest in
            [1, 3].
        seed: seed of the `numpy` random generator: the same seed gives the
            same data.

    Returns:
        `(x, y)`: float64 `x` of shape `(n, 1)` and `y` of shape `(n,)`.

    Example:

    >>> x, y = gap_data(10)
    >>> x.shape, y.shape
    ((10, 1), (10,))
    >>> bool(((x < -1) | (x > 1)).all())
    True
    """
    n = check_int("n", n, minimum=2)
    rng = np.random.default_rng(seed)
    (a, b), (c, d) = GAP_INPUTS
    x = np.concatenate([rng.uniform(a, b, n // 2), rng.uniform(c, d, n - n // 2)])
    return x[:, None], np.sin(x) + GAP_NOISE * rng.normal(size=n)


def gap_ratio(model, x_train) -> float:
    """How much less sure a model is of its mean in the gap than on its training inputs.

    The ratio of the mean epistemic variance (the variance of the predictive
    mean over posterior draws, `Predictive.epistemic_var`) at the inputs
    `GAP_X`, in the middle of `gap_data`'s gap, to its mean at `x_train`:

        mean_{x in GAP_X} Var_theta[mu_theta(x)] / mean_{x in x_train} Var_theta[mu_theta(x)]

    Above 1 when the model knows that it has seen no data in the gap.

    Args:
        model: a fitted estimator with `predict_distribution` and one input.
        x_train: the training inputs, `(n,)` or `(n, 1)`.
    """
    x_train = np.asarray(x_train, np.float64).reshape(-1, 1)
    var = model.predict_distribution(np.r_[GAP_X[:, None], x_train]).epistemic_var
    return float(var[: len(GAP_X)].mean() / var[len(GAP_X):].mean())
