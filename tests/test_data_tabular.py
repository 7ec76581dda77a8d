import json

import numpy as np
import pandas as pd
import pytest

from tfbnn.data import infer_task, prepare_features, read_table, tabular


@pytest.fixture
def write_csv(tmp_path):
    """Writes `text` to a CSV file in `tmp_path` and returns its path."""

    def write(text: str, name: str = "data.csv"):
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


MIXED = "size,colour,price\n1.5,red,10.0\n2.5,blue,12.5\n3.0,red,9.0\n"


# Reading and choosing the target.


def test_reads_features_and_target_by_name(write_csv):
    table = read_table(write_csv(MIXED), target="price")
    assert table.feature_names == ["size", "colour"]
    assert table.target_name == "price"
    assert table.task == "regression"
    assert table.y.dtype == np.float64
    assert table.y.tolist() == [10.0, 12.5, 9.0]
    assert isinstance(table.X, pd.DataFrame) and table.X.shape == (3, 2)


@pytest.mark.parametrize("target", [2, -1, "2", "-1"])
def test_target_by_position(write_csv, target):
    assert read_table(write_csv(MIXED), target=target).target_name == "price"


def test_first_column_as_target(write_csv):
    table = read_table(write_csv(MIXED), target=0)
    assert table.target_name == "size"
    assert table.feature_names == ["colour", "price"]


def test_a_column_named_like_a_number_wins_over_the_position(write_csv):
    path = write_csv("a,3,b\n1,2,3\n4,5,6\n")
    table = read_table(path, target="3", task="regression")
    assert table.target_name == "3"
    assert table.feature_names == ["a", "b"]


def test_without_header_columns_are_numbered(write_csv):
    table = read_table(write_csv("1.0,2.0,0.5\n3.0,4.0,1.5\n"), target=-1, header=False)
    assert table.feature_names == ["0", "1"]
    assert table.target_name == "2"
    assert table.y.tolist() == [0.5, 1.5]


def test_other_separator(write_csv):
    table = read_table(write_csv("a;b;y\n1;2;3.5\n4;5;6.5\n"), target="y", sep=";")
    assert table.feature_names == ["a", "b"]


def test_target_not_found_lists_the_columns(write_csv):
    with pytest.raises(ValueError, match=r"'cost' not found .*\['size', 'colour', 'price'\]"):
        read_table(write_csv(MIXED), target="cost")


@pytest.mark.parametrize("target", [3, -4, "3"])
def test_target_index_out_of_range(write_csv, target):
    with pytest.raises(
        ValueError, match=rf"Target index {target} is out of range for the 3 columns"
    ):
        read_table(write_csv(MIXED), target=target)


def test_target_of_a_wrong_type(write_csv):
    with pytest.raises(TypeError, match="column name or an integer"):
        read_table(write_csv(MIXED), target=1.0)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_table(tmp_path / "nowhere.csv", target="y")


def test_empty_file(write_csv):
    with pytest.raises(ValueError, match="is empty"):
        read_table(write_csv(""), target="y")


def test_header_without_rows(write_csv):
    with pytest.raises(ValueError, match="has no data rows"):
        read_table(write_csv("a,y\n"), target="y")


def test_only_a_target_column(write_csv):
    with pytest.raises(ValueError, match="only the target column 'y'; no features"):
        read_table(write_csv("y\n1.0\n2.0\n"), target="y")


@pytest.mark.parametrize("option", [{"task": "ranking"}, {"impute": "median"}])
def test_unknown_options(write_csv, option):
    with pytest.raises(ValueError, match=r"Unknown (task='ranking'|impute='median'); expected"):
        read_table(write_csv(MIXED), target="price", **option)


# The task.


def test_text_labels_are_classification_and_kept(write_csv):
    path = write_csv("x,species\n1.0,setosa\n2.0,virginica\n3.0,setosa\n")
    table = read_table(path, target="species")
    assert table.task == "classification"
    assert table.y.tolist() == ["setosa", "virginica", "setosa"]


