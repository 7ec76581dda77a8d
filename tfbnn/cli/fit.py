"""`tfbnn fit` and `tfbnn calibrate`: train on a CSV file, recalibrate on held-out rows.

`fit` reads the training table, infers the task unless told, trains an
estimator (optionally holding out rows to calibrate it on) and saves it as a
model folder (`tfbnn.model_folder`) with a printed summary; for MCMC samplers
the summary carries the convergence diagnostics instead of epochs. With
`--chunk-rows` the file is read in parts (`tfbnn.data.chunked`): the columns are
settled over the whole file in two passes, the standardisation in a third, then
training reads it once per epoch, so memory does not grow with the file.
`calibrate` fits a new calibrator to a saved model.

The library (and with it TensorFlow) is imported inside the functions that run
the commands, so that declaring their options costs nothing.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from tfbnn.cli.choices import (
    CLASSIFICATION_CALIBRATION,
    CLASSIFICATION_LIKELIHOODS,
    INFERENCE_METHODS,
    PRIORS,
    REGRESSION_CALIBRATION,
    REGRESSION_LIKELIHOODS,
)
from tfbnn.cli.options import (
    DEFAULTS,
    HiddenUnits,
    UsageError,
    add_calibration_method,
    add_command,
    add_csv_options,
    add_model_inputs,
    add_target_override,
    check_out_folder,
    epochs,
    fraction,
    json_object,
    positive_float,
    positive_int,
    probability,
    read_options,
    widths,
)
from tfbnn.data import tabular
from tfbnn.data.tabular import Task

_REGRESSION_CHOICES = ("auto", *REGRESSION_LIKELIHOODS)
_LIKELIHOOD_CHOICES = tuple(dict.fromkeys(_REGRESSION_CHOICES + CLASSIFICATION_LIKELIHOODS))


def add_fit_parser(subparsers) -> None:
    """`tfbnn fit DATA.csv --target COLUMN --out MODEL_DIR`."""
    p = add_command(
        subparsers, "fit", summary="train a Bayesian neural network on a CSV file and save it",
        paragraphs=["Train a Bayesian neural network on a CSV file and save it to a folder. "
                    "Non-numeric feature columns are one-hot encoded; inputs and regression "
                    "targets are standardised internally."],
        example="tfbnn fit train.csv --target price --out model/ --hidden-units 50 50",
        run=run_fit)
    p.add_argument("data", metavar="DATA.csv", type=Path, help="the training table")
    p.add_argument("--target", required=True, metavar="COLUMN",
                   help="the target column: its name, or a 0-based index (negative counts "
                        "from the end)")
    p.add_argument("--out", required=True, type=Path, metavar="MODEL_DIR",
                   help="folder to save the model in (checked before training)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a model already in --out (only once training has succeeded)")
    add_csv_options(p, fitted=False)
    p.add_argument("--task", choices=[t.value for t in Task],
                   help="default: inferred from the target column (and printed)")
    p.add_argument("--impute", choices=[o for o in tabular.IMPUTE_OPTIONS if o],
                   help="fill missing feature values (numeric columns with the mean, others "
                        "with the most frequent value); by default they are an error")
    model = p.add_argument_group("model")
    model.add_argument(
        "--likelihood", choices=_LIKELIHOOD_CHOICES, default=DEFAULTS["likelihood"],
        help="regression: " + ", ".join(_REGRESSION_CHOICES) + "; classification: "
             + ", ".join(CLASSIFICATION_LIKELIHOODS) + " (default: %(default)s)")
    model.add_argument("--prior", choices=PRIORS, default=DEFAULTS["prior"],
                       help="prior over the weights (default: %(default)s)")
    model.add_argument(
        "--hidden-units", nargs="+", type=widths, action=HiddenUnits, metavar="N",
        default=tuple(DEFAULTS["hidden_units"]),
        help="widths of the hidden layers, e.g. '50 50' or '50,50' (default: "
             + " ".join(map(str, DEFAULTS["hidden_units"])) + ")")
    model.add_argument("--activation", default=DEFAULTS["activation"], metavar="NAME",
                       help="hidden-layer activation, e.g. relu, tanh (default: %(default)s)")
    model.add_argument("--inference", choices=INFERENCE_METHODS,
                       default=DEFAULTS["inference"],
                       help="how the posterior is approximated (default: %(default)s)")
    model.add_argument("--inference-options", type=json_object, default=None, metavar="JSON",
                       help="the method's options as a JSON object, e.g. "
                            "'{\"n_chains\": 2, \"num_samples\": 200}' for hmc (see the "
                            "method's docstring, e.g. help(tfbnn.inference.get('hmc')))")
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=epochs, metavar="N", default=DEFAULTS["epochs"],
                       help="passes over the data, or 'auto' (default: %(default)s)")
    train.add_argument("--batch-size", type=positive_int, metavar="N",
                       default=DEFAULTS["batch_size"],
                       help="minibatch size (default: %(default)s)")
    train.add_argument("--learning-rate", type=positive_float, metavar="RATE",
                       default=DEFAULTS["learning_rate"],
                       help="Adam step size (default: %(default)s)")
    train.add_argument("--validation-fraction", type=fraction, metavar="F",
                       default=DEFAULTS["validation_fraction"],
                       help="fraction of rows held out to monitor training (default: %(default)s)")
    train.add_argument("--patience", type=positive_int, default=None, metavar="N",
                       help="stop after this many epochs without validation improvement "
                            "(needs --validation-fraction)")
    train.add_argument("--seed", type=int, default=None, metavar="N",
                       help="seeds initialisation, data order and prediction draws")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--chunk-rows", type=positive_int, default=None, metavar="N",
        help="read the file N rows at a time (three passes to settle the columns and the "
             "standardisation, then one per epoch) and train on batches shuffled within "
             "each part of N rows, so that memory does not grow with the file; not with "
             "--validation-fraction, "
             "--patience, --calibrate, --checkpoint-every or --inference hmc (default: the "
             "whole file at once)")
    train.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="N",
                       help="save training every N epochs to MODEL_DIR.checkpoint, so that a "
                            "killed fit can be continued with --resume (vi, mc_dropout, "
                            "laplace, swag with n_models=1; give --seed for a result equal "
                            "to an uninterrupted fit)")
    train.add_argument("--resume", action="store_true",
                       help="continue the fit saved by --checkpoint-every (run the same "
                            "command again with --resume)")
    _add_fit_calibration(p)


def _add_fit_calibration(p) -> None:
    """`tfbnn fit`'s calibration options."""
    calibration = p.add_argument_group(
        "calibration", "Recalibrate the uncertainty on rows that training does not see "
                       "(see 'tfbnn calibrate --help').")
    held_out = calibration.add_mutually_exclusive_group()
    held_out.add_argument("--calibrate", type=probability, default=None, metavar="FRACTION",
                          help="hold out this fraction of the rows (at random, with --seed), "
                               "fit on the rest and calibrate on them")
    held_out.add_argument("--calibration-data", type=Path, default=None, metavar="CAL.csv",
                          help="calibrate on this file instead (the training file's columns)")
    add_calibration_method(calibration, "--calibration-method")




