"""tfbnn.load / estimator.save: round trips, and clear errors for anything that cannot load."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import SMALL
from sklearn.exceptions import NotFittedError

import tfbnn
from tfbnn import BayesianClassifier, BayesianRegressor, ModelFileError, priors
from tfbnn import likelihoods as L
from tfbnn.persistence import FORMAT_VERSION


@pytest.fixture(scope="module")
def saved(regressor, tmp_path_factory):
    """A saved regressor; tests that damage it work on a copy (see `copy_of_saved`)."""
    path = tmp_path_factory.mktemp("saved") / "model"
    regressor.save(path)
    return path


@pytest.fixture
def copy_of_saved(saved, tmp_path):
    path = tmp_path / "model"
    shutil.copytree(saved, path)
    return path


def _assert_same_predictions(a, b, X):
    da, db = a.predict_distribution(X), b.predict_distribution(X)
    np.testing.assert_array_equal(db.params.numpy(), da.params.numpy())
    np.testing.assert_array_equal(db.mean, da.mean)
    np.testing.assert_array_equal(db.std, da.std)


# -- round trips -----------------------------------------------------------------------------


def test_saved_regressor_loads_with_identical_predictions(regressor, saved, data):
    X, _ = data
    loaded = tfbnn.load(saved)
    assert type(loaded) is BayesianRegressor
    assert loaded.get_params() == regressor.get_params()
    assert loaded.likelihood_ == regressor.likelihood_
    assert loaded.n_features_in_ == 3 and loaded.history_ == regressor.history_
    for key in ("x_mean_", "x_scale_", "y_shift_", "y_scale_"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(regressor, key))
    _assert_same_predictions(regressor, loaded, X)
    np.testing.assert_array_equal(loaded.predict_distribution(X).interval(0.9),
                                  regressor.predict_distribution(X).interval(0.9))
    # The folder holds a versioned JSON config and a Keras file: no pickles.
    config = json.loads((saved / "tfbnn.json").read_text())
    assert config["format"] == "tfbnn-estimator"
    assert config["format_version"] == FORMAT_VERSION
    assert sorted(p.name for p in saved.rglob("*") if p.is_file()) == ["model.keras", "tfbnn.json"]


def test_the_saved_keras_file_loads_in_safe_mode(saved, regressor, data):
    model = keras.saving.load_model(saved / "inference" / "model.keras", safe_mode=True)
    for a, b in zip(model.get_weights(), regressor.inference_.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_classifier_with_string_labels_and_feature_names_round_trips(data, tmp_path):
    X, _ = data
    frame = pd.DataFrame(X, columns=["alpha", "beta", "gamma"])
    labels = np.select([X[:, 0] < -0.5, X[:, 0] > 0.5], ["low", "high"], "mid")
    model = BayesianClassifier(**SMALL, inference_options={"jit_compile": False},
                               random_state=0).fit(frame, labels)
    model.save(tmp_path / "clf")
    loaded = tfbnn.load(tmp_path / "clf")
    assert type(loaded) is BayesianClassifier
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.classes_.dtype == model.classes_.dtype
    np.testing.assert_array_equal(loaded.feature_names_in_, ["alpha", "beta", "gamma"])
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(frame.rename(columns={"beta": "delta"}))


def test_custom_likelihood_and_prior_objects_round_trip(data, tmp_path):
    X, y = data
    # No XLA: this network is built once, and the option must round-trip too.
    model = BayesianRegressor(**SMALL, likelihood=L.Gaussian(scale=0.5),
                              prior=priors.StudentT(df=4.0, scale=0.5),
                              inference_options={"jit_compile": False}, random_state=0).fit(X, y)
    model.save(tmp_path / "m")
    loaded = tfbnn.load(tmp_path / "m")
    assert loaded.likelihood == L.Gaussian(scale=0.5)
    assert loaded.prior == priors.StudentT(df=4.0, scale=0.5)
    assert loaded.inference_options == {"jit_compile": False}
    assert loaded.likelihood_ == model.likelihood_
    _assert_same_predictions(model, loaded, X)
    np.testing.assert_allclose(np.sqrt(loaded.predict_distribution(X).aleatoric_var), 0.5,
                               rtol=1e-5)


def test_saving_over_an_existing_model_replaces_it(regressor, data, tmp_path):
    X, y = data
    other = BayesianRegressor(**SMALL, random_state=1).fit(X, -y)
    path = tmp_path / "model"
    regressor.save(path)
    (path / "stale.txt").write_text("left over")
    other.save(path)
    loaded = tfbnn.load(path)
    _assert_same_predictions(other, loaded, X)
    assert not (path / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"], "temporary folders left behind"


def test_saving_an_unfitted_estimator_raises(tmp_path):
    with pytest.raises(NotFittedError):
        BayesianRegressor().save(tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_saving_onto_a_file_raises(regressor, tmp_path):
    target = tmp_path / "model"
    target.write_text("not a folder")
    with pytest.raises(ValueError, match="is an existing file, not a model folder"):
        regressor.save(target)
    assert target.read_text() == "not a folder"


def test_saving_onto_a_folder_of_other_files_raises_and_keeps_them(regressor, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds other files, not a tfbnn model"):
        regressor.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


# -- what cannot be loaded ---------------------------------------------------------------------


def test_loading_a_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="No saved tfbnn model at"):
        tfbnn.load(tmp_path / "nowhere")


def test_loading_a_folder_without_config_raises(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match=r"not a tfbnn model folder \(no tfbnn.json inside\)"):
        tfbnn.load(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFileError, match="not a tfbnn model folder"):
        tfbnn.load(tmp_path / "file")


def test_truncated_config_raises(copy_of_saved):
    config = copy_of_saved / "tfbnn.json"
    config.write_text(config.read_text()[: len(config.read_text()) // 2])
    with pytest.raises(ModelFileError, match="tfbnn.json is corrupt or truncated"):
        tfbnn.load(copy_of_saved)


def test_binary_garbage_config_raises(copy_of_saved):
    (copy_of_saved / "tfbnn.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        tfbnn.load(copy_of_saved)


@pytest.mark.parametrize("content", ['{"hello": 1}', "[1, 2, 3]", '"tfbnn"',
                                     '{"format": "keras", "format_version": 1}'])
def test_a_json_that_is_not_a_tfbnn_model_raises(copy_of_saved, content):
    (copy_of_saved / "tfbnn.json").write_text(content)
    with pytest.raises(ModelFileError, match="is not a tfbnn model config"):
        tfbnn.load(copy_of_saved)


@pytest.mark.parametrize("version", [FORMAT_VERSION - 1, FORMAT_VERSION + 1, 99, "1", None, True])
def test_any_other_format_version_raises(copy_of_saved, version):
    path = copy_of_saved / "tfbnn.json"
    config = json.loads(path.read_text())
    config["format_version"] = version
    path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=f"has format version {version!r}; "
                                             f".*reads version {FORMAT_VERSION} only"):
        tfbnn.load(copy_of_saved)


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.pop("params"),
        lambda c: c["state"].pop("likelihood_"),
        lambda c: c.update(estimator="BayesianForest"),
        lambda c: c["params"].update(wings=2),
        lambda c: c.update(inference={"name": "vi", "config": {"estimator": "reinforce"}}),
        lambda c: c.update(inference={"name": "magic", "config": {}}),
    ],
    ids=["no-params", "no-likelihood", "unknown-estimator", "unknown-param", "bad-option",
         "unknown-inference"],
)
def test_a_config_with_missing_or_invalid_entries_raises(copy_of_saved, edit):
    path = copy_of_saved / "tfbnn.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="tfbnn.json|model"):
        tfbnn.load(copy_of_saved)


def test_truncated_keras_file_raises(copy_of_saved):
    weights = copy_of_saved / "inference" / "model.keras"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        tfbnn.load(copy_of_saved)


def test_missing_keras_file_raises(copy_of_saved):
    (copy_of_saved / "inference" / "model.keras").unlink()
    with pytest.raises(ModelFileError, match="model.keras"):
        tfbnn.load(copy_of_saved)


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)
