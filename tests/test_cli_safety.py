"""Saving never loses a model: killed at any step or at random, a save leaves the old model or
the new one, loadable, and the next save leaves no hidden folders; `tfbnn fit --out` replaces
a model only with --overwrite, and refuses an unwritable folder before training."""

import errno
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tfbnn
from tfbnn.cli import main
from tfbnn.files import InterruptedSaveWarning, recover_folder, replace_folder

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
TINY = ["--epochs", "2", "--hidden-units", "4", "--quiet", "--seed", "0"]

# -- killed at every step of a save ---------------------------------------------------------

# A save of two files that exits at once, as a SIGKILL would (no `finally`, no clean-up),
# at its `kill_at`-th step: every file-system call that creates, renames or removes, and
# the middle of each file it writes. Prints the number of steps when it is not killed.
FAULTY_SAVE = """
import os, sys
from pathlib import Path
sys.argv[0] = "tfbnn"  # as the command line, which saves: the package skips TensorFlow
from tfbnn.files import replace_folder

path, content, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
steps = 0

def step():
    global steps
    steps += 1
    if steps == kill_at:
        os._exit(9)

def counted(operation):
    def run(*args, **kwargs):
        step()
        return operation(*args, **kwargs)
    return run

for name in ("mkdir", "replace", "rename", "rmdir", "unlink"):
    setattr(os, name, counted(getattr(os, name)))

def write(folder):
    for name in ("a", "b"):
        with open(folder / name, "w") as file:
            file.write(content[:3])
            file.flush()
            step()
            file.write(content[3:])

replace_folder(path, write)
print(steps)
"""


def _contents(folder: Path) -> dict:
    return {p.name: p.read_text() for p in folder.iterdir()}


def _write(text: str):
    def write(folder):
        for name in ("a", "b"):
            (folder / name).write_text(text)
    return write


def _hidden(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


@pytest.mark.parametrize("existing", [True, False], ids=["replacing", "first save"])
def test_a_save_killed_at_any_step_leaves_the_old_or_the_new_folder(tmp_path, existing):
    path = tmp_path / "model"
    old, new = {"a": "old-old", "b": "old-old"}, {"a": "new-new", "b": "new-new"}
    for kill_at in itertools.count(1):
        shutil.rmtree(tmp_path)
        tmp_path.mkdir()
        if existing:
            replace_folder(path, _write("old-old"))
        child = subprocess.run([sys.executable, "-c", FAULTY_SAVE, str(path), "new-new",
                                str(kill_at)], env=ENV, capture_output=True, text=True)
        if child.returncode == 0:  # it finished before step `kill_at`: every step was tried
            assert int(child.stdout) == kill_at - 1 and _contents(path) == new
            break
        assert child.returncode == 9, child.stderr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InterruptedSaveWarning)
            found = recover_folder(path)
        if existing or found.exists():
            assert _contents(found) in (old, new), f"killed at step {kill_at}"
        replace_folder(path, _write("next"))
        assert _hidden(path) == [], f"killed at step {kill_at}"
        assert _contents(path) == {"a": "next", "b": "next"}
    # At least: the parent and the staging folder made, two files half-written, the
    # rename(s), and (replacing) the old folder's two files and itself removed.
    assert kill_at - 1 >= (9 if existing else 5)


# -- killed at random while saving a real model ---------------------------------------------

# Saves the model at argv[1] to argv[2] over and over (loading it rather than fitting one
# keeps the process cheap: most of its time is importing TensorFlow).
SAVER = """
import sys
import tfbnn

model = tfbnn.load(sys.argv[1])
model.save(sys.argv[2])
print("saving", flush=True)
for _ in range(100_000):
    model.save(sys.argv[2])
"""


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    path = tmp_path_factory.mktemp("source") / "model"
    tfbnn.BayesianRegressor(hidden_units=(4,), epochs=2, n_samples=5, random_state=0,
                            inference_options={"jit_compile": False}).fit(X, X[:, 0]).save(path)
    return path


