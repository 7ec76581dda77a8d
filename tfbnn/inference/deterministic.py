"""What the methods built on several plain (deterministic) networks share: deep
ensembles and (Multi)SWAG initialise M networks apart and save their parameter
vectors beside the network (`tfbnn.functional.map_params` evaluates them)."""

from __future__ import annotations

import numpy as np

from tfbnn.functional import FunctionalModel

#: Initialiser seeds of consecutive networks are this far apart (`mlp` adds the layer index).
SEED_STRIDE = 1000


def member_seeds(seed: int | None, n: int) -> list[int]:
    """Initialiser seeds of `n` independently initialised networks, `SEED_STRIDE` apart
    (drawn at random when `seed` is None)."""
    if seed is None:
        return [int(s) for s in np.random.default_rng().integers(0, 2**20, n) * SEED_STRIDE]
    return [int(seed + SEED_STRIDE * i) for i in range(n)]


def check_params_size(array: np.ndarray, model, file: str) -> None:
    """Refuses saved parameter vectors that do not fit the saved architecture."""
    size = FunctionalModel(model).size
    if array.shape[-1] != size:
        raise ValueError(f"{file} holds vectors of {array.shape[-1]} weights; the model has {size}")
