"""Reading a training table too big for memory: `read_table` and `prepare_features`
settled over the file in parts, then the encoded rows streamed in batches.

`scan_table` reads the file a part of `chunk_rows` rows at a time, twice, and
holds only per-column counts between parts:

1. the kind of each column: numeric if every part reads as numbers (a part of
   missing cells fits any kind), boolean if every part reads as booleans, else
   text. This is the kind pandas gives the whole column at once; text columns
   are then read as the file's text in every part, as a whole-file read gives
   them.
2. what `read_table(..., fitting=True)` and `prepare_features` find in whole
   columns: the first missing or infinite cell of each column and how many
   there are, the mostly-numbers rule of text columns (`tfbnn.data.cells`: the
   share of cells that are numbers and, up to `MANY_NUMBERS + 1`, their
   distinct values), the target's distinct values (all of a classification
   target's; only as many as `infer_task` needs of a numeric one) and whether
   they are integers, each text column's labels with their counts (the
   categories and the imputed most frequent label) and each numeric column's
   sum and count (the imputed mean).

The checks, and their errors, are then those of the whole-file read, in the same
order, with data rows counted over the whole file. The only difference: the
imputed mean is summed part by part in float64 (a last-digit difference).

`TableScan.batches` then reads the file once per pass, encodes each part with
the encoder state found (`prepare_features`) and cuts it into batches of
`batch_size` rows, shuffled within the part (rows left over at the end of a part
start the next part's first batch).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types

from tfbnn.data import tabular
from tfbnn.data.cells import (
    IMPUTE_HINT,
    MANY_NUMBERS,
    SHOWN_CELLS,
    cell_error,
    list_cells,
    mostly_numbers_counted,
    not_numbers,
    number_values,
    numbers_in_text_error,
)
from tfbnn.data.features import column_spec, encoder_state, prepare_features
from tfbnn.data.reading import read_frames, separator_hint
from tfbnn.validation import check_int, check_option


def column_kinds(path, read_options: dict, chunk_rows: int) -> dict[str, str]:
    """The kind of each column of the file (`"numeric"`, `"bool"` or `"text"`), read in parts."""
    kinds: dict[str, set] = {}
    for frame in read_frames(path, **read_options, chunk_rows=chunk_rows):
        for name in frame.columns:
            column = frame[name]
            if column.isna().all():
                kind = None  # fits any kind, as in the whole column
            elif types.is_bool_dtype(column):
                kind = "bool"
            else:
                kind = "numeric" if types.is_numeric_dtype(column) else "text"
            kinds.setdefault(name, set()).add(kind)
    return {name: (found - {None}).pop() if len(found - {None}) == 1 else
            "text" if found - {None} else "numeric" for name, found in kinds.items()}


class Column:
    """What a column's parts tell about the whole column (see the module docstring)."""

    def __init__(self, name: str, kind: str):
        self.name, self.kind, self.rows = name, kind, 0
        self.missing, self.infinite = [None, 0], [None, 0]  # first data row, how many
        self.n_present = self.n_numbers = self.n_stray = 0
        self.stray, self.distinct = [], set()  # the first non-numbers; numbers, capped
        self.labels: dict[str, int] = {}
        self.sum = 0.0

    def add(self, column: pd.Series, labels: bool = True) -> None:
        rows = np.arange(self.rows, self.rows + len(column))
        self.rows += len(column)
        present = column.notna().to_numpy()
        _first(self.missing, rows[~present])
        self.n_present += int(present.sum())
        if self.kind == "numeric":
            values = column.to_numpy(np.float64, na_value=np.nan)
            _first(self.infinite, rows[np.isinf(values)])
            self.sum += float(values[present].sum())
            return
        if labels:
            for label, count in column[present].astype(str).value_counts().items():
                self.labels[label] = self.labels.get(label, 0) + int(count)
        if self.kind == "text":
            bad = not_numbers(column)
            self.n_numbers += int((present & ~bad).sum())
            self.n_stray += int(bad.sum())
            shown = np.flatnonzero(bad)[:SHOWN_CELLS - len(self.stray)]
            self.stray += [(int(rows[i]), column.iloc[i]) for i in shown]
            if len(self.distinct) <= MANY_NUMBERS:
                self.distinct.update(number_values(column, present & ~bad).tolist())

    def numbers_in_text(self, context: str, na_values) -> ValueError | None:
        """`check_numbers_in_text`'s error for this column, if it is numbers with stray cells."""
        if not self.n_stray or not mostly_numbers_counted(
                self.n_present, self.n_numbers, lambda: len(self.distinct)):
            return None
        named = list_cells([f"data row {r + 1}" for r, _ in self.stray],
                           [v for _, v in self.stray], self.n_stray)
        return numbers_in_text_error(context, self.name, self.n_stray, self.n_present, named,
                                     na_values)

    def cell_errors(self, context: str, allow_missing: bool, hint: str) -> ValueError | None:
        """`check_values`'s error for this column: its first missing or infinite cell."""
        for (row, count), problem, allowed in ((self.missing, "Missing value", allow_missing),
                                               (self.infinite, "Infinite value", False)):
            if row is not None and not allowed:
                return cell_error(context, problem, self.name, f"data row {row + 1}", count,
                                  hint if problem == "Missing value" else "")
        return None

    def spec(self, impute) -> dict:
        """The encoder's entry for this feature column (`column_spec`)."""
        if self.kind == "numeric":
            mean = self.sum / self.n_present if self.n_present else None
            return column_spec(self.name, impute, mean=mean)
        return column_spec(self.name, impute, label_counts=self.labels)