def kill_while_saving(source: Path, folder: Path, n_kills: int, seed: int,
                      at_once: int = 3) -> dict:
    """Starts processes that save the model `source` over and over and kills each (SIGKILL)
    after a random delay; checks after every kill that the model loads and that the next
    save leaves no hidden folders. Returns counts of what the kills left."""
    rng = random.Random(seed)
    found = dict.fromkeys(["kills", "left a temporary folder", "left .old beside the model",
                           "left the model only under .old"], 0)
    for first in range(0, n_kills, at_once):
        paths = [folder / f"model{k}" for k in range(first, min(first + at_once, n_kills))]
        children = [subprocess.Popen([sys.executable, "-c", SAVER, str(source), str(p)],
                                     env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    for p in paths]
        for child in children:
            if child.stdout.readline() != b"saving\n":
                child.kill()
                pytest.fail(f"the saving process failed: {child.communicate()[1].decode()}")
        for child in children:
            time.sleep(rng.uniform(0.0, 0.2))  # a save takes about 25 ms
            child.send_signal(signal.SIGKILL)
            child.communicate()
        for path in paths:
            hidden = _hidden(path)
            found["kills"] += 1
            found["left a temporary folder"] += any(name.endswith(".tmp") for name in hidden)
            old, only_old = f".{path.name}.old" in hidden, not path.exists()
            found["left .old beside the model"] += old and not only_old
            found["left the model only under .old"] += only_old
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = tfbnn.load(path)  # restores it from .old, saying so
            assert any(issubclass(w.category, InterruptedSaveWarning)
                       for w in caught) == only_old
            assert np.isfinite(model.predict(np.ones((3, 2)))).all()
            model.save(path)
            assert _hidden(path) == [], path
    return found


def test_a_model_killed_while_saving_still_loads_three_kills(saved_model, tmp_path):
    assert kill_while_saving(saved_model, tmp_path, 3, seed=0)["kills"] == 3


@pytest.mark.slow
def test_a_model_killed_while_saving_still_loads_24_kills(saved_model, tmp_path):
    found = kill_while_saving(saved_model, tmp_path, 24, seed=1)
    print(found)
    assert found["kills"] == 24


# -- the command line -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=40), "x2": rng.normal(size=40)})
    path = tmp_path_factory.mktemp("data") / "train.csv"
    frame.assign(y=frame.x1 - frame.x2).to_csv(path, index=False)
    return path


def _snapshot(folder) -> dict:
    """Every file under `folder` (relative path -> bytes, mtime)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_over_a_model_needs_overwrite_and_says_what_is_there(table, tmp_path, capsys):
    model = tmp_path / "model"
    assert _run(capsys, "fit", table, "--target", "y", "--out", model, *TINY)[0] == 0
    before = _snapshot(model)
    # A missing data file: the refusal comes before the data is read, let alone trained on.
    code, _, err = _run(capsys, "fit", tmp_path / "missing.csv", "--target", "y", "--out",
                        model, *TINY)
    assert code == 2 and len(err.splitlines()) == 1
    assert f"--out {model} already holds a regression model of 'y'" in err
    assert "inference vi" in err and "add --overwrite to replace it" in err
    code, _, err = _run(capsys, "fit", table, "--target", "y", "--out", model, *TINY)
    assert code == 2 and "add --overwrite to replace it" in err
    assert _snapshot(model) == before  # byte for byte, and no file added or removed
    code, out, err = _run(capsys, "fit", table, "--target", "y", "--out", model, "--overwrite",
                          "--inference", "mc_dropout", *TINY)
    assert code == 0, err
    assert tfbnn.load(model).inference == "mc_dropout"
    assert _hidden(model) == []


def test_fit_refuses_an_unwritable_out_before_training(table, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):  # as the kernel answers in a folder without write access
        if os.path.dirname(os.fspath(path)) == str(locked):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    code, _, err = _run(capsys, "fit", tmp_path / "missing.csv", "--target", "y", "--out",
                        locked / "model", *TINY)
    assert code == 2 and len(err.splitlines()) == 1
    assert f"--out {locked / 'model'}: {locked}: Permission denied" in err
    assert ".tmp" not in err


def test_a_model_left_under_its_old_name_is_restored_with_a_warning(table, tmp_path, capsys):
    model = tmp_path / "model"
    assert _run(capsys, "fit", table, "--target", "y", "--out", model, *TINY)[0] == 0
    model.rename(tmp_path / ".model.old")  # what a save killed between its renames leaves
    code, out, err = _run(capsys, "predict", model, table)
    assert code == 0 and len(out.splitlines()) == 41
    assert err.startswith("tfbnn: warning: ") and len(err.splitlines()) == 1
    assert "a save into it was interrupted" in err and ".model.old" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    # The Python API recovers the same way.
    model.rename(tmp_path / ".model.old")
    with pytest.warns(InterruptedSaveWarning, match="restored it"):
        assert tfbnn.load(model).inference == "vi"
    assert (model / "cli.json").is_file()


def test_the_refusal_describes_a_model_saved_from_python_or_unreadable(saved_model, tmp_path,
                                                                       capsys):
    model = tmp_path / "model"
    shutil.copytree(saved_model, model)
    fit = ["fit", tmp_path / "missing.csv", "--target", "y", "--out", model]
    code, _, err = _run(capsys, *fit)
    assert code == 2 and "already holds a BayesianRegressor saved from Python (inference vi" in err
    (model / "tfbnn.json").write_text("{truncated")
    code, _, err = _run(capsys, *fit)
    assert code == 2 and "already holds a tfbnn model whose config cannot be read" in err
