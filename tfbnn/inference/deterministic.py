"""What the methods built on several plain (deterministic) networks share: deep
ensembles and (Multi)SWAG initialise M networks apart, evaluate many parameter
vectors of one architecture at once, and save those vectors beside the network."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfbnn import compiled
from tfbnn.functional import FunctionalModel, architecture_key

#: Initialiser seeds of consecutive networks are this far apart (`mlp` adds the layer index).
SEED_STRIDE = 1000


def member_seeds(seed: int | None, n: int) -> list[int]:
    """Initialiser seeds of `n` independently initialised networks, `SEED_STRIDE` apart
    (drawn at random when `seed` is None)."""
    if seed is None:
        return [int(s) for s in np.random.default_rng().integers(0, 2**20, n) * SEED_STRIDE]
    return [int(seed + SEED_STRIDE * i) for i in range(n)]


class ParamsMap:
    """`(M, P)` parameter vectors and inputs -> `(M, B, k)` outputs of `model`.

    The compiled function (`FunctionalModel.map`) is cached per architecture, so the
    next model of the same architecture reuses it.
    """

    def __init__(self, model):
        self.functional = FunctionalModel(model)
        self._map = compiled.cached(("params_map", architecture_key(model)),
                                    lambda: tf.function(self.functional.map,
                                                        reduce_retracing=True))

    def __call__(self, thetas, x) -> tf.Tensor:
        return self._map(tf.constant(thetas, tf.float32), tf.convert_to_tensor(x, tf.float32))


def check_params_size(array: np.ndarray, model, file: str) -> None:
    """Refuses saved parameter vectors that do not fit the saved architecture."""
    size = FunctionalModel(model).size
    if array.shape[-1] != size:
        raise ValueError(f"{file} holds vectors of {array.shape[-1]} weights; the model has {size}")