def add_calibrate_parser(subparsers) -> None:
    """`tfbnn calibrate MODEL_DIR CAL.csv [--method METHOD]`."""
    p = add_command(
        subparsers, "calibrate", summary="recalibrate a saved model's uncertainty on held-out "
                                         "rows",
        paragraphs=[
            "Fit a calibration of a model saved by 'tfbnn fit' on labelled rows it was not "
            "trained on, and save it in the model folder (which is replaced only once this "
            "has succeeded). 'tfbnn predict' and 'tfbnn evaluate' then use it; calibrating "
            "again replaces it.",
            "Regression methods: quantile, isotonic recalibration of the predictive "
            "distribution (its quantiles and intervals); conformal and conformal_normalized, "
            "split-conformal intervals of one width or of a width that follows the "
            "predictive std, whose level-P intervals hold at least P of new rows that "
            "resemble the calibration rows. Classification: temperature, temperature "
            "scaling of the class probabilities."],
        example="tfbnn calibrate model/ calibration.csv --method conformal",
        run=run_calibrate)
    add_model_inputs(p, "CAL.csv", "labelled rows the model was not trained on")
    add_calibration_method(p, "--method")
    add_target_override(p)
    add_csv_options(p, fitted=True)




def _check_likelihood(likelihood: str, task: str) -> None:
    allowed = _REGRESSION_CHOICES if task == Task.REGRESSION else CLASSIFICATION_LIKELIHOODS
    if likelihood not in allowed:
        raise UsageError(
            f"--likelihood {likelihood} does not fit a {task} task; use one of "
            f"{', '.join(allowed)}")


