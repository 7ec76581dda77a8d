"""`LastLayerLaplace`: a Laplace posterior on the last layer of a network you trained.

The network in front of the last Dense layer (convolutions, recurrent layers,
custom layers) is kept as it is and read as a feature map `phi(x)`; the last layer
is then a linear model in those features, and its kernel and bias get the Laplace
posterior `N(W_MAP, (GGN + alpha I)^-1)`, exactly as the estimators'
`inference="laplace"` with `subset_of_weights="last_layer"` does (the same
`tfbnn.inference.laplace.LaplacePosterior`).
"""

from __future__ import annotations

import numpy as np

from tfbnn.inference.laplace import LaplacePosterior, PriorPrecisionMethod
from tfbnn.inference.laplace.network import split_last_dense
from tfbnn.inference.laplace.posterior import network_targets
from tfbnn.inference.laplace.rows import Rows
from tfbnn.posthoc.outputs import resolve_likelihood
from tfbnn.posthoc.saving import POSTHOC, load_model, save
from tfbnn.predictive import Predictive
from tfbnn.validation import check_int

MODEL_FILE = "model.keras"


@POSTHOC.register("LastLayerLaplace")
class LastLayerLaplace(LaplacePosterior):
    """Last-layer Laplace approximation of a trained Keras model.

    The model may be any Sequential or functional Keras model whose last layer with
    weights is a linear `keras.layers.Dense` (on 2-D features), optionally followed
    by the likelihood's heads (a `tfbnn.layers.LearnedScale` for a learned Gaussian
    noise, as tfbnn's own networks end). Its outputs are the likelihood's
    parameters. The model is never changed: the posterior keeps the last layer's
    MAP, the tuned noise and its own copy of the heads.

    Args:
        model: the trained Keras model.
        likelihood: "gaussian" (a learned noise: the model's `LearnedScale` head if it
            has one, else tuned by the marginal likelihood), "categorical" (logits;
            as many classes as the last layer has units), "bernoulli", "poisson", or
            a `tfbnn.likelihoods.Likelihood` (e.g. `Gaussian(scale=0.1)`, a known noise).
        hessian_structure: "full" (default), "diag" or "kron".
        prior_precision: "marglik" (default: maximise the Laplace marginal likelihood,
            starting from 1) or a positive number.
        sigma_noise: for a learned Gaussian noise of one output: "marglik" (default:
            maximise the marginal likelihood over it, jointly with the prior precision)
            or "map" (keep the model's `LearnedScale`). A fixed noise is kept.
        pred_type: "glm" (default) or "nn"; for the last layer both give the same
            Gaussian outputs (the model is linear in its weights).
        refine_map: solve the last layer's MAP under the prior exactly (Newton's
            method, alternating with the hyperparameter updates) instead of taking the
            trained weights as the MAP. Keeps the features `(N, H + 1)` in memory.
        max_memory_gb: refuse a curvature that needs more memory than this.

    Fitted attributes: `theta_map_` (`[kernel; bias]` flattened, float64),
    `prior_precision_`, `sigma_noise_`, `curvature_`, `log_likelihood_`, `n_data_`.

    Example:
        >>> import keras, numpy as np
        >>> from tfbnn.posthoc import LastLayerLaplace
        >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
        >>> y = x @ np.ones(4, "float32")
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "tanh"),
        ...                           keras.layers.Dense(1)])
        >>> la = LastLayerLaplace(model).fit(x, y)
        >>> la.predictive(x[:5], n_samples=50, seed=0).std.shape
        (5,)
    """

    def __init__(self, model, likelihood="gaussian", *, hessian_structure: str = "full",
                 prior_precision="marglik", sigma_noise: str = "marglik",
                 pred_type: str = "glm", refine_map: bool = False, max_memory_gb: float = 4.0):
        super().__init__("last_layer", hessian_structure, prior_precision, pred_type,
                         sigma_noise, max_memory_gb, refine_map)
        if self.prior_precision == PriorPrecisionMethod.PRIOR:
            raise ValueError("prior_precision must be 'marglik' or a positive number for a "
                             "post-hoc Laplace (there is no training prior), got 'prior'")
        last, heads = split_last_dense(model)
        self.prepare(model, resolve_likelihood(likelihood, int(last.units), heads))

    def get_config(self) -> dict:
        config = self.posterior_config()
        del config["subset_of_weights"]
        return config

    def fit(self, x, y=None) -> LastLayerLaplace:
        """Fits the posterior to the training data; returns `self`.

        Args:
            x: inputs `(n, ...)`, or a `tf.data.Dataset` of `(x, y)` batches (then no
                `y`); the curvature is summed batch by batch.
            y: targets `(n,)` or `(n, d)` (class labels for classification).
        """
        rows = Rows(x, y)
        expected = self.model.inputs[0].shape
        if rows.input_spec.rank != len(expected):
            raise ValueError(f"The model takes inputs of shape {tuple(expected)}, got batches of "
                             f"shape {tuple(rows.input_spec)} (batch a dataset with .batch(n))")
        d = network_targets(self.likelihood, self.network.n_outputs)
        _, y_first = next(rows.blocks(1))
        if y_first.shape[1] != d:
            raise ValueError(f"y must have {d} target column(s) for {self.likelihood!r} with "
                             f"{self.network.n_outputs} outputs, got {y_first.shape[1]}")
        self.check_model_memory(self.model, self.likelihood)
        alpha = (self.prior_precision if isinstance(self.prior_precision, float) else 1.0)
        self.fit_posterior(rows, alpha)
        return self

    def predictive(self, x, n_samples: int = 100, seed=None) -> Predictive:
        """The posterior predictive at inputs `x` from `n_samples` draws (`seed` repeats them)."""
        if not hasattr(self, "curvature_"):
            raise ValueError("This LastLayerLaplace is not fitted yet; call fit(x, y) first")
        n_samples = check_int("n_samples", n_samples, minimum=1)
        params = self.draw_params(np.asarray(x, np.float32), n_samples, seed)
        return Predictive(self.likelihood, params, seed=seed)

    # -- persistence ----------------------------------------------------------------------

    def save(self, path) -> None:
        """Saves the model and the fitted posterior to the folder `path` (`tfbnn.posthoc.load`)."""
        save(self, path)

    def write_files(self, folder) -> None:
        self.model.save(folder / MODEL_FILE)
        self.save_posterior(folder)

    @classmethod
    def from_folder(cls, folder, config: dict, likelihood) -> LastLayerLaplace:
        method = cls(load_model(folder / MODEL_FILE), likelihood, **config)
        method.restore_posterior(folder)
        return method
