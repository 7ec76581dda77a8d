"""`tfbnn predict` and `tfbnn evaluate`: a saved model on the rows of a CSV file.

`predict` writes one row of predictive summaries per input row
(`prediction_frame`); `evaluate` scores the model on labelled rows with every
metric that applies (`tfbnn.metrics.evaluate`) and can write the HTML report
(`tfbnn.report`).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tfbnn.cli.options import (
    add_command,
    add_model_inputs,
    add_prediction_options,
    add_target_override,
    csv_layout,
)
from tfbnn.data import tabular
from tfbnn.files import write_atomic


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
            "uncertainty in nats."],
        example="tfbnn predict model/ new.csv --out predictions.csv",
        run=run_predict)
    add_model_inputs(p, "DATA.csv", "the rows to predict for")
    p.add_argument("--out", type=Path, default=None, metavar="PRED.csv",
                   help="where to write the predictions (default: standard output)")
    add_prediction_options(p)


def add_evaluate_parser(subparsers) -> None:
    """`tfbnn evaluate MODEL_DIR DATA.csv [--json] [--report report.html]`."""
    p = add_command(
        subparsers, "evaluate", summary="score a saved model on a labelled CSV file",
        paragraphs=[
            "Score a model saved by 'tfbnn fit' on a CSV file that has the target column, "
            "with every metric that applies. Regression: rmse, mae, nll, crps, coverage and "
            "width of the --level interval, interval score, calibration error, "
            "miscalibration area, sharpness. Classification: accuracy, nll, brier score, "
            "ece, mce, mean entropy and mutual information."],
        example="tfbnn evaluate model/ test.csv --report report.html",
        run=run_evaluate)
    add_model_inputs(p, "DATA.csv", "labelled rows to score on")
    add_target_override(p)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--report", type=Path, metavar="REPORT.html", default=None,
                   help="also write an HTML report with metrics and plots")
    add_prediction_options(p)


def prediction_frame(predictive, level: float = 0.95) -> pd.DataFrame:
    """The `tfbnn predict` columns for a `Predictive` (see `tfbnn predict --help`)."""
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


def run_predict(args) -> int:
    """Writes `prediction_frame` for every row of `args.data`."""
    from tfbnn.model_folder import load_model, model_features, naming_file  # TensorFlow

    estimator, meta = load_model(args.model)
    header, sep = csv_layout(args, meta)
    with naming_file(args.data):
        # The file may lack the target, so it is read without naming one.
        frame = tabular.read_frame(args.data, header=header, sep=sep)
    X = model_features(frame, meta, args.data, header)
    predictions = prediction_frame(estimator.predict_distribution(X, args.n_samples), args.level)
    if args.out is None:
        predictions.to_csv(sys.stdout, index=False)
    else:
        write_atomic(args.out, lambda temp: predictions.to_csv(temp, index=False))
        print(f"Wrote {len(predictions)} predictions to {args.out}")
    return 0


def _jsonable(value):
    value = value.item() if isinstance(value, np.generic) else value
    # JSON has no NaN or infinity.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def run_evaluate(args) -> int:
    """Prints every metric of the model on `args.data` (and writes the HTML report)."""
    from tfbnn import metrics, report  # TensorFlow: imported when the command runs
    from tfbnn.estimators import calibration_method
    from tfbnn.model_folder import load_model, read_labelled
    from tfbnn.report import format_table

    estimator, meta = load_model(args.model)
    header, sep = csv_layout(args, meta)
    X, y = read_labelled(args.data, meta, header=header, sep=sep, target=args.target)
    predictive = estimator.predict_distribution(X, args.n_samples)
    if args.report is None:
        scores, figures = metrics.evaluate(predictive, y=y, level=args.level), None
    else:
        scores, figures = report.build_report(y, predictive, history=estimator.history_,
                                              level=args.level)
    scores = {"rows": len(y), **scores}
    calibrator = getattr(estimator, "calibrator_", None)
    if calibrator is not None:
        scores = {"calibration": calibration_method(calibrator), **scores}
    if figures is not None:
        title = f"tfbnn evaluation of {Path(args.model).name} on {Path(args.data).name}"
        write_atomic(args.report, lambda temp: report.write_html_report(
            temp, scores, figures, title=title))
    if args.json:
        print(json.dumps({k: _jsonable(v) for k, v in scores.items()}, indent=2))
    else:
        print(format_table(scores.items()))
    if args.report is not None:
        # Keep standard output pure JSON when --json asks for it.
        print(f"Wrote the report to {args.report}", file=sys.stderr if args.json else sys.stdout)
    return 0
