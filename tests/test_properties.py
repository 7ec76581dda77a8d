"""Property-based tests of input handling: every input works or fails with a clear error.

`hypothesis` draws CSV files (shapes, cells with numbers, NaN and infinity,
missing-value markers and free text, column names, separators, encodings,
headers) and the options they are read with, arrays and option values for the
estimators, the metrics and `tfbnn.validation`. The property is the same
everywhere: the call succeeds with a sensible result, or raises a plain
ValueError or TypeError with a message, never another exception (a pandas
parser error, a decoding error, an IndexError from deep inside).

Estimators are fitted only on one shape and one configuration (so their
compiled code is built once); every other drawn input is meant to fail before
training.
"""

import json
import math
import re
import warnings
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import (
    HealthCheck,
    assume,
    currently_in_test_context,
    event,
    given,
    settings,
)
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfbnn import metrics, validation
from tfbnn.data import DataWarning, prepare_features, read_frame, read_table
from tfbnn.metrics import inputs

QUICK = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
FEW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_clear_error(error: Exception) -> None:
    """A plain ValueError or TypeError (not a library's subclass) with a message."""
    assert type(error) in (ValueError, TypeError), f"{type(error).__name__}: {error}"
    assert str(error).strip()


def outcome(call, *args, naming=None, **kwargs):
    """`call(...)`'s result, or None after checking that it failed clearly (and, if given,
    that the message names `naming`)."""
    try:
        result = call(*args, **kwargs)
    except (ValueError, TypeError) as error:
        assert_clear_error(error)
        assert naming is None or re.search(rf"\b{naming}\b", str(error)), str(error)
        note(f"{call.__name__}: {type(error).__name__} {' '.join(str(error).split()[:4])}")
        return None
    note(f"{call.__name__}: works")
    return result


def note(text: str) -> None:
    """Counts outcomes for `pytest --hypothesis-show-statistics`."""
    if currently_in_test_context():
        event(text)


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    """One file that each example overwrites (function-scoped tmp_path does not suit @given)."""
    return tmp_path_factory.mktemp("properties") / "drawn.csv"


# -- the CSV reader ----------------------------------------------------------------------

SEPARATORS = [",", ";", "\t", "|", " "]
ENCODINGS = ["utf-8", "latin-1", "cp1252", "utf-16"]
MARKERS = ["?", "NA", "N/A", "NaN", "nan", "", "-", "null", "inf", "-inf", "True", "1e400"]

cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10**6, 10**6),
    st.sampled_from(MARKERS),
    st.text(max_size=5),  # any characters: separators, quotes, line breaks, accents
    st.booleans(),
)
names = st.one_of(st.text(max_size=5), st.sampled_from(["y", "0", "1", "-1", "a b", "é"]))
COLUMN_KINDS = {
    "numbers": st.floats(-1e3, 1e3),
    "labels": st.sampled_from(["red", "blue", "Zürich", "a,b", 'say "hi"', "3"]),
    "anything": cells,
}


def often(draw, value, strategy):
    """`value` nine times in ten, else a draw from `strategy` (rare defects, as in real files)."""
    return value if draw(st.integers(0, 9)) != 5 else draw(strategy)  # 0 and 9 come often


@st.composite
def tables(draw):
    """A DataFrame of drawn columns (numbers, labels or anything, each with the odd drawn
    cell); 1-4 columns whose names may repeat, 1-8 rows (now and then none)."""
    n_columns = draw(st.integers(1, 4))
    n_rows = often(draw, draw(st.integers(1, 8)), st.just(0))
    columns = draw(st.lists(names, min_size=n_columns, max_size=n_columns))
    kinds = [COLUMN_KINDS[draw(st.sampled_from(sorted(COLUMN_KINDS)))] for _ in columns]
    rows = [[often(draw, draw(kind), cells) for kind in kinds] for _ in range(n_rows)]
    return pd.DataFrame(rows, columns=columns, dtype=object)


