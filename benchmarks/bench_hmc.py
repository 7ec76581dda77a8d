"""tfbnn NUTS on a UCI split: wall time, test RMSE and LL, 1 chain against 4.

The protocol network (one hidden layer of 50 ReLU units, full batch), Normal(0, 1)
on every weight and Gamma(3, 1) on the noise precision (standardised units), 500
warm-up steps and 500 draws per chain, MAP initialisation. Prints, per run, the
wall time of `fit`, test RMSE and test log-likelihood per point in the original
units (`predict_distribution(...).log_prob`), and the sampler diagnostics; then
the ratio of the 4-chain to the 1-chain wall time (target: below 2). The chains
run as equal vectorised groups, one per CPU core, side by side (`threads="auto"`;
`--threads 1` runs all chains as one batch, for comparison).

The comparison with NumPyro's NUTS on the same model runs only with `--numpyro
PYTHON`, the interpreter of a separate virtual environment that has `numpyro` and
`jax` (NumPyro is not a tfbnn dependency); otherwise it is reported as skipped.

    TFBNN_UCI_DIR=/work/shared/data/uci .venv/bin/python benchmarks/bench_hmc.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfbnn  # noqa: E402
from tfbnn.data.uci import load_uci  # noqa: E402
from tfbnn.parallel import available_cores  # noqa: E402


def run_tfbnn(data, split, n_chains, args):
    x_tr, y_tr, x_te, y_te = data.split(split)
    model = tfbnn.BayesianRegressor(
        hidden_units=(data.n_hidden,), inference="hmc", prior="normal",
        inference_options={"n_chains": n_chains, "num_warmup": args.warmup,
                           "num_samples": args.samples, "max_tree_depth": args.max_tree_depth,
                           "noise_precision_prior": (3.0, 1.0), "threads": args.threads},
        n_samples=args.predict_draws, random_state=args.seed, verbose=int(args.verbose),
    )
    start = time.perf_counter()
    model.fit(x_tr, y_tr)
    seconds = time.perf_counter() - start
    dist = model.predict_distribution(x_te)
    rmse = float(np.sqrt(np.mean((dist.mean - y_te) ** 2)))
    ll = float(np.mean(dist.log_prob(y_te)))
    return seconds, rmse, ll, model.inference_.diagnostics_


# The same model for NumPyro, run in its own interpreter: standardised data,
# Normal(0, 1) weights, Gamma(3, 1) precision, vectorised chains.
NUMPYRO_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np, jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS, Predictive
    cfg = json.load(open(sys.argv[1]))
    numpyro.set_host_device_count(1)
    d = np.load(cfg["data"])
    x, y, xt = d["x"], d["y"], d["xt"]
    h = cfg["hidden"]
    def model(x, y=None):
        n = x.shape[1]
        w1 = numpyro.sample("w1", dist.Normal(0, 1).expand([n, h]).to_event(2))
        b1 = numpyro.sample("b1", dist.Normal(0, 1).expand([h]).to_event(1))
        w2 = numpyro.sample("w2", dist.Normal(0, 1).expand([h, 1]).to_event(2))
        b2 = numpyro.sample("b2", dist.Normal(0, 1).expand([1]).to_event(1))
        tau = numpyro.sample("tau", dist.Gamma(3.0, 1.0))
        mu = (jax.nn.relu(x @ w1 + b1) @ w2 + b2)[:, 0]
        numpyro.deterministic("mu", mu)
        numpyro.sample("y", dist.Normal(mu, tau ** -0.5), obs=y)
    start = time.perf_counter()
    mcmc = MCMC(NUTS(model, target_accept_prob=0.8, max_tree_depth=cfg["depth"]),
                num_warmup=cfg["warmup"], num_samples=cfg["samples"],
                num_chains=cfg["chains"], chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), x, y)
    s = mcmc.get_samples()
    jax.block_until_ready(s["tau"])
    seconds = time.perf_counter() - start
    pred = Predictive(model, s, return_sites=["mu"])(jax.random.PRNGKey(1), xt)["mu"]
    json.dump({"seconds": seconds, "mu": np.asarray(pred).tolist(),
               "tau": np.asarray(s["tau"]).tolist()}, open(cfg["out"], "w"))
""")


