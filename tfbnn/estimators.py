"""scikit-learn style Bayesian neural network estimators.

`BayesianRegressor` and `BayesianClassifier` follow the scikit-learn contract:
the constructor only stores its keyword arguments, `fit` returns `self`, learned
state ends in `_`, an unfitted model raises `NotFittedError`, and `get_params`,
`set_params` and `clone` work, so they drop into pipelines and cross-validation.
Inputs (and regression targets) are standardised internally; predictions come
back in the user's units. Inputs are standardised per entry of their last axis:
per column of a table, per channel of images, per feature of sequences.

`calibrate(X_cal, y_cal)` fits a recalibration on held-out data (see
`tfbnn.calibration`); the estimator keeps it as `calibrator_`, applies it in
`predict_distribution` and saves it with the model. `CalibratedPredictive`,
`CalibrationMethod` and `calibration_method` live in `tfbnn.calibration` and are
re-exported here.

`save` writes through `tfbnn.persistence`; both classes register themselves in
`tfbnn.persistence.ESTIMATORS`, which is how `tfbnn.load` finds them by name.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    check_X_y,
    validate_data,
)

from tfbnn import inference as inference_lib
from tfbnn import likelihoods as lik
from tfbnn import optimizers, priors
from tfbnn.calibration import (
    CLASSIFICATION_CALIBRATION,
    REGRESSION_CALIBRATION,
    CalibratedPredictive,
    CalibrationMethod,
    calibration_method,
    make_calibrator,
)
from tfbnn.fit_checkpoints import remove_checkpoint, with_checkpoint
from tfbnn.models import check_hidden_units, check_network
from tfbnn.persistence import ESTIMATORS, save_estimator
from tfbnn.predictive import Predictive, drawn_params, fixed_seed
from tfbnn.streaming import adopt, fit_stream
from tfbnn.streaming import partial_fit as streamed_partial_fit
from tfbnn.targets import class_labels, regression_targets
from tfbnn.training.stream import is_stream
from tfbnn.validation import check_fraction, check_int, check_option, check_positive

#: Likelihood names the estimators (and the command line) accept; `tfbnn.likelihoods.get`
#: says what each means.
REGRESSION_LIKELIHOODS = tuple(lik.names(classification=False))
CLASSIFICATION_LIKELIHOODS = ("auto", *lik.names(classification=True))
#: Hidden-layer activations the estimators accept.
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "gelu", "silu", "softplus")


def _check_non_numeric_columns(X):
    if isinstance(X, pd.DataFrame):
        bad = [str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])
               or pd.api.types.is_bool_dtype(X[c])]
        if bad:
            raise ValueError(
                f"Non-numeric feature column(s) {bad}: encode them first (e.g. with "
                "sklearn's OneHotEncoder in a Pipeline); the tfbnn command line one-hot "
                "encodes them for you"
            )


def feature_scaling(X) -> tuple[np.ndarray, np.ndarray]:
    """The mean and standard deviation (1 where constant) of each entry of the last axis
    of `X`, over all other axes: per column of a table, per channel of images
    `(n, height, width, channels)`, per feature of sequences `(n, steps, features)`."""
    flat = X.reshape(-1, X.shape[-1])
    mean, scale = flat.mean(axis=0), flat.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


def _feature_names(X):
    if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
        return np.asarray(X.columns, dtype=object)
    return None


class _BayesianNetwork(BaseEstimator):
    """Shared fitting, prediction and persistence of the two estimators."""

    def __init__(
        self,
        *,
        hidden_units=(50,),
        activation="relu",
        network=None,
        inference="vi",
        inference_options=None,
        likelihood="auto",
        prior="normal",
        epochs="auto",
        batch_size=32,
        learning_rate=1e-3,
        optimizer=None,
        n_samples=100,
        validation_fraction=0.0,
        patience=None,
        random_state=None,
        verbose=0,
        strategy=None,
    ):
        self.hidden_units = hidden_units
        self.activation = activation
        self.network = network
        self.inference = inference
        self.inference_options = inference_options
        self.likelihood = likelihood
        self.prior = prior
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.n_samples = n_samples
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose
        self.strategy = strategy

    # -- fitting ------------------------------------------------------------------

    def _settings(self, n_rows: int) -> inference_lib.FitSettings:
        batch_size = check_int("batch_size", self.batch_size, minimum=1)
        if self.epochs == "auto":
            # The UCI protocol's 400 epochs on small data; on large data about
            # 30k optimizer steps, and never fewer than 40 passes; never fewer steps
            # than the method asks for (VI: enough to reach its optimum on small data).
            steps_per_epoch = math.ceil(n_rows / batch_size)
            epochs = int(min(400, max(40, math.ceil(30_000 / steps_per_epoch))))
            method = inference_lib.INFERENCE.get(self.inference)
            min_steps = getattr(method, "MIN_AUTO_STEPS", 0)
            epochs = max(epochs, math.ceil(min_steps / steps_per_epoch))
        else:
            epochs = check_int("epochs", self.epochs, minimum=1)
        rate = check_positive("learning_rate", self.learning_rate)
        fraction = check_fraction("validation_fraction", self.validation_fraction)
        patience = self.patience
        if patience is not None:
            patience = check_int("patience", patience, minimum=1)
        if patience is not None and not fraction:
            raise ValueError("patience (early stopping) needs validation_fraction > 0")
        check_int("n_samples", self.n_samples, minimum=1)
        check_option("activation", self.activation, ACTIVATIONS)
        settings = inference_lib.FitSettings(
            hidden_units=check_hidden_units(self.hidden_units),
            activation=self.activation,
            network=check_network(self.network),
            prior=priors.get(self.prior),
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=rate,
            optimizer=self.optimizer,
            validation_fraction=fraction,
            patience=patience,
            seed=self.random_state,
            verbose=int(self.verbose),
            strategy=self.strategy,
        )
        optimizers.get(**settings.optimizer_options())  # refuses a bad optimizer before training
        return settings

    def fit(self, X, y=None, *, checkpoint_dir=None, checkpoint_every=1):
        """Fits the posterior to `(X, y)`; returns `self`.

        `X` may instead be a stream of `(x, y)` batches and `y` omitted: a
        `tf.data.Dataset`, a function returning a fresh iterable of NumPy batches,
        or a list of batches, for data larger than memory (see `tfbnn.streaming`).

        Nothing is changed on the estimator unless fitting succeeds: a failed fit
        (bad input, diverged training) leaves a previously fitted model intact.

        Args:
            X, y: the training data.
            checkpoint_dir: None, or a folder to checkpoint training in. The same
                call again after a kill resumes there, and ends as an uninterrupted
                fit would (given a `random_state`); see `tfbnn.fit_checkpoints`.
            checkpoint_every: epochs between checkpoints.
        """
        if is_stream(X):
            if checkpoint_dir is not None:
                raise ValueError("checkpoint_dir applies to in-memory X and y, not a stream")
            return fit_stream(self, X, y, self._settings, self._prepare_targets)
        _check_non_numeric_columns(X)
        names = _feature_names(X)
        check_network(self.network)
        X, y = check_X_y(X, y, dtype=np.float64, multi_output=True, y_numeric=False,
                         ensure_min_samples=2, allow_nd=self.network is not None)
        state = self._prepare_targets(y)
        settings = self._settings(len(X))
        method = inference_lib.get(self.inference, self.inference_options)
        x_mean, x_scale = feature_scaling(X)
        xs = ((X - x_mean) / x_scale).astype(np.float32)
        settings = with_checkpoint(settings, method, self.get_params(), checkpoint_dir,
                                   checkpoint_every, (xs, state["y_model"]))
        history = method.fit(xs, state.pop("y_model"), state["likelihood_"], settings)
        remove_checkpoint(checkpoint_dir)
        # Success: only now does the estimator take on the new state.
        adopt(self, X.shape[1:], (x_mean, x_scale), state, method, history, feature_names=names)
        return self

    def partial_fit(self, X, y, classes=None, n_train=None):
        """One pass over the chunk `(X, y)`, continuing from the current weights and
        optimizer state (inference "vi" or "mc_dropout"); returns `self`.

        The first call (on an unfitted estimator) fixes the standardisation from its
        chunk and, for a classifier, needs every class label (`classes=`). The KL
        term is scaled by `n_train`, the total training-set size, given on the first
        call; without it, by the number of rows seen so far.
        """
        return streamed_partial_fit(self, X, y, classes, n_train, self._settings,
                                    self._prepare_targets)

    def calibrate(self, X, y, method=None):
        """Fits a recalibration on held-out `(X, y)` and keeps it as `calibrator_`; returns `self`.

        `predict_distribution` (and so `predict`, `predict_proba` and the saved
        model) then applies it; see `tfbnn.calibration.CalibratedPredictive` for
        what it changes.
        The rows must not have been used for fitting. Calibrating again replaces
        the calibrator (it is always fitted to the model's own predictive).

        Args:
            X, y: the calibration rows.
            method: "quantile" (regression default), "conformal" or
                "conformal_normalized" for a regressor; "temperature" (the
                default) for a classifier. See `CalibrationMethod`.
        """
        allowed = [m.value for m in self.calibration_methods]
        method = allowed[0] if method is None else method
        check_option("method", method, [m.value for m in CalibrationMethod])
        if method not in allowed:
            raise ValueError(
                f"method={method!r} does not calibrate a {type(self).__name__}; "
                f"expected one of {allowed}")
        check_consistent_length(X, y)
        base = self.predict_distribution(X, calibrated=False)
        self.calibrator_ = make_calibrator(method).fit(base, y)
        return self

    def _prepare_targets(self, y) -> dict:
        raise NotImplementedError

    # -- prediction ---------------------------------------------------------------

    def _model_inputs(self, X):
        check_is_fitted(self, "inference_")
        _check_non_numeric_columns(X)
        shape = tuple(getattr(self, "input_shape_", (self.n_features_in_,)))
        X = validate_data(self, X, reset=False, dtype=np.float64, allow_nd=len(shape) > 1)
        if X.shape[1:] != shape:
            raise ValueError(f"X has examples of shape {X.shape[1:]}; the model was fitted "
                             f"on examples of shape {shape}")
        return ((X - self.x_mean_) / self.x_scale_).astype(np.float32)

    def predict_distribution(self, X, n_samples=None, calibrated=True) -> Predictive:
        """The posterior predictive distribution at `X` (a `tfbnn.Predictive`).

        The draws' likelihood parameters are computed a block of inputs at a time
        whenever a summary reads them (`tfbnn.predictive.DrawnParams`), with one
        seed per call (`random_state`, or a fresh one, which also seeds its `samples`),
        so the predictive's summaries all refer to the same draws and its memory does
        not grow with `S x n`.

        Args:
            X: inputs, `(n, n_features)` (or `(n, *input_shape_)` with a `network`).
            n_samples: posterior draws (default: the `n_samples` parameter). With
                `random_state` set, the same draws are used on every call.
            calibrated: after `calibrate`, return a `CalibratedPredictive`; False
                gives the model's own predictive.
        """
        n_samples = self.n_samples if n_samples is None else n_samples
        n_samples = check_int("n_samples", n_samples, minimum=1)
        xs = self._model_inputs(X)
        seed = fixed_seed(self.random_state)
        predictive = self._predictive(drawn_params(self.inference_, xs, n_samples, seed), seed)
        calibrator = getattr(self, "calibrator_", None)
        if calibrated and calibrator is not None:
            return calibrator.calibrated(predictive)
        return predictive

    def _predictive(self, params, seed) -> Predictive:
        raise NotImplementedError

    # -- persistence -------------------------------------------------------------------

    def save(self, path) -> None:
        """Saves the fitted estimator to the folder `path` (see `tfbnn.load`)."""
        save_estimator(self, path)


@ESTIMATORS.register("BayesianRegressor")
class BayesianRegressor(RegressorMixin, _BayesianNetwork):
    """A Bayesian neural network regressor.

    Args:
        hidden_units: widths of the hidden layers.
        activation: hidden-layer activation.
        network: None (tfbnn's MLP of `hidden_units` and `activation`), or your own
            architecture: a function `network(input_shape, n_outputs)` returning a
            Keras model (Sequential or functional) from examples of `input_shape`
            (`X.shape[1:]`, e.g. `(8, 8, 1)` images or `(steps, features)`
            sequences) to `n_outputs` linear outputs (the likelihood's parameters;
            the estimator appends the likelihood's output layers). X may then have
            any rank. Each inference method uses it its way: "vi" converts it with
            `tfbnn.bayesianize`, "mc_dropout" samples its Dropout layers (it must
            have some), "ensemble", "swag", "sgmcmc" and "laplace" train it as it
            is, "hmc" refuses networks of more than `max_weights` weights. Keras
            draws the initial weights' seeds from Python's `random`, which is
            seeded from `random_state` around the call (leave initializers
            unseeded, or ensemble members start alike). Functions are not saved:
            a loaded estimator predicts, and needs `set_params(network=fn)` to fit.
        inference: the posterior method, one of `tfbnn.inference.INFERENCE.names()`.
        inference_options: keyword options of the method (e.g. `{"estimator": "flipout"}`).
        likelihood: "auto" (the inference method's choice: "heteroscedastic" for
            "ensemble", else "gaussian"), "gaussian" (learned homoscedastic noise),
            "heteroscedastic", "student_t", "poisson", or a `tfbnn.likelihoods`
            object. A fixed noise scale (e.g. `Gaussian(scale=0.5)`) is in the
            target's own units.
        prior: the weight prior: "normal" (Normal(0, 1)), "laplace", "student_t",
            "scale_mixture", or a `tfbnn.priors` object.
        epochs: passes over the data, or "auto": 400 on small data, fewer on large
            data (about 30,000 optimizer steps, at least 40 passes), and for "vi"
            at least 10,000 steps.
        batch_size: minibatch size.
        learning_rate: the optimizer's step size (of Adam, or of a named `optimizer`);
            "vi" decays Adam's at the end of training (`decay_fraction` in
            `tfbnn.inference.variational.VariationalInference`).
        optimizer: None (Adam), a Keras optimizer's name ("sgd", "rmsprop", ...), or a
            Keras optimizer (or its config), whose own learning rate or schedule is
            used; the instance itself is never updated. The samplers (hmc, sgmcmc),
            which take their own step sizes, ignore it.
        n_samples: posterior draws used for prediction.
        validation_fraction: rows held out to monitor (and early-stop) training.
        patience: early-stopping patience in epochs (needs `validation_fraction`).
        random_state: seeds initialisation, data order and prediction draws.
        verbose: 1 shows a progress bar while training.
        strategy: None, or a `tf.distribute.Strategy` (`MirroredStrategy`,
            `MultiWorkerMirroredStrategy`) that shares every minibatch of training
            ('vi', 'mc_dropout', 'ensemble', 'swag', 'laplace'; the samplers refuse
            it); `batch_size` is then the global batch. Not saved with the model.

    Example:
        >>> import numpy as np, tfbnn
        >>> X = np.linspace(-1, 1, 64)[:, None]; y = np.sin(3 * X[:, 0])
        >>> model = tfbnn.BayesianRegressor(epochs=5, random_state=0).fit(X, y)
        >>> mean, std = model.predict(X, return_std=True)
        >>> mean.shape, bool((std > 0).all())
        ((64,), True)
    """

    #: The `calibrate` methods that apply, the default first.
    calibration_methods = REGRESSION_CALIBRATION

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y of shape (n, n_targets) fits every target
        return tags

    def _resolve_likelihood(self, n_targets):
        spec = self.likelihood
        if spec == "auto":
            spec = inference_lib.INFERENCE.get(self.inference).auto_likelihood
        if isinstance(spec, str):
            if spec not in REGRESSION_LIKELIHOODS:
                raise ValueError(
                    f"Unknown likelihood={spec!r}; expected one of "
                    f"{['auto', *REGRESSION_LIKELIHOODS]} "
                    "or a tfbnn.likelihoods object"
                )
        spec = lik.get(spec)
        if spec.is_classification:
            raise ValueError(f"likelihood={spec!r} is for classification; use BayesianClassifier")
        return spec

    def _prepare_targets(self, y):
        y = regression_targets(y, "BayesianRegressor.fit")
        y2 = y[:, None] if y.ndim == 1 else y
        likelihood = self._resolve_likelihood(y2.shape[1])
        if likelihood.is_discrete:
            if (y2 < 0).any() or (y2 != np.round(y2)).any():
                raise ValueError(f"likelihood={likelihood!r} needs non-negative integer targets")
            shift, scale = np.zeros(y2.shape[1]), np.ones(y2.shape[1])
        elif getattr(likelihood, "trainable", True) is False:
            # A fixed noise scale is given in target units: one pooled scale keeps it exact.
            shift = y2.mean(axis=0)
            pooled = float(np.sqrt(np.mean(y2.var(axis=0)))) or 1.0
            scale = np.full(y2.shape[1], pooled)
            config = {**likelihood.get_config(), "scale": likelihood.scale / pooled}
            config["min_scale"] = min(config["min_scale"], 0.5 * config["scale"])
            likelihood = type(likelihood).from_config(config)
        else:
            shift, scale = y2.mean(axis=0), y2.std(axis=0)
            scale[scale == 0] = 1.0
        return {
            "y_model": ((y2 - shift) / scale).astype(np.float32),
            "likelihood_": likelihood,
            "y_shift_": shift,
            "y_scale_": scale,
            "n_targets_": y2.shape[1],
            "y_ndim_": np.asarray(y).ndim,
        }

    def _predictive(self, params, seed):
        return Predictive(self.likelihood_, params, shift=self.y_shift_, scale=self.y_scale_,
                          squeeze=self.y_ndim_ == 1, seed=seed)

    def predict(self, X, return_std=False):
        """Predictive mean at `X`; with `return_std=True`, also the total predictive std.

        Both are the model's own moments, also after `calibrate` (which changes
        the predictive's quantiles and intervals, not its mean and std).
        """
        dist = self.predict_distribution(X)
        return (dist.mean, dist.std) if return_std else dist.mean


@ESTIMATORS.register("BayesianClassifier")
class BayesianClassifier(ClassifierMixin, _BayesianNetwork):
    """A Bayesian neural network classifier.

    Takes the same arguments as `BayesianRegressor`, except `likelihood`: "auto"
    (Bernoulli for two classes, Categorical otherwise), "bernoulli" or "categorical".
    Class labels may be numbers or strings and come back as given.
    """

    #: The `calibrate` methods that apply.
    calibration_methods = CLASSIFICATION_CALIBRATION

    def _prepare_targets(self, y):
        classes, index = class_labels(y, "BayesianClassifier.fit")
        if len(classes) < 2:
            raise ValueError(f"Classification needs at least 2 classes, got only {classes.tolist()}")
        spec = self.likelihood
        if spec not in CLASSIFICATION_LIKELIHOODS:
            raise ValueError(
                f"Unknown likelihood={spec!r}; expected one of {list(CLASSIFICATION_LIKELIHOODS)}"
            )
        if spec == "bernoulli" and len(classes) > 2:
            raise ValueError(f"likelihood='bernoulli' needs 2 classes, got {len(classes)}")
        binary = spec == "bernoulli" or (spec == "auto" and len(classes) == 2)
        likelihood = lik.get("bernoulli") if binary else lik.get("categorical",
                                                                   n_classes=len(classes))
        return {
            "y_model": index.astype(np.float32)[:, None],
            "likelihood_": likelihood,
            "classes_": classes,
        }

    def _predictive(self, params, seed):
        return Predictive(self.likelihood_, params, classes=self.classes_, seed=seed)

    def predict_proba(self, X):
        """Posterior-averaged class probabilities, `(n, n_classes)` in `classes_` order."""
        return self.predict_distribution(X).probs

    def predict(self, X):
        """The most probable class label at each input."""
        return self.predict_distribution(X).predicted_class


__all__ = [
    "CLASSIFICATION_CALIBRATION",
    "REGRESSION_CALIBRATION",
    "BayesianClassifier",
    "BayesianRegressor",
    "CalibratedPredictive",
    "CalibrationMethod",
    "calibration_method",
]
