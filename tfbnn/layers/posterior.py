"""What every tfbnn variational layer shares: mean-field posteriors, the prior, the KL loss.

A `VariationalLayer` holds, for each of its weight tensors `name` (a kernel, a
bias, a recurrent kernel), a posterior `Normal(name_loc, softplus(name_rho))`,
and adds `kl_weight * KL[q || prior]` as a layer loss on every call. Subclasses
(dense, convolutional, recurrent) decide only how sampled weights meet the inputs.

`name_loc` has exactly the shape and layout of the Keras layer's `name` weight,
so trained weights of a `keras.layers.Dense`, `Conv2D` or `LSTM` can be copied
into the posterior means (`tfbnn.bayesianize`). With `prior_centered=True` the
prior is shifted to a per-weight centre `name_prior_loc` (a non-trainable
variable, zero until set): MOPED's prior centred on the trained weights.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfbnn import priors as priors_lib
from tfbnn.layers.heads import raw_for_scale
from tfbnn.layers.sampling import random_normal
from tfbnn.validation import check_non_negative, check_number

tfd = tfp.distributions


class VariationalLayer(keras.layers.Layer):
    """Base class of tfbnn's mean-field Gaussian variational layers.

    Args:
        prior: a `tfbnn.priors.Prior`, a registered prior name, or None for Normal(0, 1).
        kl_weight: factor on the KL layer loss; set it to `1 / n_train`. Held in a
            non-trainable float32 variable, so changing it (`set_kl_weight`, or
            assigning `layer.kl_weight`) takes effect at the next training step.
        posterior_scale_init: initial posterior standard deviation of every weight.
        prior_centered: centre the prior of each weight on a per-weight value
            (`layer.set_prior_loc`) instead of the prior's own location.
        seed: an int seed for the layer's weight noise (reproducible sampling).
    """

    def __init__(self, prior=None, kl_weight: float = 1.0, posterior_scale_init: float = 1e-3,
                 prior_centered: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        posterior_scale_init = check_number("posterior_scale_init", posterior_scale_init, 0, 1e3)
        self.prior = priors_lib.get(prior)
        self.kl_weight_variable = None
        self.kl_weight = kl_weight
        self.posterior_scale_init = float(posterior_scale_init)
        self.prior_centered = bool(prior_centered)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._kl_tracker = None
        self._posterior_names = []

    # -- the KL weight ------------------------------------------------------------------

    @property
    def kl_weight(self) -> float:
        """The factor on the KL layer loss, as a Python float.

        The number last set (e.g. exactly `1 / n`), unless the variable was changed
        since (loaded weights, a direct assign): then the variable's float32 value.
        """
        if self.kl_weight_variable is None:
            return self._kl_weight_value
        value = float(keras.ops.convert_to_numpy(self.kl_weight_variable))
        return self._kl_weight_value if value == float(np.float32(self._kl_weight_value)) else value

    @kl_weight.setter
    def kl_weight(self, value: float) -> None:
        self._kl_weight_value = check_non_negative("kl_weight", value)
        if self.kl_weight_variable is not None:
            self.kl_weight_variable.assign(self._kl_weight_value)

    def report_kl_to(self, tracker) -> None:
        """Makes every call report its KL term to `tracker` (`tracker.record(layer,
        term, batch_size)`); see `tfbnn.keras_metrics.track_kl`. None stops it."""
        self._kl_tracker = None if tracker is None else weakref.ref(tracker)

    # -- weights ------------------------------------------------------------------------

    def add_posterior(self, name: str, shape, initializer="zeros") -> None:
        """Creates `name_loc` (from `initializer`) and `name_rho` of `shape`, and
        `name_prior_loc` when the prior is centred per weight."""
        rho = keras.initializers.Constant(float(raw_for_scale(self.posterior_scale_init)))
        # Not autocast: under mixed precision the posterior stays float32 and `call`
        # casts only what meets the inputs.
        setattr(self, f"{name}_loc", self.add_weight(
            name=f"{name}_loc", shape=shape, initializer=initializer, autocast=False))
        setattr(self, f"{name}_rho", self.add_weight(
            name=f"{name}_rho", shape=shape, initializer=rho, autocast=False))
        self._posterior_names.append(name)

    def finish_build(self) -> None:
        """Creates the non-trainable variables after every posterior: the prior
        centres (if any), then the KL weight. Call at the end of `build`."""
        if self.prior_centered:
            for name in self._posterior_names:
                setattr(self, f"{name}_prior_loc", self.add_weight(
                    name=f"{name}_prior_loc", shape=getattr(self, f"{name}_loc").shape,
                    initializer="zeros", trainable=False, autocast=False))
        self.kl_weight_variable = self.add_weight(
            name="kl_weight", shape=(), dtype="float32", trainable=False, autocast=False,
            initializer=keras.initializers.Constant(self._kl_weight_value),
        )

    @property
    def posterior_names(self) -> tuple[str, ...]:
        """The weight tensors with a posterior, in creation order (e.g. kernel, bias)."""
        return tuple(self._posterior_names)

    def set_prior_loc(self, name: str, value) -> None:
        """Centres the prior of weight tensor `name` on `value` (needs `prior_centered`)."""
        if not self.prior_centered:
            raise ValueError(f"{self.name}: set_prior_loc needs a layer built with prior_centered=True")
        getattr(self, f"{name}_prior_loc").assign(np.asarray(value, np.float32))

    # -- posteriors ------------------------------------------------------------------

    def posterior_params(self, name: str):
        """`(loc, scale)` of weight tensor `name`'s posterior, float32 tensors."""
        return (getattr(self, f"{name}_loc").value,
                tf.math.softplus(getattr(self, f"{name}_rho").value))

    def posterior(self, name: str) -> tfd.Normal:
        """The variational posterior of weight tensor `name`, elementwise."""
        return tfd.Normal(*self.posterior_params(name))

    def sample_posterior(self, params, leading=()):
        """Draws from `Normal(*params)`, with extra leading axes `leading`."""
        loc, scale = params
        shape = tf.concat([leading, tf.shape(loc)], 0)
        return loc + scale * random_normal(shape, self.seed_generator, loc.dtype)

    def weight_kl(self, name: str, params, sample=None):
        """KL[q || prior] of weight tensor `name` with posterior `params`; `sample` is
        the draw the forward pass used (or None), for priors without a closed form."""
        loc, scale = params
        if self.prior_centered:
            centre = getattr(self, f"{name}_prior_loc").value
            loc = loc - centre
            sample = None if sample is None else sample - centre
        if sample is None and not self.prior.has_closed_form_kl:
            sample = self.sample_posterior((loc, scale))  # seeded, unlike the prior's own draw
        return self.prior.normal_kl(loc, scale, sample)

    def add_kl_loss(self, kl, batch_size) -> None:
        """Adds `kl_weight * kl` as the layer loss and reports it to a KL tracker."""
        # The weight is read here, on every step: never a constant of the traced program.
        term = self.kl_weight_variable * kl
        self.add_loss(term)
        tracker = None if self._kl_tracker is None else self._kl_tracker()
        if tracker is not None:
            tracker.record(self, term, batch_size)

    def get_config(self):
        return {
            **super().get_config(),
            "prior": keras.saving.serialize_keras_object(self.prior),
            "kl_weight": self.kl_weight,
            "posterior_scale_init": self.posterior_scale_init,
            "prior_centered": self.prior_centered,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["prior"] = priors_lib.get(config.get("prior"))
        return cls(**config)


def variational_layers(model) -> list[VariationalLayer]:
    """All tfbnn variational layers inside `model`, nested models included."""
    return [layer for layer in model._flatten_layers() if isinstance(layer, VariationalLayer)]


def set_kl_weight(model, kl_weight: float) -> None:
    """Sets `kl_weight` on every variational layer of `model` (e.g. `1 / n_train`).

    The layers read the weight from a variable on every call, so this takes effect
    at the next training step, also after `compile` and between `model.fit` epochs.
    """
    kl_weight = check_non_negative("kl_weight", kl_weight)
    for layer in variational_layers(model):
        layer.kl_weight = kl_weight
