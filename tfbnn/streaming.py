"""The estimators' training from data larger than memory: `fit(dataset)` and `partial_fit`.

`fit(dataset)` reads a stream of `(x, y)` batches (a `tf.data.Dataset`, a function
returning fresh NumPy batches, or a list of batches) once to count its rows and to
find the standardisation statistics of the inputs (per entry of the last axis) and
of regression targets, merged batch by batch in float64 (Chan et al.'s pairwise
update), or a classifier's classes; then trains on the stream standardised batch
by batch. The estimator's own target preparation is applied to a summary with the
stream's statistics (two rows `mean -+ std`; for count likelihoods its smallest and
largest rows), so the likelihood and target scaling are the same as from arrays.

`partial_fit(X, y)` takes one chunk of arrays at a time: the first call fixes the
standardisation (from that chunk) and, for a classifier, the classes (`classes=`).
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf
from sklearn.base import is_classifier
from sklearn.utils.validation import validate_data

from tfbnn import inference as inference_lib
from tfbnn import likelihoods as lik
from tfbnn.data.cells import DataWarning
from tfbnn.data.tabular import many_classes
from tfbnn.training.stream import Stream, as_dataset


class Moments:
    """Running count, mean and sum of squared deviations per column, in float64."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values) -> Moments:
        values = np.asarray(values, np.float64)
        values = values.reshape(-1, values.shape[-1]) if values.ndim > 1 else values[:, None]
        n_b, mean_b = len(values), values.mean(axis=0)
        m2_b = ((values - mean_b) ** 2).sum(axis=0)
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / n
        self.m2 = self.m2 + m2_b + delta**2 * self.n * n_b / n
        self.n = n
        return self

    def scaling(self) -> tuple[np.ndarray, np.ndarray]:
        """The mean and standard deviation (1 where constant), as `feature_scaling`."""
        std = np.sqrt(self.m2 / self.n)
        return self.mean, np.where(std == 0, 1.0, std)


class Summary:
    """One pass over a stream: rows, batches, input moments, target moments or classes."""

    def __init__(self, dataset, classification: bool):
        self.x, self.y, self.classes = Moments(), Moments(), set()
        self.y_ndim, self.y_min, self.y_max, self.integers = 1, None, None, True
        self.n_batches = 0
        for xb, yb in dataset.as_numpy_iterator():
            self.n_batches += 1
            self.example_shape = xb.shape[1:]
            self.x.add(xb)
            self.y_ndim = yb.ndim
            if classification:
                # tf.data gives text labels as bytes.
                self.classes.update(v.decode() if isinstance(v, bytes) else v
                                    for v in np.asarray(yb).ravel().tolist())
                continue
            y2 = np.asarray(yb, np.float64).reshape(len(yb), -1)
            self.y.add(y2)
            low, high = y2.min(axis=0), y2.max(axis=0)
            self.y_min = low if self.y_min is None else np.minimum(self.y_min, low)
            self.y_max = high if self.y_max is None else np.maximum(self.y_max, high)
            self.integers &= bool(np.all(y2 == np.round(y2)))
        if self.x.n == 0:
            raise ValueError("The training stream yielded no rows")

    def target_probe(self, likelihood_spec) -> np.ndarray:
        """Rows whose statistics the estimator's target preparation reads as the stream's."""
        if len(self.classes):
            return np.asarray(sorted(self.classes))
        mean, std = self.y.mean, np.sqrt(self.y.m2 / self.y.n)
        probe = np.stack([mean - std, mean + std])
        try:
            discrete = lik.get(likelihood_spec).is_discrete
        except (ValueError, TypeError):
            discrete = False  # "auto" or a bad name: the estimator resolves or refuses it
        if discrete:  # only the range and integrality are checked
            probe = np.stack([self.y_min, self.y_max]) if self.integers else probe * 0 + 0.5
        return probe if self.y_ndim > 1 else probe[:, 0]


def fit_stream(estimator, source, y, settings_for, prepare_targets):
    """`estimator.fit(source)` for a stream; `settings_for` and `prepare_targets` are the
    estimator's own (`_settings`, `_prepare_targets`)."""
    if y is not None:
        raise ValueError("fit(dataset) takes (x, y) batches from the dataset: pass no y")
    dataset = as_dataset(source)
    classification = is_classifier(estimator)
    summary = Summary(dataset, classification)
    state = probed_targets(prepare_targets, summary.target_probe(estimator.likelihood),
                           classification)
    if classification and many_classes(len(summary.classes), summary.x.n):
        warnings.warn(
            f"fit(dataset): the stream's labels take {len(summary.classes)} classes for "
            f"{summary.x.n} rows; is it an identifier or a measurement rather than labels? "
            "For numbers to predict use BayesianRegressor", DataWarning, stacklevel=3)
    state.pop("y_model")
    x_mean, x_scale = summary.x.scaling()
    settings = settings_for(summary.x.n)
    method = inference_lib.get(estimator.inference, estimator.inference_options)
    stream = Stream(dataset.map(_standardiser(x_mean, x_scale, state)), n_rows=summary.x.n,
                    n_batches=summary.n_batches)
    history = method.fit(stream, None, state["likelihood_"], settings)
    if not classification:
        state["y_ndim_"] = summary.y_ndim
    adopt(estimator, summary.example_shape, (x_mean, x_scale), state, method, history)
    return estimator


