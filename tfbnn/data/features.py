"""Turning a table's feature columns into a float matrix, the same way at fit and predict time.

`prepare_features` encodes numeric columns as they are and the others one-hot,
and returns an `encoder_state`: a plain JSON-serialisable dict that encodes
predict-time data exactly as the training data was encoded. A category not
seen when fitting is encoded as unknown (a zero in every one-hot column of its
column) with a `DataWarning`, so new rows in production still get predictions.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from tfbnn.data.cells import (
    DataWarning,
    cells_named,
    check_numbers_in_text,
    check_values,
    is_categorical,
    not_numbers,
)
from tfbnn.validation import check_option

IMPUTE_OPTIONS = (None, "mean")
"""`None`: missing values are an error. `"mean"`: fill with the training mean
(numeric columns) or the most frequent value (other columns)."""

STATE_VERSION = 1


def prepare_features(
    X: pd.DataFrame, encoder_state: dict | None = None, *, impute=None
) -> tuple[np.ndarray, dict]:
    """Encodes feature columns as a float64 matrix.

    Numeric columns pass through; text, categorical and boolean columns are
    one-hot encoded with one output column per category seen when fitting.
    Called without `encoder_state` it fits the encoding on `X`; called with the
    state it returned, it encodes new data identically (columns are matched by
    name, extra columns are ignored). A category not seen when fitting is
    encoded as unknown, a 0 in each of its column's one-hot outputs, with a
    `DataWarning` giving the column and the number of rows.

    Args:
        X: The feature columns.
        encoder_state: The state returned by an earlier call, or `None` to fit.
        impute: `None` or `"mean"`, used when fitting; the state records it.

    Returns:
        `(features, encoder_state)`: a float64 array of shape
        `(len(X), n_outputs)` and the JSON-serialisable state (its
        `"output_names"` entry names the output columns).

    Raises:
        ValueError: For missing values without imputation, infinite values, a
            text column that is mostly numbers (see
            `tfbnn.data.cells.MOSTLY_NUMERIC`), a column missing from `X`, text
            in a column that was numeric when fitted, or an `impute` that
            disagrees with `encoder_state`.
        TypeError: If `X` is not a DataFrame.

    Example:

    >>> import pandas as pd
    >>> X = pd.DataFrame({"size": [1.0, 2.0], "colour": ["red", "blue"]})
    >>> features, state = prepare_features(X)
    >>> features.tolist(), state["output_names"]
    ([[1.0, 0.0, 1.0], [2.0, 1.0, 0.0]], ['size', 'colour=blue', 'colour=red'])
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    check_option("impute", impute, IMPUTE_OPTIONS)
    X = X.rename(columns=str)  # names as the JSON state holds them
    if encoder_state is None:
        encoder_state = _fit_state(X, impute)
    elif impute is not None and impute != encoder_state["impute"]:
        raise ValueError(
            f"impute={impute!r} disagrees with the encoder state, which was fitted "
            f"with impute={encoder_state['impute']!r}"
        )
    blocks = []
    for spec in encoder_state["columns"]:  # a loop, not a comprehension: see _one_hot_block
        blocks.append(_encode_column(X, spec))
    features = np.concatenate(blocks, axis=1) if blocks else np.empty((len(X), 0))
    return features, encoder_state


def _fit_state(X: pd.DataFrame, impute) -> dict:
    """Records how each column of the training features is encoded."""
    repeated = sorted(set(X.columns[X.columns.duplicated()]))
    if repeated:
        raise ValueError(f"Feature column names must be unique; repeated: {repeated}")
    check_numbers_in_text(X, context="features")
    check_values(X, context="features", allow_missing=impute is not None)
    columns = [_fit_column(X[name], impute) for name in X.columns]
    return encoder_state(columns, impute)


def encoder_state(columns: list[dict], impute) -> dict:
    """The state `prepare_features` returns, from each column's `column_spec`."""
    output_names = [
        name
        for spec in columns
        for name in (
            [spec["name"]]
            if spec["kind"] == "numeric"
            else [f"{spec['name']}={category}" for category in spec["categories"]]
        )
    ]
    return {
        "version": STATE_VERSION,
        "impute": impute,
        "columns": columns,
        "output_names": output_names,
    }


def _fit_column(column: pd.Series, impute) -> dict:
    present = column.dropna()
    if is_categorical(column):
        labels = present.astype(str).value_counts()
        return column_spec(column.name, impute, label_counts=dict(labels.items()))
    mean = float(present.astype(np.float64).mean()) if len(present) else None
    return column_spec(column.name, impute, mean=mean)


def column_spec(name, impute, *, label_counts: dict | None = None, mean=None) -> dict:
    """How one column is encoded: one-hot over the labels of `label_counts` (label: rows),
    or numeric with the `mean` of its values (None when it has none); with `impute`,
    filled with the most frequent label or the mean."""
    present = bool(label_counts) if label_counts is not None else mean is not None
    if impute is not None and not present:
        raise ValueError(f"Column {name!r} has no values to impute from")
    if label_counts is not None:
        top = max(label_counts.values(), default=0)
        return {
            "name": str(name),
            "kind": "categorical",
            "categories": sorted(label_counts),
            # The smallest of the most frequent labels, so ties resolve the same way.
            "fill": min(k for k, n in label_counts.items() if n == top) if impute else None,
        }
    return {"name": str(name), "kind": "numeric", "fill": mean if impute else None}


def _encode_column(X: pd.DataFrame, spec: dict) -> np.ndarray:
    """Encodes one column of `X` as the fitted `spec` says; returns a 2-D block."""
    name = spec["name"]
    if name not in X.columns:
        raise ValueError(f"Feature column {name!r} is missing; columns given: {list(X.columns)}")
    column = X[name]
    if isinstance(column, pd.DataFrame):
        raise ValueError(f"Feature column {name!r} appears {column.shape[1]} times")
    if spec["kind"] == "categorical":
        # Plain objects, so a pandas categorical column can take the fill value.
        column = column.astype(object)
    if spec["fill"] is not None:
        column = column.where(column.notna(), spec["fill"])
    if spec["kind"] == "numeric":
        return _numeric_block(column)
    check_values(column.to_frame(), context="features")
    return _one_hot_block(column, spec["categories"])


def _numeric_block(column: pd.Series) -> np.ndarray:
    text = not_numbers(column)
    if text.any():
        raise ValueError(
            f"Column {column.name!r} was numeric when fitted but holds text in "
            f"{int(text.sum())} cell(s): {cells_named(column, text)}; if these mark missing "
            "values, add them to na_values"
        )
    values = pd.to_numeric(column).astype(np.float64)
    check_values(values.to_frame(), context="features")
    return values.to_numpy().reshape(-1, 1)


def _one_hot_block(column: pd.Series, categories: list) -> np.ndarray:
    labels = column.astype(str)
    codes = pd.Index(categories).get_indexer(labels)
    unseen = codes == -1
    if unseen.any():
        warnings.warn(
            f"Column {column.name!r}: {int(unseen.sum())} row(s) hold a category not seen "
            f"when fitting ({cells_named(labels, unseen)}), encoded as unknown (0 in every "
            f"one-hot column of {column.name!r}); known: {categories}",
            DataWarning, stacklevel=4)  # the caller of prepare_features
    # Rows of an unseen category (code -1) get a 0 in every column.
    return (codes[:, None] == np.arange(len(categories))).astype(np.float64)
