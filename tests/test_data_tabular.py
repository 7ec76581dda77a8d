import json
import re

import numpy as np
import pandas as pd
import pytest

from tfbnn.data import infer_task, prepare_features, read_table, tabular
from tfbnn.data.cells import DataWarning


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


def test_unseen_category_is_encoded_as_unknown_with_a_warning():
    train = pd.DataFrame({"colour": ["red", "blue"], "size": [1.0, 2.0]})
    _, state = prepare_features(train)
    new = pd.DataFrame({"colour": ["red", "green", "pink", "green"], "size": [3.0] * 4})
    with pytest.warns(DataWarning, match=r"'colour': 3 row\(s\) hold a category not seen "
                                         r"when fitting \(data row 2 'green', data row 3 'pink'"):
        features, _ = prepare_features(new, state)
    # Unknown: 0 in both one-hot columns; the numeric column is untouched.
    np.testing.assert_array_equal(features, [[0, 1, 3], [0, 0, 3], [0, 0, 3], [0, 0, 3]])


def test_missing_column_at_predict_time():
    _, state = prepare_features(pd.DataFrame({"a": [1.0], "b": [2.0]}))
    with pytest.raises(ValueError, match=r"Feature column 'b' is missing"):
        prepare_features(pd.DataFrame({"a": [1.0]}), state)


