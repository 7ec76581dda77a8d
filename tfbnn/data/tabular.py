"""Reading a CSV table and turning its feature columns into a float matrix.

`read_table` parses a file with pandas, picks the target column and works out
whether the task is regression or classification. `prepare_features` encodes
the feature columns (numeric ones as they are, the others one-hot) and returns
an `encoder_state`: a plain JSON-serialisable dict that encodes predict-time
data exactly as the training data was encoded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import re
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types

from tfbnn.validation import check_int, check_option

IMPUTE_OPTIONS = (None, "mean")
"""`None`: missing values are an error. `"mean"`: fill with the training mean
(numeric columns) or the most frequent value (other columns)."""

MAX_CLASSES = 10
"""An integer-valued target with more distinct values than this is regression."""

MIN_ROWS_PER_CLASS = 20
"""Rows needed per distinct value before an integer target counts as classes."""

_STATE_VERSION = 1

_IMPUTE_HINT = "; use impute='mean' to fill missing values"


@dataclasses.dataclass(frozen=True, eq=False)
class Table:
    """A table split into features and a target.

    Attributes:
        X: The feature columns, as read.
        y: The target column; class labels are kept as they are in the file,
            regression targets are float64.
        target_name: Name of the target column.
        task: `"regression"` or `"classification"`.
        impute: The imputation requested when reading (`None` or `"mean"`), to
            pass on to `prepare_features`.
    """

    X: pd.DataFrame
    y: pd.Series
    target_name: str
    task: str
    impute: str | None = None

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns, in file order."""
        return list(self.X.columns)


class Task(enum.StrEnum):
    """What the target column is."""

    REGRESSION = "regression"
    """A real-valued (or count) target."""
    CLASSIFICATION = "classification"
    """A target taking one of a finite set of labels."""


def read_table(
    path, *, target, header: bool = True, sep: str = ",", task=None, impute=None
) -> Table:
    """Reads a delimited text file and separates the target column.

    Args:
        path: The file to read.
        target: The target column: its name, or a 0-based position (negative
            counts from the end). A string of digits such as `"3"` or `"-1"`
            is a position only if no column has that name.
        header: Whether the first line holds column names. Without one the
            columns are named `"0"`, `"1"`, ….
        sep: The field separator.
        task: `"regression"`, `"classification"`, or `None` to infer it (see
            `infer_task`).
        impute: `None` (missing feature values are an error) or `"mean"`
            (they are filled later by `prepare_features`). A missing target is
            always an error.

    Returns:
        A `Table`.

    Raises:
        FileNotFoundError: If `path` does not exist.
        ValueError: For an empty file, a target that is not found or out of
            range, no feature columns, missing or infinite values, a
            non-numeric target with `task="regression"`, or an unknown option.
    """
    if task is not None:
        check_option("task", task, [t.value for t in Task])
    check_option("impute", impute, IMPUTE_OPTIONS)
    path = Path(path)
    return _split_table(read_frame(path, header=header, sep=sep), path, target, task, impute)


def read_tables(
    path, *, target, task, chunk_rows: int | None, header: bool = True, sep: str = ",",
    impute=None
):
    """`read_table` in parts of at most `chunk_rows` rows (None: the whole file as one part),
    for files too big to hold at once.

    Each part is read and checked as `read_table` reads a whole file (see
    `read_frames`). `task` must be given: it is not inferred from a part.

    Yields:
        A `Table` per part, in file order.
    """
    check_option("task", task, [t.value for t in Task])
    check_option("impute", impute, IMPUTE_OPTIONS)
    path = Path(path)
    for frame in read_frames(path, header=header, sep=sep, chunk_rows=chunk_rows):
        yield _split_table(frame, path, target, task, impute)


def _split_table(frame: pd.DataFrame, path: Path, target, task, impute) -> Table:
    """`read_table`'s checks and target split of a frame read from `path`."""
    target_name = _resolve_target(frame, target, path)
    X = frame.drop(columns=target_name)
    if X.shape[1] == 0:
        raise ValueError(f"{path} has only the target column {target_name!r}; no features")
    y = frame[target_name]
    _check_values(y.to_frame(), context=str(path), hint="; rows without a target cannot be used")
    _check_values(X, context=str(path), allow_missing=impute is not None)
    task = Task(task).value if task is not None else infer_task(y)
    if task == Task.REGRESSION.value:
        y = _regression_target(y, path)
    return Table(X=X, y=y, target_name=target_name, task=task, impute=impute)


