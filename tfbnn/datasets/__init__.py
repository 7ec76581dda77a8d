"""Small data sets shipped with tfbnn, for demos and examples.

See `README.md` in this folder for sources, licences and column units.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

CONCRETE_TARGET = "compressive_strength"
"""The target column of `concrete.csv`: compressive strength in MPa."""

_CONCRETE_FILE = "concrete.csv"

__all__ = ["CONCRETE_TARGET", "concrete_path", "load_concrete"]


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