def run_fit(args) -> int:
    """Trains on `args.data` and saves the model with its `cli.json` to `args.out`."""
    from tfbnn.estimators import BayesianClassifier, BayesianRegressor, calibration_method
    from tfbnn.inference import diagnostics as mcmc_diagnostics
    from tfbnn.model_folder import model_meta, read_labelled, save_model
    from tfbnn.report import format_table

    calibrating = _check_fit_options(args)
    checkpoint_dir = _checkpoint_dir(args)
    training = TrainingFile(args)
    table = training.table
    if args.task is None:
        print(f"Task: {table.task} (inferred from target column {table.target_name!r}; "
              "set --task to override)")
        _check_likelihood(args.likelihood, table.task)
        _check_calibration_method(args.calibration_method, table.task, "--calibration-method")
    meta = model_meta(table, training.encoder, args.header, args.sep)
    if args.calibration_data is not None:
        # Read before training, so that a bad file fails fast.
        X_cal, y_cal = read_labelled(args.calibration_data, meta, target=table.target_name,
                                      **read_options(args))
    elif args.calibrate is not None:
        X_cal, y_cal = training.hold_out(args.calibrate, args.seed)
    cls = BayesianClassifier if table.task == Task.CLASSIFICATION else BayesianRegressor
    estimator = cls(
        hidden_units=args.hidden_units, activation=args.activation, inference=args.inference,
        inference_options=args.inference_options, likelihood=args.likelihood, prior=args.prior,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        validation_fraction=args.validation_fraction, patience=args.patience,
        random_state=args.seed, verbose=0 if args.quiet else 1)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The summary below says whether MCMC chains mixed, and why not.
        warnings.simplefilter("ignore", mcmc_diagnostics.ConvergenceWarning)
        training.fit(estimator, checkpoint_dir=checkpoint_dir,
                     checkpoint_every=args.checkpoint_every or 1)
    seconds = time.perf_counter() - start
    if calibrating:
        estimator.calibrate(X_cal, y_cal, method=args.calibration_method)
    save_model(estimator, args.out, meta=meta)
    summary = _fit_summary(estimator, table, training.shape, seconds, args.out)
    if calibrating:
        summary.insert(-1, ("calibration", f"{calibration_method(estimator.calibrator_)} on "
                                           f"{len(y_cal)} held-out rows"))
    print(format_table(summary))
    return 0


class TrainingFile:
    """The training file of `tfbnn fit`, read at once, or in parts with `--chunk-rows`
    (`tfbnn.data.chunked`): its `table` (no rows when read in parts), the `encoder`
    state and the `shape` `(rows, encoded features)` of what is trained on."""

    def __init__(self, args):
        from tfbnn.model_folder import naming_file

        options = {"target": args.target, "task": args.task, "impute": args.impute,
                   **read_options(args)}
        with naming_file(args.data):
            if args.chunk_rows is not None:
                from tfbnn.data.chunked import scan_table

                self.scan = scan_table(args.data, chunk_rows=args.chunk_rows, **options)
                self.table, self.encoder = self.scan.table(), self.scan.encoder
                self.shape = (self.scan.n_rows, len(self.encoder["output_names"]))
                self.batches = self.scan.batches(args.batch_size, args.seed)
                return
            self.scan, self.table = None, tabular.read_table(args.data, **options)
        self.X, self.encoder = tabular.prepare_features(self.table.X, impute=self.table.impute)
        self.y = self.table.y.to_numpy()
        self.fit_rows = np.arange(len(self.y))
        self.shape = self.X.shape

    def hold_out(self, fraction: float, seed) -> tuple[np.ndarray, np.ndarray]:
        """`(X, y)` of `fraction` of the rows at random, which `fit` then leaves out."""
        self.fit_rows, cal_rows = _calibration_split(len(self.y), fraction, seed)
        self.shape = (len(self.fit_rows), self.X.shape[1])
        return self.X[cal_rows], self.y[cal_rows]

    def fit(self, estimator, **checkpoints) -> None:
        """`estimator.fit` on the training rows: arrays, or the file's batches."""
        if self.scan is None:
            estimator.fit(self.X[self.fit_rows], self.y[self.fit_rows], **checkpoints)
            return
        from tfbnn.data.cells import DataWarning
        from tfbnn.targets import class_labels

        with warnings.catch_warnings():
            # The scan has warned about the file's target, with its own rows and name.
            warnings.simplefilter("ignore", DataWarning)
            estimator.fit(self.batches)
        if self.scan.classes is not None:
            # The batches carry class indices; the labels are the file's.
            estimator.classes_ = class_labels(self.scan.classes, "tfbnn fit")[0]