@st.composite
def csv_cases(draw):
    """`(bytes of a CSV file, keywords of read_table)`: a drawn table as pandas writes it
    and the options it is read with, mostly the right ones; now and then arbitrary bytes
    or a wrong option."""
    frame = draw(tables())
    sep, encoding, header = (draw(st.sampled_from(SEPARATORS)), draw(st.sampled_from(ENCODINGS)),
                             draw(st.booleans()))
    content = frame.to_csv(sep=sep, index=False, header=header).encode(encoding, "replace")
    n_columns = frame.shape[1]
    target = draw(st.integers(-n_columns, n_columns - 1))
    if header and draw(st.booleans()):
        target = str(frame.columns[target])
    keywords = {
        "target": often(draw, target, st.one_of(names, st.sampled_from([9, 1.5, None, True]))),
        "header": often(draw, header, st.sampled_from([not header, "no", None, np.True_])),
        "sep": often(draw, sep, st.sampled_from([*SEPARATORS, "", "::", '"', None])),
        "encoding": often(draw, encoding, st.sampled_from([*ENCODINGS, "klingon", 8])),
        "na_values": often(draw, ("?", "NA", "N/A", "NaN", "nan"), st.one_of(
            st.lists(st.sampled_from(MARKERS), max_size=3), st.sampled_from(["?", 3, [None]]))),
        "task": often(draw, None, st.sampled_from(["regression", "classification", "ranking"])),
        "impute": often(draw, draw(st.sampled_from([None, "mean"])), st.just("median")),
        "fitting": draw(st.booleans()),
    }
    return often(draw, content, st.binary(max_size=80)), keywords


@QUICK
@given(case=csv_cases())
def test_reading_any_file_works_or_fails_clearly(csv_path, case):
    content, keywords = case
    csv_path.write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stray pandas or numpy warnings either
        warnings.simplefilter("ignore", DataWarning)
        table = outcome(read_table, csv_path, **keywords)
        if table is None:
            return
        assert len(table.X) == len(table.y) > 0
        assert table.task in ("regression", "classification")
        assert table.target_name not in table.feature_names
        encoded = outcome(prepare_features, table.X, impute=table.impute)
        if encoded is None:
            return
        features, state = encoded
        assert features.shape[0] == len(table.X) and features.dtype == np.float64
        assert np.isfinite(features).all()
        # A model reads the same file again, through its saved options and JSON state.
        options = json.loads(json.dumps(table.read_options))
        frame = read_frame(csv_path, **options)
        again, _ = prepare_features(frame[table.feature_names], json.loads(json.dumps(state)))
    np.testing.assert_array_equal(again, features)


@QUICK
@given(frame=tables(), sep=st.sampled_from(SEPARATORS), encoding=st.sampled_from(ENCODINGS))
def test_a_written_table_reads_back_its_shape(csv_path, frame, sep, encoding):
    frame.columns = [f"c{i}" for i in range(frame.shape[1])]  # names are the other test's
    # pandas writes a lone carriage return unquoted and reads it as a line break.
    frame = frame.map(lambda cell: cell.replace("\r", " ") if isinstance(cell, str) else cell)
    csv_path.write_bytes(frame.to_csv(sep=sep, index=False).encode(encoding, "replace"))
    read = outcome(read_frame, csv_path, sep=sep, encoding=encoding)
    if read is not None and sep != " ":  # cells of spaces merge with a space separator
        assert read.shape == frame.shape


# -- the estimators' input checks ----------------------------------------------------------

N_ROWS, N_FEATURES = 8, 2
ESTIMATOR_BASE = {"hidden_units": (2,), "epochs": 1, "n_samples": 2, "random_state": 0}


def corrupt(draw, array: np.ndarray) -> object:
    """`array` as given, or with a drawn defect: NaN, infinity, text, another dtype or shape."""
    kind = draw(st.sampled_from(["same", "nan", "inf", "text", "int", "bool", "complex",
                                 "object", "shape", "empty", "scalar", "list", "frame"]))
    if kind in ("nan", "inf", "text"):
        # (Numbers stay float64: see test_infinite_target_in_an_object_array.)
        array = array.astype(object if kind == "text" or array.dtype.kind == "U" else float)
        index = tuple(draw(st.integers(0, n - 1)) for n in array.shape)
        array[index] = {"nan": np.nan, "inf": -np.inf, "text": "?"}[kind]
        return array
    if kind in ("int", "bool", "complex", "object"):
        if array.dtype.kind == "U":  # labels: their codes in another dtype
            array = np.unique(array, return_inverse=True)[1]
        return array.astype({"int": np.int64, "bool": bool, "complex": complex,
                             "object": object}[kind])
    if kind == "shape":
        shape = draw(st.lists(st.integers(0, 3), min_size=0, max_size=3))
        return np.ones(shape)
    if kind == "empty":
        return np.empty((0,) + array.shape[1:])
    if kind == "scalar":
        return draw(st.sampled_from([1.0, "x", None]))
    if kind == "list":
        return array.tolist()
    if kind == "frame" and array.ndim == 2:
        frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
        if draw(st.booleans()):
            frame["x0"] = frame["x0"].astype(str)
        return frame
    return array


