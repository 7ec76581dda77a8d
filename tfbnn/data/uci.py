"""The nine UCI regression benchmarks with their published train/test splits.

The folder layout is the one distributed with the probabilistic-backpropagation
and MC-dropout experiments: one folder per data set holding `data.txt`
(whitespace-separated numbers), `index_features.txt`, `index_target.txt`,
`index_train_K.txt` / `index_test_K.txt` and the protocol files `n_splits.txt`,
`n_hidden.txt` and `n_epochs.txt`. Nothing is ever downloaded: point
`load_uci` at a copy of that folder with `data_dir=` or `TFBNN_UCI_DIR`, or keep
one where it looks by itself (`search_path`): the user cache, or
`../shared/data/uci` from the current folder or from the tfbnn source folder
(where the project's Makefile points `TFBNN_UCI_DIR`).

#### References

Hernández-Lobato & Adams, "Probabilistic backpropagation for scalable learning
of Bayesian neural networks", ICML 2015.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path

import numpy as np

from tfbnn.validation import check_option

UCI_DATASETS = (
    "boston",
    "concrete",
    "energy",
    "kin8nm",
    "naval",
    "power",
    "protein",
    "wine",
    "yacht",
)
"""The folder names of the nine standard UCI regression benchmarks."""

ENV_VAR = "TFBNN_UCI_DIR"

SEARCH_RULE = ("tfbnn/uci in the user cache ($XDG_CACHE_HOME or ~/.cache), then "
               "../shared/data/uci from the current folder, then from the tfbnn source folder")
"""`search_path` in words, for help texts."""


def search_path() -> list[Path]:
    """Where `load_uci` looks when given no `data_dir` and `$TFBNN_UCI_DIR` is not set.

    In order: `tfbnn/uci` in the user cache folder (`$XDG_CACHE_HOME`, falling
    back to `~/.cache`); `../shared/data/uci` from the current folder; and, when
    tfbnn runs from its source folder (the one with `pyproject.toml`),
    `../shared/data/uci` from there, where the project's Makefile points
    `$TFBNN_UCI_DIR`. The first that exists is used.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    places = [cache / "tfbnn" / "uci", Path.cwd().parent / "shared" / "data" / "uci"]
    source = Path(__file__).resolve().parents[2]
    if (source / "pyproject.toml").is_file():
        places.append(source.parent / "shared" / "data" / "uci")
    return list(dict.fromkeys(places))


def default_data_dir() -> Path:
    """Returns where `load_uci` looks when no `data_dir` is given.

    `$TFBNN_UCI_DIR` if set, else the first folder of `search_path()` that
    exists (the user cache folder if none does). No folder is created and
    nothing is downloaded into it.
    """
    root, _ = _resolve_data_dir(None)
    return search_path()[0] if root is None else root


def find_data_dir(data_dir=None) -> Path:
    """The folder of the data set folders that `load_uci(name, data_dir)` reads.

    Raises:
        FileNotFoundError: If there is none, saying where it looked and how to
            point at a copy.
    """
    return _found_data_dir(data_dir)[0]


_HOW_TO_POINT = (
    f"Pass data_dir= (--data-dir on the command line) or set ${ENV_VAR} to a copy of the "
    f"folder holding the data set folders {list(UCI_DATASETS)}; tfbnn never downloads them.")


def _found_data_dir(data_dir) -> tuple[Path, str]:
    """`find_data_dir`, and where the folder came from, for errors."""
    root, source = _resolve_data_dir(data_dir)
    if root is None:
        raise FileNotFoundError(f"UCI data folder not found: {source}. {_HOW_TO_POINT}")
    if not root.is_dir():
        raise FileNotFoundError(
            f"UCI data folder {root} does not exist ({source}). {_HOW_TO_POINT}")
    return root, source


