"""Mean-field Gaussian variational inference (Bayes by Backprop)."""

from __future__ import annotations

from tfbnn import models
from tfbnn.inference.base import INFERENCE, FitSettings
from tfbnn.inference.stochastic import StochasticNetworkInference


@INFERENCE.register("vi")
class VariationalInference(StochasticNetworkInference):
    """Fits a factorised Gaussian posterior by maximising the ELBO (KL scaled by 1/N).

    Args:
        estimator: gradient estimator of the variational layers, one of
            "local_reparameterization" (default: lowest variance for dense layers),
            "flipout", "reparameterization".
        posterior_scale_init: initial posterior standard deviation of every weight.
        jit_compile: train with XLA.
    """

    name = "vi"

    def __init__(self, estimator: str = "local_reparameterization",
                 posterior_scale_init: float = 1e-3, jit_compile: bool = True):
        if estimator not in models.VARIATIONAL_LAYERS:
            raise ValueError(
                f"Unknown estimator={estimator!r}; expected one of {list(models.VARIATIONAL_LAYERS)}"
            )
        self.estimator = estimator
        self.posterior_scale_init = float(posterior_scale_init)
        self.jit_compile = bool(jit_compile)

    def get_config(self):
        return {
            "estimator": self.estimator,
            "posterior_scale_init": self.posterior_scale_init,
            "jit_compile": self.jit_compile,
        }

    def build_network(self, n_features, n_targets, likelihood, settings: FitSettings,
                      n_train: int):
        return models.bayesian_mlp(
            n_features,
            likelihood,
            n_targets,
            hidden_units=settings.hidden_units,
            activation=settings.activation,
            estimator=self.estimator,
            prior=settings.prior,
            kl_weight=1.0 / n_train,
            posterior_scale_init=self.posterior_scale_init,
            seed=settings.seed,
        )
