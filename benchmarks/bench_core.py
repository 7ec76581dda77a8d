"""tfbnn against the textbook TFP route, side by side in one run.

Trains the UCI protocol network (one hidden layer of 50 ReLU units, mean-field
Gaussian weights with a Normal(0, 1) prior, learned homoscedastic Gaussian noise,
batch 32, 400 epochs, KL scaled by 1/N) on boston splits twice:

* tfbnn: `BayesianRegressor` with its defaults (compiled training loop);
* textbook: `tfp.layers.DenseFlipout` in a `tf_keras.Sequential`, `model.fit`.

Prints fit seconds, test RMSE and test log-likelihood per point (original units)
for each, and their ratios. Then times `predict_distribution` with 1000 posterior
draws against a 1000-iteration Python loop of model calls on the same model.

    .venv/bin/python benchmarks/bench_core.py --splits 5

With `--optimizer NAME` (any Keras optimizer name, e.g. "sgd", "rmsprop"), it also
times `tfbnn.train` of the same network on split 0 with that optimizer at
`--learning-rate`, next to the default Adam, and prints one more line.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
import tf_keras  # noqa: E402

import tfbnn  # noqa: E402
from tfbnn import likelihoods, models  # noqa: E402
from tfbnn.data.uci import load_uci  # noqa: E402

tfd = tfp.distributions

EPOCHS, BATCH, UNITS, LR = 400, 32, 50, 1e-3


class _LearnedNoise(tf_keras.layers.Layer):
    """Appends a trainable raw noise scale to the network output (textbook model)."""

    def build(self, input_shape):
        self.raw = self.add_weight("raw_scale", shape=(1,), initializer="zeros")

    def call(self, loc):
        return tf.concat([loc, tf.broadcast_to(self.raw, tf.shape(loc))], axis=-1)


def _gaussian(params):
    return tfd.Normal(params[..., :1], tf.nn.softplus(params[..., 1:]) + 1e-6)


def fit_textbook(x, y, seed):
    """`tfp.layers.DenseFlipout` under tf_keras, as the TFP examples write it."""
    tf_keras.utils.set_random_seed(seed)
    n = len(x)
    kl = lambda q, p, _: tfd.kl_divergence(q, p) / n  # noqa: E731
    model = tf_keras.Sequential([
        tfp.layers.DenseFlipout(UNITS, activation="relu", kernel_divergence_fn=kl),
        tfp.layers.DenseFlipout(1, kernel_divergence_fn=kl),
        _LearnedNoise(),
    ])
    model.compile(tf_keras.optimizers.Adam(LR), loss=lambda yt, p: -_gaussian(p).log_prob(yt))
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    return model, time.perf_counter() - start


def textbook_metrics(model, x_test, y_test, y_mean, y_std, n_samples=100):
    params = np.stack([model(x_test).numpy() for _ in range(n_samples)])
    loc = params[..., 0] * y_std + y_mean
    scale = (tf.nn.softplus(params[..., 1]).numpy() + 1e-6) * y_std
    log_p = tfd.Normal(loc, scale).log_prob(y_test[None, :]).numpy()
    ll = tf.reduce_logsumexp(log_p, axis=0).numpy() - np.log(n_samples)
    rmse = np.sqrt(np.mean((loc.mean(axis=0) - y_test) ** 2))
    return rmse, ll.mean()


def run_split(data, k):
    x_tr, y_tr, x_te, y_te = data.split(k)
    mx, sx = x_tr.mean(0), x_tr.std(0)
    sx[sx == 0] = 1
    my, sy = y_tr.mean(), y_tr.std()
    xs, ys = ((x_tr - mx) / sx).astype("float32"), ((y_tr - my) / sy).astype("float32")[:, None]
    model, t_textbook = fit_textbook(xs, ys, seed=k)
    rmse_t, ll_t = textbook_metrics(model, ((x_te - mx) / sx).astype("float32"), y_te, my, sy)

    ours = tfbnn.BayesianRegressor(hidden_units=(UNITS,), epochs=EPOCHS, batch_size=BATCH,
                                   learning_rate=LR, random_state=k)
    start = time.perf_counter()
    ours.fit(x_tr, y_tr)
    t_ours = time.perf_counter() - start
    dist = ours.predict_distribution(x_te, n_samples=1000)
    rmse_o = np.sqrt(np.mean((dist.mean - y_te) ** 2))
    ll_o = dist.log_prob(y_te).mean()
    return ours, (t_textbook, rmse_t, ll_t), (t_ours, rmse_o, ll_o)


def time_prediction(estimator, x, n=1000):
    """`predict_distribution(x, n)` against n Python-loop calls of the same Keras model."""
    estimator.predict_distribution(x, n_samples=n)  # compile once, as a user's second call
    start = time.perf_counter()
    estimator.predict_distribution(x, n_samples=n)
    t_vec = time.perf_counter() - start
    model = estimator.inference_.model
    xs = ((x - estimator.x_mean_) / estimator.x_scale_).astype("float32")
    start = time.perf_counter()
    params = np.stack([model(xs, training=False).numpy() for _ in range(n)])
    _ = tfbnn.Predictive(estimator.likelihood_, params, shift=estimator.y_shift_,
                         scale=estimator.y_scale_, squeeze=True).mean
    t_loop = time.perf_counter() - start
    return t_vec, t_loop


def time_optimizer(data, optimizer, learning_rate):
    """Warm `tfbnn.train` seconds of the protocol network on split 0: `optimizer` and Adam."""
    x_tr, y_tr, _, _ = data.split(0)
    xs = ((x_tr - x_tr.mean(0)) / np.where(x_tr.std(0) == 0, 1, x_tr.std(0))).astype("float32")
    ys = ((y_tr - y_tr.mean()) / y_tr.std()).astype("float32")[:, None]
    likelihood = likelihoods.Gaussian(trainable=True)
    seconds = {}
    for name, rate in ((optimizer, learning_rate), ("adam", LR)):
        for _ in range(2):  # the first call compiles; time the second
            model = models.bayesian_mlp(xs.shape[1], likelihood, hidden_units=(UNITS,),
                                        kl_weight=1 / len(xs), seed=0)
            start = time.perf_counter()
            tfbnn.train(model, likelihood, xs, ys, epochs=EPOCHS, batch_size=BATCH,
                        optimizer=name, learning_rate=rate, seed=0, verbose=0)
            seconds[name] = time.perf_counter() - start
    return seconds[optimizer], seconds["adam"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=5, help="boston splits to run (>= 5)")
    parser.add_argument("--data-dir", default=None, help="UCI folder (default: $TFBNN_UCI_DIR)")
    parser.add_argument("--optimizer", default=None,
                        help="also time tfbnn.train with this Keras optimizer (e.g. sgd)")
    parser.add_argument("--learning-rate", type=float, default=LR,
                        help="the --optimizer's learning rate")
    args = parser.parse_args(argv)
    data = load_uci("boston", args.data_dir)
    print(f"boston, {args.splits} splits, {EPOCHS} epochs, batch {BATCH}, {UNITS} ReLU units; "
          f"TF {tf.__version__}, TFP {tfp.__version__}, {os.cpu_count()} CPUs")
    print(f"{'split':>5} | {'textbook s':>10} {'RMSE':>6} {'LL':>7} | {'tfbnn s':>8} {'RMSE':>6} "
          f"{'LL':>7} | {'speed-up':>8}")
    rows = []
    for k in range(args.splits):
        estimator, (tt, rt, lt), (to, ro, lo) = run_split(data, k)
        rows.append((tt, rt, lt, to, ro, lo))
        print(f"{k:>5} | {tt:>10.2f} {rt:>6.2f} {lt:>7.3f} | {to:>8.2f} {ro:>6.2f} {lo:>7.3f} | "
              f"{tt / to:>7.1f}x")
    r = np.array(rows)
    m = r.mean(axis=0)
    print(f"{'mean':>5} | {m[0]:>10.2f} {m[1]:>6.2f} {m[2]:>7.3f} | {m[3]:>8.2f} {m[4]:>6.2f} "
          f"{m[5]:>7.3f} | {m[0] / m[3]:>7.1f}x")
    print(f"fit speed-up (mean textbook s / mean tfbnn s, first split includes XLA compile): "
          f"{m[0] / m[3]:.1f}x; after the first split: {r[1:, 0].mean() / r[1:, 3].mean():.1f}x")
    print(f"test LL: tfbnn {m[5]:.3f} vs textbook {m[2]:.3f} "
          f"({'no worse' if m[5] >= m[2] else 'WORSE'}); RMSE {m[4]:.2f} vs {m[1]:.2f}")
    _, _, x_te, _ = data.split(0)
    t_vec, t_loop = time_prediction(estimator, x_te)
    print(f"predict_distribution, 1000 draws at {len(x_te)} inputs: {t_vec:.3f} s vectorised vs "
          f"{t_loop:.3f} s Python loop of model calls: {t_loop / t_vec:.1f}x")
    if args.optimizer is not None:
        t_opt, t_adam = time_optimizer(data, args.optimizer, args.learning_rate)
        print(f"tfbnn.train on split 0, optimizer={args.optimizer!r} (learning rate "
              f"{args.learning_rate:g}): {t_opt:.2f} s vs Adam {t_adam:.2f} s")


if __name__ == "__main__":
    main()
