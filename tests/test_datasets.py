import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tfbnn.data import read_table
from tfbnn.datasets import (
    CONCRETE_TARGET,
    GAP_X,
    concrete_path,
    gap_data,
    gap_ratio,
    load_concrete,
)
from tfbnn.datasets.digits import digit_images

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


def test_gap_data_has_a_gap_and_repeats():
    x, y = gap_data(200, seed=3)
    assert x.shape == (200, 1) and y.shape == (200,)
    assert np.all((x[:100] >= -3) & (x[:100] <= -1)) and np.all((x[100:] >= 1) & (x[100:] <= 3))
    assert np.std(y - np.sin(x[:, 0])) == pytest.approx(0.1, rel=0.2)
    np.testing.assert_array_equal(gap_data(200, seed=3)[1], y)
    assert not np.array_equal(gap_data(200, seed=4)[1], y)
    assert gap_data(7)[0].shape == (7, 1)
    with pytest.raises(ValueError, match="n must be an integer >= 2, got 1"):
        gap_data(1)


class _GapModel:
    """Epistemic variance 4 for |x| < 1 (the gap) and 1 elsewhere."""

    def predict_distribution(self, x):
        return SimpleNamespace(epistemic_var=np.where(np.abs(x[:, 0]) < 1, 4.0, 1.0))


def test_gap_ratio_is_the_gap_variance_over_the_training_variance():
    x, _ = gap_data(20)
    assert gap_ratio(_GapModel(), x) == 4.0
    assert gap_ratio(_GapModel(), x[:, 0]) == 4.0  # (n,) inputs too
    # Trained in the gap itself, a model is as sure there as on its data.
    assert gap_ratio(_GapModel(), GAP_X) == 1.0


# -- digit images for out-of-distribution detection -------------------------------------------


def test_digit_images_split_known_digits_and_keep_the_others_apart():
    data = digit_images(test_fraction=0.2, digits=(1, 7), seed=3)
    assert data.x_train.shape[1:] == (8, 8, 1) and data.x_train.dtype == np.float32
    assert set(data.y_train) == set(data.y_test) == {1, 7}
    assert not {1, 7} & set(data.y_ood) and len(set(data.y_ood)) == 8
    n_in = len(data.y_train) + len(data.y_test)
    assert abs(len(data.y_test) / n_in - 0.2) < 0.01
    assert 0 <= data.x_ood.min() and data.x_ood.max() <= 1
    again = digit_images(test_fraction=0.2, digits=(1, 7), seed=3)
    np.testing.assert_array_equal(again.x_test, data.x_test)


@pytest.mark.parametrize("digits", [(), tuple(range(10)), (3, 12)])
def test_digit_images_refuse_digits_that_leave_nothing_to_train_or_detect(digits):
    with pytest.raises(ValueError, match="digits must be some but not all of 0-9"):
        digit_images(digits=digits)
