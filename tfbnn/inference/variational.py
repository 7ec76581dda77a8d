"""Mean-field Gaussian variational inference (Bayes by Backprop)."""

from __future__ import annotations

import dataclasses

from tfbnn import models, optimizers
from tfbnn.convert import CONVERSIONS, bayesianize
from tfbnn.inference.base import INFERENCE, FitSettings
from tfbnn.inference.stochastic import StochasticNetworkInference
from tfbnn.training.loop import steps_per_epoch
from tfbnn.training.stream import Stream
from tfbnn.validation import check_number, check_option, check_positive


@INFERENCE.register("vi")
class VariationalInference(StochasticNetworkInference):
    """Fits a factorised Gaussian posterior by maximising the ELBO (KL scaled by 1/N).

    Every weight `w` has the posterior `q(w) = Normal(mu, softplus(rho))`, and the
    network is trained (`tfbnn.training.train`) on the negative ELBO per example,

        L(mu, rho) = -(1/N) sum_i E_q[log p(y_i | x_i, w)] + (1/N) KL[q(w) || p(w)],

    the expectation estimated with one weight sample per minibatch step through the
    variational layers' gradient estimator [1, 2, 3]. Prediction draws `S` weight
    samples in one vectorised call.

    The defaults reach the mean-field optimum (checked against Bayesian linear
    regression, whose optimum is known in closed form): posterior scales start
    small (`posterior_scale_init`) and grow at Adam's relative pace (`softplus(rho)`
    is close to `exp(rho)` there); the estimators' `epochs="auto"` gives VI at least
    `MIN_AUTO_STEPS` optimizer steps; and the learning rate decays along a half
    cosine over the last `decay_fraction` of the steps
    (`tfbnn.optimizers.decaying_at_end`), so that the final weights do not keep the
    fluctuation of constant-step-size stochastic optimisation. The decay applies to
    the default optimizer (Adam), in memory or from a stream; a named optimizer, an instance
    or a config trains at the rate given (or its own schedule).

    With an estimator's own `network=fn`, the network `fn` builds is converted by
    `tfbnn.bayesianize`: its dense (and convolutional, recurrent) layers become
    variational layers of the chosen estimator, initialised at the network's
    initial weights, and its other layers stay as they are.

    Args:
        estimator: gradient estimator of the variational layers, one of
            "local_reparameterization" (default: lowest variance for dense layers;
            other layers of a `network=` use "flipout"), "flipout",
            "reparameterization".
        posterior_scale_init: initial posterior standard deviation of every weight.
        decay_fraction: the share of the training steps, at the end, over which the
            learning rate decays to 1% of its value; 0 keeps it constant.
        jit_compile: train with XLA.

    #### References

    [1]: Charles Blundell, Julien Cornebise, Koray Kavukcuoglu and Daan Wierstra.
         Weight Uncertainty in Neural Networks. In _ICML_, 2015.
         https://arxiv.org/abs/1505.05424

    [2]: Diederik P. Kingma, Tim Salimans and Max Welling. Variational Dropout and
         the Local Reparameterization Trick. In _NeurIPS_, 2015.
         https://arxiv.org/abs/1506.02557

    [3]: Yeming Wen, Paul Vicol, Jimmy Ba, Dustin Tran and Roger Grosse. Flipout:
         Efficient Pseudo-Independent Weight Perturbations on Mini-Batches. In
         _ICLR_, 2018. https://arxiv.org/abs/1803.04386
    """

    name = "vi"
    #: The fewest optimizer steps the estimators' `epochs="auto"` gives VI: enough for
    #: posterior scales to grow from `posterior_scale_init` to the optimum on small data.
    MIN_AUTO_STEPS = 10_000
    #: The learning rate at the last step, as a fraction of its constant value.
    DECAY_FLOOR = 0.01

    def __init__(self, estimator: str = "local_reparameterization",
                 posterior_scale_init: float = 1e-3, decay_fraction: float = 0.3,
                 jit_compile: bool = True):
        self.estimator = check_option("estimator", estimator, models.VARIATIONAL_LAYERS)
        self.posterior_scale_init = check_positive("posterior_scale_init", posterior_scale_init)
        self.decay_fraction = check_number("decay_fraction", decay_fraction, 0.0, 1.0,
                                           include_low=True, include_high=True)
        self.jit_compile = bool(jit_compile)

    def get_config(self):
        return {
            "estimator": self.estimator,
            "posterior_scale_init": self.posterior_scale_init,
            "decay_fraction": self.decay_fraction,
            "jit_compile": self.jit_compile,
        }

    def fit(self, x, y, likelihood, settings: FitSettings):
        decayed = self.decaying(settings, x)
        history = super().fit(x, y, likelihood, decayed)
        if decayed is not settings:
            # A later partial_fit trains at the constant rate, with a fresh Adam state:
            # the scheduled optimizer's state is not that optimizer's.
            self.optimizer_state = None
        return history

    def decaying(self, settings: FitSettings, x) -> FitSettings:
        """`settings` with the learning rate decaying over the last `decay_fraction` of
        the run's steps (in memory or a `Stream`), for the default optimizer; else as given."""
        if settings.optimizer is not None or not self.decay_fraction:
            return settings
        if isinstance(x, Stream):  # a step per batch of the stream's own
            steps = settings.epochs * x.batch_count()
        else:
            n_rows = len(x) - int(round(settings.validation_fraction * len(x)))
            steps = settings.epochs * steps_per_epoch(n_rows, settings.batch_size)
        optimizer = optimizers.decaying_at_end(None, settings.learning_rate,
                                               max(steps, 1), self.decay_fraction,
                                               self.DECAY_FLOOR)
        return dataclasses.replace(settings, optimizer=optimizer)

    def build_network(self, input_shape, n_targets, likelihood, settings: FitSettings,
                      n_train: int):
        if settings.network is not None:
            network = models.network(input_shape, n_targets, likelihood, settings,
                                     seed=settings.seed, name="vi_network")
            return bayesianize(network, estimator=self.layer_estimators(), prior=settings.prior,
                               kl_weight=1.0 / n_train,
                               posterior_scale_init=self.posterior_scale_init,
                               seed=settings.seed)
        return models.bayesian_mlp(
            models.mlp_width(input_shape),
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

    def layer_estimators(self) -> dict[str, str]:
        """The estimator of each convertible Keras layer class: `estimator` where the
        class has it, else flipout (local reparameterization is for dense layers)."""
        return {cls.__name__: self.estimator if self.estimator in row else "flipout"
                for cls, row in CONVERSIONS.items()}
