"""A vectorised deep ensemble against sequential training, side by side in one run.

On UCI boston split 0 with the protocol network (one hidden layer of 50 ReLU
units, learned homoscedastic Gaussian noise, batch 32, 400 epochs, Adam 1e-3),
times

* one member: `tfbnn.training.train` of a single network;
* M sequential members: M such trainings one after the other;
* M vectorised members: `train([...M networks...])`, one compiled program;

each cold (the first fit of its shapes pays tracing and XLA compilation) and warm
(a second fit of the same shapes), and prints the ratios. Then fits
`BayesianRegressor(inference="ensemble")` and reports its test RMSE and test
log-likelihood per point in the target's units.

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
from tfbnn.inference.ensemble import SEED_STRIDE, network  # noqa: E402
from tfbnn.training import train  # noqa: E402

EPOCHS, BATCH, UNITS, LR = 400, 32, 50, 1e-3


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--split", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    m = args.members

    data = load_uci("boston", args.data_dir)
    x_tr, y_tr, x_te, y_te = data.split(args.split)
    mx, sx = x_tr.mean(0), x_tr.std(0)
    sx[sx == 0] = 1
    xs = ((x_tr - mx) / sx).astype("float32")
    ys = ((y_tr - y_tr.mean()) / y_tr.std()).astype("float32")[:, None]
    likelihood = likelihoods.Gaussian(trainable=True)
    settings = FitSettings(hidden_units=(UNITS,), epochs=EPOCHS, batch_size=BATCH,
                           learning_rate=LR)

    def nets(first_seed, n):
        return [network(xs.shape[1], 1, likelihood, settings, seed=first_seed + SEED_STRIDE * i,
                        name="member") for i in range(n)]

    def fit(models, seed):
        train(models, likelihood, xs, ys, epochs=EPOCHS, batch_size=BATCH, learning_rate=LR,
              seed=seed, verbose=0)

    times = {}
    times["one member, cold"] = _timed(lambda: fit(nets(0, 1)[0], 0))
    times["one member, warm"] = _timed(lambda: fit(nets(1, 1)[0], 1))
    times[f"{m} sequential, warm"] = _timed(
        lambda: [fit(net, 10 + i) for i, net in enumerate(nets(2, m))])
    times[f"{m} vectorised, cold"] = _timed(lambda: fit(nets(3, m), 3))
    times[f"{m} vectorised, warm"] = _timed(lambda: fit(nets(4, m), 4))

    print(f"boston split {args.split}: {len(x_tr)} training rows, {EPOCHS} epochs, batch {BATCH}, "
          f"{UNITS} ReLU units, M={m}")
    for name, seconds in times.items():
        print(f"  {name:<24s} {seconds:7.2f} s")
    one_warm, one_cold = times["one member, warm"], times["one member, cold"]
    print(f"  vectorised / one member:  cold {times[f'{m} vectorised, cold'] / one_cold:.2f}x, "
          f"warm {times[f'{m} vectorised, warm'] / one_warm:.2f}x")
    print(f"  sequential / vectorised (warm): "
          f"{times[f'{m} sequential, warm'] / times[f'{m} vectorised, warm']:.2f}x")

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