def _first(record: list, rows: np.ndarray) -> None:
    """Adds `rows` (data rows with a problem) to `[first row, count]`."""
    if len(rows):
        record[0] = int(rows[0]) if record[0] is None else record[0]
        record[1] += len(rows)


class Target(Column):
    """A `Column` that also keeps the target's distinct values (as `read_table` needs them)."""

    def __init__(self, name: str, kind: str, keep_all: bool):
        super().__init__(name, kind)
        self.values, self.keep_all, self.integers, self.floats = set(), keep_all, True, False
        self.example = None

    def add_target(self, column: pd.Series) -> None:
        self.add(column, labels=False)
        present = column.dropna()
        if self.example is None and len(present):
            self.example = present.iloc[0]
        if self.kind == "numeric":
            values = present.to_numpy(np.float64)
            self.integers &= bool(np.all(values == np.round(values)))
            self.floats |= types.is_float_dtype(column)
        if self.keep_all or len(self.values) <= tabular.MAX_CLASSES:
            self.values.update(present.tolist())


@dataclasses.dataclass
class TableScan:
    """A training file as `scan_table` found it: what `read_table` and `prepare_features`
    would have given for the whole file, without its rows.

    Attributes:
        path: the file.
        target_name, task, impute, read_options, feature_names: as in a `Table`.
        n_rows: the data rows.
        encoder: the state `prepare_features` would fit on the whole file.
        classes: a classification target's labels, sorted, as the file gives them
            (numbers or text), else None.
        text_columns: the columns read as text in every part.
        chunk_rows: the rows of a part.
    """

    path: Path
    target_name: str
    task: str
    impute: str | None
    read_options: dict
    feature_names: list
    n_rows: int
    encoder: dict
    classes: np.ndarray | None
    text_columns: list
    chunk_rows: int

    def table(self) -> tabular.Table:
        """A `Table` of no rows that stands for the file (its columns, task and options)."""
        return tabular.Table(X=pd.DataFrame(columns=self.feature_names), y=pd.Series(
            [], name=self.target_name), target_name=self.target_name, task=self.task,
            impute=self.impute, read_options=self.read_options)

    def parts(self):
        """`(encoded features, targets)` of each part of the file, in file order: targets as
        float64 values, or class indices into `classes`."""
        dtypes = dict.fromkeys(self.text_columns, str)
        for frame in read_frames(self.path, **self.read_options, chunk_rows=self.chunk_rows,
                                 dtype=dtypes):
            X, _ = prepare_features(frame[self.feature_names], self.encoder)
            y = frame[self.target_name]
            if self.classes is None:
                yield X, y.to_numpy(np.float64)
            else:
                labels = y.astype(str) if self.target_name in self.text_columns else y
                yield X, np.searchsorted(self.classes, labels.to_numpy(self.classes.dtype))

    def batches(self, batch_size: int, seed=None):
        """A function returning a fresh iterator of `(x float32, y)` batches of `batch_size`
        rows over the file, shuffled within each part; each call shuffles anew."""
        check_int("batch_size", batch_size, minimum=1)
        rng = np.random.default_rng(seed)

        def one_pass():
            left_x, left_y = None, None
            for X, y in self.parts():
                order = rng.permutation(len(X))
                X, y = X[order].astype(np.float32), y[order]
                if left_x is not None:
                    X, y = np.concatenate([left_x, X]), np.concatenate([left_y, y])
                full = len(X) - len(X) % batch_size
                for start in range(0, full, batch_size):
                    yield X[start:start + batch_size], y[start:start + batch_size]
                left_x, left_y = X[full:], y[full:]
            if left_x is not None and len(left_x):
                yield left_x, left_y

        return one_pass


