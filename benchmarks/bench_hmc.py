"""tfbnn NUTS against NumPyro's on a UCI split: wall time, step size, tree depth, test LL.

The protocol network (one hidden layer of 50 ReLU units, full batch), Normal(0, 1)
on every weight and Gamma(3, 1) on the noise precision (standardised units), 500
warm-up steps and 500 draws per chain, a diagonal mass matrix, tree depth at most
10. Prints, per run, the wall time of the fit (compilation included), test RMSE
and test log-likelihood per point in the original units, and how the sampler
worked: the adapted step size, the mean tree depth and leapfrog steps per draw,
the acceptance rate. With several chain counts (`--chains 1,4`) it also prints the
ratio of the 4-chain to the 1-chain wall time; tfbnn runs the chains as equal
vectorised groups, one per CPU core, side by side (`threads="auto"`; `--threads 1`
runs all chains as one batch, for comparison).

The comparison with NumPyro's NUTS on the same model runs only with `--numpyro
PYTHON`, the interpreter of a separate virtual environment that has `numpyro` and
`jax` (NumPyro is not a tfbnn dependency); otherwise it is reported as skipped.
Each chain count runs tfbnn and then NumPyro, side by side in time, so that both
see the same machine load; `--repeats` runs the pair again.

    TFBNN_UCI_DIR=/work/shared/data/uci .venv/bin/python benchmarks/bench_hmc.py \\
        --chains 1 --numpyro /path/to/venv-with-numpyro/bin/python
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


def run_tfbnn(data, split, n_chains, args) -> dict:
    x_tr, y_tr, x_te, y_te = data.split(split)
    model = tfbnn.BayesianRegressor(
        hidden_units=(data.n_hidden,), inference="hmc", prior="normal",
        inference_options={"n_chains": n_chains, "num_warmup": args.warmup,
                           "num_samples": args.samples, "max_tree_depth": args.max_tree_depth,
                           "noise_precision_prior": (3.0, 1.0), "threads": args.threads,
                           **({} if args.warmup_tree_depth is None
                              else {"warmup_tree_depth": args.warmup_tree_depth})},
        n_samples=args.predict_draws, random_state=args.seed, verbose=int(args.verbose),
    )
    start = time.perf_counter()
    model.fit(x_tr, y_tr)
    seconds = time.perf_counter() - start
    dist = model.predict_distribution(x_te)
    d = model.inference_.diagnostics_
    return {"seconds": seconds, "rmse": float(np.sqrt(np.mean((dist.mean - y_te) ** 2))),
            "ll": float(np.mean(dist.log_prob(y_te))), "step_size": d["step_size"],
            "tree_depth": d["mean_tree_depth"], "leapfrogs": d["mean_leapfrogs"],
            "accept": d["acceptance_rate"], "divergences": d["n_divergences"], "diagnostics": d}


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
    mcmc.run(jax.random.PRNGKey(cfg["seed"]), x, y,
             extra_fields=("num_steps", "accept_prob", "diverging"))
    s = mcmc.get_samples()
    jax.block_until_ready(s["tau"])
    seconds = time.perf_counter() - start
    extra = mcmc.get_extra_fields()
    steps = np.asarray(extra["num_steps"], np.float64)
    pred = Predictive(model, s, return_sites=["mu"])(jax.random.PRNGKey(1), xt)["mu"]
    json.dump({"seconds": seconds, "mu": np.asarray(pred).tolist(),
               "tau": np.asarray(s["tau"]).tolist(),
               "step_size": float(np.mean(mcmc.last_state.adapt_state.step_size)),
               "leapfrogs": float(steps.mean()),
               "tree_depth": float(np.mean(np.ceil(np.log2(steps + 1)))),
               "accept": float(np.mean(extra["accept_prob"])),
               "divergences": int(np.sum(extra["diverging"]))}, open(cfg["out"], "w"))
""")