def probed_targets(prepare_targets, probe, classification: bool) -> dict:
    """The estimator's target state from `probe`, rows that stand for the data's targets. A
    classifier's probe holds each class once: the warnings of many classes for the rows
    are about the data's rows, not the probe's."""
    with warnings.catch_warnings():
        if classification:
            warnings.simplefilter("ignore", DataWarning)
            warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
        return prepare_targets(probe)


def _standardiser(x_mean, x_scale, state):
    """The batch map `(x, y) -> (standardised x, model targets)`."""
    mean, scale = tf.constant(x_mean, tf.float32), tf.constant(x_scale, tf.float32)
    if "classes_" in state:
        targets = _label_indices(state["classes_"])
    else:
        shift = tf.constant(state["y_shift_"], tf.float32)
        y_scale = tf.constant(state["y_scale_"], tf.float32)

        def targets(y):
            y = tf.cast(y, tf.float32)
            return (tf.reshape(y, [-1, len(state["y_shift_"])]) - shift) / y_scale

    return lambda x, y: ((tf.cast(x, tf.float32) - mean) / scale, targets(y))


def _label_indices(classes):
    """The batch map of labels to their index in the sorted `classes`, as a column."""
    if classes.dtype.kind in "US":
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(classes.astype(str)), tf.range(len(classes), dtype=tf.int64)), -1)
        return lambda y: tf.cast(tf.reshape(table.lookup(y), [-1, 1]), tf.float32)
    sorted_classes = tf.constant(classes.astype(np.float64))
    return lambda y: tf.cast(tf.reshape(tf.searchsorted(
        sorted_classes, tf.reshape(tf.cast(y, tf.float64), [-1])), [-1, 1]), tf.float32)


def adopt(estimator, example_shape, x_scaling, state, method, history,
          feature_names=None) -> None:
    """Gives the estimator its fitted state, from arrays (`fit`, `partial_fit`) or a
    stream: called only once fitting has succeeded, so a failed fit changes nothing."""
    estimator.n_features_in_ = int(example_shape[0])
    estimator.input_shape_ = tuple(int(d) for d in example_shape)
    if feature_names is not None:
        estimator.feature_names_in_ = feature_names
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    estimator.x_mean_, estimator.x_scale_ = x_scaling
    for key, value in state.items():
        setattr(estimator, key, value)
    estimator.inference_ = method
    estimator.history_ = history
    if hasattr(estimator, "calibrator_"):
        del estimator.calibrator_  # it was fitted to the previous model's predictions


def partial_fit(estimator, X, y, classes, n_train, settings_for, prepare_targets):
    """`estimator.partial_fit`: one pass over the chunk `(X, y)` (see the module docstring)."""
    first = not hasattr(estimator, "inference_")
    # Like fit on the first call; later chunks must match it (as predict's inputs do).
    X, y = validate_data(estimator, X, y, reset=first, dtype=np.float64, multi_output=True,
                         y_numeric=False, allow_nd=estimator.network is not None)
    if not first and X.shape[1:] != tuple(estimator.input_shape_):
        raise ValueError(f"X has examples of shape {X.shape[1:]}; the model was fitted on "
                         f"examples of shape {tuple(estimator.input_shape_)}")
    if first:
        if is_classifier(estimator) and classes is None:
            raise ValueError("The first call to partial_fit needs classes= (all class labels)")
        state = probed_targets(prepare_targets, np.asarray(classes) if is_classifier(
            estimator) else y, is_classifier(estimator))
        state.pop("y_model")
        method = inference_lib.get(estimator.inference, estimator.inference_options)
        if not hasattr(method, "partial_fit"):
            raise ValueError(f"inference={estimator.inference!r} has no partial_fit; use "
                             "inference='vi' or 'mc_dropout', or fit(dataset) to stream data")
        # validate_data(reset=True) has just set (or removed) the feature names.
        adopt(estimator, X.shape[1:], Moments().add(X).scaling(), state, method,
              {"nll": [], "kl": [], "loss": [], "val_nll": [], "stopped_epoch": None},
              feature_names=getattr(estimator, "feature_names_in_", None))
        estimator.n_train_, estimator.n_seen_ = n_train, 0
    elif not hasattr(estimator.inference_, "partial_fit"):
        raise ValueError(f"inference={estimator.inference!r} has no partial_fit")
    estimator.n_seen_ = getattr(estimator, "n_seen_", 0) + len(X)
    total = getattr(estimator, "n_train_", None) or n_train or estimator.n_seen_
    xs = ((X - estimator.x_mean_) / estimator.x_scale_).astype(np.float32)
    history = estimator.inference_.partial_fit(
        xs, model_targets(estimator, y), estimator.likelihood_, settings_for(len(X)), total)
    for key in ("nll", "kl", "loss"):
        estimator.history_[key] = [*estimator.history_.get(key, []), *history[key]]
    return estimator


def model_targets(estimator, y) -> np.ndarray:
    """A chunk's targets as the model takes them: standardised values or class indices."""
    if hasattr(estimator, "classes_"):
        labels = np.asarray(y).ravel()
        known = np.isin(labels, estimator.classes_)
        if not known.all():
            raise ValueError(f"y has labels {np.unique(labels[~known]).tolist()} not in "
                             f"classes {estimator.classes_.tolist()} given to the first call")
        return np.searchsorted(estimator.classes_, labels).astype(np.float32)[:, None]
    y2 = np.asarray(y, np.float64).reshape(len(y), -1)
    return ((y2 - estimator.y_shift_) / estimator.y_scale_).astype(np.float32)
