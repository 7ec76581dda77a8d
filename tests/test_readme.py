"""The README's Python examples run as written, in order, in one namespace.

Only the sizes change (the substitutions in `SIZES`), the data comes from a small
prelude with the names the README uses (1-D targets, as users have them), and
files go to a temporary folder. A block that cannot run as written is marked
`xfail(strict=True)` in `CANNOT_RUN` with the reason, so fixing the README makes its
test fail until the mark goes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

#: Textual substitutions that make the examples small; each must occur in the README.
SIZES = [
    ("epochs=400", "epochs=2"),
    ("n_samples=1000", "n_samples=20"),
    ("sample_outputs(net, x_test, 1000)", "sample_outputs(net, x_test, 20)"),
]

#: Blocks that cannot run as written (a snippet of the block -> why).
CANNOT_RUN: dict[str, str] = {}

N_TRAIN, N_TEST, N_CAL, N_FEATURES = 64, 16, 24, 3


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _small(block: str) -> str:
    for old, new in SIZES:
        block = block.replace(old, new)
    return block


def _prelude() -> dict:
    """The data the README's examples use."""
    rng = np.random.default_rng(0)
    n = N_TRAIN + N_TEST + N_CAL
    X = rng.normal(size=(n, N_FEATURES)).astype("float32")
    y = (X @ np.array([2.0, -1.0, 0.5]) + 0.3 * rng.normal(size=n)).astype("float32")
    X_train, X_test, X_cal = np.split(X, [N_TRAIN, N_TRAIN + N_TEST])
    y_train, y_test, y_cal = np.split(y, [N_TRAIN, N_TRAIN + N_TEST])
    return {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test,
            "X_cal": X_cal, "y_cal": y_cal, "x_train": X_train, "x_test": X_test,
            "n_features": N_FEATURES}


class _Readme:
    """Runs the blocks in order in one namespace; block `i` runs once, after `0..i-1`."""

    def __init__(self, folder):
        self.blocks = [_small(block) for block in _blocks()]
        self.namespace = _prelude()
        self.folder = folder
        self.done = 0

    def run_through(self, index: int, monkeypatch) -> dict:
        monkeypatch.chdir(self.folder)
        while self.done <= index:
            i, self.done = self.done, self.done + 1
            try:
                exec(compile(self.blocks[i], f"README.md python block {i}", "exec"),
                     self.namespace)
            except Exception:
                if i == index:
                    raise  # earlier blocks' failures are their own tests'
        return self.namespace


@pytest.fixture(scope="module")
def readme(tmp_path_factory):
    import matplotlib

    matplotlib.use("Agg")
    return _Readme(tmp_path_factory.mktemp("readme"))


def _params():
    params = []
    for i, block in enumerate(_blocks()):
        reasons = [why for snippet, why in CANNOT_RUN.items() if snippet in block]
        marks = [pytest.mark.xfail(strict=True, reason=reasons[0])] if reasons else []
        params.append(pytest.param(i, id=f"block{i}-{block.strip().splitlines()[0][:30]}",
                                   marks=marks))
    return params


def test_the_size_substitutions_and_marks_still_match_the_readme():
    text = README.read_text()
    for old, _ in SIZES:
        assert old in text, f"{old!r} is no longer in README.md; update SIZES"
    for snippet in CANNOT_RUN:
        assert snippet in text, f"{snippet!r} is no longer in README.md; update CANNOT_RUN"


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("index", _params())
def test_readme_python_block_runs(readme, index, monkeypatch):
    namespace = readme.run_through(index, monkeypatch)
    block = readme.blocks[index]
    if "tfbnn.Predictive(likelihood, params)" in block:
        # The layers recipe with a 1-D target: one value per test input.
        assert namespace["dist"].mean.shape == (N_TEST,)
        assert (namespace["dist"].mean - namespace["y_test"]).shape == (N_TEST,)
    if "model.predict_distribution(X_test, n_samples=20)" in block:
        dist = namespace["dist"]
        assert dist.mean.shape == dist.std.shape == (N_TEST,)
        assert dist.samples.shape == (20, N_TEST)
        assert dist.log_prob(namespace["y_test"]).shape == (N_TEST,)


@pytest.mark.filterwarnings("ignore")
def test_the_evaluation_block_runs_with_the_estimator_of_the_first_block(readme, monkeypatch):
    """The evaluation block as written, with `model` bound to the tour's estimator."""
    blocks = readme.blocks
    first = next(b for b in blocks if "tfbnn.BayesianRegressor(hidden_units" in b)
    evaluation = next(b for b in blocks if "metrics.evaluate(model" in b)
    folder = readme.folder / "evaluation"
    folder.mkdir()
    monkeypatch.chdir(folder)
    namespace = _prelude()
    exec(compile(first, "README.md estimator block", "exec"), namespace)
    exec(compile(evaluation, "README.md evaluation block", "exec"), namespace)
    lower, upper = namespace["lower"], namespace["upper"]
    assert lower.shape == upper.shape == (N_TEST,) and np.all(lower <= upper)
