import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfbnn.data import read_table
from tfbnn.datasets import CONCRETE_TARGET, concrete_path, load_concrete

COLUMNS = [
    "cement",
    "blast_furnace_slag",
    "fly_ash",
    "water",
    "superplasticizer",
    "coarse_aggregate",
    "fine_aggregate",
    "age_days",
    "compressive_strength",
]


def test_load_concrete_arrays():
    X, y = load_concrete()
    assert X.shape == (1030, 8) and X.dtype == np.float64
    assert y.shape == (1030,) and y.dtype == np.float64
    assert np.isfinite(X).all() and np.isfinite(y).all()
    # Compressive strength in MPa, ages in days.
    assert 2.0 < y.min() and y.max() < 83.0
    assert X[:, 7].min() == 1.0 and X[:, 7].max() == 365.0


def test_load_concrete_frame():
    frame = load_concrete(as_frame=True)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == COLUMNS
    assert CONCRETE_TARGET == COLUMNS[-1]
    X, y = load_concrete()
    np.testing.assert_array_equal(frame.to_numpy()[:, :8], X)
    np.testing.assert_array_equal(frame[CONCRETE_TARGET].to_numpy(), y)


def test_concrete_path_is_a_readable_csv():
    path = concrete_path()
    assert isinstance(path, Path) and path.is_file()
    table = read_table(path, target=CONCRETE_TARGET)
    assert table.task == "regression"
    assert table.feature_names == COLUMNS[:-1]


def test_readme_is_shipped_with_attribution():
    readme = (concrete_path().parent / "README.md").read_text()
    assert "Yeh" in readme and "CC BY 4.0" in readme and "MPa" in readme


def test_matches_the_uci_benchmark_copy():
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "uci"
    folder = Path(os.environ.get("TFBNN_UCI_DIR", default)) / "concrete"
    if not folder.is_dir():
        pytest.skip(f"UCI data folder {folder} not found; set TFBNN_UCI_DIR to compare")
    data = np.loadtxt(folder / "data.txt")
    features = np.loadtxt(folder / "index_features.txt", dtype=int)
    target = int(np.loadtxt(folder / "index_target.txt"))
    X, y = load_concrete()
    np.testing.assert_array_equal(X, data[:, features])
    np.testing.assert_array_equal(y, data[:, target])