def test_text_target_with_task_regression(write_csv):
    path = write_csv("x,species\n1.0,setosa\n2.0,virginica\n")
    with pytest.raises(
        ValueError, match=r"'species' .* not numeric \(e\.g\. 'setosa'\).*task='regression'"
    ):
        read_table(path, target="species", task="regression")


def test_explicit_task_overrides_the_guess(write_csv):
    path = write_csv("x,y\n1.0,0\n2.0,1\n3.0,1\n")
    assert read_table(path, target="y").task == "classification"
    table = read_table(path, target="y", task="regression")
    assert table.task == "regression" and table.y.dtype == np.float64


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["a", "b", "a"], "classification"),
        ([True, False, True], "classification"),
        ([0, 1, 1], "classification"),  # two values: binary labels, however few rows
        ([0.0, 1.0, 1.0], "classification"),  # integer-valued floats count as integers
        ([0, 1, 2] * 20, "classification"),  # 3 values, 20 rows each
        ([0, 1, 2] * 6, "regression"),  # 3 values but only 6 rows each
        (list(range(11)) * 30, "regression"),  # more than 10 values
        ([0.5, 1.5, 0.5], "regression"),  # not integers
        (list(np.linspace(0, 1, 50)), "regression"),
    ],
)
def test_inference_rule(values, task):
    assert infer_task(pd.Series(values)) == task


def test_categorical_dtype_is_classification():
    assert infer_task(pd.Series([1, 2, 1], dtype="category")) == "classification"


# Missing and infinite values when reading.


def test_missing_feature_names_row_and_column(write_csv):
    path = write_csv("a,b,y\n1,2,3\n4,,6\n7,8,9\n")
    with pytest.raises(
        ValueError, match=r"data\.csv: Missing value in column 'b' at data row 2 .*impute='mean'"
    ):
        read_table(path, target="y")


def test_missing_feature_allowed_when_imputing(write_csv):
    table = read_table(write_csv("a,b,y\n1,2,3\n4,,6\n7,8,9\n"), target="y", impute="mean")
    assert table.impute == "mean"
    assert table.X["b"].isna().sum() == 1


def test_missing_target_is_always_an_error(write_csv):
    path = write_csv("a,y\n1,3.0\n4,\n")
    with pytest.raises(
        ValueError, match=r"Missing value in column 'y' at data row 2 .*without a target"
    ):
        read_table(path, target="y", impute="mean")


@pytest.mark.parametrize(
    ("text", "column"),
    [("a,y\n1,3.0\n2,4.0\ninf,6.0\n", "a"), ("a,y\n1,3.0\n2,4.0\n5,-inf\n", "y")],
)
def test_infinite_value_names_row_and_column(write_csv, text, column):
    with pytest.raises(ValueError, match=rf"Infinite value in column '{column}' at data row 3"):
        read_table(write_csv(text), target="y", impute="mean")


# Encoding features.


def test_numeric_columns_pass_through():
    X = pd.DataFrame({"a": [1, 2], "b": [0.5, -1.5]})
    features, state = prepare_features(X)
    assert features.dtype == np.float64
    np.testing.assert_array_equal(features, [[1.0, 0.5], [2.0, -1.5]])
    assert state["output_names"] == ["a", "b"]


def test_one_hot_encoding_is_repeated_at_predict_time():
    train = pd.DataFrame({"colour": ["red", "blue", "red"], "size": [1.0, 2.0, 3.0]})
    features, state = prepare_features(train)
    assert state["output_names"] == ["colour=blue", "colour=red", "size"]
    np.testing.assert_array_equal(features, [[0, 1, 1], [1, 0, 2], [0, 1, 3]])
    # Columns in another order, one category absent, an extra column: same encoding.
    new = pd.DataFrame({"extra": [0], "size": [5.0], "colour": ["blue"]})
    encoded, same_state = prepare_features(new, state)
    np.testing.assert_array_equal(encoded, [[1, 0, 5]])
    assert same_state is state


