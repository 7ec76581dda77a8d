"""Checks of the targets `BayesianRegressor` and `BayesianClassifier` fit.

They apply the CSV reader's rules (`tfbnn.data.tabular`) to arrays: a constant
regression target is refused, and a `DataWarning` says when a classification
target has many classes for its rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

from tfbnn.data.cells import DataWarning
from tfbnn.data.tabular import check_learnable, many_classes


def regression_targets(y, context: str) -> np.ndarray:
    """`y` as finite float64 values, `(n,)` or `(n, n_targets)`.

    Object arrays are converted and checked like numbers (infinity included), and
    a target column holding one value is refused: there is nothing to learn.
    `context` (e.g. "BayesianRegressor.fit") starts that message.
    """
    y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
    if y.ndim > 2:
        raise ValueError(f"y must be 1-D or 2-D (one column per target), got shape {y.shape}")
    columns = y.reshape(len(y), -1)
    for i in range(columns.shape[1]):
        name = "y" if y.ndim == 1 else f"y[:, {i}]"
        check_learnable(pd.Series(columns[:, i], name=name), context)
    return y


def class_labels(y, context: str) -> tuple[np.ndarray, np.ndarray]:
    """The sorted classes of the labels `y` and each row's class index.

    A column `(n, 1)` is taken as `(n,)` with sklearn's `DataConversionWarning`;
    labels of types that cannot be ordered together (strings and numbers, None)
    are refused; many classes for the rows give a `DataWarning`.
    """
    y = np.asarray(y)
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise ValueError(f"{context} takes one label column, got y of shape {y.shape}")
    y = column_or_1d(y, warn=True)
    try:  # sklearn's check sorts the labels too
        check_classification_targets(y)
        classes, index = np.unique(y, return_inverse=True)
    except TypeError:
        kinds = sorted({type(label).__name__ for label in y})
        examples = {type(label).__name__: label for label in y}
        raise ValueError(
            f"y mixes class labels of types {kinds} (e.g. {list(examples.values())}) that "
            "cannot be ordered together; give every label one type (e.g. all strings)"
        ) from None
    if many_classes(len(classes), len(y)):
        warnings.warn(
            f"{context}: y has {len(classes)} classes for {len(y)} rows "
            f"({len(y) / len(classes):.1f} rows per class); is it an identifier or a "
            "measurement rather than labels? For numbers to predict use BayesianRegressor",
            DataWarning, stacklevel=4)  # the caller of fit
    return classes, index
