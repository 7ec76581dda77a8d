"""Predictions in bounded memory: `tfbnn predict` on 1M and 10M rows, and `interval` on 1M.

Fits a small model with `tfbnn fit` (8 features, one hidden layer of 50 units,
mean-field VI for a few epochs; 100 posterior draws at prediction), writes CSV
files of 1,000,000 and 10,000,000 rows into a temporary folder, and measures:

* `tfbnn predict` (and `tfbnn evaluate` on the 1M file), each in a subprocess
  under `/usr/bin/time -v`: wall seconds and peak resident memory;
* in Python, in a subprocess of its own: `predict_distribution(X)` on the 1M
  rows, then `.interval(0.95)` of it, each timed, with the resident memory
  sampled every 10 ms while each runs.

Targets: `tfbnn predict` under 2 GB whatever the number of rows, 1M rows under
60 s; `interval(0.95)` on 1M rows under 10 s. The generated files are deleted.

    .venv/bin/python benchmarks/bench_predict_memory.py [--rows 1000000 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
FEATURES, UNITS, DRAWS = 8, 50, 100  # DRAWS: the estimators' default n_samples
WRITE_ROWS = 500_000  # rows generated and written at a time

# Run in a fresh interpreter: the Python-level measurement, printed as one JSON line.
PYTHON_RUN = """
import json, os, sys, threading, time
import numpy as np
import tfbnn

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def measured(call):
    before, peak, done = rss(), [0], threading.Event()
    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.01)
    thread = threading.Thread(target=sample)
    thread.start()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    return result, seconds, max(peak[0], rss()), before

model = tfbnn.load(sys.argv[1])
X = np.random.default_rng(int(sys.argv[3])).normal(size=(int(sys.argv[2]), int(sys.argv[4])))
dist, t_dist, peak_dist, before_dist = measured(lambda: model.predict_distribution(X))
_, t_int, peak_int, before_int = measured(lambda: dist.interval(0.95))
print(json.dumps({"predict_distribution": [t_dist, peak_dist, before_dist],
                  "interval": [t_int, peak_int, before_int]}))
"""


def _environment() -> dict:
    """This checkout's tfbnn first on the path, TensorFlow's start-up notes silenced."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _target(X: np.ndarray, rng) -> np.ndarray:
    return np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] - X[:, 3] + 0.3 * rng.normal(size=len(X))


def write_csv(path: Path, rows: int, seed: int) -> None:
    """`rows` rows of `FEATURES` standard normal features and a target `y`, written in parts."""
    rng = np.random.default_rng(seed)
    columns = [f"x{i}" for i in range(FEATURES)]
    with open(path, "w", newline="") as handle:
        for start in range(0, rows, WRITE_ROWS):
            X = rng.normal(size=(min(WRITE_ROWS, rows - start), FEATURES))
            frame = pd.DataFrame(X, columns=columns).assign(y=_target(X, rng))
            frame.to_csv(handle, index=False, header=start == 0, float_format="%.5g")


def timed_command(*argv) -> tuple[float, float]:
    """`(wall seconds, peak resident GB)` of `python -m tfbnn ARGV` under `/usr/bin/time -v`."""
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "tfbnn", *map(str, argv)]
    done = subprocess.run(command, env=_environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)",
                      done.stderr)[1]
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(clock.split(":"))))
    return seconds, peak_kb / 1e6


def python_interval(model: Path, rows: int) -> dict:
    """The Python-level measurement (`PYTHON_RUN`) in a fresh interpreter."""
    return run_python(PYTHON_RUN, model, rows, 7, FEATURES)


def run_python(code: str, *args):
    """The last line printed by `code` run with `args` in a fresh interpreter, as JSON."""
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                          env=_environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the Python measurement failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000],
                        help="sizes of the files tfbnn predict runs on")
    parser.add_argument("--python-rows", type=int, default=1_000_000,
                        help="rows of the Python predict_distribution / interval run")
    args = parser.parse_args(argv)
    print(f"model: {FEATURES} features, {UNITS} hidden units, inference vi, {DRAWS} draws; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    lines = []
    with tempfile.TemporaryDirectory(prefix="tfbnn-bench-") as folder:
        folder = Path(folder)
        write_csv(folder / "train.csv", 5_000, seed=0)
        model = folder / "model"
        timed_command("fit", folder / "train.csv", "--target", "y", "--out", model,
                      "--hidden-units", UNITS, "--epochs", 20,
                      "--seed", 0, "--quiet")
        for rows in args.rows:
            data, out = folder / f"rows_{rows}.csv", folder / "predictions.csv"
            start = time.perf_counter()
            write_csv(data, rows, seed=rows)
            print(f"wrote {rows:,} rows ({data.stat().st_size / 1e6:,.0f} MB) in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
            lines.append(("tfbnn predict", rows, *timed_command("predict", model, data,
                                                                 "--out", out)))
            print(*lines[-1], flush=True)
            out.unlink()
            if rows == args.rows[0]:
                lines.append(("tfbnn evaluate", rows, *timed_command("evaluate", model, data)))
                print(*lines[-1], flush=True)
            data.unlink()
        measured = python_interval(model, args.python_rows)
    for name, (seconds, peak, before) in measured.items():
        call = "predict_distribution(X)" if name == "predict_distribution" else ".interval(0.95)"
        lines.append((f"Python {call}", args.python_rows, seconds, peak / 1e9,
                      (peak - before) / 1e9))
    print_table(lines)


def print_table(lines) -> None:
    """The measurements `(what, rows, seconds, peak GB[, added GB])` as one table."""
    print()
    print(f"{'what':<36} {'rows':>12} {'wall s':>8} {'peak GB':>8} {'added GB':>9}")
    for name, rows, seconds, peak, *added in lines:
        extra = f"{added[0]:>9.2f}" if added else f"{'':>9}"
        print(f"{name:<36} {rows:>12,} {seconds:>8.1f} {peak:>8.2f} {extra}")
    print("peak GB: the process's peak resident memory (for the Python lines, sampled every "
          "10 ms during the call); added GB: its rise over the resident memory before the call")


if __name__ == "__main__":
    main()
