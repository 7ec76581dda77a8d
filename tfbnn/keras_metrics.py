"""The two terms of the negative ELBO as Keras metrics, for `model.fit`'s logs.

    model.compile(optimizer, loss=tfbnn.likelihoods.NegativeLogLikelihood(likelihood),
                  metrics=[tfbnn.keras_metrics.NegativeLogLikelihood(likelihood)])
    tfbnn.keras_metrics.track_kl(model)
    history = model.fit(x, y, epochs=...)   # history.history: loss, nll, kl

`nll` is the mean negative log-likelihood of the training batches, computed by the
compiled loss itself; `kl` is the KL term the variational layers added to the loss
(`kl_weight * KL`, summed over layers), averaged over the epoch's batches the way
Keras averages `loss`. So for a mean-reduced loss, `loss = nll + kl` epoch by epoch,
and `History`, `CSVLogger` and `TensorBoard` record both (and `val_nll`, `val_kl`
with validation data).

The KL is tracked by the model, not compiled in: Keras 3 compiled metrics see only
`(y_true, y_pred)`, while metrics held by a model are logged with the rest. The
classes register under the Keras package "tfbnn.keras_metrics" (the loss already
owns "tfbnn>NegativeLogLikelihood").
"""

from __future__ import annotations

import weakref

import keras
import tensorflow as tf

from tfbnn import likelihoods
from tfbnn.layers.posterior import variational_layers


@keras.saving.register_keras_serializable(package="tfbnn.keras_metrics")
class NegativeLogLikelihood(keras.metrics.MeanMetricWrapper):
    """Mean negative log-likelihood of `y_true` under the likelihood of `y_pred`.

    The per-example values are those of `tfbnn.likelihoods.NegativeLogLikelihood`,
    the compiled loss, so the metric is the loss's NLL part.

    Args:
        likelihood: a `tfbnn.likelihoods.Likelihood` or a registered name.
        name: the key in the logs.
    """

    def __init__(self, likelihood, name: str = "nll", dtype=None):
        self.nll_loss = likelihoods.NegativeLogLikelihood(likelihood)
        super().__init__(fn=self.nll_loss.call, name=name, dtype=dtype)

    @property
    def likelihood(self):
        return self.nll_loss.likelihood

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype,
                "likelihood": keras.saving.serialize_keras_object(self.likelihood)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["likelihood"] = likelihoods.get(config["likelihood"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfbnn.keras_metrics")
class KLTracker(keras.metrics.Metric):
    """The KL term of the loss, summed over a model's variational layers, per example.

    Every layer reports `kl_weight * KL` on each call (`record`); one of them, the
    first, also counts the batch. The result is the batch-size-weighted mean of the
    per-step sums: how Keras averages the loss over an epoch. Attach it with
    `track_kl`.
    """

    def __init__(self, name: str = "kl", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")
        self.counting_layer = None

    def record(self, layer, term, batch_size) -> None:
        """Adds one layer's KL term of a batch of `batch_size` rows."""
        batch_size = tf.cast(batch_size, self.dtype)
        self.total.assign_add(tf.cast(term, self.dtype) * batch_size)
        if self.counting_layer is not None and self.counting_layer() is layer:
            self.count.assign_add(batch_size)

    def update_state(self, term, batch_size=1):
        """Adds a whole step's KL term (all layers') for `batch_size` rows."""
        batch_size = tf.cast(batch_size, self.dtype)
        self.total.assign_add(tf.cast(term, self.dtype) * batch_size)
        self.count.assign_add(batch_size)

    def result(self):
        return tf.math.divide_no_nan(self.total, self.count)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def track_kl(model, name: str = "kl") -> KLTracker:
    """Logs the KL term of `model`'s loss as the metric `name` under `model.fit`.

    Attaches one `KLTracker` to the model (`model.kl_tracker`), fed by all its
    variational layers; calling it again returns the same tracker. Call it before
    `compile`/`fit` (it also drops already-traced train and test functions, so
    the next `fit` retraces with the tracker in place). A loaded model has no
    tracker: call it again after `keras.saving.load_model`.

    Raises:
        ValueError: the model has no tfbnn variational layer.
    """
    layers = variational_layers(model)
    if not layers:
        raise ValueError(f"{model.name} has no tfbnn variational layers: no KL term to track")
    tracker = getattr(model, "kl_tracker", None)
    if not isinstance(tracker, KLTracker):
        tracker = KLTracker(name=name)
        model.kl_tracker = tracker
    tracker.counting_layer = weakref.ref(layers[0])
    for layer in layers:
        layer.report_kl_to(tracker)
    model.train_function = model.test_function = None
    return tracker