def run_numpyro(python, data, split, n_chains, args) -> dict:
    x_tr, y_tr, x_te, y_te = data.split(split)
    mx, sx = x_tr.mean(0), x_tr.std(0)
    sx[sx == 0] = 1.0
    my, sy = y_tr.mean(), y_tr.std()
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/d.npz", x=(x_tr - mx) / sx, y=(y_tr - my) / sy, xt=(x_te - mx) / sx)
        cfg = {"data": f"{tmp}/d.npz", "out": f"{tmp}/o.json", "hidden": data.n_hidden,
               "warmup": args.warmup, "samples": args.samples, "chains": n_chains,
               "depth": args.max_tree_depth, "seed": args.seed}
        with open(f"{tmp}/c.json", "w") as f:
            json.dump(cfg, f)
        with open(f"{tmp}/s.py", "w") as f:
            f.write(NUMPYRO_SCRIPT)
        subprocess.run([python, f"{tmp}/s.py", f"{tmp}/c.json"], check=True)
        with open(cfg["out"]) as f:
            out = json.load(f)
    mu = my + sy * np.asarray(out.pop("mu"))  # (S, n_test)
    sigma = sy * np.asarray(out.pop("tau")) ** -0.5  # (S,)
    log_p = (-0.5 * ((y_te - mu) / sigma[:, None]) ** 2 - np.log(sigma[:, None])
             - 0.5 * np.log(2 * np.pi))
    return {**out, "rmse": float(np.sqrt(np.mean((mu.mean(0) - y_te) ** 2))),
            "ll": float(np.mean(np.logaddexp.reduce(log_p, axis=0) - np.log(len(mu))))}


def report(name, n_chains, run) -> None:
    """One line of wall time and test metrics, one of how the sampler worked."""
    print(f"{name:7s} chains={n_chains}: {run['seconds']:7.1f} s  test RMSE {run['rmse']:.3f}  "
          f"test LL {run['ll']:.3f}")
    print(f"        step size {run['step_size']:.3g}, mean tree depth {run['tree_depth']:.2f}, "
          f"leapfrog steps per draw {run['leapfrogs']:.0f}, accept rate {run['accept']:.3f}, "
          f"divergences {run['divergences']}")


DIAGNOSTICS = ("warmup_seconds", "sampling_seconds", "rhat_log_lik", "ess_log_lik",
               "rhat_predictive_max", "ess_predictive_min", "rhat_params_max", "ess_params_min",
               "ess_params_median")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="boston")
    parser.add_argument("--split", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--max-tree-depth", type=int, default=10)
    parser.add_argument("--warmup-tree-depth", type=int, default=None,
                        help="tfbnn's warmup_tree_depth (default: the library's)")
    parser.add_argument("--chains", default="1,4", help="comma-separated chain counts")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each pair")
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
          f"{args.max_tree_depth}, threads={args.threads} ({available_cores()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f})")
    times = {}
    for _ in range(args.repeats):
        for n_chains in (int(c) for c in args.chains.split(",")):
            if not args.skip_tfbnn:
                run = run_tfbnn(data, args.split, n_chains, args)
                times.setdefault(("tfbnn", n_chains), []).append(run["seconds"])
                report("tfbnn", n_chains, run)
                print("        " + ", ".join(f"{k}={run['diagnostics'][k]:.3g}"
                                             for k in DIAGNOSTICS))
            if args.numpyro:
                run = run_numpyro(args.numpyro, data, args.split, n_chains, args)
                times.setdefault(("numpyro", n_chains), []).append(run["seconds"])
                report("numpyro", n_chains, run)
            if ("tfbnn", n_chains) in times and ("numpyro", n_chains) in times:
                ratio = times["tfbnn", n_chains][-1] / times["numpyro", n_chains][-1]
                print(f"wall time tfbnn / NumPyro, {n_chains} chain(s): {ratio:.2f} "
                      f"(target for one chain: at most 1.5; load average "
                      f"{os.getloadavg()[0]:.1f})")
    for name in ("tfbnn", "numpyro"):
        if (name, 1) in times and (name, 4) in times:
            ratio = np.mean(times[name, 4]) / np.mean(times[name, 1])
            print(f"{name} wall time 4 chains / 1 chain: {ratio:.2f}"
                  + (" (target < 2)" if name == "tfbnn" else ""))
    if not args.numpyro:
        print("numpyro comparison skipped (pass --numpyro PYTHON of a venv with numpyro, jax)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
