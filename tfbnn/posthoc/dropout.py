"""`MCDropout`: Monte Carlo dropout predictions from a trained Keras model with Dropout layers.

The model is cloned with every `keras.layers.Dropout` replaced by a
`tfbnn.layers.MCDropout` of the same rate (or `rate`) and the trained weights
copied, so dropout stays on at prediction while every other layer runs in inference
mode (BatchNormalization on its moving statistics). Draws are vectorised: the
inputs are tiled `S` times and each block gets its own masks
(`tfbnn.layers.weight_samples`), one coherent network per draw.
"""

from __future__ import annotations

import numpy as np

from tfbnn.convert.dropout import with_mc_dropout
from tfbnn.inference.stochastic import StochasticNetworkInference
from tfbnn.posthoc.outputs import check_output_width, output_width, resolve_likelihood
from tfbnn.posthoc.saving import POSTHOC, load_model, save
from tfbnn.predictive import Predictive
from tfbnn.validation import check_fraction, check_int

MODEL_FILE = "model.keras"


@POSTHOC.register("MCDropout")
class MCDropout:
    """Monte Carlo dropout for a trained Keras model (Gal & Ghahramani, 2016).

    Args:
        model: a trained Sequential or functional Keras model with `keras.layers.Dropout`
            layers, emitting the likelihood's parameters. It is not changed.
        likelihood: "gaussian" (the model ends in a `tfbnn.layers.LearnedScale`
            head), "heteroscedastic", "categorical", "bernoulli", "poisson", or a
            `tfbnn.likelihoods.Likelihood` (e.g. `Gaussian(scale=0.1)`).
        rate: None keeps each Dropout layer's rate; a number in [0, 1) replaces them all.
        n_samples: default number of dropout draws per prediction.
        seed: seeds the masks' generators (draws with `predictive(seed=...)` repeat).

    Attributes:
        dropout_model: the clone with `tfbnn.layers.MCDropout` layers.

    #### References

    Gal, Y. & Ghahramani, Z. (2016). Dropout as a Bayesian approximation: representing
    model uncertainty in deep learning. *ICML*.
    """

    def __init__(self, model, likelihood="gaussian", *, rate=None, n_samples: int = 100,
                 seed=None):
        self.rate = None if rate is None else check_fraction("rate", rate)
        self.n_samples = check_int("n_samples", n_samples, minimum=1)
        self.seed = None if seed is None else check_int("seed", seed)
        self.model = model
        self.dropout_model = with_mc_dropout(model, self.rate, self.seed)
        width = output_width(model)
        self.likelihood = resolve_likelihood(likelihood, width, model.layers[-1:])
        check_output_width(self.likelihood, width)
        # The sampling of tfbnn's own dropout networks, on this one.
        self._sampler = StochasticNetworkInference()
        self._sampler.model, self._sampler.likelihood = self.dropout_model, self.likelihood

    def get_config(self) -> dict:
        return {"rate": self.rate, "n_samples": self.n_samples, "seed": self.seed}

    def sample_params(self, x, n_samples=None, seed=None):
        """`(S, B, k)` model outputs under `S` dropout draws at inputs `x`."""
        n_samples = self.n_samples if n_samples is None else check_int("n_samples", n_samples, 1)
        return self._sampler.sample_params(np.asarray(x, np.float32), n_samples, seed=seed)

    def predictive(self, x, n_samples=None, seed=None) -> Predictive:
        """The predictive at `x` from `n_samples` dropout draws (default: the constructor's);
        a `seed` makes the draws repeatable."""
        return Predictive(self.likelihood, self.sample_params(x, n_samples, seed), seed=seed)

    # -- persistence ----------------------------------------------------------------------

    def save(self, path) -> None:
        """Saves the model and settings to the folder `path` (`tfbnn.posthoc.load`)."""
        save(self, path)

    def write_files(self, folder) -> None:
        self.model.save(folder / MODEL_FILE)

    @classmethod
    def from_folder(cls, folder, config: dict, likelihood) -> MCDropout:
        return cls(load_model(folder / MODEL_FILE), likelihood, **config)
