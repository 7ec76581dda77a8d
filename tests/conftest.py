import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import SMALL, N  # noqa: E402


@pytest.fixture(scope="module")
def data():
    """A noisy linear regression problem with three features."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=N)
    return X, y


@pytest.fixture(scope="module")
def regressor(data):
    """A small `BayesianRegressor` fitted on `data`."""
    from tfbnn import BayesianRegressor

    return BayesianRegressor(**SMALL, random_state=0).fit(*data)