def _resolve_data_dir(data_dir) -> tuple[Path | None, str]:
    """The data folder (None if the search found none) and where it came from, for errors."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "taken from the data_dir argument"
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser(), f"taken from ${ENV_VAR}"
    places = search_path()
    searched = ", ".join(map(str, places))
    found = next((place for place in places if place.is_dir()), None)
    if found is None:
        return None, f"none of {searched} exists"
    return found, f"the first that exists of {searched}"


@dataclasses.dataclass(frozen=True, eq=False)
class UCIDataset:
    """One UCI regression data set with its published splits and protocol.

    Attributes:
        name: The data set's folder name, e.g. `"yacht"`.
        X: Inputs, float64 of shape `(n_rows, n_features)`.
        y: Targets, float64 of shape `(n_rows,)`.
        n_splits: Number of published train/test splits.
        n_hidden: Hidden units of the protocol's one-hidden-layer network.
        n_epochs: The protocol's base number of training epochs.
        path: The folder the data set was read from.
    """

    name: str
    X: np.ndarray = dataclasses.field(repr=False)
    y: np.ndarray = dataclasses.field(repr=False)
    n_splits: int
    n_hidden: int
    n_epochs: int
    path: Path
    _splits: tuple[tuple[np.ndarray, np.ndarray], ...] = dataclasses.field(repr=False)

    def split_indices(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns the 0-based row indices `(train, test)` of split `k`."""
        train, test = self._splits[self._check_split(k)]
        return train.copy(), test.copy()

    def split(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Returns `(X_train, y_train, X_test, y_test)` of split `k`, unstandardised.

        Example:

        >>> data = load_uci("yacht")  # doctest: +SKIP
        >>> X_train, y_train, X_test, y_test = data.split(0)  # doctest: +SKIP
        """
        train, test = self._splits[self._check_split(k)]
        return self.X[train], self.y[train], self.X[test], self.y[test]

    def _check_split(self, k) -> int:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"Split index must be an integer, got {k!r}")
        if not 0 <= k < self.n_splits:
            raise ValueError(
                f"Split k={k} is out of range for {self.name!r}; expected 0 <= k < {self.n_splits}"
            )
        return int(k)


def load_uci(name: str, data_dir=None) -> UCIDataset:
    """Reads one UCI regression benchmark and validates all of its splits.

    Args:
        name: One of `UCI_DATASETS`.
        data_dir: Folder holding one sub-folder per data set. Defaults to
            `default_data_dir()` (`$TFBNN_UCI_DIR`, else the first folder of
            `search_path()` that exists).

    Returns:
        A `UCIDataset`.

    Raises:
        ValueError: For an unknown `name`, malformed numbers (naming file and
            line), indices out of range, or train and test splits that overlap.
        FileNotFoundError: If the data folder, the data set's folder or one of its
            files is missing (saying where it looked).
    """
    check_option("name", name, UCI_DATASETS)
    root, source = _found_data_dir(data_dir)
    folder = root / name
    if not folder.is_dir():
        raise FileNotFoundError(
            f"UCI data set {name!r} not found: {folder} is not a folder (data folder "
            f"{source}). {_HOW_TO_POINT}")
    data = _read_numbers(folder / "data.txt")
    features, target = _read_columns(folder, n_columns=data.shape[1])
    n_splits = _read_count(folder / "n_splits.txt")
    splits = tuple(_read_split(folder, k, n_rows=data.shape[0]) for k in range(n_splits))
    return UCIDataset(
        name=name,
        X=data[:, features],
        y=data[:, target],
        n_splits=n_splits,
        n_hidden=_read_count(folder / "n_hidden.txt"),
        n_epochs=_read_count(folder / "n_epochs.txt"),
        path=folder,
        _splits=splits,
    )


def _read_columns(folder: Path, n_columns: int) -> tuple[np.ndarray, int]:
    """Reads and checks the feature columns and the target column of `data.txt`."""
    features = _read_indices(folder / "index_features.txt", upper=n_columns, what="column")
    target_file = folder / "index_target.txt"
    target = _read_indices(target_file, upper=n_columns, what="column")
    if target.size != 1:
        raise ValueError(f"{target_file} must hold one column index, found {target.size}")
    if target[0] in features:
        raise ValueError(f"{target_file}: target column {target[0]} is also a feature column")
    return features, int(target[0])


def _read_split(folder: Path, k: int, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    train_file = folder / f"index_train_{k}.txt"
    test_file = folder / f"index_test_{k}.txt"
    train = _read_indices(train_file, upper=n_rows, what="row")
    test = _read_indices(test_file, upper=n_rows, what="row")
    shared = np.intersect1d(train, test)
    if shared.size:
        raise ValueError(
            f"Split {k} of {folder} overlaps: {shared.size} rows are in both "
            f"{train_file.name} and {test_file.name} (first: {shared[0]})"
        )
    return train, test


def _read_indices(path: Path, upper: int, what: str) -> np.ndarray:
    """Reads 0-based indices and checks that they are integers in `[0, upper)`."""
    values = _read_numbers(path).ravel()
    bad = np.flatnonzero((values != np.round(values)) | (values < 0) | (values >= upper))
    if bad.size:
        raise ValueError(
            f"{path}: {what} index {values[bad[0]]:g} is not an integer in [0, {upper}) "
            f"({bad.size} bad values)"
        )
    return values.astype(np.int64)


def _read_count(path: Path) -> int:
    """Reads a file holding one positive integer."""
    values = _read_numbers(path).ravel()
    if values.size != 1 or values[0] < 1 or values[0] != round(values[0]):
        raise ValueError(f"{path} must hold one positive integer, found {values.tolist()}")
    return int(values[0])


def _read_numbers(path: Path) -> np.ndarray:
    """Reads a whitespace-separated table of finite numbers as a 2-D float64 array."""
    if not path.is_file():
        raise FileNotFoundError(f"Missing file {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # empty files are reported below
            values = np.loadtxt(path, dtype=np.float64, ndmin=2, comments=None)
    except ValueError as error:
        _raise_at_bad_line(path)
        raise ValueError(f"Could not read {path}: {error}") from error
    if values.size == 0:
        raise ValueError(f"{path} holds no numbers")
    if not np.isfinite(values).all():
        _raise_at_bad_line(path)
    return values


def _raise_at_bad_line(path: Path) -> None:
    """Raises a ValueError naming the first line of `path` that is not a row of numbers.

    NumPy's parser counts rows without blank lines, so the line is found here
    again to give users a number their editor shows.
    """
    n_columns = None
    with path.open() as lines:
        for line_number, line in enumerate(lines, start=1):
            tokens = line.split()
            if not tokens:
                continue
            n_columns = n_columns or len(tokens)
            if len(tokens) != n_columns:
                raise ValueError(
                    f"{path}, line {line_number}: expected {n_columns} numbers, found {len(tokens)}"
                )
            for token in tokens:
                if not _is_finite_number(token):
                    raise ValueError(
                        f"{path}, line {line_number}: {token!r} is not a finite number"
                    )


def _is_finite_number(token: str) -> bool:
    try:
        return math.isfinite(float(token))
    except ValueError:
        return False