def infer_task(y: pd.Series) -> str:
    """Guesses whether a target column holds classes or real values.

    The rule: text, categorical and boolean targets are classification. A
    numeric target is classification only if every value is an integer and
    there are two distinct values, or at most `MAX_CLASSES` (10) distinct
    values with at least `MIN_ROWS_PER_CLASS` (20) rows per value on average
    (so 4 classes need 80 rows). Everything else is regression. Pass `task=`
    explicitly when the guess is wrong, e.g. for ratings or small counts.

    Args:
        y: The target column, without missing values.

    Returns:
        `"classification"` or `"regression"`.
    """
    if _is_categorical(y):
        return Task.CLASSIFICATION.value
    values = y.to_numpy(dtype=np.float64)
    n_distinct = len(np.unique(values))
    few_values = n_distinct == 2 or (
        n_distinct <= MAX_CLASSES and len(values) >= MIN_ROWS_PER_CLASS * n_distinct
    )
    if few_values and np.all(values == np.round(values)):
        return Task.CLASSIFICATION.value
    return Task.REGRESSION.value


def prepare_features(
    X: pd.DataFrame, encoder_state: dict | None = None, *, impute=None
) -> tuple[np.ndarray, dict]:
    """Encodes feature columns as a float64 matrix.

    Numeric columns pass through; text, categorical and boolean columns are
    one-hot encoded with one output column per category seen when fitting.
    Called without `encoder_state` it fits the encoding on `X`; called with the
    state it returned, it encodes new data identically (columns are matched by
    name, extra columns are ignored).

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
            column missing from `X`, a category not seen when fitting, or an
            `impute` that disagrees with `encoder_state`.

    Example:

    >>> import pandas as pd
    >>> X = pd.DataFrame({"size": [1.0, 2.0], "colour": ["red", "blue"]})
    >>> features, state = prepare_features(X)
    >>> features.tolist(), state["output_names"]
    ([[1.0, 0.0, 1.0], [2.0, 1.0, 0.0]], ['size', 'colour=blue', 'colour=red'])
    """
    check_option("impute", impute, IMPUTE_OPTIONS)
    if encoder_state is None:
        encoder_state = _fit_state(X, impute)
    elif impute is not None and impute != encoder_state["impute"]:
        raise ValueError(
            f"impute={impute!r} disagrees with the encoder state, which was fitted "
            f"with impute={encoder_state['impute']!r}"
        )
    blocks = [_encode_column(X, spec) for spec in encoder_state["columns"]]
    features = np.concatenate(blocks, axis=1) if blocks else np.empty((len(X), 0))
    return features, encoder_state


def read_frame(path, *, header: bool = True, sep: str = ",") -> pd.DataFrame:
    """Reads a CSV table (no target needed), with clear errors for missing or empty files."""
    return next(read_frames(path, header=header, sep=sep))


