"""`tfbnn predict` and `tfbnn evaluate`: a saved model on the rows of a CSV file.

`predict` writes one row of predictive summaries per input row
(`prediction_frame`); `evaluate` scores the model on labelled rows with every
metric that applies (`tfbnn.metrics.RunningEvaluation`) and can write the HTML
report (`tfbnn.report`). Both read the file in parts of `--chunk-rows` rows and
predict, write or score each part before reading the next, so their memory does
not grow with the file. The libraries they need are imported when they run, so
that the command line starts quickly.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from tfbnn.cli.options import (
    add_command,
    add_model_inputs,
    add_prediction_options,
    add_target_override,
    positive_int,
    read_options,
)

#: Draws x rows a part of the file holds by default: 4e6, 40,000 rows for 100 draws.
PART_VALUES = 4_000_000

#: The most rows `tfbnn evaluate --report` draws its figures from (a random sample of a
#: larger file; the metrics use every row).
REPORT_ROWS = 10_000


def add_predict_parser(subparsers) -> None:
    """`tfbnn predict MODEL_DIR DATA.csv --out PRED.csv`."""
    p = add_command(
        subparsers, "predict", summary="write predictive summaries for the rows of a CSV file",
        paragraphs=[
            "Predict for every row of a CSV file with a model saved by 'tfbnn fit'. A target "
            "column in the file is ignored.",
            "Regression columns: mean; std, the total predictive standard deviation; lower "
            "and upper, the central --level interval; epistemic and aleatoric, the two parts "
            "of the uncertainty, also as standard deviations (std^2 = epistemic^2 + "
            "aleatoric^2).",
            "Classification columns: prob_<label> for each class; predicted, the most "
            "probable label; entropy and mutual_information, the total and the epistemic "
            "uncertainty in nats.",
            "The file is read and written in parts, so it may be larger than memory."],
        example="tfbnn predict model/ new.csv --out predictions.csv",
        run=run_predict)
    add_model_inputs(p, "DATA.csv", "the rows to predict for")
    p.add_argument("--out", type=Path, default=None, metavar="PRED.csv",
                   help="where to write the predictions (default: standard output)")
    add_prediction_options(p)
    _add_chunk_rows(p)


def add_evaluate_parser(subparsers) -> None:
    """`tfbnn evaluate MODEL_DIR DATA.csv [--json] [--report report.html]`."""
    p = add_command(
        subparsers, "evaluate", summary="score a saved model on a labelled CSV file",
        paragraphs=[
            "Score a model saved by 'tfbnn fit' on a CSV file that has the target column, "
            "with every metric that applies. Regression: rmse, mae, nll, crps, coverage and "
            "width of the --level interval, interval score, calibration error, "
            "miscalibration area, sharpness. Classification: accuracy, nll, brier score, "
            "ece, mce, mean entropy and mutual information.",
            "The file is read in parts, so it may be larger than memory; the metrics cover "
            f"every row, the report's figures a random sample of at most {REPORT_ROWS:,} "
            "rows."],
        example="tfbnn evaluate model/ test.csv --report report.html",
        run=run_evaluate)
    add_model_inputs(p, "DATA.csv", "labelled rows to score on")
    add_target_override(p)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--report", type=Path, metavar="REPORT.html", default=None,
                   help="also write an HTML report with metrics and plots")
    add_prediction_options(p)
    _add_chunk_rows(p)


def _add_chunk_rows(parser) -> None:
    parser.add_argument(
        "--chunk-rows", type=positive_int, default=None, metavar="N",
        help="rows read and predicted at once; it bounds the memory, not the results "
             f"(default: {PART_VALUES:,} divided by the number of draws)")


def prediction_frame(predictive, level: float = 0.95):
    """The `tfbnn predict` columns for a `Predictive`, a DataFrame (see `tfbnn predict --help`)."""
    import numpy as np
    import pandas as pd

    if predictive.is_classification:
        probs = predictive.probs
        columns = {f"prob_{label}": probs[:, i] for i, label in enumerate(predictive.classes)}
        columns.update(predicted=predictive.predicted_class, entropy=predictive.entropy,
                       mutual_information=predictive.mutual_information)
    else:
        lower, upper = predictive.interval(level)
        columns = {"mean": predictive.mean, "std": predictive.std, "lower": lower,
                   "upper": upper, "epistemic": np.sqrt(predictive.epistemic_var),
                   "aleatoric": np.sqrt(predictive.aleatoric_var)}
    return pd.DataFrame(columns)


def _chunk_rows(args, estimator) -> int:
    if args.chunk_rows is not None:
        return args.chunk_rows
    n_samples = estimator.n_samples if args.n_samples is None else args.n_samples
    return max(1, PART_VALUES // n_samples)


def _counted(parts, path):
    """`(X, y)` parts of consecutive rows, in order. The readers' errors count the rows of a
    part from its start, so an error in a later part also says where that part begins."""
    start, parts = 0, iter(parts)
    while True:
        try:
            part = next(parts, None)
        except ValueError as err:
            if start == 0:
                raise
            raise ValueError(f"{err} (rows counted from data row {start + 1} of {path}, "
                             "where the part read at once begins)") from None
        if part is None:
            return
        yield part
        start += len(part[0])


def _unlabelled_parts(path, meta, reading: dict, chunk_rows: int):
    """`(X, None)` for each part of an unlabelled (or labelled) file, read as `reading` says."""
    from tfbnn.data.reading import read_frames
    from tfbnn.model_folder import model_features, naming_file, text_columns  # TensorFlow

    with naming_file(path):
        # The file may lack the target, so it is read without naming one.
        for frame in read_frames(path, **reading, chunk_rows=chunk_rows,
                                 dtype=text_columns(meta, reading["header"])):
            yield model_features(frame, meta, path, reading["header"]), None


def run_predict(args) -> int:
    """Writes `prediction_frame` for every row of `args.data`, a part at a time."""
    from tfbnn.files import write_atomic
    from tfbnn.model_folder import load_model

    estimator, meta = load_model(args.model)
    parts = _counted(_unlabelled_parts(args.data, meta, read_options(args, meta),
                                       _chunk_rows(args, estimator)), args.data)

    def write(handle) -> int:
        rows = 0
        for X, _ in parts:
            predictions = prediction_frame(estimator.predict_distribution(X, args.n_samples),
                                           args.level)
            predictions.to_csv(handle, index=False, header=rows == 0)
            rows += len(predictions)
        return rows

    if args.out is None:
        write(sys.stdout)
        return 0
    counts = []

    def write_file(temp):
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            counts.append(write(handle))

    write_atomic(args.out, write_file)
    print(f"Wrote {counts[0]} predictions to {args.out}")
    return 0


def _jsonable(value):
    import numpy as np

    value = value.item() if isinstance(value, np.generic) else value
    # JSON has no NaN or infinity.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def run_evaluate(args) -> int:
    """Prints every metric of the model on `args.data` (and writes the HTML report)."""
    from tfbnn import report
    from tfbnn.estimators import calibration_method
    from tfbnn.files import write_atomic
    from tfbnn.metrics import RunningEvaluation
    from tfbnn.model_folder import load_model, read_labelled_parts

    estimator, meta = load_model(args.model)
    parts = read_labelled_parts(args.data, meta, target=args.target,
                                chunk_rows=_chunk_rows(args, estimator),
                                **read_options(args, meta))
    running = RunningEvaluation(args.level)
    sample = RowSample(REPORT_ROWS)
    for X, y in _counted(parts, args.data):
        running.add(y, estimator.predict_distribution(X, args.n_samples))
        if args.report is not None:
            sample.add(X, y)
    scores = {"rows": running.rows, **running.scores()}
    calibrator = getattr(estimator, "calibrator_", None)
    if calibrator is not None:
        scores = {"calibration": calibration_method(calibrator), **scores}
    if args.report is not None:
        X, y = sample.rows()
        _, figures = report.build_report(y, estimator.predict_distribution(X, args.n_samples),
                                         history=estimator.history_, level=args.level)
        title = f"tfbnn evaluation of {Path(args.model).name} on {Path(args.data).name}"
        write_atomic(args.report, lambda temp: report.write_html_report(
            temp, scores, figures, title=title))
    if args.json:
        print(json.dumps({k: _jsonable(v) for k, v in scores.items()}, indent=2))
    else:
        print(report.format_table(scores.items()))
    if args.report is not None:
        # Keep standard output pure JSON when --json asks for it.
        print(f"Wrote the report to {args.report}", file=sys.stderr if args.json else sys.stdout)
    return 0


class RowSample:
    """A uniform random sample of at most `size` rows of data seen in parts, in their order.

    Every row gets a random key from one seeded stream and the `size` smallest
    keys are kept, so the sample does not depend on how the rows were split.
    """

    def __init__(self, size: int, seed: int = 0):
        import numpy as np

        self.size = size
        self._rng = np.random.default_rng(seed)
        self._seen = 0
        self._kept = None  # (keys, positions, X, y)

    def add(self, X, y) -> None:
        """Offers the next rows, features `X` and targets `y`."""
        import numpy as np

        keys = self._rng.random(len(X))
        positions = np.arange(self._seen, self._seen + len(X))
        self._seen += len(X)
        part = (keys, positions, X, y)
        if self._kept is not None:
            part = tuple(np.concatenate(pair) for pair in zip(self._kept, part, strict=True))
        smallest = np.argsort(part[0], kind="stable")[:self.size]
        self._kept = tuple(array[np.sort(smallest)] for array in part)

    def rows(self):
        """`(X, y)` of the rows kept, in the order they were added."""
        return self._kept[2], self._kept[3]