def _check_fit_options(args) -> bool:
    """Refuses options that cannot work together, and an `--out` that cannot take the
    model, before the data is read; returns whether the model will be calibrated."""
    from tfbnn import inference

    if args.chunk_rows is not None:
        _check_chunked(args)
    if args.patience is not None and not args.validation_fraction:
        raise UsageError("--patience (early stopping) needs --validation-fraction > 0")
    if args.task is not None:
        _check_likelihood(args.likelihood, args.task)
    calibrating = args.calibrate is not None or args.calibration_data is not None
    if args.calibration_method is not None and not calibrating:
        raise UsageError("--calibration-method needs --calibrate or --calibration-data")
    if args.task is not None:
        _check_calibration_method(args.calibration_method, args.task, "--calibration-method")
    try:  # unknown names or bad values fail before the data is read
        inference.get(args.inference, args.inference_options)
    except ValueError as err:
        raise UsageError(f"--inference-options: {err}") from None
    check_out_folder(args.out, overwrite=args.overwrite)
    return calibrating


def _check_chunked(args) -> None:
    """Refuses what training on a file read in parts (`--chunk-rows`) cannot do."""
    refused = [("--validation-fraction", bool(args.validation_fraction)),
               ("--patience", args.patience is not None),
               ("--calibrate", args.calibrate is not None),
               ("--checkpoint-every", args.checkpoint_every is not None)]
    for option, given in refused:
        if given:
            raise UsageError(
                f"--chunk-rows trains on the file's rows as they are read and cannot hold "
                f"rows out, so {option} does not apply; hold out rows in a file of their "
                "own (--calibration-data CAL.csv, 'tfbnn evaluate'), or leave out "
                "--chunk-rows")
    if args.inference == "hmc":
        raise UsageError("--inference hmc uses every row at every step and cannot train on "
                         "a file read in parts; with --chunk-rows use sgmcmc (minibatch "
                         "sampling), vi, mc_dropout, laplace or swag")


def _checkpoint_dir(args) -> Path | None:
    """The checkpoint folder of `--checkpoint-every` (next to `--out`), after refusing
    flags that cannot work: `--resume` needs a checkpointed fit, and a fit that would
    start over an existing checkpoint needs `--resume` (or the folder removed)."""
    from tfbnn import inference
    from tfbnn.inference.base import check_resumable

    if args.checkpoint_every is None:
        if args.resume:
            raise UsageError("--resume needs --checkpoint-every (the same command as the "
                             "interrupted fit, plus --resume)")
        return None
    if args.patience is not None:
        raise UsageError("--checkpoint-every cannot be combined with --patience: early "
                         "stopping's best weights are not checkpointed")
    try:
        check_resumable(inference.get(args.inference, args.inference_options))
    except ValueError as err:
        raise UsageError(f"--checkpoint-every: {err}") from None
    folder = args.out.with_name(f"{args.out.name}.checkpoint")
    if folder.exists() and not args.resume:
        raise UsageError(f"{folder} holds the checkpoint of an interrupted fit: add --resume "
                         "to continue it, or remove the folder to start afresh")
    return folder


