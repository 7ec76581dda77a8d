"""Saving and loading fitted post-hoc methods: a folder, never a pickle.

Layout::

    posthoc.json     format name and version, the method's class name, its settings
                     and its likelihood (as a Keras config)
    *.keras          the Keras model(s), loaded with `safe_mode=True`
    laplace.npz      a Laplace posterior's fitted arrays (NumPy, no pickle)

Each method class is registered in `POSTHOC` and implements `get_config()`,
`write_files(folder)` and the class method `from_folder(folder, config, likelihood)`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras

from tfbnn.files import check_model_destination, write_text_atomic
from tfbnn.persistence import ModelFileError, read_format_file
from tfbnn.registry import Registry
from tfbnn.version import __version__

POSTHOC = Registry("post-hoc method")
CONFIG_FILE = "posthoc.json"
FORMAT = "tfbnn-posthoc"
FORMAT_VERSION = 1


def save(method, path) -> None:
    """Writes the fitted `method` to the folder `path` (replacing a saved model there)."""
    path = Path(path)
    check_model_destination(path, CONFIG_FILE)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    method.write_files(path)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tfbnn_version": __version__,
        "method": type(method).__name__,
        "config": method.get_config(),
        "likelihood": keras.saving.serialize_keras_object(method.likelihood),
    }
    write_text_atomic(path / CONFIG_FILE, json.dumps(config, indent=2))


def load(path):
    """Loads a post-hoc method saved with its `save(path)`.

    Raises:
        FileNotFoundError: nothing at `path`.
        ModelFileError: the folder is not a saved post-hoc method, or has another
            format version.
    """
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        if not path.exists():
            raise FileNotFoundError(f"No saved tfbnn post-hoc method at {path}")
        raise ModelFileError(f"{path} is not a tfbnn post-hoc folder (no {CONFIG_FILE} inside)")
    data = read_format_file(path / CONFIG_FILE, FORMAT, "tfbnn post-hoc method config",
                            required=("format_version", "method", "config", "likelihood"))
    if data["format_version"] != FORMAT_VERSION:
        raise ModelFileError(f"{path / CONFIG_FILE} has format version "
                             f"{data['format_version']!r}; this tfbnn reads {FORMAT_VERSION}")
    try:
        cls = POSTHOC.get(data["method"])
        likelihood = keras.saving.deserialize_keras_object(data["likelihood"])
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{path / CONFIG_FILE} has invalid entries: {err}") from None
    return cls.from_folder(path, data["config"], likelihood)


def load_model(file: Path) -> keras.Model:
    """A Keras model saved by a post-hoc method (no pickled code: `safe_mode=True`)."""
    return keras.saving.load_model(file, safe_mode=True)