@st.composite
def fit_inputs(draw, classes: bool):
    rng = np.random.default_rng(draw(st.integers(0, 3)))
    X = rng.normal(size=(N_ROWS, N_FEATURES))
    y = np.resize(["cat", "dog"], N_ROWS) if classes else rng.normal(size=N_ROWS)
    return corrupt(draw, X), corrupt(draw, y)


@pytest.fixture(scope="module")
def estimators():
    from tfbnn import BayesianClassifier, BayesianRegressor

    return BayesianRegressor, BayesianClassifier


def check_fit(estimator, X, y) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's and Keras's notes are not the subject
        fitted = outcome(estimator.fit, X, y)
        if fitted is not None:
            prediction = fitted.predict(np.zeros((3, N_FEATURES)))
            assert len(prediction) == 3


@FEW
@given(data=fit_inputs(classes=False))
def test_regressor_fit_inputs(estimators, data):
    check_fit(estimators[0](**ESTIMATOR_BASE), *data)


@FEW
@given(data=fit_inputs(classes=True))
def test_classifier_fit_inputs(estimators, data):
    check_fit(estimators[1](**ESTIMATOR_BASE), *data)


@st.composite
def predict_inputs(draw):
    rows = draw(st.integers(1, 4))
    return corrupt(draw, np.ones((rows, draw(st.sampled_from([N_FEATURES, 1, 3])))))


@pytest.fixture(scope="module")
def fitted_regressor(estimators):
    X = np.random.default_rng(0).normal(size=(N_ROWS, N_FEATURES))
    return estimators[0](**ESTIMATOR_BASE).fit(X, X[:, 0])


@FEW
@given(X=predict_inputs(), n_samples=st.sampled_from([None] * 6 + [2, 0, -1, 1.5, "3", True]))
def test_predict_inputs(fitted_regressor, X, n_samples):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictive = outcome(fitted_regressor.predict_distribution, X, n_samples)
    if predictive is not None:
        assert predictive.mean.shape == (len(X),) and np.isfinite(predictive.std).all()


BAD_VALUES = st.sampled_from([0, -1, 1.5, "1", None, True, math.nan, math.inf, [1], (), "relu6"])
HYPERPARAMETERS = ["hidden_units", "activation", "epochs", "batch_size", "learning_rate",
                   "n_samples", "validation_fraction", "patience", "likelihood", "prior",
                   "inference", "inference_options", "optimizer"]


@FEW
@given(bad=st.dictionaries(st.sampled_from(HYPERPARAMETERS), BAD_VALUES, max_size=3))
def test_estimator_options(estimators, bad):
    X = np.random.default_rng(0).normal(size=(N_ROWS, N_FEATURES))
    check_fit(estimators[0](**{**ESTIMATOR_BASE, **bad}), X, X[:, 0])


# -- the metrics' inputs -------------------------------------------------------------------

arrays = st.one_of(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
               elements=st.one_of(st.floats(-1e100, 1e100),  # (squares overflow beyond)
                                  st.sampled_from([math.nan, math.inf, -math.inf]))),
    hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.integers(-3, 3)),
    st.lists(st.floats(-5, 5), max_size=4),
    st.sampled_from([None, "x", 1.0, ["a", "b"], [[1.0], [1.0, 2.0]]]),
)
predictions = st.one_of(arrays, st.tuples(arrays, arrays), st.tuples(arrays))
REGRESSION_METRICS = [metrics.rmse, metrics.mae, metrics.nll, metrics.crps, metrics.coverage,
                      metrics.interval_width, metrics.interval_score, metrics.calibration_error,
                      metrics.pit_values, metrics.sharpness]
