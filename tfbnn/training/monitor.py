"""What `train` does between compiled calls: history, progress bar, validation,
epoch hook, Keras callbacks and early stopping (per member for an ensemble).

Keras callbacks run at the end of every epoch (the loop then runs one epoch per
compiled call) and see:

* `logs` with `nll`, `kl`, `loss` (`nll + kl`) and, with validation data,
  `val_nll`; for an ensemble these are the means over its members (`val_nll` is
  the NLL of the ensemble's predictive mixture) and every member's own value
  comes as `nll_member_0`, `kl_member_0`, `loss_member_0`, `val_nll_member_0`, ...;
* `model.optimizer`, for the run: a Keras optimizer holding the loop's optimizer
  state (`tfbnn.optimizers.FlatOptimizer.view`). A learning rate a callback sets
  (`LearningRateScheduler`, `ReduceLROnPlateau`) is used from the next epoch;
  `iterations` counts the steps taken; `save_weights` stores the whole state, so
  `BackupAndRestore` (and `tfbnn.training.checkpoint.TrainingCheckpoint`, which
  also restores the history) resumes with the optimizer's moments. The model's own
  `optimizer` attribute, if it had one, is given back afterwards;
* the Keras model with the weights of the epoch just run. Whatever the callbacks
  leave in the model's variables (weights, a KL weight, any non-trainable value)
  is what the next epoch uses.

Callbacks that monitor one of these losses in mode "auto" (`EarlyStopping`,
`ModelCheckpoint`, `ReduceLROnPlateau`) are set to mode "min": Keras infers the
direction only for `loss` and compiled metrics. Batch-level hooks are not called
(an epoch is one compiled call), so saving every few batches (`save_freq=<int>`)
is refused.

An ensemble's callbacks see its first member as `model`; stopping it
(`EarlyStopping` without `restore_best_weights`) stops every member, and a
learning rate set on it applies to every member. Callbacks that would save or
restore that one member as if it were the whole ensemble are refused.
"""

from __future__ import annotations

import keras
import numpy as np

from tfbnn.training.checkpoint import TrainingCheckpoint

LOGGED = ("nll", "kl", "loss", "val_nll")


def minimised(name: str) -> bool:
    """Whether `name` is one of the logged losses (`nll`, `val_nll`, `kl_member_0`, ...)."""
    base = name.removeprefix("val_").partition("_member_")[0]
    return base in ("nll", "kl", "loss")


def check_callbacks(callbacks, ensemble: bool) -> None:
    """Refuses callbacks that cannot work in `train` (see the module docstring), and
    sets callbacks monitoring a logged loss in mode "auto" to mode "min" (Keras finds
    the direction of a name only among compiled metrics)."""
    for callback in callbacks:
        name = type(callback).__name__
        if getattr(callback, "mode", None) == "auto" and minimised(
                str(getattr(callback, "monitor", ""))):
            callback.mode = "min"  # EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
        if getattr(callback, "save_freq", "epoch") != "epoch":
            raise ValueError(
                f"{name}(save_freq={callback.save_freq!r}) is not supported by tfbnn.train: "
                "each epoch runs as one compiled call, so callbacks run at the end of "
                "epochs only; use save_freq='epoch'")
        if not ensemble:
            continue
        if isinstance(callback, keras.callbacks.ModelCheckpoint | keras.callbacks.BackupAndRestore
                      | TrainingCheckpoint):
            raise ValueError(
                f"{name} cannot be used when training an ensemble: callbacks see only its "
                "first member, so it would save or restore that member alone. Save the "
                "members after training instead")
        if isinstance(callback, keras.callbacks.EarlyStopping) and callback.restore_best_weights:
            raise ValueError(
                "EarlyStopping(restore_best_weights=True) would restore only the ensemble's "
                "first member: pass patience= (with validation_data) for per-member early "
                "stopping that keeps each member's best weights, or use "
                "restore_best_weights=False to stop all members together")


