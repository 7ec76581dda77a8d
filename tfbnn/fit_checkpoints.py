"""Resumable estimator fits: `fit(X, y, checkpoint_dir=..., checkpoint_every=N)`.

The estimators hand a `tfbnn.training.checkpoint.TrainingCheckpoint` to their
inference method through `FitSettings.checkpoint`. It is tied to one fit by a
fingerprint of the standardised data and the estimator's parameters, so the same
call again (after a crash or a kill) resumes, and a call on other data or with
other settings refuses the folder instead of mixing two fits. A successful fit
removes its checkpoint. Checkpoints are written every `checkpoint_every` epochs
atomically: a kill leaves the last complete one.

Given a `random_state`, the resumed fit ends with the weights and `history_` of
an uninterrupted one. It works for the methods in
`tfbnn.inference.base.RESUMABLE` ("vi", "mc_dropout", "swag": its pre-training
with `n_models=1`, "laplace": its MAP network), without `patience`. The folder is a `fit` argument,
not an estimator parameter, because it belongs to one fit: clones (in
cross-validation) must not share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

from tfbnn.inference.base import FitSettings, Inference, check_resumable
from tfbnn.training.checkpoint import LATEST, TrainingCheckpoint
from tfbnn.validation import check_int


def with_checkpoint(settings: FitSettings, method: Inference, params: dict, checkpoint_dir,
                    checkpoint_every, arrays) -> FitSettings:
    """`settings` with a checkpoint in `checkpoint_dir` (unchanged when it is None).

    Args:
        settings: the fit's settings.
        method: the inference method (some cannot resume).
        params: the estimator's `get_params()`.
        checkpoint_dir: None, or the folder to checkpoint in.
        checkpoint_every: epochs between checkpoints.
        arrays: the arrays the method trains on (part of the fingerprint).
    """
    if checkpoint_dir is None:
        return settings
    every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    check_resumable(method)
    if settings.patience is not None:
        raise ValueError("patience (early stopping) cannot be combined with checkpoints: "
                         "the best weights it keeps are not checkpointed")
    callback = TrainingCheckpoint(Path(checkpoint_dir), every, fingerprint(params, arrays))
    return dataclasses.replace(settings, checkpoint=callback)


def fingerprint(params: dict, arrays) -> str:
    """A digest of the data and the settings, the same in every process."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in params.items() if k != "verbose"}
    digest.update(json.dumps(settings, sort_keys=True, default=_describe).encode())
    for array in arrays:
        digest.update(repr((array.shape, str(array.dtype))).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _describe(value):
    """A process-independent description of a parameter JSON cannot write itself."""
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    if hasattr(value, "get_config"):
        return [type(value).__name__, value.get_config()]
    return repr(value)


def remove_checkpoint(checkpoint_dir) -> None:
    """Removes a finished fit's checkpoint (and `checkpoint_dir` if nothing else is in it)."""
    if checkpoint_dir is None:
        return
    folder = Path(checkpoint_dir)
    shutil.rmtree(folder / LATEST, ignore_errors=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
