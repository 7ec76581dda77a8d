"""The command line starts at once and speaks only for itself: `--help`, `--version` and usage
errors import no TensorFlow; the names its options offer are the library's; no TensorFlow log
line reaches its output unless --verbose; no spurious retracing warning from training."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from tfbnn.cli import choices, main, tensorflow_logs

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, *args, env=None, cwd=None, as_script=True) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh process; `as_script`: as the `tfbnn` script would (its
    `sys.argv[0]` names it, which tells the package it is the command line)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    if as_script:
        code = f"import sys\nsys.argv[0] = 'tfbnn'\n{code}"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**environment, **(env or {})}, cwd=cwd, timeout=600)


def test_python_m_tfbnn_answers_without_importing_tensorflow():
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "tfbnn", "--version"],
                          capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "tfbnn 0.1.0", done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "tfbnn.cli" in imported and "tensorflow" not in imported


# In a program, `import tfbnn` alone is enough for Keras to load a file with tfbnn layers.
LOAD_KERAS_FILE = """
import sys
import keras
import tfbnn
model = keras.saving.load_model(sys.argv[1], safe_mode=True)
print(type(model.layers[0]).__name__)
"""


def test_import_tfbnn_registers_its_keras_classes_for_loading(tmp_path):
    from tfbnn.layers import DenseFlipout, LearnedScale

    model = keras.Sequential([keras.Input((3,)), DenseFlipout(2), LearnedScale()])
    model.save(tmp_path / "bnn.keras")
    done = _python(LOAD_KERAS_FILE, str(tmp_path / "bnn.keras"), as_script=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "DenseFlipout"


# Every kind of answer that needs no model: help, version, argparse's refusals.
PARSE_ONLY = """
import sys
from tfbnn.cli import main
for argv in (["--version"], ["--help"], ["fit", "--help"], ["calibrate", "--help"],
             ["predict", "--help"], ["evaluate", "--help"], ["demo", "--help"],
             ["benchmark", "uci", "--help"], [], ["fit", "data.csv"], ["fit", "--bogus"],
             ["fit", "d.csv", "--target", "y", "--out", "m", "--inference", "nope"],
             ["fit", "d.csv", "--target", "y", "--out", "m", "--hidden-units", "8,x"],
             ["predict", "m"], ["demo", "--methods", "nope"],
             ["benchmark", "uci", "--datasets", "mnist"], ["nope"]):
    print(argv, main(argv), file=sys.stderr)
heavy = sorted(m for m in ("tensorflow", "keras", "tensorflow_probability", "sklearn")
               if m in sys.modules)
print("heavy modules:", heavy)
"""


def test_help_version_and_usage_errors_import_no_tensorflow():
    done = _python(PARSE_ONLY)
    assert done.returncode == 0, done.stderr
    assert "heavy modules: []" in done.stdout
    assert "usage: tfbnn" in done.stdout and "tfbnn 0.1.0" in done.stdout
    statuses = [line.rsplit(" ", 1)[1] for line in done.stderr.splitlines()
                if line.startswith("[")]
    assert statuses == ["0"] * 8 + ["2"] * 9, done.stderr
    assert "invalid choice: 'nope'" in done.stderr


def test_the_names_options_offer_are_the_librarys():
    from tfbnn import estimators, inference, priors
    from tfbnn.benchmarks import uci

    assert choices.INFERENCE_METHODS == tuple(inference.INFERENCE.names())
    assert choices.PRIORS == tuple(priors.PRIORS.names())
    assert choices.REGRESSION_LIKELIHOODS == estimators.REGRESSION_LIKELIHOODS
    assert choices.CLASSIFICATION_LIKELIHOODS == estimators.CLASSIFICATION_LIKELIHOODS
    assert choices.REGRESSION_CALIBRATION == estimators.REGRESSION_CALIBRATION
    assert choices.CLASSIFICATION_CALIBRATION == estimators.CLASSIFICATION_CALIBRATION
    defaults = estimators.BayesianRegressor().get_params()
    assert choices.ESTIMATOR_DEFAULTS == {k: defaults[k] for k in choices.ESTIMATOR_DEFAULTS}
    assert defaults == estimators.BayesianClassifier().get_params()
    for name in ("DEFAULT_OUT_DIR", "QUICK_OUT_DIR", "EPOCH_FACTOR", "QUICK_EPOCHS",
                 "QUICK_SPLITS"):
        assert getattr(choices, f"UCI_{name}") == getattr(uci, name), name


def test_every_public_name_of_the_package_still_works():
    # `import tfbnn` imports its names on first use (see test above): all of them still work.
    import tfbnn
    from tfbnn import estimators, persistence

    for name in tfbnn.__all__:
        assert getattr(tfbnn, name) is not None, name
    assert tfbnn.BayesianRegressor is estimators.BayesianRegressor
    assert tfbnn.load is persistence.load and tfbnn.layers is sys.modules["tfbnn.layers"]
    assert callable(tfbnn.metrics.rmse)  # any submodule, as when all were imported
    assert set(tfbnn.__all__) <= set(dir(tfbnn))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        tfbnn.nope  # noqa: B018
    namespace = {}
    exec("from tfbnn import *", namespace)
    assert set(tfbnn.__all__) <= set(namespace)


# -- TensorFlow's log lines -------------------------------------------------------------------


# A fresh process, as a user's: predict with a saved model, then fit one.
PREDICT_THEN_FIT = """
import sys
from tfbnn.cli import main
assert main(["predict", "model", "tiny.csv", "--out", "predictions.csv"]) == 0
assert main(["fit", "tiny.csv", "--target", "y", "--out", "refit", "--epochs", "2",
             "--hidden-units", "4", "--quiet"]) == 0
