"""A vectorised deep ensemble against one member and sequential training, side by side.

On UCI boston split 0 with the protocol network (one hidden layer of 50 ReLU
units, batch 32, 400 epochs, Adam 1e-3), for two settings of each member:

* plain: learned homoscedastic Gaussian noise, maximum likelihood;
* default (`DeepEnsemble`'s): heteroscedastic Gaussian, adversarial training
  with epsilon = 0.01 of each feature's range;

times `tfbnn.training.train` of

* one member (a single network);
* M members one after the other (warm only);
* M members as one vectorised program on one thread (`threads=1`);
* M members as equal groups side by side, one per CPU core (`threads="auto"`,
  what `DeepEnsemble` does);

each cold (the first fit of its shapes: tracing and XLA compilation, after a
warm-up fit of another architecture has paid TensorFlow's start-up) and warm (a
fit of the same shapes again: the median of `--repeats`). Prints the ratios to
one member, then fits `BayesianRegressor(inference="ensemble")` and reports its
test RMSE and test log-likelihood per point in the target's units.

    TFBNN_UCI_DIR=/work/shared/data/uci .venv/bin/python benchmarks/bench_ensemble.py
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfbnn  # noqa: E402
from tfbnn import likelihoods  # noqa: E402
from tfbnn.data.uci import load_uci  # noqa: E402
from tfbnn.inference import FitSettings  # noqa: E402
from tfbnn.inference.deterministic import SEED_STRIDE  # noqa: E402
from tfbnn.models import network  # noqa: E402
from tfbnn.parallel import available_cores  # noqa: E402
from tfbnn.training import train  # noqa: E402

EPOCHS, BATCH, UNITS, LR = 400, 32, 50, 1e-3


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_setting(xs, ys, likelihood, epsilon, m, repeats, units=UNITS):
    """Cold and warm wall times of one member, M sequential and M vectorised."""
    settings = FitSettings(hidden_units=(units,), epochs=EPOCHS, batch_size=BATCH,
                           learning_rate=LR)
    seeds = iter(range(10_000))

    def nets(n):
        first = next(seeds)
        return [network(xs.shape[1], 1, likelihood, settings, seed=first + SEED_STRIDE * i,
                        name="member") for i in range(n)]

    def fit(n, threads="auto"):
        models = nets(n)
        return _timed(lambda: train(models if n > 1 else models[0], likelihood, xs, ys,
                                    epochs=EPOCHS, batch_size=BATCH, learning_rate=LR,
                                    seed=next(seeds), verbose=0, threads=threads,
                                    adversarial_epsilon=epsilon))

    def warm(n, threads="auto"):
        return float(np.median([fit(n, threads) for _ in range(repeats)]))

    times = {
        ("one member", "cold"): fit(1),
        (f"{m} side by side", "cold"): fit(m),
        (f"{m} one thread", "cold"): fit(m, threads=1),
        ("one member", "warm"): warm(1),
        (f"{m} sequential", "warm"): sum(fit(1) for _ in range(m)),
        (f"{m} one thread", "warm"): warm(m, threads=1),
        (f"{m} side by side", "warm"): warm(m),
    }
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--split", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="warm fits per timing (median)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    m = args.members

    data = load_uci("boston", args.data_dir)
    x_tr, y_tr, x_te, y_te = data.split(args.split)
    mx, sx = x_tr.mean(0), x_tr.std(0)
    sx[sx == 0] = 1
    xs = ((x_tr - mx) / sx).astype("float32")
    ys = ((y_tr - y_tr.mean()) / y_tr.std()).astype("float32")[:, None]
    settings = {
        "plain": (likelihoods.Gaussian(trainable=True), None),
        "default": (likelihoods.HeteroscedasticGaussian(), 0.01 * np.ptp(xs, axis=0)),
    }
    # TensorFlow's one-off start-up is paid here, by another architecture.
    time_setting(xs, ys, likelihoods.Gaussian(trainable=True), None, 2, 1, units=7)

    print(f"boston split {args.split}: {len(x_tr)} training rows, {EPOCHS} epochs, batch {BATCH}, "
          f"{UNITS} ReLU units, M={m}, {available_cores()} CPU cores; "
          f"warm = median of {args.repeats}")
    for name, (likelihood, epsilon) in settings.items():
        times = time_setting(xs, ys, likelihood, epsilon, m, args.repeats)
        print(f"{name}:")
        for (what, when), seconds in times.items():
            ratio = seconds / times[("one member", when)]
            print(f"  {what + ', ' + when:<26s} {seconds:7.2f} s  {ratio:5.2f}x one member")
    estimator = tfbnn.BayesianRegressor(
        hidden_units=(UNITS,), inference="ensemble", inference_options={"n_members": m},
        epochs=EPOCHS, batch_size=BATCH, learning_rate=LR, random_state=args.split)
    seconds = _timed(lambda: estimator.fit(x_tr, y_tr))
    dist = estimator.predict_distribution(x_te)
    rmse = float(np.sqrt(np.mean((dist.mean - y_te) ** 2)))
    ll = float(np.mean(dist.log_prob(y_te)))
    print(f"BayesianRegressor(inference='ensemble'): fit {seconds:.2f} s, "
          f"test RMSE {rmse:.3f}, test LL {ll:.3f}")


if __name__ == "__main__":
    main()
