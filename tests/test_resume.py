"""Resumable fits: `fit(X, y, checkpoint_dir=...)` after a kill ends as an uninterrupted fit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfbnn import BayesianClassifier, BayesianRegressor
from tfbnn.training.checkpoint import LATEST, META_FILE, TrainingCheckpoint

EPOCHS = 6
CHEAP = dict(hidden_units=(4,), epochs=EPOCHS, batch_size=8, learning_rate=0.02,
             n_samples=4, random_state=0)
OPTIONS = {
    "vi": {"jit_compile": False},
    "mc_dropout": {"jit_compile": False},
    "swag": {"jit_compile": False, "swag_epochs": 3, "n_models": 1},
    "laplace": {"jit_compile": False},
}


def _data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    return X, X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.normal(size=40)


def _regressor(inference="vi"):
    return BayesianRegressor(**CHEAP, inference=inference, inference_options=OPTIONS[inference])


def _assert_same_fit(a, b):
    for key in ("nll", "kl", "loss", "val_nll"):
        np.testing.assert_allclose(a.history_[key], b.history_[key], rtol=1e-5, atol=1e-7)
    for u, v in zip(a.inference_.model.get_weights(), b.inference_.model.get_weights(),
                    strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    X = _data()[0]
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-4, atol=1e-5)


class _Crash(RuntimeError):
    pass


@pytest.mark.parametrize("inference", ["vi", "mc_dropout", "swag", "laplace"])
def test_a_fit_interrupted_after_a_checkpoint_resumes_to_the_uninterrupted_result(
        inference, tmp_path, monkeypatch):
    X, y = _data()
    whole = _regressor(inference).fit(X, y)

    saved = TrainingCheckpoint.save

    def save_then_crash(self, epoch):
        saved(self, epoch)
        if epoch == 4:
            raise _Crash("killed")

    folder = tmp_path / "checkpoint"
    with monkeypatch.context() as patch:
        patch.setattr(TrainingCheckpoint, "save", save_then_crash)
        with pytest.raises(_Crash):
            _regressor(inference).fit(X, y, checkpoint_dir=folder, checkpoint_every=2)
    meta = json.loads((folder / LATEST / META_FILE).read_text())
    assert meta["epoch"] == 4 and len(meta["history"]["loss"]) == 4

    resumed = _regressor(inference).fit(X, y, checkpoint_dir=folder, checkpoint_every=2)
    _assert_same_fit(resumed, whole)
    assert not folder.exists()  # removed once the fit succeeded


def test_a_checkpoint_of_another_fit_is_refused(tmp_path, monkeypatch):
    X, y = _data()
    folder = tmp_path / "checkpoint"
    monkeypatch.setattr("tfbnn.estimators.remove_checkpoint", lambda d: None)  # keep it
    _regressor().fit(X, y, checkpoint_dir=folder)
    with pytest.raises(ValueError, match="checkpoint in .* is of another fit"):
        _regressor().fit(X, y[::-1], checkpoint_dir=folder)
    with pytest.raises(ValueError, match="checkpoint in .* is of another fit"):
        _regressor().set_params(learning_rate=0.01).fit(X, y, checkpoint_dir=folder)


@pytest.mark.parametrize("params, message", [
    ({"inference": "ensemble"}, r"inference='ensemble' cannot be checkpointed"),
    ({"inference": "hmc"}, r"inference='hmc' cannot be checkpointed"),
    ({"inference": "sgmcmc"}, r"inference='sgmcmc' cannot be checkpointed"),
    ({"inference": "swag"}, r"inference='swag' with n_models=5 cannot be checkpointed"),
    ({"validation_fraction": 0.2, "patience": 2}, "patience .* cannot be combined"),
])
def test_methods_and_settings_that_cannot_resume_are_refused(params, message, tmp_path):
    X, y = _data()
    with pytest.raises(ValueError, match=message):
        BayesianRegressor(**{**CHEAP, **params}).fit(X, y, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="checkpoint_every must be an integer >= 1, got 0"):
        BayesianClassifier(**CHEAP).fit(X, y > 0, checkpoint_dir=tmp_path, checkpoint_every=0)


CHILD = """
import sys, time
import numpy as np
from tfbnn.training.checkpoint import TrainingCheckpoint
sys.path.insert(0, {tests!r})
import test_resume as t

