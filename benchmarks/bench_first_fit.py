"""A first fit in a fresh process: tfbnn against a hand-written JAX loop and tfp.layers.

Each fit runs in its own child process, so every one pays its interpreter start,
its imports, tracing and compilation, as a `tfbnn fit` call or a new notebook does.
The model is the UCI protocol network (one hidden layer of 50 ReLU units,
mean-field Gaussian weights and biases with a Normal(0, 1) prior, learned
homoscedastic Gaussian noise, KL scaled by 1/N, Adam at 1e-3, batch 32, 400
epochs, inputs and targets standardised with the training split's statistics):

* tfbnn: `BayesianRegressor(hidden_units=(50,), epochs=400, random_state=0).fit`,
  as a user writes it (local reparameterization, the compiled training loop, the
  learning rate decaying along a half cosine over the last 30% of the steps);
* jax: the same model written by hand in JAX + optax (local reparameterization,
  closed-form KL, the same learning-rate schedule), the whole fit one `jax.jit`
  call holding a `lax.scan` over epochs of a `lax.scan` over mini-batches. JAX is
  not a tfbnn dependency: give a Python that has `jax` and `optax` with
  `--jax-python` (e.g. `python3.11 -m venv /tmp/venv_jax &&
  /tmp/venv_jax/bin/pip install jax optax`); without it the JAX fit is skipped;
* textbook: `tfp.layers.DenseFlipout` in a `tf_keras.Sequential`, `model.fit`.

Every child reports seconds from its interpreter's start to a fitted model
("to fitted", measured by this parent from the moment it starts the child),
the import seconds, the fit call's seconds, and the test RMSE and per-point
log-likelihood (original units; 1,000 posterior draws, 100 for the textbook
model's Python loop of model calls) so that equal quality is visible. The parent prints them side by side with the ratios to tfbnn.

    .venv/bin/python benchmarks/bench_first_fit.py --jax-python /tmp/venv_jax/bin/python \\
        --datasets boston kin8nm --repeats 2

This file is also the child (`--child NAME`): its top level imports only the
standard library and NumPy, so that the JAX child never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

EPOCHS, BATCH, UNITS, LR = 400, 32, 50, 1e-3
#: The learning rate decays over this last share of the steps, to this floor (tfbnn's VI).
DECAY_FRACTION, DECAY_FLOOR = 0.3, 0.01
POSTERIOR_SCALE_INIT = 1e-3
N_DRAWS = 1000
#: The textbook model predicts by a Python loop of model calls (as bench_core.py does).
N_DRAWS_TEXTBOOK = 100
FITS = ("tfbnn", "jax", "textbook")


def load_split(data_dir, name, split):
    """Train/test arrays of one standard UCI split, read with NumPy only."""
    folder = os.path.join(data_dir, name)

    def ints(file):
        return np.atleast_1d(np.loadtxt(os.path.join(folder, file), dtype=int))

    data = np.loadtxt(os.path.join(folder, "data.txt"))
    x, y = data[:, ints("index_features.txt")], data[:, int(ints("index_target.txt")[0])]
    train, test = ints(f"index_train_{split}.txt"), ints(f"index_test_{split}.txt")
    return x[train], y[train], x[test], y[test]


def standardiser(x, y):
    """`(x_mean, x_std, y_mean, y_std)` of the training split (constant columns: std 1)."""
    sx = x.std(0)
    return x.mean(0), np.where(sx == 0, 1.0, sx), y.mean(), y.std()


def predictive_scores(loc, scale, y_test):
    """Test RMSE of the predictive mean and mean log-likelihood of the draw mixture.

    `loc`, `scale`: (draws, points) in original units.
    """
    log_p = -0.5 * ((y_test - loc) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi)
    top = log_p.max(axis=0)
    ll = top + np.log(np.mean(np.exp(log_p - top), axis=0))
    return float(np.sqrt(np.mean((loc.mean(axis=0) - y_test) ** 2))), float(ll.mean())


def learning_rate_at(step, total_steps, xp=np):
    """tfbnn VI's default schedule: `LR`, then a half cosine down to `DECAY_FLOOR * LR`
    over the last `DECAY_FRACTION` of `total_steps`."""
    start = round((1 - DECAY_FRACTION) * total_steps)
    progress = xp.clip((step - start) / max(total_steps - start, 1), 0.0, 1.0)
    return LR * (DECAY_FLOOR + (1 - DECAY_FLOOR) * 0.5 * (1 + xp.cos(math.pi * progress)))


# ----------------------------------------------------------------------------- children


def child_tfbnn(x, y, x_test, y_test):
    start = time.perf_counter()
    import tfbnn

    if os.environ.get("TFBNN_XLA_CACHE"):  # what `import tfbnn` will do once it reads it
        from tfbnn import xla_cache

        xla_cache.configure_from_environment()
    imported = time.perf_counter()
    model = tfbnn.BayesianRegressor(hidden_units=(UNITS,), epochs=EPOCHS, random_state=0)
    model.fit(x, y)
    fitted = time.time()
    fit_s = time.perf_counter() - imported
    dist = model.predict_distribution(x_test, n_samples=N_DRAWS)
    rmse = float(np.sqrt(np.mean((dist.mean - y_test) ** 2)))
    return dict(import_s=imported - start, fit_s=fit_s, fitted_at=fitted,
                rmse=rmse, ll=float(np.mean(dist.log_prob(y_test))))


def child_jax(x, y, x_test, y_test):
    start = time.perf_counter()
    import jax
    import jax.numpy as jnp
    import optax

    if os.environ.get("JAX_CACHE"):
        jax.config.update("jax_compilation_cache_dir", os.environ["JAX_CACHE"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    imported = time.perf_counter()
    mx, sx, my, sy = standardiser(x, y)
    xs, ys = jnp.asarray((x - mx) / sx, jnp.float32), jnp.asarray((y - my) / sy, jnp.float32)
    n, width = xs.shape
    per_epoch = math.ceil(n / BATCH)
    total = EPOCHS * per_epoch
    rho0 = math.log(math.expm1(POSTERIOR_SCALE_INIT))

    def init(key):
        k1, k2 = jax.random.split(key)

        def layer(k, n_in, n_out):
            limit = math.sqrt(6 / (n_in + n_out))
            loc = jax.random.uniform(k, (n_in, n_out), minval=-limit, maxval=limit)
            return dict(w=loc, w_rho=jnp.full((n_in, n_out), rho0),
                        b=jnp.zeros(n_out), b_rho=jnp.full(n_out, rho0))

        return dict(l1=layer(k1, width, UNITS), l2=layer(k2, UNITS, 1),
                    noise=jnp.array(math.log(math.e - 1)))

    def dense(p, h, key):
        """Local reparameterization: sample the pre-activations, not the weights."""
        mean = h @ p["w"] + p["b"]
        var = (h**2) @ jax.nn.softplus(p["w_rho"]) ** 2 + jax.nn.softplus(p["b_rho"]) ** 2
        return mean + jnp.sqrt(var) * jax.random.normal(key, mean.shape)

    def kl(p):
        total_kl = 0.0
        for loc, rho in ((p["w"], p["w_rho"]), (p["b"], p["b_rho"])):
            s = jax.nn.softplus(rho)
            total_kl += jnp.sum(0.5 * (s**2 + loc**2) - jnp.log(s) - 0.5)
        return total_kl

    def loss(params, xb, yb, key):
        k1, k2 = jax.random.split(key)
        f = dense(params["l2"], jax.nn.relu(dense(params["l1"], xb, k1)), k2)[:, 0]
        scale = jax.nn.softplus(params["noise"]) + 1e-6
        nll = jnp.mean(0.5 * ((yb - f) / scale) ** 2 + jnp.log(scale))
        return nll + (kl(params["l1"]) + kl(params["l2"])) / n

    optimizer = optax.adam(lambda step: learning_rate_at(step, total, jnp))

    @jax.jit
    def fit(key):
        params = init(key)

        def step(carry, batch):
            params, state, key = carry
            key, sub = jax.random.split(key)
            grads = jax.grad(loss)(params, xs[batch], ys[batch], sub)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state, key), None

        def epoch(carry, _):
            params, state, key = carry
            key, sub = jax.random.split(key)
            order = jax.random.permutation(sub, n)
            order = jnp.concatenate([order, order[: per_epoch * BATCH - n]])
            return jax.lax.scan(step, (params, state, key), order.reshape(per_epoch, BATCH))

        carry = (params, optimizer.init(params), key)
        return jax.lax.scan(epoch, carry, None, length=EPOCHS)[0][0]

    params = jax.block_until_ready(fit(jax.random.PRNGKey(0)))
    fitted = time.time()
    fit_s = time.perf_counter() - imported

    p = jax.tree_util.tree_map(np.asarray, params)
    rng = np.random.default_rng(0)
    xt = (x_test - mx) / sx

    def weights(layer, name):
        loc, s = layer[name], np.log1p(np.exp(layer[name + "_rho"]))
        return loc + s * rng.standard_normal((N_DRAWS, *loc.shape))

    h = np.maximum(np.einsum("nd,sdu->snu", xt, weights(p["l1"], "w"))
                   + weights(p["l1"], "b")[:, None, :], 0)
    f = np.einsum("snu,suo->sno", h, weights(p["l2"], "w"))[..., 0] + weights(p["l2"], "b")
    scale = (np.log1p(np.exp(p["noise"])) + 1e-6) * sy
    rmse, ll = predictive_scores(f * sy + my, np.full_like(f, scale), y_test)
    return dict(import_s=imported - start, fit_s=fit_s, fitted_at=fitted, rmse=rmse, ll=ll)


def child_textbook(x, y, x_test, y_test):
    start = time.perf_counter()
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    imported = time.perf_counter()
    tfd = tfp.distributions
    mx, sx, my, sy = standardiser(x, y)
    xs = ((x - mx) / sx).astype("float32")
    ys = ((y - my) / sy).astype("float32")[:, None]
    tf_keras.utils.set_random_seed(0)
    divergence = lambda q, p, _: tfd.kl_divergence(q, p) / len(xs)  # noqa: E731
    inputs = tf_keras.Input((xs.shape[1],))
    hidden = tfp.layers.DenseFlipout(UNITS, activation="relu",
                                     kernel_divergence_fn=divergence)(inputs)
    loc = tfp.layers.DenseFlipout(1, kernel_divergence_fn=divergence)(hidden)
    model = tf_keras.Model(inputs, loc)
    raw_noise = tf.Variable(0.5413, name="raw_noise")  # softplus(0.5413) = 1
    model.raw_noise = raw_noise  # tracked, so model.fit trains it

    def nll(y_true, y_loc):
        return -tfd.Normal(y_loc, tf.nn.softplus(raw_noise) + 1e-6).log_prob(y_true)

    model.compile(tf_keras.optimizers.Adam(LR), loss=nll)
    model.fit(xs, ys, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    fitted = time.time()
    fit_s = time.perf_counter() - imported
    xt = ((x_test - mx) / sx).astype("float32")
    draws = np.stack([model(xt).numpy()[:, 0] for _ in range(N_DRAWS_TEXTBOOK)])
    scale = (float(tf.nn.softplus(raw_noise)) + 1e-6) * sy
    rmse, ll = predictive_scores(draws * sy + my, np.full_like(draws, scale), y_test)
    return dict(import_s=imported - start, fit_s=fit_s, fitted_at=fitted, rmse=rmse, ll=ll)


CHILDREN = {"tfbnn": child_tfbnn, "jax": child_jax, "textbook": child_textbook}


# ----------------------------------------------------------------------------- parent


def run_child(python, fit, dataset, data_dir, env):
    """One fit in a fresh process; its report plus `to_fitted_s` and `process_s`."""
    command = [python, os.path.abspath(__file__), "--child", fit, "--datasets", dataset,
               "--data-dir", data_dir]
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"the {fit} fit of {dataset} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["to_fitted_s"] = report.pop("fitted_at") - started
    report["process_s"] = ended - started
    return report


def print_table(dataset, rows):
    print(f"\n{dataset}, split 0, {EPOCHS} epochs, batch {BATCH}, {UNITS} ReLU units "
          f"(seconds; to fitted = from process start, compilation included)")
    print(f"{'fit':>9} {'run':>3} | {'to fitted':>9} {'import':>7} {'fit call':>8} "
          f"{'process':>8} | {'RMSE':>6} {'LL':>7}")
    for fit, runs in rows.items():
        for i, r in enumerate(runs):
            print(f"{fit:>9} {i:>3} | {r['to_fitted_s']:>9.2f} {r['import_s']:>7.2f} "
                  f"{r['fit_s']:>8.2f} {r['process_s']:>8.2f} | {r['rmse']:>6.3f} "
                  f"{r['ll']:>7.3f}")
    if "tfbnn" not in rows:
        return
    ours = float(np.median([r["to_fitted_s"] for r in rows["tfbnn"]]))
    for fit, runs in rows.items():
        if fit != "tfbnn":
            theirs = float(np.median([r["to_fitted_s"] for r in runs]))
            print(f"median to fitted: tfbnn {ours:.2f} s, {fit} {theirs:.2f} s: tfbnn takes "
                  f"{ours / theirs:.2f}x {fit}'s time ({theirs / ours:.1f}x faster)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["boston", "kin8nm"])
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes per fit")
    parser.add_argument("--fits", nargs="+", default=list(FITS), choices=FITS)
    parser.add_argument("--jax-python", default=None,
                        help="a Python with jax and optax (default: skip the JAX fit)")
    parser.add_argument("--data-dir", default=os.environ.get("TFBNN_UCI_DIR"),
                        help="UCI folder (default: $TFBNN_UCI_DIR)")
    parser.add_argument("--xla-cache", default=None, metavar="DIR",
                        help="persistent compilation caches under DIR for tfbnn "
                             "(TFBNN_XLA_CACHE) and JAX (jax_compilation_cache_dir); a "
                             "first process per fit and data set fills them, untimed")
    parser.add_argument("--child", choices=FITS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.data_dir is None:
        parser.error("give --data-dir or set TFBNN_UCI_DIR")
    if args.child:
        split = load_split(args.data_dir, args.datasets[0], 0)
        print(json.dumps(CHILDREN[args.child](*split)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
           "JAX_PLATFORMS": "cpu"}
    if args.xla_cache:
        env.update(TFBNN_XLA_CACHE=os.path.join(os.path.abspath(args.xla_cache), "tfbnn"),
                   JAX_CACHE=os.path.join(os.path.abspath(args.xla_cache), "jax"))
    fits = [f for f in args.fits if f != "jax" or args.jax_python]
    cached = [f for f in fits if f != "textbook"] if args.xla_cache else []
    print(f"load average {os.getloadavg()[0]:.1f} at start, {os.cpu_count()} CPUs; "
          f"persistent compilation caches: {args.xla_cache or 'off'}")
    for dataset in args.datasets:
        rows = {fit: [] for fit in fits}
        for fit in cached:  # fill the caches; not timed
            python = args.jax_python if fit == "jax" else sys.executable
            run_child(python, fit, dataset, args.data_dir, env)
        for _ in range(args.repeats):  # alternate the fits, so load drifts hit all alike
            for fit in fits:
                python = args.jax_python if fit == "jax" else sys.executable
                rows[fit].append(run_child(python, fit, dataset, args.data_dir, env))
        print_table(dataset, rows)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
