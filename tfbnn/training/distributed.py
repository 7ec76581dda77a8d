"""`train` on several devices or machines: a `tf.distribute` strategy's replicas.

Under a strategy (`tf.distribute.MirroredStrategy` over one host's devices,
`tf.distribute.MultiWorkerMirroredStrategy` across hosts) every replica holds the
whole parameter vector and runs the compiled epochs of `EpochRunner`; only the
minibatches are split:

* every global minibatch (`batch_size` rows, the same data order as on one
  device) is cut into equal slices, one per replica, in replica order: each
  replica gathers its slice's rows (`replica_id_in_sync_group`) from the
  in-memory data every worker holds;
* each replica computes the runner's own loss on its slice, its mean NLL plus the
  layer losses (the KL term), and its gradient; the gradients are averaged over
  replicas (`ReplicaContext.all_reduce`). With equal slices the average is the
  sum of the per-replica NLL sums over the global batch size, plus the KL term
  once: every replica adds the same KL (same parameters, same random state) and
  the average counts it once, still weighted by the layers' `kl_weight`
  (`1 / n_train`, the whole training set's size, not a replica's share);
* every replica applies the same optimizer update to the same parameters, so they
  stay equal, and the result is one device's up to floating-point rounding.

Every replica draws its layers' noise from the same random state: a layer that
draws one weight sample per minibatch (`DenseReparameterization`) sees exactly
one device's draw; per-example noise (flipout, local reparameterization, dropout)
repeats across the replicas' slices, which keeps the gradient unbiased.
Batch-normalisation statistics are those of replica 0's slice.

The replicas' loop runs as a `tf.function` without XLA (`jit_compile` is ignored):
the cross-replica reductions inside it are not XLA-compilable on CPU.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfbnn import compiled, optimizers
from tfbnn.functional import architecture_key
from tfbnn.training.runner import EpochRunner


def resolve_strategy(strategy):
    """`strategy`, else the strategy whose scope `train` was called in, else None
    (one device: TensorFlow's default strategy)."""
    if strategy is None:
        return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"strategy must be a tf.distribute.Strategy (e.g. "
                        f"tf.distribute.MirroredStrategy()), got {strategy!r}")
    return strategy


def check_batch_size(batch_size: int, strategy) -> None:
    """Refuses a global batch the replicas cannot share equally."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"batch_size={batch_size} cannot be split equally between the strategy's "
            f"{replicas} replicas: use a multiple of {replicas} (it is the global batch; "
            "every replica takes batch_size / replicas rows of each)")


class DistributedEpochRunner(EpochRunner):
    """`EpochRunner` whose every step is shared by the replicas of `strategy`
    (module docstring).

    The epochs' loop, data order and optimizer update are the runner's own; only
    the step's loss and gradient run on the replicas (`strategy.run`), each on its
    slice of the minibatch, and are averaged (`strategy.reduce`). Takes
    `EpochRunner`'s arguments; `jit_compile` is ignored.
    """

    def __init__(self, strategy, model, likelihood, batch_size: int, **options):
        super().__init__(model, likelihood, batch_size, **{**options, "jit_compile": False})
        self.strategy = strategy
        self.share = self.batch_size // strategy.num_replicas_in_sync

    def _loss_and_grad(self, theta, state, xb, yb, epsilon):
        """The runner's gradient, NLL and KL on every replica's slice, averaged over
        replicas: the global batch's mean NLL and the KL term once."""
        packed, new_state = self.strategy.run(
            self._replica_loss_and_grad, args=(theta, state, xb, yb, epsilon))
        # One reduction per step (a round trip between workers), of the values packed.
        packed = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, packed, axis=None)
        shapes = (theta.shape, self.record_shape, self.record_shape)
        parts = tf.split(packed, [int(np.prod(shape, dtype=np.int64)) for shape in shapes])
        grad, nll, kl = (tf.reshape(p, shape) for p, shape in zip(parts, shapes))
        new_state = [self.strategy.experimental_local_results(v)[0] for v in new_state]
        return grad, new_state, nll, kl

    def _replica_loss_and_grad(self, theta, state, xb, yb, epsilon):
        """`EpochRunner._loss_and_grad` on this replica's rows of the minibatch: the
        gradient, NLL and KL packed in one vector, and the new state."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        rows = slice(replica * self.share, (replica + 1) * self.share)
        rows = rows if self.n_members is None else (slice(None), rows)  # (M, bs, ...) per member
        grad, new_state, nll, kl = super()._loss_and_grad(
            theta, state, xb[rows], yb[rows], epsilon)
        return tf.concat([tf.reshape(v, [-1]) for v in (grad, nll, kl)], axis=0), new_state


def runner_for(strategy, model, likelihood, batch_size: int, jit_compile: bool = True,
               n_members: int | None = None, adversarial: bool = False,
               optimizer=None) -> DistributedEpochRunner:
    """A cached `DistributedEpochRunner` (as `tfbnn.training.runner.runner_for`), one
    per strategy; `jit_compile` is ignored."""
    del jit_compile  # the replicas' loop runs without XLA
    check_batch_size(int(batch_size), strategy)
    optimizer = optimizers.get(optimizer)
    key = ("distributed_epoch_runner", strategy, architecture_key(model), repr(likelihood),
           int(batch_size), n_members, bool(adversarial), optimizers.program_key(optimizer))
    return compiled.cached(key, lambda: DistributedEpochRunner(
        strategy, model, likelihood, batch_size, n_members=n_members,
        adversarial=adversarial, optimizer=optimizer))