saved = TrainingCheckpoint.save
def slow_save(self, epoch):  # a long fit: time to kill it between checkpoints
    saved(self, epoch)
    time.sleep(0.5)
TrainingCheckpoint.save = slow_save
t._regressor().fit(*t._data(), checkpoint_dir={folder!r}, checkpoint_every=1)
print("finished")
"""


def _wait_for_checkpoint(folder: Path, epoch: int, child, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, "the fit ended before it could be killed"
        try:
            if json.loads((folder / LATEST / META_FILE).read_text())["epoch"] >= epoch:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of epoch {epoch} within {timeout} s")


def test_a_killed_fit_resumes_in_a_new_process_to_the_uninterrupted_result(tmp_path):
    X, y = _data()
    folder = tmp_path / "checkpoint"
    script = CHILD.format(tests=str(Path(__file__).parent), folder=str(folder))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", script], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        _wait_for_checkpoint(folder, 2, child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    killed_at = json.loads((folder / LATEST / META_FILE).read_text())["epoch"]
    assert 2 <= killed_at < EPOCHS

    resumed = _regressor().fit(X, y, checkpoint_dir=folder)
    _assert_same_fit(resumed, _regressor().fit(X, y))


# -- the command line ----------------------------------------------------------------------


def _cli(capsys, *argv):
    from tfbnn.cli import main

    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_command_line_checkpoint_every_and_resume(tmp_path, capsys, monkeypatch):
    import tfbnn

    X, y = _data()
    csv = tmp_path / "train.csv"
    np.savetxt(csv, np.column_stack([X, y]), delimiter=",", header="a,b,y", comments="")
    fit = ["fit", csv, "--target", "y", "--epochs", EPOCHS, "--hidden-units", "4", "--quiet",
           "--seed", "0", "--batch-size", "8", "--inference-options", '{"jit_compile": false}']
    assert _cli(capsys, *fit, "--out", tmp_path / "whole")[0] == 0

    saved = TrainingCheckpoint.save

    def save_then_crash(self, epoch):
        saved(self, epoch)
        if epoch == 4:
            raise _Crash("killed")

    out = tmp_path / "model"
    with monkeypatch.context() as patch:
        patch.setattr(TrainingCheckpoint, "save", save_then_crash)
        with pytest.raises(_Crash):
            _cli(capsys, *fit, "--out", out, "--checkpoint-every", 2)
    checkpoint = tmp_path / "model.checkpoint"
    assert (checkpoint / LATEST).is_dir() and not out.exists()

    code, err = _cli(capsys, *fit, "--out", out, "--checkpoint-every", 2)
    assert code == 2 and "holds the checkpoint of an interrupted fit: add --resume" in err
    assert _cli(capsys, *fit, "--out", out, "--checkpoint-every", 2, "--resume")[0] == 0
    assert not checkpoint.exists()
    whole, resumed = tfbnn.load(tmp_path / "whole"), tfbnn.load(out)
    np.testing.assert_allclose(resumed.history_["loss"], whole.history_["loss"], rtol=1e-5)
    np.testing.assert_allclose(resumed.predict(X), whole.predict(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("flags, message", [
    (["--resume"], "--resume needs --checkpoint-every"),
    (["--checkpoint-every", "2", "--inference", "hmc"],
     "--checkpoint-every: inference='hmc' cannot be checkpointed"),
    (["--checkpoint-every", "2", "--validation-fraction", "0.2", "--patience", "2"],
     "cannot be combined with --patience"),
])
def test_command_line_refuses_checkpoints_that_cannot_work(flags, message, tmp_path, capsys):
    code, err = _cli(capsys, "fit", tmp_path / "missing.csv", "--target", "y", "--out",
                     tmp_path / "m", *flags)
    assert code == 2 and message in err