class Monitor:
    """Reports and callbacks between compiled calls (see the module docstring).

    Args:
        model: the Keras model callbacks see (an ensemble's first member).
        ensemble: whether an ensemble is trained.
        epochs, steps: epochs of the run and optimizer steps per epoch.
        callbacks, validation_data, patience, epoch_hook, verbose: as `train` takes them.
    """

    def __init__(self, model, ensemble: bool, epochs: int, steps: int, callbacks,
                 validation_data, patience, epoch_hook, verbose):
        self.model, self.ensemble, self.epochs = model, ensemble, epochs
        self.validation_data, self.epoch_hook = validation_data, epoch_hook
        callbacks = list(callbacks or [])
        check_callbacks(callbacks, ensemble)
        stopping = validation_data is not None and patience is not None
        self.checkpoints = [c for c in callbacks if isinstance(c, TrainingCheckpoint)]
        if stopping and self.checkpoints:
            raise ValueError("patience (early stopping) cannot be combined with checkpoints: "
                             "the best weights it keeps are not checkpointed")
        self.member_stopping = MemberEarlyStopping(int(patience)) if stopping and ensemble else None
        if stopping and not ensemble:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_nll", mode="min", patience=int(patience), restore_best_weights=True))
        #: Callbacks, hooks and validation see every epoch; otherwise many epochs per call.
        self.per_epoch = bool(callbacks) or validation_data is not None or epoch_hook is not None
        self.callbacks = keras.callbacks.CallbackList(
            callbacks, model=model, epochs=epochs, steps=steps, verbose=0)
        self.has_callbacks = bool(callbacks)
        self.view = self.previous_optimizer = None
        self.progress = keras.utils.Progbar(
            epochs, verbose=1, unit_name="epoch", stateful_metrics=list(LOGGED)
        ) if verbose else None
        self.history = None

    def begin(self, run, history) -> int:
        """Gives the model the run's optimizer and calls `on_train_begin`; returns the
        epoch to start from (after the last one `BackupAndRestore` saved)."""
        self.history = history
        self.model.stop_training = False
        for checkpoint in self.checkpoints:
            checkpoint.attach(history, resumable=self.epoch_hook is None)
        if not self.has_callbacks:
            self.callbacks.on_train_begin()
            return 0
        self.previous_optimizer = (getattr(self.model, "optimizer", None),
                                   hasattr(self.model, "optimizer"))
        self.view = run.optimizer_view()
        self.model.optimizer = self.view
        self.model._initial_epoch = None  # Keras' BackupAndRestore sets it from its backup
        self.callbacks.on_train_begin()
        first = self.model._initial_epoch or 0
        self.model._initial_epoch = None
        return int(first)

    def on_epoch_begin(self, epoch: int, run):
        """Calls `on_epoch_begin`; the epoch then starts from the model's variables and
        the optimizer state as the callbacks (and a restored backup) left them."""
        self.callbacks.on_epoch_begin(epoch)
        if self.view is not None:
            run.reload()
            run.pull_optimizer(self.view)

    def epoch_logs(self, nlls, kls) -> dict:
        """The last epoch's logs, and its means recorded in the history."""
        logs = {}
        if self.ensemble:
            for name, values in (("nll", nlls), ("kl", kls), ("loss", nlls + kls)):
                logs |= {f"{name}_member_{i}": float(v) for i, v in enumerate(values[-1])}
            nlls, kls = nlls.mean(axis=1), kls.mean(axis=1)
        history = self.history
        history.nll.extend(nlls.tolist())
        history.kl.extend(kls.tolist())
        history.loss.extend((nlls + kls).tolist())
        return {"nll": history.nll[-1], "kl": history.kl[-1], "loss": history.loss[-1], **logs}

    def end_of_epochs(self, first: int, nlls, kls, run) -> bool:
        """Records the epochs just run, reports the last; True to stop training."""
        logs = self.epoch_logs(nlls, kls)
        epoch = first + len(nlls) - 1
        if self.view is not None:
            run.push_optimizer(self.view)
        if self.per_epoch:
            run.sync()  # callbacks read (and may change) the Keras model's variables
        if self.epoch_hook is not None:
            self.epoch_hook(epoch, run.theta)
        if self.validation_data is not None:
            val_nll, member_nll = run.val_nll(*self.validation_data)
            logs["val_nll"] = float(val_nll)
            self.history.val_nll.append(logs["val_nll"])
            if self.ensemble:
                logs |= {f"val_nll_member_{i}": float(v) for i, v in enumerate(member_nll)}
        if self.progress is not None:
            self.progress.update(epoch + 1, values=[(k, logs[k]) for k in LOGGED if k in logs],
                                 finalize=epoch + 1 == self.epochs)
        self.callbacks.on_epoch_end(epoch, logs)
        if self.member_stopping is not None:
            self.model.stop_training = self.member_stopping.update(
                member_nll.numpy(), run.theta.numpy())
        if self.model.stop_training:
            self.history.stopped_epoch = epoch + 1
        return bool(self.model.stop_training)

    def finish(self, run):
        """Leaves the trained (or each member's best) weights in the Keras model(s)."""
        if self.member_stopping is not None:
            run.sync(self.member_stopping.best_theta)
        elif not self.per_epoch:
            run.sync()
        self.callbacks.on_train_end()

    def detach(self):
        """Gives the model back the `optimizer` attribute it had before `begin`."""
        if self.view is None:
            return
        previous, had = self.previous_optimizer
        if had:
            self.model.optimizer = previous
        else:
            del self.model.optimizer
        self.view = None


class MemberEarlyStopping:
    """Early stopping of each ensemble member on its own validation NLL.

    Keeps every member's weights from its best epoch; says stop once every member
    has gone `patience` epochs without improving. Members that have run out of
    patience keep training with the others (one program), but are restored.
    """

    def __init__(self, patience: int):
        self.patience = patience
        self.best = self.wait = self.best_theta = None

    def update(self, member_nll: np.ndarray, theta: np.ndarray) -> bool:
        """Takes one epoch's per-member validation NLL and weights; True to stop."""
        if self.best is None:
            self.best, self.wait = np.full(len(theta), np.inf), np.zeros(len(theta), int)
            self.best_theta = theta.copy()
        improved = member_nll < self.best
        self.best = np.where(improved, member_nll, self.best)
        self.best_theta[improved] = theta[improved]
        self.wait = np.where(improved, 0, self.wait + 1)
        return bool(np.all(self.wait >= self.patience))