CLASSIFICATION_METRICS = [metrics.accuracy, metrics.brier_score,
                          metrics.expected_calibration_error]


def is_empty(values) -> bool:
    """Whether `values` (or a part of a tuple of them) holds no examples."""
    if isinstance(values, tuple):
        return any(is_empty(part) for part in values)
    return len(values) == 0 if isinstance(values, list) else getattr(values, "size", 1) == 0


@QUICK
@given(metric=st.sampled_from(REGRESSION_METRICS + CLASSIFICATION_METRICS), y_true=arrays,
       y_pred=predictions)
def test_metrics_inputs(metric, y_true, y_pred):
    # No examples at all: see test_metrics_of_no_examples.
    assume(not is_empty(y_pred if metric is metrics.sharpness else y_true))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if metric is metrics.sharpness:
            value = outcome(metric, y_pred)
        else:
            value = outcome(metric, y_true, y_pred)
    if value is not None and np.ndim(value) == 0:
        assert not math.isnan(value)


@QUICK
@given(y_true=arrays, y_pred=predictions, level=st.floats(allow_nan=True))
def test_metric_input_helpers(y_true, y_pred, level):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outcome(inputs.match_targets, y_true, np.zeros(3))
        outcome(inputs.mean_std, y_pred, "nll")
        outcome(inputs.bounds, y_pred, level, "coverage")
        outcome(inputs.class_probs, y_pred)
        outcome(inputs.probs_and_index, y_true, y_pred)


# -- tfbnn.validation ---------------------------------------------------------------------

anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4),
    st.lists(st.integers(), max_size=3), st.complex_numbers(), st.fractions(),
    st.decimals(allow_nan=False), st.just(Decimal("NaN")),  # (not signalling NaN) hnp.arrays(np.float64, hnp.array_shapes(max_dims=2)),
    st.sampled_from([np.float32(1.5), np.int64(3), np.bool_(True), Fraction(1, 3)]),
)
CHECKS = [validation.check_int, validation.check_positive, validation.check_non_negative,
          validation.check_finite, validation.check_fraction, validation.check_probability]


@QUICK
@given(check=st.sampled_from(CHECKS), value=anything)
def test_number_checks(check, value):
    result = outcome(check, "option", value, naming="option")
    if result is not None:
        assert isinstance(result, int | float) and math.isfinite(result)


@QUICK
@given(value=anything.filter(lambda v: not isinstance(v, np.ndarray)),
       allowed=st.lists(st.sampled_from(["a", "b", None, 1]), max_size=3))
def test_option_check(value, allowed):
    result = outcome(validation.check_option, "option", value, allowed, naming="option")
    if result is not None:
        assert result in allowed


@QUICK
@given(value=st.one_of(anything, arrays), allow_scalar=st.booleans())
def test_finite_array(value, allow_scalar):
    result = outcome(validation.finite_array, "values", value, allow_scalar, naming="values")
    if result is not None:
        assert result.dtype == np.float64 and np.isfinite(result).all()


# -- found by the properties above, in files of other owners (see the report) -------------


@pytest.mark.parametrize("check", [validation.check_positive, validation.finite_array])
def test_huge_integers(check):
    outcome(check, "option", 10**400, naming="option")


def test_option_check_of_an_array():
    outcome(validation.check_option, "option", np.array([1, 2]), ["a"], naming="option")


def test_infinite_target_in_an_object_array(estimators):
    X = np.random.default_rng(0).normal(size=(N_ROWS, N_FEATURES))
    y = np.array([-np.inf, *X[1:, 0]], dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        outcome(estimators[0](**ESTIMATOR_BASE).fit, X, y, naming="y")


@pytest.mark.parametrize("metric", [metrics.rmse, metrics.crps, metrics.nll])
def test_metrics_of_no_examples(metric):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outcome(metric, [], ([], []) if metric is not metrics.rmse else [], naming="y_true")


@pytest.mark.parametrize("other", [1, None])
def test_labels_of_mixed_types(estimators, other):
    X = np.random.default_rng(0).normal(size=(N_ROWS, N_FEATURES))
    y = np.array(["cat", other] * (N_ROWS // 2), dtype=object)
    outcome(estimators[1](**ESTIMATOR_BASE).fit, X, y, naming="y")