"""


def test_commands_write_no_tensorflow_log_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=30), "x2": rng.normal(size=30)})
    frame.assign(y=frame.x1 - frame.x2).to_csv(tmp_path / "tiny.csv", index=False)
    assert main(["fit", str(tmp_path / "tiny.csv"), "--target", "y", "--out",
                 str(tmp_path / "model"), "--epochs", "2", "--hidden-units", "4",
                 "--quiet"]) == 0
    capsys.readouterr()
    done = _python(PREDICT_THEN_FIT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Nothing at all: not absl's notice, oneDNN's, the CUDA stub's, nor XLA's.
    assert done.stderr == ""
    assert "saved to" in done.stdout
    assert len(pd.read_csv(tmp_path / "predictions.csv")) == 30


def test_verbose_leaves_tensorflow_to_log_as_it_likes(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(tensorflow_logs, "import_quietly", lambda: calls.append("quiet"))
    missing = ["predict", str(tmp_path / "no_model"), str(tmp_path / "no.csv")]
    assert main(missing) == 1 and calls == ["quiet"]
    # Before the command or after it, as --traceback.
    assert main(["--verbose", *missing]) == 1 and calls == ["quiet"]
    assert main([*missing, "--verbose"]) == 1 and calls == ["quiet"]
    assert "no_model" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        main([*missing, "--traceback"])
    assert main(["fit", "--help"]) == 0 and "--verbose" in capsys.readouterr().out


# A stand-in for TensorFlow that logs from native code (file descriptor 2) as it loads,
# and a Python warning; and one whose import fails.
FAKE_TENSORFLOW = """
import os, sys
os.write(2, b"I0000 00:00:1.0 1 port.cc:153] native log line\\n")
print("python says", file=sys.stderr)
if os.environ.get("FAIL"):
    raise ImportError("broken install")
"""
IMPORT_QUIETLY = """
import os, sys
from tfbnn.cli import tensorflow_logs
try:
    tensorflow_logs.import_quietly()
except ImportError as err:
    print("import failed:", err)
print("level", os.environ["TF_CPP_MIN_LOG_LEVEL"], file=sys.stderr)
"""


@pytest.mark.parametrize("fails", [False, True])
def test_native_log_lines_of_the_import_are_held_back_unless_it_fails(tmp_path, fails):
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(FAKE_TENSORFLOW)
    done = _python(IMPORT_QUIETLY, env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
                                        "FAIL": "1" if fails else ""})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "python says" in lines and "level 3" in lines
    assert ("I0000 00:00:1.0 1 port.cc:153] native log line" in lines) is fails
    assert ("import failed: broken install" in done.stdout) is fails


# -- retracing warnings -----------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def tensorflow_warnings():
    handler = _Records()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def _runner(width: int):
    """An `EpochRunner` for a small network (a new program for each width)."""
    import keras

    from tfbnn import likelihoods
    from tfbnn.training import EpochRunner

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(width),
                              keras.layers.Dense(2)])
    return EpochRunner(model, likelihoods.get("gaussian"), batch_size=4, jit_compile=False)


def _run_epochs(runner, chunk: int) -> None:
    """One call of the runner's compiled epochs, with data orders of `chunk` epochs."""
    import tensorflow as tf

    orders = tf.constant(np.tile(np.arange(8), (chunk, 1)))
    runner.run_epochs(tf.zeros((8, 1)), tf.zeros((8,)), runner.functional.get_params(),
                      runner.initial_state(), runner.functional.get_state(), orders,
                      tf.constant(1), tf.zeros((1,)))


def test_several_architectures_trained_in_turn_warn_of_no_retracing(tensorflow_warnings):
    # What `tfbnn demo --methods --quick` does: a short fit per method, each a new program
    # traced once. TensorFlow used to count them as one function retraced again and again.
    for width in range(2, 8):
        _run_epochs(_runner(width), chunk=1)
    assert not [m for m in tensorflow_warnings if "retracing" in m]


def test_one_program_traced_again_and_again_is_still_reported(tensorflow_warnings):
    # The warning is not silenced: per runner, it still tells of genuine retracing.
    runner = _runner(3)
    for chunk in range(1, 7):  # a new shape of the data orders each time
        _run_epochs(runner, chunk)
    assert [m for m in tensorflow_warnings if "retracing" in m]
