"""The compiled epochs of a training run: one program per architecture, likelihood,
batch size and optimizer, cached for every model that shares them.

Small Bayesian networks are dominated by per-step overhead, not arithmetic, so a
whole run of epochs (every minibatch step and optimizer update) is one compiled
TensorFlow function (`tf.while_loop`, XLA by default) over the data held as
tensors and the network as one flat parameter vector (`FunctionalModel`).
"""

from __future__ import annotations

import functools

import tensorflow as tf

from tfbnn import compiled, optimizers
from tfbnn.functional import FunctionalModel, architecture_key, map_members


class EpochRunner:
    """The compiled epochs of an architecture, likelihood, batch size and optimizer.

    It works on `FunctionalModel` parameter vectors, so one runner (and its
    compiled code) serves every model of the same architecture; `runner_for`
    caches them. The optimizer is a Keras optimizer run as a pure update of the
    flat parameters (`tfbnn.optimizers.FlatOptimizer`); its state, a constant
    learning rate included, is an input of the program, so one program serves
    every rate and every group of members.

    With `n_members = M`, `theta` is `(M, P)`: M independent networks (an
    ensemble) with their own data order, trained by one vectorised program.

    With `adversarial`, every step also fits the fast-gradient-sign inputs
    `x + epsilon * sign(d loss / d x)` [1], `epsilon` a tensor of one example's
    shape given at run time, as deep ensembles do [2].

    Args:
        model: a built Keras model; its architecture defines the program.
        likelihood: a `tfbnn.likelihoods.Likelihood`.
        batch_size: minibatch size.
        jit_compile: compile with XLA.
        val_samples: weight samples of the validation NLL of a stochastic network.
        n_members: None for one network, or M for M networks side by side.
        adversarial: also fit fast-gradient-sign inputs.
        optimizer: a Keras optimizer, name or None (Adam); its class and
            configuration define the program, its constant learning rate does not.

    #### References

    [1]: Ian Goodfellow, Jonathon Shlens and Christian Szegedy. Explaining and
         Harnessing Adversarial Examples. In _ICLR_, 2015.
         https://arxiv.org/abs/1412.6572

    [2]: Balaji Lakshminarayanan, Alexander Pritzel and Charles Blundell. Simple and
         Scalable Predictive Uncertainty Estimation using Deep Ensembles. In
         _NeurIPS_, 2017. https://arxiv.org/abs/1612.01474
    """

    def __init__(self, model, likelihood, batch_size: int, jit_compile: bool = True,
                 val_samples: int = 20, n_members: int | None = None,
                 adversarial: bool = False, optimizer=None):
        self.functional = FunctionalModel(model)
        self.likelihood = likelihood
        self.batch_size = int(batch_size)
        self.val_samples = int(val_samples)
        self.n_members = n_members
        self.adversarial = adversarial
        #: Shape of the per-epoch NLL and KL records: one per member.
        self.record_shape = () if n_members is None else (n_members,)
        self.optimizer = optimizers.FlatOptimizer(
            optimizer, (*self.record_shape, self.functional.size))
        # No `reduce_retracing` here: the chunk length must stay a static shape (XLA
        # sizes the per-epoch record with it); `train` keeps it fixed per data size.
        # A partial, not the bound method: TensorFlow's retracing warning counts the
        # traces of one code object, so every runner's first trace (each a new program)
        # would add up to "5 out of the last 5 calls triggered retracing".
        self.run_epochs = compiled.function(functools.partial(EpochRunner._epochs, self),
                                            jit_compile=jit_compile)
        self.val_nll = compiled.function(self._val_nll, jit_compile=jit_compile,
                                         reduce_retracing=True)
        # A stream: one graph per epoch reads the batches from the dataset's iterator,
        # and each step is one (XLA-)compiled call; dataset ops cannot be XLA-compiled.
        # (AutoGraph turns its loop over the dataset into a graph loop.)
        self.run_stream = tf.function(functools.partial(EpochRunner._stream_epoch, self))
        self.stream_step = compiled.function(functools.partial(EpochRunner._step, self),
                                             jit_compile=jit_compile, reduce_retracing=True)

    def initial_state(self, optimizer=None) -> list[tf.Tensor]:
        """Fresh optimizer state, with the constant learning rate of `optimizer`."""
        return self.optimizer.initial_state(optimizer)

    def _nll(self, theta, state, xb, yb):
        """Minibatch mean NLL (per member: `(M,)`), layer losses, and the new state."""
        if self.n_members is None:
            params, state, kl = self.functional(theta, state, xb, training=True)
        elif self.functional.is_dense_stack:
            params, kl = self.functional.map(theta, xb), tf.zeros((), theta.dtype)
        else:
            # Their (shared) random state is not advanced.
            params, kl = map_members(
                lambda a: tuple(self.functional(a[0], state, a[1], training=True)[::2]),
                (theta, xb))
        return -tf.reduce_mean(self.likelihood.log_prob(yb, params), axis=-1), kl, state

    def adversarial_inputs(self, theta, state, xb, yb, epsilon):
        """The fast-gradient-sign inputs `xb + epsilon * sign(d nll / d xb)`, constants."""
        with tf.GradientTape() as tape:
            tape.watch(xb)
            nll = tf.reduce_sum(self._nll(theta, state, xb, yb)[0])
        return tf.stop_gradient(xb + epsilon * tf.sign(tape.gradient(nll, xb)))

    def _loss_and_grad(self, theta, state, xb, yb, epsilon):
        if self.adversarial:
            x_adv = self.adversarial_inputs(theta, state, xb, yb, epsilon)
        with tf.GradientTape() as tape:
            tape.watch(theta)
            # Members' losses are separable, so the gradient of their sum is each
            # member's own gradient.
            nll, kl, new_state = self._nll(theta, state, xb, yb)
            loss = nll + kl
            if self.adversarial:
                loss += self._nll(theta, state, x_adv, yb)[0]
            loss = tf.reduce_sum(loss)
        # `vectorized_map` over one member loses the static member axis of the gradient;
        # the loop carries `theta`'s static shape.
        grad = tf.ensure_shape(tape.gradient(loss, theta), theta.shape)
        # Per member (shape `record_shape`): `train` averages them over real members.
        return grad, new_state, nll, tf.broadcast_to(kl, tf.shape(nll))

    def _epochs(self, x, y, theta, opt_state, state, orders, n_epochs, epsilon):
        """`n_epochs` passes over `(x, y)`, in the data orders `orders` (k, [M,] n), k >= n_epochs.

        Returns the new `theta`, optimizer and model states, and the per-epoch mean
        NLL and KL terms, each of shape (k, *record_shape) (zero past `n_epochs`).
        One compiled program serves every `n_epochs <= k`, so a short last chunk
        costs no compile.
        """
        k = orders.shape[0]
        # Every entry defined up front, as XLA wants; one op, not k writes to trace.
        zeros = tf.zeros([k, *self.record_shape], theta.dtype)
        nlls = tf.TensorArray(theta.dtype, size=k).unstack(zeros)
        kls = tf.TensorArray(theta.dtype, size=k).unstack(zeros)

        def body(e, theta, opt_state, state, nlls, kls):
            theta, opt_state, state, nll, kl = self._epoch(
                x, y, theta, opt_state, state, orders[e], epsilon
            )
            return e + 1, theta, opt_state, state, nlls.write(e, nll), kls.write(e, kl)

        _, theta, opt_state, state, nlls, kls = tf.while_loop(
            lambda e, *_: e < n_epochs, body,
            (tf.constant(0), theta, opt_state, state, nlls, kls), maximum_iterations=k,
        )
        return theta, opt_state, state, nlls.stack(), kls.stack()

    def _batches(self, order, n):
        """The minibatch row indices of one epoch: `(steps, bs)`, or `(M, steps, bs)`.

        The permutation is padded by wrapping so that every step has `bs` rows (static
        shapes for XLA); the few repeated rows change from epoch to epoch. Orders come
        from NumPy: XLA's CPU sort is slow on thousands of rows.
        """
        bs = self.batch_size
        steps = (n + bs - 1) // bs
        members = 1 if self.n_members is None else self.n_members
        order = tf.reshape(order, (members, n))
        order = tf.tile(order, [1, 2])[:, : steps * bs]
        batches = tf.reshape(order, (members, steps, bs))
        return steps, batches[0] if self.n_members is None else batches

    def _step(self, theta, opt_state, state, xb, yb, epsilon):
        """One optimizer step on the batch `(xb, yb)` (for an ensemble: `(M, b, ...)`)."""
        grad, state, nll, kl = self._loss_and_grad(theta, state, xb, yb, epsilon)
        theta, opt_state = self.optimizer.apply(opt_state, grad, theta)
        return theta, opt_state, state, nll, kl

    def _stream_epoch(self, dataset, theta, opt_state, state, epsilon):
        """One pass over a dataset of `(x, y)` batches, a step per batch; an ensemble's
        members all take every batch. Returns what `_epochs` does for one epoch."""
        nll_sum = kl_sum = tf.zeros(self.record_shape, theta.dtype)
        steps = tf.constant(0.0, theta.dtype)
        for xb, yb in iter(dataset):
            if self.n_members is not None:
                xb = tf.broadcast_to(xb, [self.n_members, *tf.unstack(tf.shape(xb))])
                yb = tf.broadcast_to(yb, [self.n_members, *tf.unstack(tf.shape(yb))])
            theta, opt_state, state, nll, kl = self.stream_step(
                theta, opt_state, state, xb, yb, epsilon)
            nll_sum, kl_sum, steps = nll_sum + nll, kl_sum + kl, steps + 1.0
        steps = tf.maximum(steps, 1.0)
        return theta, opt_state, state, (nll_sum / steps)[None], (kl_sum / steps)[None]

    def _epoch(self, x, y, theta, opt_state, state, order, epsilon):
        steps, batches = self._batches(order, tf.shape(x)[0])

        def body(i, theta, opt_state, state, nll_sum, kl_sum):
            idx = batches[i] if self.n_members is None else batches[:, i]
            theta, opt_state, state, nll, kl = self._step(
                theta, opt_state, state, tf.gather(x, idx), tf.gather(y, idx), epsilon)
            return i + 1, theta, opt_state, state, nll_sum + nll, kl_sum + kl

        zero = tf.zeros(self.record_shape, theta.dtype)
        _, theta, opt_state, state, nll_sum, kl_sum = tf.while_loop(
            lambda i, *_: i < steps, body, (tf.constant(0), theta, opt_state, state, zero, zero)
        )
        steps_f = tf.cast(steps, theta.dtype)
        return theta, opt_state, state, nll_sum / steps_f, kl_sum / steps_f

    def _val_nll(self, x, y, theta, state):
        """The predictive NLL on `(x, y)` (of the mixture over members or weight
        samples), and each member's (sample's) own mean NLL, `(S,)`, from one pass."""
        if self.n_members is not None:
            params = self.functional.map(theta, x, state)  # the ensemble's mixture
        else:
            params, _ = self.functional.sample(theta, state, x, self.val_samples)
        log_lik = self.likelihood.log_prob(y[tf.newaxis], params)  # (S, B)
        s = tf.cast(tf.shape(params)[0], log_lik.dtype)
        mixture = -tf.reduce_mean(tf.reduce_logsumexp(log_lik, axis=0) - tf.math.log(s))
        return mixture, -tf.reduce_mean(log_lik, axis=-1)


def runner_for(model, likelihood, batch_size: int, jit_compile: bool = True,
               n_members: int | None = None, adversarial: bool = False,
               optimizer=None) -> EpochRunner:
    """A cached `EpochRunner`: models of one architecture share compiled code.

    The key is everything the program depends on; a constant learning rate is not
    part of it (it travels in the optimizer state).
    """
    optimizer = optimizers.get(optimizer)
    key = ("epoch_runner", architecture_key(model), repr(likelihood), int(batch_size),
           bool(jit_compile), n_members, bool(adversarial), optimizers.program_key(optimizer))
    return compiled.cached(key, lambda: EpochRunner(
        model, likelihood, batch_size, jit_compile=jit_compile, n_members=n_members,
        adversarial=adversarial, optimizer=optimizer))