def read_frames(path, *, header: bool = True, sep: str = ",", chunk_rows: int | None = None):
    """`read_frame` in parts of at most `chunk_rows` rows (None: the whole file as one part).

    The parts are parsed with the same options and checks as `read_frame`, and
    keep the file's row numbering in their index (the second part of 1000 rows
    starts at 1000). Column types are inferred for each part on its own, so a
    column that looks numeric in one part and not in another is read
    differently in each (the encoder refuses what it cannot encode).

    Yields:
        DataFrames, in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    if chunk_rows is not None:
        check_int("chunk_rows", chunk_rows, minimum=1)
    try:
        parts = pd.read_csv(path, sep=sep, header=0 if header else None, skipinitialspace=True,
                            chunksize=chunk_rows)
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"{path} is empty") from error
    with contextlib.nullcontext([parts]) if chunk_rows is None else parts as frames:
        rows = 0
        for frame in frames:
            rows += len(frame)
            if len(frame):
                # Plain string names keep the encoder state JSON-serialisable.
                frame.columns = [str(name) for name in frame.columns]
                yield frame
    if rows == 0:
        raise ValueError(f"{path} has no data rows")


def _resolve_target(frame: pd.DataFrame, target, path: Path) -> str:
    """Returns the name of the target column given as a name or a position."""
    columns = list(frame.columns)
    if isinstance(target, str):
        if target in columns:
            return target
        if not re.fullmatch(r"[+-]?\d+", target.strip()):
            raise ValueError(
                f"Target column {target!r} not found in {path}; available columns: {columns}"
            )
        target = int(target)
    elif isinstance(target, bool) or not isinstance(target, int | np.integer):
        raise TypeError(f"target must be a column name or an integer index, got {target!r}")
    if not -len(columns) <= target < len(columns):
        raise ValueError(
            f"Target index {target} is out of range for the {len(columns)} columns of "
            f"{path} (valid: {-len(columns)} to {len(columns) - 1}); columns: {columns}"
        )
    return columns[target]


def _regression_target(y: pd.Series, path: Path) -> pd.Series:
    if _is_categorical(y):
        example = y.iloc[0]
        raise ValueError(
            f"Target {y.name!r} in {path} is not numeric (e.g. {example!r}), so it cannot "
            "be used with task='regression'; use task='classification'"
        )
    return y.astype(np.float64)


def _is_categorical(column: pd.Series) -> bool:
    """Whether a column holds labels rather than numbers (text, category or bool)."""
    return types.is_bool_dtype(column) or not types.is_numeric_dtype(column)


def _check_values(
    frame: pd.DataFrame, context: str, allow_missing: bool = False, hint: str = _IMPUTE_HINT
) -> None:
    """Raises a ValueError naming the first missing or infinite cell of `frame`.

    Rows are counted from 1 over the data rows (a header line is not counted);
    the pandas index label is given as well.
    """
    for name in frame.columns:
        column = frame[name]
        if not allow_missing:
            _raise_at_first(column, column.isna().to_numpy(), "Missing value", context, hint)
        if not _is_categorical(column):
            infinite = np.isinf(column.to_numpy(dtype=np.float64, na_value=np.nan))
            _raise_at_first(column, infinite, "Infinite value", context)


def _raise_at_first(
    column: pd.Series, bad: np.ndarray, problem: str, context: str, hint: str = ""
) -> None:
    if not bad.any():
        return
    position = int(np.argmax(bad))
    label = column.index[position]
    label = label.item() if isinstance(label, np.generic) else label  # 12, not np.int64(12)
    raise ValueError(
        f"{context}: {problem} in column {column.name!r} at data row {position + 1} "
        f"(index {label!r}; {int(bad.sum())} row(s) affected){hint}"
    )


def _fit_state(X: pd.DataFrame, impute) -> dict:
    """Records how each column of the training features is encoded."""
    _check_values(X, context="features", allow_missing=impute is not None)
    columns = [_fit_column(X[name], impute) for name in X.columns]
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
        "version": _STATE_VERSION,
        "impute": impute,
        "columns": columns,
        "output_names": output_names,
    }


def _fit_column(column: pd.Series, impute) -> dict:
    present = column.dropna()
    if impute is not None and present.empty:
        raise ValueError(f"Column {column.name!r} has no values to impute from")
    if _is_categorical(column):
        labels = present.astype(str)
        return {
            "name": str(column.name),
            "kind": "categorical",
            "categories": sorted(labels.unique().tolist()),
            # mode() sorts its result, so ties resolve the same way every time.
            "fill": str(labels.mode().iloc[0]) if impute else None,
        }
    return {
        "name": str(column.name),
        "kind": "numeric",
        "fill": float(present.astype(np.float64).mean()) if impute else None,
    }


def _encode_column(X: pd.DataFrame, spec: dict) -> np.ndarray:
    """Encodes one column of `X` as the fitted `spec` says; returns a 2-D block."""
    name = spec["name"]
    if name not in X.columns:
        raise ValueError(f"Feature column {name!r} is missing; columns given: {list(X.columns)}")
    column = X[name]
    if spec["kind"] == "categorical":
        # Plain objects, so a pandas categorical column can take the fill value.
        column = column.astype(object)
    if spec["fill"] is not None:
        column = column.where(column.notna(), spec["fill"])
    _check_values(column.to_frame(), context="features")
    if spec["kind"] == "numeric":
        return _numeric_block(column)
    return _one_hot_block(column, spec["categories"])


def _numeric_block(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce")
    not_numeric = values.isna().to_numpy()
    if not_numeric.any():
        position = int(np.argmax(not_numeric))
        raise ValueError(
            f"Column {column.name!r} was numeric when fitted but holds "
            f"{column.iloc[position]!r} at data row {position + 1}"
        )
    return values.to_numpy(dtype=np.float64).reshape(-1, 1)


def _one_hot_block(column: pd.Series, categories: list) -> np.ndarray:
    labels = column.astype(str)
    encoded = pd.Categorical(labels, categories=categories)
    unseen = encoded.codes == -1
    if unseen.any():
        position = int(np.argmax(unseen))
        raise ValueError(
            f"Column {column.name!r} holds {labels.iloc[position]!r} at data row "
            f"{position + 1}, a category not seen when fitting; known: {categories}"
        )
    return pd.get_dummies(encoded, dtype=np.float64).to_numpy()
