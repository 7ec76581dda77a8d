"""Reading a delimited text file into a pandas DataFrame, with errors that name the file.

`read_frame` is pandas' `read_csv` with the choices made for tfbnn's users:
a fixed, documented set of missing-value markers (`DEFAULT_NA_VALUES`, empty
cells always), an explicit text encoding, a single-character separator, and
errors that say which file is at fault and what to pass instead (another
`encoding`, another `sep`). `read_frames` reads the same in parts of a given
number of rows, for files too big to hold at once.
"""

from __future__ import annotations

import codecs
import contextlib
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from tfbnn.validation import check_int

DEFAULT_NA_VALUES = ("?", "NA", "N/A", "NaN", "nan")
"""Cells read as missing unless `na_values` says otherwise; an empty cell is always missing."""

DEFAULT_ENCODING = "utf-8"

SEPARATORS = (",", ";", "\t", "|")
"""The separators a first line is checked for when a file reads as one column."""


def check_na_values(na_values) -> tuple[str, ...]:
    """The missing-value markers as a tuple of strings; one string is one marker."""
    if isinstance(na_values, str):
        return (na_values,)
    try:
        # A mapping would be pandas' per-column markers, which tfbnn does not take.
        markers = None if isinstance(na_values, Mapping) else tuple(na_values)
    except TypeError:
        markers = None
    if markers is None or not all(isinstance(m, str) for m in markers):
        raise TypeError(f"na_values must be a string or a list of strings, got {na_values!r}")
    return markers


def check_encoding(encoding) -> str:
    """`encoding` if Python knows the codec, else a ValueError naming a few that it knows."""
    if not isinstance(encoding, str):
        raise TypeError(f"encoding must be a string such as 'utf-8', got {encoding!r}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(
            f"Unknown encoding={encoding!r}; use a Python codec name such as 'utf-8', "
            "'latin-1' or 'cp1252'") from None
    return encoding


def check_separator(sep) -> str:
    """`sep` if it is one character that can separate fields (not a quote or a line break)."""
    if not isinstance(sep, str):
        raise TypeError(f"sep must be a one-character string such as ',', got {sep!r}")
    if len(sep) != 1 or sep in "\r\n\"":
        raise ValueError(
            f"sep must be one character other than a quote or a line break, got {sep!r}")
    return sep


def read_frame(
    path,
    *,
    header: bool = True,
    sep: str = ",",
    na_values=DEFAULT_NA_VALUES,
    encoding: str = DEFAULT_ENCODING,
) -> pd.DataFrame:
    """Reads a CSV table (no target needed), with errors that name the file.

    Args:
        path: The file to read.
        header: Whether the first line holds column names. Without one the
            columns are named `"0"`, `"1"`, ….
        sep: The field separator, one character (e.g. `";"` or `"\\t"`).
        na_values: The cells that mark a missing value, replacing the default
            `("?", "NA", "N/A", "NaN", "nan")`; an empty cell is always missing.
            Matched after leading spaces are dropped.
        encoding: The file's text encoding, a Python codec name such as
            `"utf-8"` (the default), `"latin-1"` or `"cp1252"`.

    Returns:
        The table, its column names as strings.

    Raises:
        FileNotFoundError: If `path` is not a file.
        ValueError: For an empty file, no data rows, text that is not in
            `encoding`, lines that do not parse (with a hint at `sep` when
            the first line holds another separator), or an unknown option.
        TypeError: For options of the wrong type.
    """
    return next(read_frames(path, header=header, sep=sep, na_values=na_values,
                            encoding=encoding))


def read_frames(
    path,
    *,
    header: bool = True,
    sep: str = ",",
    na_values=DEFAULT_NA_VALUES,
    encoding: str = DEFAULT_ENCODING,
    chunk_rows: int | None = None,
    dtype: dict | None = None,
):
    """`read_frame` in parts of at most `chunk_rows` rows (None: the whole file as one
    part), for files too big to hold at once.

    The parts are parsed with `read_frame`'s options, checks and errors, and keep
    the file's row numbering in their index (the second part of 1000 rows starts
    at 1000). Column types are inferred for each part on its own, so a column
    that looks numeric in one part and not in another is read differently in
    each (the encoder refuses what it cannot encode), unless `dtype` (column name:
    type, as pandas takes it, e.g. `str` to keep a column's text) fixes it.

    Yields:
        DataFrames, in file order, their column names as strings.
    """
    if not isinstance(header, bool | np.bool_):
        raise TypeError(f"header must be True or False, got {header!r}")
    markers = check_na_values(na_values)
    check_encoding(encoding)
    check_separator(sep)
    if chunk_rows is not None:
        check_int("chunk_rows", chunk_rows, minimum=1)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    if dtype and not header:  # without a header pandas names the columns by position
        dtype = {int(name): kind for name, kind in dtype.items()}
    rows = 0
    with _reading_errors(path, sep, encoding):
        parts = pd.read_csv(
            path, sep=sep, header=0 if header else None, skipinitialspace=True,
            na_values=[*markers, ""], keep_default_na=False, encoding=encoding,
            low_memory=False, chunksize=chunk_rows, dtype=dtype or None)
        with contextlib.nullcontext([parts]) if chunk_rows is None else parts as frames:
            for frame in frames:
                rows += len(frame)
                if len(frame):
                    # Plain string names keep the encoder state JSON-serialisable.
                    frame.columns = [str(name) for name in frame.columns]
                    yield frame
    if rows == 0:
        raise ValueError(f"{path} has no data rows")


@contextlib.contextmanager
def _reading_errors(path: Path, sep: str, encoding: str):
    """pandas' errors while reading `path`, as ValueErrors that name the file and what to
    pass instead."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty") from None
    except UnicodeError:
        raise ValueError(f"{path} is not {encoding} text ({_decode_problem(path, encoding)}); "
                         f"give its encoding, e.g. {_other_encoding(encoding)}") from None
    except pd.errors.ParserError as err:
        raise ValueError(f"{path}: cannot parse as CSV with sep={sep!r}: "
                         f"{' '.join(str(err).split())}{separator_hint(path, sep, encoding)}"
                         ) from None


def separator_hint(path, sep: str, encoding: str = DEFAULT_ENCODING) -> str:
    """`"; its first line looks ';'-separated: use sep=';'"` when the first line of
    `path` lacks `sep` but holds another of `SEPARATORS`; else `""`.

    For errors about a file that reads as one column, or does not parse.
    """
    try:
        with open(path, encoding=encoding, newline="") as file:
            line = file.readline()
    except (OSError, UnicodeError):
        return ""
    counts = Counter(char for char in line if char in SEPARATORS and char != sep)
    if sep in line or not counts:
        return ""
    other = counts.most_common(1)[0][0]
    return f"; its first line looks {other!r}-separated: use sep={other!r}"


def _decode_problem(path: Path, encoding: str) -> str:
    """Where the file stops being `encoding` text (pandas decodes in chunks, so its error
    does not say where in the file)."""
    try:
        path.read_bytes().decode(encoding)
    except UnicodeDecodeError as err:
        line = err.object.count(b"\n", 0, err.start) + 1
        return f"line {line} has byte 0x{err.object[err.start:err.start + 1].hex()}: {err.reason}"
    except UnicodeError as err:
        return str(err)
    return "a decoding error"


def _other_encoding(encoding: str) -> str:
    if codecs.lookup(encoding).name == "iso8859-1":
        return "encoding='utf-8' or 'cp1252'"
    return "encoding='latin-1' (or 'cp1252' for Windows files)"