def test_state_survives_json():
    train = pd.DataFrame({"flag": [True, False], "kind": pd.Categorical(["x", "y"]), "v": [1, 2]})
    _, state = prepare_features(train, impute="mean")
    restored = json.loads(json.dumps(state))
    features, _ = prepare_features(train, restored)
    np.testing.assert_array_equal(features, [[0, 1, 1, 0, 1], [1, 0, 0, 1, 2]])


def test_unseen_category_names_column_and_value():
    _, state = prepare_features(pd.DataFrame({"colour": ["red", "blue"]}))
    with pytest.raises(
        ValueError, match=r"'colour' holds 'green' at data row 2, a category not seen"
    ):
        prepare_features(pd.DataFrame({"colour": ["red", "green"]}), state)


def test_missing_column_at_predict_time():
    _, state = prepare_features(pd.DataFrame({"a": [1.0], "b": [2.0]}))
    with pytest.raises(ValueError, match=r"Feature column 'b' is missing"):
        prepare_features(pd.DataFrame({"a": [1.0]}), state)


def test_text_in_a_numeric_column_at_predict_time():
    _, state = prepare_features(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(ValueError, match=r"'a' was numeric when fitted but holds 'n/a'"):
        prepare_features(pd.DataFrame({"a": ["1.0", "n/a"]}), state)


def test_missing_value_names_row_index_and_column():
    X = pd.DataFrame({"a": [1.0, 2.0, np.nan]}, index=[10, 11, 12])
    with pytest.raises(ValueError, match=r"Missing value in column 'a' at data row 3 \(index 12"):
        prepare_features(X)


def test_infinite_value_is_an_error_even_when_imputing():
    with pytest.raises(ValueError, match=r"Infinite value in column 'a' at data row 1"):
        prepare_features(pd.DataFrame({"a": [np.inf, 1.0]}), impute="mean")


def test_mean_and_most_frequent_imputation_are_recorded():
    train = pd.DataFrame({"a": [1.0, np.nan, 5.0], "c": ["x", "y", None], "d": ["u", "u", "v"]})
    train.loc[2, "d"] = None
    features, state = prepare_features(train, impute="mean")
    assert [spec["fill"] for spec in state["columns"]] == [3.0, "x", "u"]
    np.testing.assert_array_equal(features[:, 0], [1.0, 3.0, 5.0])
    assert state["output_names"] == ["a", "c=x", "c=y", "d=u"]
    # Predict-time gaps are filled with the training values, not the new data's.
    new = pd.DataFrame({"a": [np.nan, 100.0], "c": [None, "y"], "d": [None, "u"]})
    encoded, _ = prepare_features(new, state)
    np.testing.assert_array_equal(encoded, [[3.0, 1, 0, 1], [100.0, 0, 1, 1]])


def test_predict_time_gap_without_imputation():
    _, state = prepare_features(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="Missing value in column 'a' at data row 1"):
        prepare_features(pd.DataFrame({"a": [np.nan]}), state)


def test_impute_must_agree_with_the_state():
    _, state = prepare_features(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="disagrees with the encoder state"):
        prepare_features(pd.DataFrame({"a": [1.0]}), state, impute="mean")


def test_a_column_with_nothing_to_impute_from():
    with pytest.raises(ValueError, match="'a' has no values to impute from"):
        prepare_features(pd.DataFrame({"a": [np.nan, np.nan], "b": [1, 2]}), impute="mean")


def test_read_then_prepare(write_csv):
    table = read_table(write_csv(MIXED), target="price")
    features, state = prepare_features(table.X, impute=table.impute)
    assert features.shape == (3, 3)
    assert state["output_names"] == ["size", "colour=blue", "colour=red"]


def test_read_frame_reads_a_table_without_a_target(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,x\n2,y\n")
    frame = tabular.read_frame(path)
    assert list(frame.columns) == ["a", "b"] and len(frame) == 2
    with pytest.raises(FileNotFoundError, match="No such file"):
        tabular.read_frame(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        tabular.read_frame(tmp_path / "empty.csv")