def test_text_in_a_numeric_column_at_predict_time():
    _, state = prepare_features(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(ValueError, match=r"'a' was numeric when fitted but holds text in 1 "
                                         r"cell\(s\): data row 2 'n/a'; .*add them to na_values"):
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


# Missing-value markers and numbers written with stray text.

# In the style of the UCI auto-mpg file: '?' marks a missing horsepower.
AUTO_MPG = """mpg,cylinders,displacement,horsepower,weight,origin,name
18.0,8,307.0,130.0,3504,1,chevrolet chevelle malibu
15.0,8,350.0,165.0,3693,1,buick skylark 320
25.0,4,98.00,?,2046,1,ford pinto
24.0,4,113.0,95.00,2372,3,toyota corona mark ii
21.0,6,200.0,?,2875,1,ford maverick
26.0,4,97.00,46.00,1835,2,volkswagen 1131 deluxe sedan
"""


def test_question_marks_read_as_the_same_features_as_empty_cells(write_csv):
    marked = read_table(write_csv(AUTO_MPG, "marked.csv"), target="mpg", impute="mean")
    empty = read_table(write_csv(AUTO_MPG.replace("?", ""), "empty.csv"), target="mpg",
                       impute="mean")
    assert marked.X["horsepower"].dtype == np.float64
    features, state = prepare_features(marked.X, impute="mean")
    expected, expected_state = prepare_features(empty.X, impute="mean")
    np.testing.assert_array_equal(features, expected)
    assert state == expected_state
    assert state["output_names"][:5] == ["cylinders", "displacement", "horsepower", "weight",
                                        "origin"]
    assert features[2, 2] == pytest.approx(np.mean([130, 165, 95, 46]))


@pytest.mark.parametrize("marker", ["?", "NA", "N/A", "NaN", "nan", ""])
def test_default_markers_are_missing_values(write_csv, marker):
    table = read_table(write_csv(f"a,b,y\n1,x,1\n{marker},y,2\n3,{marker},3\n"), target="y",
                       impute="mean")
    assert table.X["a"].dtype == np.float64
    assert table.X.isna().sum().tolist() == [1, 1]
    assert table.read_options["na_values"] == list(tabular.DEFAULT_NA_VALUES)


def test_na_values_replace_the_default_markers(write_csv):
    # As in the Ames housing data, where NA is a category ("no alley").
    path = write_csv("area,alley,y\n-999,NA,1\n2,Pave,2\n3,,3\n4,NA,4\n")
    table = read_table(path, target="y", impute="mean", na_values=["-999"])
    assert table.X["area"].isna().tolist() == [True, False, False, False]
    assert table.X["alley"].tolist()[::3] == ["NA", "NA"]
    assert table.X["alley"].isna().sum() == 1  # empty cells are always missing
    _, state = prepare_features(table.X, impute="mean")
    assert state["output_names"] == ["area", "alley=NA", "alley=Pave"]
    # One string is one marker.
    assert read_table(path, target="y", impute="mean", na_values="NA").X["alley"].isna().sum() == 3


@pytest.mark.parametrize("na_values", [3, ["?", None], {"?": 1}])
def test_na_values_of_a_wrong_type(write_csv, na_values):
    with pytest.raises(TypeError, match="na_values must be a string or a list of strings"):
        read_table(write_csv(MIXED), target="price", na_values=na_values)


def test_stray_text_in_a_numeric_column_is_named(write_csv):
    rows = "\n".join(f"{v},{i % 3}" for i, v in enumerate(
        ["1.5", "2", "-", "4", "5", "6", "n.d.", "8", "9", "10", "11", "12", "13", "14", "15",
         "16", "17", "18", "19", "20"]))
    with pytest.raises(ValueError, match=(
            r"data\.csv: column 'dose' holds numbers except in 2 of 20 cell\(s\): data row 3 "
            r"'-', data row 7 'n\.d\.'; if these mark missing values, add them to na_values "
            r"\(now \['\?', 'NA', 'N/A', 'NaN', 'nan'\] and empty cells\)")):
        read_table(write_csv("dose,y\n" + rows + "\n"), target="y")


@pytest.mark.parametrize(("cells", "numeric"), [
    (["1", "2", "3", "4", "5", "6", "7", "8", "9", "x"], True),  # 90% numbers
    ([str(i) for i in range(11)] + ["x"] * 9, True),  # 55% numbers, 11 distinct
    (["2", "3", "4", "5more"] * 5, False),  # 75% numbers, 3 distinct: categories
    (["1", "x"], False),
    (["a1", "b2", "3"], False),
])
def test_which_text_columns_count_as_numbers(cells, numeric):
    X = pd.DataFrame({"c": cells})
    if numeric:
        with pytest.raises(ValueError, match="'c' holds numbers except in"):
            prepare_features(X)
    else:
        assert prepare_features(X)[1]["columns"][0]["kind"] == "categorical"


def test_a_data_frame_mixing_numbers_and_text_is_checked_too():
    X = pd.DataFrame({"a": [float(i) for i in range(12)] + ["?"]})
    with pytest.raises(ValueError, match=r"features: column 'a' .* data row 13 '\?'"):
        prepare_features(X)


def test_stray_text_in_a_numeric_target_is_named(write_csv):
    rows = "".join(f"{i},{i * 0.5}\n" for i in range(12))
    with pytest.raises(ValueError, match=r"column 'y' holds numbers except .* data row 13 'x'"):
        read_table(write_csv("a,y\n" + rows + "12,x\n"), target="y")


def test_numeric_text_is_not_checked_when_scoring_a_fitted_model(write_csv):
    # The fitted encoder, not the file, says which columns are numbers.
    rows = "".join(f"{i},{i * 0.5}\n" for i in range(12))
    table = read_table(write_csv("a,y\n" + rows + "x,1\n"), target="y", fitting=False)
    assert table.X["a"].iloc[-1] == "x"


# Encodings and separators.


def test_a_file_in_another_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("ville,y\nZürich,1.5\nMontréal,2.5\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.csv is not utf-8 text \(line 2 has byte "
                                         r"0xfc: .*\); give its encoding, e\.g\. "
                                         r"encoding='latin-1'"):
        read_table(path, target="y")
    table = read_table(path, target="y", encoding="latin-1")
    assert table.X["ville"].tolist() == ["Zürich", "Montréal"]
    assert table.read_options["encoding"] == "latin-1"


@pytest.mark.parametrize(("encoding", "error"), [("klingon", ValueError), (8, TypeError)])
def test_unknown_encoding(write_csv, encoding, error):
    with pytest.raises(error, match="encoding"):
        read_table(write_csv(MIXED), target="price", encoding=encoding)


@pytest.mark.parametrize(("text", "sep", "hint"), [
    ("a;b;y\n1;2;3\n4;5;6\n", ",", r"use sep=';'"),
    ("a\tb\ty\n1\t2\t3\n", ",", r"use sep='\\t'"),
    ("a|b|y\n1|2|3\n", ",", r"use sep='\|'"),
    (MIXED, ";", r"use sep=','"),
])
def test_a_file_read_as_one_column_hints_at_its_separator(write_csv, text, sep, hint):
    path = write_csv(text)
    first_line = text.splitlines()[0]
    listed = re.escape(repr([first_line]))
    for target, error in [("y", rf"Target column 'y' not found .*{listed}"),
                          (0, "has only the target column"),
                          (1, "Target index 1 is out of range")]:
        with pytest.raises(ValueError, match=rf"{error}.*; its first line looks "
                                             rf".*-separated: {hint}$"):
            read_table(path, target=target, sep=sep)


def test_a_one_column_file_can_be_read(write_csv):
    # Only errors carry the hint: one column named "a;b" is a table too.
    assert list(tabular.read_frame(write_csv("a;b\n1\n")).columns) == ["a;b"]


def test_a_line_that_does_not_parse_names_the_file_and_separator(write_csv):
    with pytest.raises(ValueError, match=r"data\.csv: cannot parse as CSV with sep=',': .*line "
                                         r"3.*use sep=';'"):
        read_table(write_csv("a;b;y\n1;2;3\n1,5;2;3,5,1\n"), target="y")


@pytest.mark.parametrize(("sep", "error"), [("", ValueError), ("::", ValueError),
                                            ('"', ValueError), (None, TypeError)])
def test_separator_must_be_one_character(write_csv, sep, error):
    with pytest.raises(error, match="sep must be"):
        read_table(write_csv(MIXED), target="price", sep=sep)


def test_header_must_be_a_boolean(write_csv):
    with pytest.raises(TypeError, match="header must be True or False, got 'no'"):
        read_table(write_csv(MIXED), target="price", header="no")


def test_read_options_read_a_later_file_the_same_way(write_csv):
    path = write_csv("a;b;y\n-;x;1\n2;é;2\n3;x;3\n", "fit.csv")
    table = read_table(path, target="y", sep=";", na_values=["-"], impute="mean",
                       header=True)
    options = json.loads(json.dumps(table.read_options))
    assert options == {"header": True, "sep": ";", "na_values": ["-"], "encoding": "utf-8"}
    frame = tabular.read_frame(path, **options)
    pd.testing.assert_frame_equal(frame.drop(columns="y"), table.X)


# The target: constant, or many classes.


@pytest.mark.parametrize("task", [None, "regression", "classification"])
def test_a_constant_target_is_refused(write_csv, task):
    path = write_csv("a,y\n1,5\n2,5\n3,5\n")
    with pytest.raises(ValueError, match=r"target column 'y' holds the same value \(5\) in all "
                                         r"3 rows, so there is nothing to learn"):
        read_table(path, target="y", task=task)
    # Rows scored by a fitted model may all have one label.
    assert read_table(path, target="y", task=task or "regression", fitting=False).y.nunique() == 1


def test_many_classes_for_the_rows_warn(write_csv):
    ids = "".join(f"{i},id{i}\n" for i in range(30))
    with pytest.warns(DataWarning, match=r"classification target 'who' has 30 classes for 30 "
                                         r"rows \(1\.0 rows per class\); is it an identifier"):
        read_table(write_csv("a,who\n" + ids), target="who")
    counts = "".join(f"{i},{i}\n" for i in range(101)) * 5
    with pytest.warns(DataWarning, match=r"has 101 classes for 505 rows .*task='regression'"):
        read_table(write_csv("a,n\n" + counts), target="n", task="classification")


@pytest.mark.parametrize(("labels", "fitting"), [
    (["a", "b"] * 2, True),  # two classes: never "many"
    (["a", "b", "c"] * 5, True),  # 5 rows per class
    ([f"c{i}" for i in range(10)], False),  # scoring a fitted model
])
def test_no_class_warning(write_csv, labels, fitting, recwarn):
    text = "x,label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels))
    table = read_table(write_csv(text), target="label", task="classification", fitting=fitting)
    assert table.task == "classification"
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]


def test_repeated_feature_names_in_a_data_frame():
    X = pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])
    with pytest.raises(ValueError, match=r"names must be unique; repeated: \['a'\]"):
        prepare_features(X)
    with pytest.raises(TypeError, match="X must be a pandas DataFrame, got ndarray"):
        prepare_features(np.ones((2, 2)))
