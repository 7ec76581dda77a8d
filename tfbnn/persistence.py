"""Saving and loading fitted estimators: a folder with a versioned JSON config and weights.

Layout of a saved model folder::

    tfbnn.json       format name and version, estimator class and parameters,
                     fitted state (scalers, classes, likelihood, and the calibrator
                     fitted by `calibrate`: its class name and `get_config()`),
                     inference config
    inference/       the inference method's own files (e.g. `model.keras`)

Nothing is pickled: a `network=` function is saved by name only (the Keras model
files hold its architecture) and comes back as a `tfbnn.models.UnsavedNetwork`.
Saving writes into a temporary sibling folder and swaps it in only when complete
(`tfbnn.files.replace_folder`), so an interrupted save never destroys a model that
was there: even a save killed between its two renames leaves the last complete
model, which the next load or save puts back.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras
import numpy as np
from sklearn.utils.validation import check_is_fitted

from tfbnn import inference as inference_lib
from tfbnn import likelihoods, priors
from tfbnn.calibration import calibration_method, deserialize_calibrator, serialize_calibrator
from tfbnn.files import check_model_destination, recover_folder, replace_folder
from tfbnn.models import UnsavedNetwork, network_name
from tfbnn.registry import Registry
from tfbnn.version import __version__

FORMAT = "tfbnn-estimator"
FORMAT_VERSION = 1
"""The one format this tfbnn writes and reads; any other version is refused."""
CONFIG_FILE = "tfbnn.json"
INFERENCE_DIR = "inference"

#: Estimator classes by name, as saved in `tfbnn.json`: `tfbnn.estimators` registers
#: its classes here, so that `load` rebuilds them without importing that module.
ESTIMATORS = Registry("estimator")

# Fitted attributes, by how they are stored.
_ARRAY_STATE = ("x_mean_", "x_scale_", "y_shift_", "y_scale_")
_PLAIN_STATE = ("n_features_in_", "n_targets_", "y_ndim_", "history_")
#: How a `network` function is saved: by name only (see `tfbnn.models.UnsavedNetwork`).
NETWORK_KEY = "__tfbnn_network__"


class ModelFileError(ValueError):
    """A saved model is missing, truncated, corrupt, or not a tfbnn model."""


def _jsonable(value):
    if isinstance(value, likelihoods.Likelihood | priors.Prior | keras.optimizers.Optimizer):
        return {"__tfbnn_object__": keras.saving.serialize_keras_object(value)}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_jsonable(value):
    if isinstance(value, dict) and "__tfbnn_object__" in value:
        return keras.saving.deserialize_keras_object(value["__tfbnn_object__"])
    if isinstance(value, dict) and NETWORK_KEY in value:
        return UnsavedNetwork(value[NETWORK_KEY])
    return value


def _param_to_json(key: str, value):
    """An estimator parameter as JSON; the `network` function by its name only (the
    saved Keras model holds the architecture, and functions are never pickled)."""
    if key == "network" and value is not None:
        return {NETWORK_KEY: network_name(value)}
    if key == "strategy":
        return None  # devices and workers belong to the run, not to the model
    return _jsonable(value)


def _calibrator_from_json(entry, estimator_cls):
    """Rebuilds a saved, fitted calibrator that applies to `estimator_cls`; else a ValueError."""
    calibrator = deserialize_calibrator(entry)
    name = type(calibrator).__name__
    if not calibrator.is_fitted:
        raise ValueError(f"the {name} entry holds no fitted values")
    if calibration_method(calibrator) not in estimator_cls.calibration_methods:
        raise ValueError(f"a {name} cannot calibrate a {estimator_cls.__name__}")
    return calibrator


def _labels_to_json(classes: np.ndarray) -> dict:
    return {"dtype": classes.dtype.str if classes.dtype.kind != "O" else "object",
            "values": classes.tolist()}


def _labels_from_json(data: dict) -> np.ndarray:
    dtype = object if data["dtype"] == "object" else np.dtype(data["dtype"])
    return np.asarray(data["values"], dtype=dtype)


def save_estimator(estimator, path, *, extra_files: dict | None = None) -> None:
    """Writes a fitted estimator to the folder `path` (replacing what was there).

    Args:
        estimator: a fitted `BayesianRegressor` or `BayesianClassifier`.
        path: the model folder.
        extra_files: file name -> text, written into the folder with the model
            and swapped in with it (the command line's `cli.json`).
    """
    check_is_fitted(estimator, "inference_")
    path = Path(path)
    check_model_destination(path, CONFIG_FILE)  # saving replaces the whole folder
    state = {key: _jsonable(getattr(estimator, key)) for key in _ARRAY_STATE + _PLAIN_STATE
             if hasattr(estimator, key)}
    if hasattr(estimator, "classes_"):
        state["classes_"] = _labels_to_json(estimator.classes_)
    if hasattr(estimator, "feature_names_in_"):
        state["feature_names_in_"] = list(estimator.feature_names_in_)
    if hasattr(estimator, "input_shape_"):
        state["input_shape_"] = list(estimator.input_shape_)
    state["likelihood_"] = _jsonable(estimator.likelihood_)
    calibrator = getattr(estimator, "calibrator_", None)
    if calibrator is not None:
        state["calibrator_"] = serialize_calibrator(calibrator)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tfbnn_version": __version__,
        "estimator": type(estimator).__name__,
        "params": {k: _param_to_json(k, v) for k, v in estimator.get_params().items()},
        "state": state,
        "inference": {"name": estimator.inference_.name,
                      "config": estimator.inference_.get_config()},
    }

    def write(folder: Path) -> None:
        (folder / INFERENCE_DIR).mkdir()
        estimator.inference_.save(folder / INFERENCE_DIR)
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        for name, text in (extra_files or {}).items():
            (folder / name).write_text(text)

    replace_folder(path, write)


def read_format_file(file: Path, fmt: str, kind: str, required=()) -> dict:
    """The JSON object in `file`, whose "format" entry is `fmt` and which has the
    `required` keys; else a `ModelFileError` saying the file is corrupt or is not a
    `kind`."""
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{file} is corrupt or truncated: {err}") from None
    if not isinstance(data, dict) or data.get("format") != fmt or any(
            key not in data for key in required):
        raise ModelFileError(f"{file} is not a {kind}")
    return data


def _read_config(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"No saved tfbnn model at {path}")
    config_file = path / CONFIG_FILE
    if not path.is_dir() or not config_file.exists():
        raise ModelFileError(f"{path} is not a tfbnn model folder (no {CONFIG_FILE} inside)")
    config = read_format_file(config_file, FORMAT, "tfbnn model config")
    version = config.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ModelFileError(
            f"{config_file} has format version {version!r}; this tfbnn "
            f"({__version__}) reads version {FORMAT_VERSION} only"
        )
    return config


def load(path):
    """Loads an estimator saved with `estimator.save(path)`.

    If a save into `path` was killed between its two renames, the last complete
    model is restored and loaded, with a `tfbnn.files.InterruptedSaveWarning`.

    Raises:
        FileNotFoundError: nothing at `path`.
        ModelFileError: the folder is not a tfbnn model, or a file in it is corrupt.
    """
    path = recover_folder(path)  # after a save killed midway, the last complete one
    config = _read_config(path)
    try:
        cls = ESTIMATORS.get(config["estimator"])
        params = {k: _from_jsonable(v) for k, v in config["params"].items()}
        if isinstance(params.get("hidden_units"), list):
            params["hidden_units"] = tuple(params["hidden_units"])
        estimator = cls(**params)
        state = dict(config["state"])
        likelihood = _from_jsonable(state.pop("likelihood_"))
        method_cls = inference_lib.INFERENCE.get(config["inference"]["name"])
        method_config = config["inference"]["config"]
        calibrator = state.pop("calibrator_", None)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path / CONFIG_FILE} is missing or has invalid entries: {err}") from None
    try:
        method = method_cls.load(path / INFERENCE_DIR, method_config, likelihood)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        if isinstance(err, FileNotFoundError | ModelFileError):
            raise ModelFileError(f"{path}: {err}") from None
        raise ModelFileError(f"{path}: a weights file is corrupt or truncated ({err})") from None
    if calibrator is not None:
        try:
            estimator.calibrator_ = _calibrator_from_json(calibrator, cls)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{path / CONFIG_FILE} has an invalid calibrator: {err}") from None
    _restore_state(estimator, state)
    estimator.likelihood_ = likelihood
    estimator.inference_ = method
    return estimator


def _restore_state(estimator, state: dict) -> None:
    """Sets the fitted attributes that `save_estimator` stored in `state`."""
    for key in _ARRAY_STATE:
        if key in state:
            setattr(estimator, key, np.asarray(state[key], np.float64))
    for key in _PLAIN_STATE:
        if key in state:
            setattr(estimator, key, state[key])
    if "classes_" in state:
        estimator.classes_ = _labels_from_json(state["classes_"])
    if "feature_names_in_" in state:
        estimator.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
    if "input_shape_" in state:
        estimator.input_shape_ = tuple(int(d) for d in state["input_shape_"])