def scan_table(path, *, target, chunk_rows: int, task=None, impute=None,
               header: bool = True, sep: str = ",", na_values=tabular.DEFAULT_NA_VALUES,
               encoding: str = tabular.DEFAULT_ENCODING) -> TableScan:
    """`read_table(..., fitting=True)` and `prepare_features` of a file read in parts of
    `chunk_rows` rows (see the module docstring): the same checks, errors, warnings,
    task and encoder state, without holding the rows.

    Raises:
        FileNotFoundError, ValueError, TypeError: as `read_table` and `prepare_features`.
    """
    if task is not None:
        check_option("task", task, [t.value for t in tabular.Task])
    check_option("impute", impute, tabular.IMPUTE_OPTIONS)
    check_int("chunk_rows", chunk_rows, minimum=1)
    options = tabular.csv_options(header, sep, na_values, encoding)
    options["header"] = bool(header)
    path = Path(path)
    kinds = column_kinds(path, options, chunk_rows)
    target_name = _target_name(path, kinds, target, options)
    text = [name for name, kind in kinds.items() if kind == "text"]
    target_column = Target(target_name, kinds[target_name],
                           keep_all=task == "classification" or kinds[target_name] != "numeric")
    features = {name: Column(name, kind) for name, kind in kinds.items() if name != target_name}
    for frame in read_frames(path, **options, chunk_rows=chunk_rows,
                             dtype=dict.fromkeys(text, str)):
        target_column.add_target(frame[target_name])
        for name, column in features.items():
            column.add(frame[name])
    task = _settle(path, target_column, list(features.values()), task, impute, options)
    classes = None
    if task == tabular.Task.CLASSIFICATION.value:
        classes = np.asarray(sorted(target_column.values))
        if target_column.kind == "numeric":
            classes = classes.astype(np.float64 if target_column.floats else np.int64)
        tabular.warn_of_many_classes(len(classes), target_column.rows, target_name, path,
                                     target_column.kind != "numeric")
    encoder = encoder_state([c.spec(impute) for c in features.values()], impute)
    return TableScan(path=path, target_name=target_name, task=task, impute=impute,
                     read_options=options, feature_names=list(features), encoder=encoder,
                     n_rows=target_column.rows, classes=classes, text_columns=text,
                     chunk_rows=chunk_rows)


def _target_name(path: Path, kinds: dict, target, options: dict) -> str:
    """`read_table`'s target column and its checks, on the columns of the file."""
    columns = pd.DataFrame(columns=list(kinds))
    hint = (separator_hint(path, options["sep"], options["encoding"])
            if len(kinds) == 1 else "")
    name = tabular.resolve_target(columns, target, path, hint)
    if len(kinds) == 1:
        raise ValueError(f"{path} has only the target column {name!r}; no features{hint}")
    return name


def _settle(path: Path, target: Target, features: list[Column], task, impute,
            options: dict) -> str:
    """Raises the first error `read_table` would raise for the whole file; returns the task."""
    context, markers = str(path), options["na_values"]
    found = [target.numbers_in_text(context, markers) if task != "classification" else None,
             target.cell_errors(context, False, tabular.TARGET_HINT),
             *[column.numbers_in_text(context, markers) for column in features]]
    if len(target.values) == 1:
        found.append(tabular.one_value_error(context, target.name, next(iter(target.values)),
                                             target.rows))
    found += [column.cell_errors(context, impute is not None, IMPUTE_HINT)
              for column in features]
    for error in found:
        if error is not None:
            raise error
    if task is None:
        task = (tabular.Task.CLASSIFICATION.value if target.kind != "numeric" else
                tabular.counted_task(len(target.values), target.rows, target.integers))
    if task == tabular.Task.REGRESSION.value and target.kind != "numeric":
        raise tabular.not_numeric_target_error(target.name, path, target.example)
    return task
