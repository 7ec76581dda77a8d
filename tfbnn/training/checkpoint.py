"""`TrainingCheckpoint`: resumable training, saved atomically every few epochs.

Keras' `BackupAndRestore` writes its weights and its epoch count as two files,
one after the other, so a process killed between them resumes from the wrong
epoch, and it forgets the losses of the epochs before the interruption. This
callback writes the weights with the optimizer's moments (what `Model.save_weights`
holds while `train` runs) and the layers' seed-generator states (which it does not),
the epoch and the history so far as one folder, swapped in by
`tfbnn.files.replace_folder`, so a kill at any moment leaves the previous
complete checkpoint or the new one. `train` then starts from the saved epoch with
the saved history, and draws the data orders of the skipped epochs first, so the
resumed run ends with the weights and history of an uninterrupted one.

The checkpoint is kept when training ends (a method may train further, e.g.
SWAG after its pre-training, or fail after training): whoever asked for it
removes the folder once the whole fit has succeeded. Only the first `train`
call given the callback is checkpointed, and not if it has an epoch hook; later
calls (SWAG's moment collection) run from their start, as they would
uninterrupted.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from tfbnn.files import recover_folder, replace_folder
from tfbnn.validation import check_int

#: The folder, inside the checkpoint directory, holding the latest checkpoint.
LATEST = "latest"
WEIGHTS_FILE = "state.weights.h5"
META_FILE = "progress.json"
HISTORY_KEYS = ("nll", "kl", "loss", "val_nll")


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves training every `every` epochs (and after the last) into `directory`,
    and resumes from there when training starts.

    Args:
        directory: the checkpoint folder (created when first written).
        every: epochs between checkpoints.
        fingerprint: a string identifying the fit (data and settings); a
            checkpoint of another fit in `directory` is refused, not resumed.
    """

    def __init__(self, directory, every: int = 1, fingerprint: str = ""):
        super().__init__()
        self.directory = Path(directory)
        self.every = check_int("checkpoint_every", every, minimum=1)
        self.fingerprint = str(fingerprint)
        self.history = None
        self.trainings = 0
        self.active = False
        #: The epoch the last `train` call resumed from (0: it started afresh).
        self.resumed_epoch = 0

    def attach(self, history, resumable: bool = True) -> None:
        """Takes the run's `History`, which checkpoints save and a resume fills.

        The callback saves and resumes only in the first `train` call, and only if
        it is `resumable` (a run with an epoch hook, such as SWAG's collection of
        moments, keeps state outside the model)."""
        self.trainings += 1
        self.active = resumable and self.trainings == 1
        self.history = history

    def on_train_begin(self, logs=None):
        self.resumed_epoch = 0
        latest = self.directory / LATEST
        if not self.active or not recover_folder(latest).is_dir():
            return
        meta = json.loads((latest / META_FILE).read_text(encoding="utf-8"))
        if meta.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"The checkpoint in {self.directory} is of another fit (other data or "
                "settings); remove the folder or choose another one to start afresh")
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # else its moments are not loaded
        self.model.load_weights(latest / WEIGHTS_FILE)
        for variable, value in zip(seed_states(self.model), meta["seed_states"], strict=True):
            variable.assign(np.asarray(value, variable.dtype))
        for key in HISTORY_KEYS:
            getattr(self.history, key)[:] = meta["history"][key]
        self.resumed_epoch = int(meta["epoch"])
        self.model._initial_epoch = self.resumed_epoch  # read by Monitor.begin

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if self.active and (done % self.every == 0 or done == self.params.get("epochs")):
            self.save(done)

    def save(self, epoch: int) -> None:
        """Writes the checkpoint after `epoch` epochs (a complete folder or nothing)."""
        meta = {"epoch": epoch, "fingerprint": self.fingerprint,
                "seed_states": [np.asarray(v).tolist() for v in seed_states(self.model)],
                "history": {key: list(getattr(self.history, key)) for key in HISTORY_KEYS}}

        def write(folder: Path):
            self.model.save_weights(folder / WEIGHTS_FILE)
            (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")

        replace_folder(self.directory / LATEST, write)


def seed_states(model) -> list:
    """The model's seed-generator state variables, in a fixed order.

    `save_weights` leaves them out, but the random layers' next draws (and so an
    exact resume) depend on them. They are matched by position: their paths carry
    layer names, which differ between processes."""
    return [v for v in model.non_trainable_variables
            if v.path.endswith("seed_generator_state")]