def run_numpyro(python, data, split, n_chains, args):
    x_tr, y_tr, x_te, y_te = data.split(split)
    mx, sx = x_tr.mean(0), x_tr.std(0)
    sx[sx == 0] = 1.0
    my, sy = y_tr.mean(), y_tr.std()
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/d.npz", x=(x_tr - mx) / sx, y=(y_tr - my) / sy, xt=(x_te - mx) / sx)
        cfg = {"data": f"{tmp}/d.npz", "out": f"{tmp}/o.json", "hidden": data.n_hidden,
               "warmup": args.warmup, "samples": args.samples, "chains": n_chains,
               "depth": args.max_tree_depth}
        with open(f"{tmp}/c.json", "w") as f:
            json.dump(cfg, f)
        with open(f"{tmp}/s.py", "w") as f:
            f.write(NUMPYRO_SCRIPT)
        subprocess.run([python, f"{tmp}/s.py", f"{tmp}/c.json"], check=True)
        with open(cfg["out"]) as f:
            out = json.load(f)
    mu = my + sy * np.asarray(out["mu"])  # (S, n_test)
    sigma = sy * np.asarray(out["tau"]) ** -0.5  # (S,)
    rmse = float(np.sqrt(np.mean((mu.mean(0) - y_te) ** 2)))
    log_p = (-0.5 * ((y_te - mu) / sigma[:, None]) ** 2 - np.log(sigma[:, None])
             - 0.5 * np.log(2 * np.pi))
    ll = float(np.mean(np.logaddexp.reduce(log_p, axis=0) - np.log(len(mu))))
    return out["seconds"], rmse, ll


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="boston")
    parser.add_argument("--split", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--max-tree-depth", type=int, default=10)
    parser.add_argument("--chains", default="1,4", help="comma-separated chain counts")
    parser.add_argument("--predict-draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="progress bars while sampling")
    parser.add_argument("--threads", default="auto", type=lambda v: v if v == "auto" else int(v),
                        help="chain groups run side by side (default: auto)")
    parser.add_argument("--numpyro", metavar="PYTHON",
                        help="interpreter of a venv with numpyro and jax (optional)")
    parser.add_argument("--skip-tfbnn", action="store_true",
                        help="run only the NumPyro comparison")
    args = parser.parse_args(argv)
    data = load_uci(args.dataset)
    print(f"{args.dataset} split {args.split}: NUTS, {data.n_hidden} ReLU units, "
          f"{args.warmup} warm-up + {args.samples} draws per chain, max tree depth "
          f"{args.max_tree_depth}, threads={args.threads} ({available_cores()} CPU cores)")
    times = {}
    for n_chains in () if args.skip_tfbnn else (int(c) for c in args.chains.split(",")):
        seconds, rmse, ll, diagnostics = run_tfbnn(data, args.split, n_chains, args)
        times[n_chains] = seconds
        print(f"tfbnn   chains={n_chains}: {seconds:7.1f} s  test RMSE {rmse:.3f}  "
              f"test LL {ll:.3f}")
        keys = ("acceptance_rate", "n_divergences", "step_size", "mean_leapfrogs",
                "warmup_seconds", "sampling_seconds", "rhat_log_lik", "ess_log_lik",
                "rhat_predictive_max", "ess_predictive_min", "rhat_params_max",
                "ess_params_min", "ess_params_median")
        print("        " + ", ".join(f"{k}={diagnostics[k]:.3g}" for k in keys))
    if 1 in times and 4 in times:
        print(f"wall time 4 chains / 1 chain: {times[4] / times[1]:.2f} (target < 2)")
    if args.numpyro:
        for n_chains in (int(c) for c in args.chains.split(",")):
            seconds, rmse, ll = run_numpyro(args.numpyro, data, args.split, n_chains, args)
            times[f"numpyro{n_chains}"] = seconds
            print(f"numpyro chains={n_chains}: {seconds:7.1f} s  test RMSE {rmse:.3f}  "
                  f"test LL {ll:.3f}")
        if "numpyro1" in times and "numpyro4" in times:
            print(f"numpyro wall time 4 chains / 1 chain: "
                  f"{times['numpyro4'] / times['numpyro1']:.2f}")
    else:
        print("numpyro comparison skipped (pass --numpyro PYTHON of a venv with numpyro, jax)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
