"""`DeepEnsemble`: an ensemble of your own Keras architecture, trained by `tfbnn.train`.

Members built by one `build_fn` with the same architecture are trained together by
one vectorised program (`tfbnn.train` with a list of models); members of different
architectures are trained one after another. The predictive is the equal mixture
of the members, formed exactly as `tfbnn.inference.ensemble.DeepEnsemble` forms it
(`tfbnn.functional.map_params` over the members' parameter vectors).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfbnn import models
from tfbnn.functional import FunctionalModel, architecture_key
from tfbnn.inference.deterministic import SEED_STRIDE
from tfbnn.inference.ensemble import DeepEnsemble as EnsembleInference
from tfbnn.inference.laplace.rows import Rows, as_targets
from tfbnn.posthoc.outputs import check_output_width, output_width, resolve_likelihood
from tfbnn.posthoc.saving import POSTHOC, load_model, save
from tfbnn.predictive import Predictive
from tfbnn.training import train
from tfbnn.validation import check_int


def with_heads(model, likelihood, n_targets: int) -> keras.Model:
    """`model` followed by the likelihood's heads (e.g. a `LearnedScale`) when it emits
    only the network outputs; a ValueError when its width fits neither."""
    width = output_width(model)
    heads = likelihood.output_layers(n_targets)
    if heads and width == likelihood.n_network_outputs(n_targets):
        model = models.with_heads(model, heads, f"{model.name}_with_heads",
                                  tuple(model.inputs[0].shape[1:]))
        width = output_width(model)
    if check_output_width(likelihood, width) != n_targets:
        raise ValueError(f"The members emit the parameters of {likelihood.n_targets(width)} "
                         f"target dimension(s) of {likelihood!r}; y has {n_targets}")
    return model


@POSTHOC.register("DeepEnsemble")
class DeepEnsemble:
    """Deep ensemble of a Keras architecture (Lakshminarayanan et al., 2017).

    Args:
        build_fn: called with no arguments, returns a new built Keras model emitting the
            likelihood's parameters (or only the network outputs: the likelihood's heads,
            e.g. a `tfbnn.layers.LearnedScale`, are then appended). Its initialisers
            must draw at random (no fixed seed), so that members differ.
        n_members: the number of members M.
        likelihood: "gaussian" (default: a learned noise scale), "heteroscedastic"
            (the paper's), "categorical", "bernoulli", "poisson", or a
            `tfbnn.likelihoods.Likelihood`. Replaced by the resolved object on `fit`.
        seed: with a seed, member `i` is built after
            `keras.utils.set_random_seed(seed + 1000 i)` (this sets Python's, NumPy's
            and TensorFlow's global seeds) and the data orders are seeded.

    Attributes (after `fit`): `members_` (the trained Keras models), `history_`.

    #### References

    Lakshminarayanan, B., Pritzel, A. & Blundell, C. (2017). Simple and scalable
    predictive uncertainty estimation using deep ensembles. *NeurIPS*.
    """

    def __init__(self, build_fn, n_members: int = 5, likelihood="gaussian", *, seed=None):
        if build_fn is not None and (not callable(build_fn) or isinstance(build_fn, keras.Model)):
            raise TypeError(f"build_fn must be a callable returning a new Keras model, got "
                            f"{type(build_fn).__name__}")
        self.build_fn = build_fn
        self.n_members = check_int("n_members", n_members, minimum=1)
        self.likelihood = likelihood
        self.seed = None if seed is None else check_int("seed", seed)

    def get_config(self) -> dict:
        return {"n_members": self.n_members, "seed": self.seed}

    def _build(self, index: int) -> keras.Model:
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed + SEED_STRIDE * index)
        model = self.build_fn()
        if not isinstance(model, keras.Model):
            raise TypeError(f"build_fn must return a Keras model, got {type(model).__name__}")
        return model

    def _members(self, n_targets: int) -> list:
        members = [self._build(i) for i in range(self.n_members)]
        width = output_width(members[0])
        self.likelihood = resolve_likelihood(self.likelihood, width, members[0].layers[-1:])
        members = [with_heads(m, self.likelihood, n_targets) for m in members]
        thetas = [FunctionalModel(m).get_params().numpy() for m in members]
        if len(members) > 1 and all(t.shape == thetas[0].shape and np.array_equal(t, thetas[0])
                                    for t in thetas[1:]):
            raise ValueError("build_fn returned members with the same initial weights: let its "
                             "initialisers draw at random (no fixed seed)")
        return members

    def fit(self, x, y=None, *, epochs: int = 100, batch_size: int = 32, learning_rate=None,
            optimizer=None, validation_data=None, patience=None, adversarial_epsilon=None,
            callbacks=None, verbose: int = 0, jit_compile: bool = True,
            threads="auto") -> DeepEnsemble:
        """Builds and trains the members on `(x, y)`; returns `self`.

        `x, y` are arrays, or `x` a `tf.data.Dataset` of `(x, y)` batches, which is read
        once into memory (`tfbnn.train` trains from memory). The other arguments are
        `tfbnn.train`'s; `adversarial_epsilon` (e.g. 0.01 times each input feature's
        range) adds the paper's fast-gradient-sign training.
        """
        if self.build_fn is None:
            raise ValueError("This DeepEnsemble has no build_fn (it was loaded); give one to fit")
        x, y = Rows(x, y).arrays()
        members = self._members(as_targets(y).shape[1])
        options = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                       optimizer=optimizer, validation_data=validation_data, patience=patience,
                       adversarial_epsilon=adversarial_epsilon, callbacks=callbacks,
                       verbose=verbose, jit_compile=jit_compile)
        if len({architecture_key(m) for m in members}) == 1:
            history = train(members, self.likelihood, x, y, seed=self.seed, threads=threads,
                            **options).as_dict()
        else:  # one after another
            history = [train(m, self.likelihood, x, y, **options,
                             seed=None if self.seed is None else self.seed + i).as_dict()
                       for i, m in enumerate(members)]
        self.members_, self.history_ = members, history
        return self

    def _groups(self) -> list:
        """The members as `tfbnn.inference.ensemble.DeepEnsemble`s: one of all of them if
        they share an architecture, else one per member."""
        if not hasattr(self, "members_"):
            raise ValueError("This DeepEnsemble is not fitted yet; call fit(x, y) first")
        members = self.members_
        same = len({architecture_key(m) for m in members}) == 1
        groups = []
        for group in ([members] if same else [[m] for m in members]):
            inference = EnsembleInference(n_members=len(group))
            inference.model, inference.likelihood = group[0], self.likelihood
            inference.thetas_ = np.stack([FunctionalModel(m).get_params().numpy() for m in group])
            groups.append(inference)
        return groups

    def sample_params(self, x) -> tf.Tensor:
        """`(M, B, k)`: every member's outputs at inputs `x`."""
        x = np.asarray(x, np.float32)
        return tf.concat([g.sample_params(x, g.n_members) for g in self._groups()], axis=0)

    def predictive(self, x) -> Predictive:
        """The equal mixture of the members' predictive distributions at `x`."""
        return Predictive(self.likelihood, self.sample_params(x))

    # -- persistence ----------------------------------------------------------------------

    def save(self, path) -> None:
        """Saves the members and settings to the folder `path` (`tfbnn.posthoc.load`)."""
        self._groups()  # refuses an unfitted ensemble
        save(self, path)

    def write_files(self, folder) -> None:
        for i, member in enumerate(self.members_):
            member.save(folder / f"member_{i}.keras")

    @classmethod
    def from_folder(cls, folder, config: dict, likelihood) -> DeepEnsemble:
        ensemble = cls(None, likelihood=likelihood, **config)
        ensemble.members_ = [load_model(folder / f"member_{i}.keras")
                             for i in range(ensemble.n_members)]
        return ensemble
