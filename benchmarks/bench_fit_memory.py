"""Training on a CSV file read in parts, and the estimators' predictive in bounded memory.

Writes CSV files of generated rows (`bench_predict_memory.write_csv`: 8 standard
normal features and a target) into a temporary folder and measures, each in a
subprocess of its own, side by side in one run:

* `tfbnn fit` of the whole file at once and with `--chunk-rows` (one epoch,
  batches of 1,024 rows, one hidden layer of 50 units, vi), under
  `/usr/bin/time -v`: wall seconds and peak resident memory. The fit at once is
  skipped above `--whole-max-rows` (its memory grows with the file);
* in Python, `model.predict_distribution(X).interval(0.95)` on `--python-rows`
  rows with 100 draws, as the estimators did before (all `(S, n, k)` parameters
  drawn at once, then the summaries) and as they do now (parameters drawn a block
  of inputs at a time when a summary reads them), with the resident memory
  sampled every 10 ms.

    .venv/bin/python benchmarks/bench_fit_memory.py [--rows 100000 1000000 10000000]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_predict_memory",
                                               HERE / "bench_predict_memory.py")
predict_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(predict_bench)

CHUNK_ROWS = 50_000
FIT = ["--epochs", 1, "--batch-size", 1024, "--hidden-units", 50, "--seed", 0, "--quiet"]

# Run in a fresh interpreter: one way of computing the interval, printed as one JSON line.
PYTHON_RUN = predict_bench.PYTHON_RUN.split("model = tfbnn.load")[0] + """
from tfbnn.predictive import Predictive
model = tfbnn.load(sys.argv[1])
X = np.random.default_rng(7).normal(size=(int(sys.argv[2]), int(sys.argv[3])))

def before():  # what predict_distribution did: every draw's parameters at once
    xs = ((X - model.x_mean_) / model.x_scale_).astype(np.float32)
    params = model.inference_.sample_params(xs, model.n_samples, seed=model.random_state)
    dist = Predictive(model.likelihood_, params, shift=model.y_shift_, scale=model.y_scale_,
                      squeeze=True, seed=model.random_state)
    return dist.interval(0.95)

def after():
    return model.predict_distribution(X).interval(0.95)

(lower, upper), seconds, peak, start = measured(before if sys.argv[4] == "before" else after)
print(json.dumps([seconds, peak, start, float(lower.sum()), float(upper.sum())]))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="sizes of the files tfbnn fit trains on")
    parser.add_argument("--whole-max-rows", type=int, default=1_000_000,
                        help="the largest file also fitted at once")
    parser.add_argument("--python-rows", type=int, default=1_000_000,
                        help="rows of the Python predict_distribution(...).interval run "
                             "(0: none)")
    args = parser.parse_args(argv)
    print(f"tfbnn fit: one epoch, batch 1024, 50 hidden units, vi; --chunk-rows {CHUNK_ROWS:,}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start",
          flush=True)
    lines = []
    with tempfile.TemporaryDirectory(prefix="tfbnn-bench-") as folder:
        folder = Path(folder)
        for rows in args.rows:
            data = folder / f"rows_{rows}.csv"
            start = time.perf_counter()
            predict_bench.write_csv(data, rows, seed=rows)
            print(f"wrote {rows:,} rows ({data.stat().st_size / 1e6:,.0f} MB) in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
            ways = [("in parts", ["--chunk-rows", CHUNK_ROWS])]
            if rows <= args.whole_max_rows:
                ways.insert(0, ("at once", []))
            for way, extra in ways:
                out = folder / f"model_{way.replace(' ', '_')}_{rows}"
                seconds, peak = predict_bench.timed_command(
                    "fit", data, "--target", "y", "--out", out, *FIT, *extra)
                lines.append((f"tfbnn fit ({way})", rows, seconds, peak))
                print(*lines[-1], flush=True)
            data.unlink()
        model = folder / f"model_in_parts_{args.rows[0]}"
        for way in ("before", "after") if args.python_rows else ():
            seconds, peak, start, *_ = predict_bench.run_python(
                PYTHON_RUN, model, args.python_rows, predict_bench.FEATURES, way)
            lines.append((f"Python interval(0.95), {way}", args.python_rows, seconds,
                          peak / 1e9, (peak - start) / 1e9))
            print(*lines[-1], flush=True)
    predict_bench.print_table(lines)


if __name__ == "__main__":
    main()