def _check_calibration_method(method, task: str, option: str) -> None:
    allowed = REGRESSION_CALIBRATION if task == Task.REGRESSION else CLASSIFICATION_CALIBRATION
    if method is not None and method not in allowed:
        raise UsageError(
            f"{option} {method} does not calibrate a {task} model; use one of "
            f"{', '.join(allowed)}")


def _calibration_split(n_rows: int, fraction: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """`(fit rows, calibration rows)`: `fraction` of the rows at random, seeded by `seed`."""
    n_cal = round(fraction * n_rows)
    if n_cal < 2 or n_rows - n_cal < 2:
        raise UsageError(
            f"--calibrate {fraction} of {n_rows} rows leaves {n_cal} for calibration and "
            f"{n_rows - n_cal} for fitting; each needs at least 2")
    order = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(order[n_cal:]), np.sort(order[:n_cal])


def run_calibrate(args) -> int:
    """Fits a calibrator on `args.data` and saves it into the model folder `args.model`."""
    from tfbnn.estimators import calibration_method
    from tfbnn.model_folder import load_model, read_labelled, save_model
    from tfbnn.report import format_table

    estimator, meta = load_model(args.model)
    _check_calibration_method(args.method, meta["task"], "--method")
    X, y = read_labelled(args.data, meta, target=args.target, **read_options(args, meta))
    replaced = getattr(estimator, "calibrator_", None)
    estimator.calibrate(X, y, method=args.method)
    save_model(estimator, args.model, meta=meta)
    rows = [("calibration", f"{calibration_method(estimator.calibrator_)} on {len(y)} rows")]
    if replaced is not None:
        rows.append(("replaced", calibration_method(replaced)))
    rows.append(("saved to", args.model))
    print(format_table(rows))
    return 0


def _fit_summary(estimator, table: tabular.Table, shape: tuple, seconds: float, out: Path):
    history = estimator.history_
    n_columns = table.X.shape[1]
    encoded = "" if shape[1] == n_columns else f" ({shape[1]} after one-hot encoding)"
    rows = [("rows", shape[0]), ("features", f"{n_columns}{encoded}"),
            ("target", table.target_name), ("task", table.task)]
    if table.task == Task.CLASSIFICATION:
        rows.append(("classes", ", ".join(map(str, estimator.classes_))))
    if "loss" in history:  # trained by epochs (samplers report diagnostics instead)
        epochs = len(history["loss"])
        if history.get("stopped_epoch"):
            epochs = f"{epochs} (stopped early)"
        rows.append(("epochs", epochs))
    rows.append(("training time", f"{seconds:.1f} s"))
    rows += [(f"final {name}", history[name][-1]) for name in ("nll", "kl", "loss", "val_nll")
             if history.get(name)]
    rows += _diagnostic_rows(history.get("diagnostics"))
    rows.append(("saved to", out))
    return rows


#: The sampler diagnostics `tfbnn fit` prints, as (label, key of `diagnostics_`).
DIAGNOSTIC_ROWS = (
    ("chains", "n_chains"), ("draws per chain", "num_draws_per_chain"),
    ("draws", "num_draws"), ("acceptance rate", "acceptance_rate"),
    ("divergences", "n_divergences"), ("step size", "step_size"),
    ("split R-hat, log-likelihood", "rhat_log_lik"),
    ("split R-hat, predictive mean (max)", "rhat_predictive_max"),
    ("split R-hat, parameters (max)", "rhat_params_max"),
    ("ESS, log-likelihood", "ess_log_lik"), ("ESS, predictive mean (min)", "ess_predictive_min"),
    ("ESS, parameters (median)", "ess_params_median"),
)


def _diagnostic_rows(diagnostics) -> list[tuple]:
    """The MCMC diagnostics of a sampler's fit, and whether they say the chains mixed."""
    from tfbnn.inference import diagnostics as mcmc_diagnostics

    if not diagnostics:
        return []
    rows = [(label, diagnostics[key]) for label, key in DIAGNOSTIC_ROWS if key in diagnostics]
    found = mcmc_diagnostics.problems(diagnostics)
    rows.append(("mixing", "NOT MIXED: " + "; ".join(found) if found else "no problem found"))
    return rows
