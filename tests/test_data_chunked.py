"""A training file read in parts (`tfbnn.data.chunked`) is settled as the whole file is:
the same task, encoder state, encoded rows, errors and warnings as `read_table` and
`prepare_features`, with memory that does not grow with the file."""

import json
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest

from tfbnn.data import chunked, prepare_features, read_table
from tfbnn.data.cells import DataWarning

PARTS = (7, 40, 10_000)  # several parts with a part boundary inside every run; one part


def _mixed(n=97, seed=0) -> pd.DataFrame:
    """Columns of every kind: numbers with gaps, text, integers, booleans, and a column
    that is numbers in the first parts and text later (text in the whole file)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "a": rng.normal(size=n), "b": np.resize(["x", "y", "z", "x"], n),
        "c": rng.integers(0, 5, n), "d": np.resize([True, False, True], n),
        "e": np.resize(["1", "2", "3.50", "x"], n)})
    frame.loc[[3, 50], "a"] = np.nan
    frame.loc[[7, 60], "b"] = np.nan
    frame.loc[:45, "e"] = "05"  # read as the number 5 in a part of its own
    return frame.assign(y=frame.a.fillna(0) + rng.normal(scale=0.1, size=n),
                        label=np.where(rng.random(n) > 0.5, "dog", "cat"))


def _whole(path, **options):
    table = read_table(path, **options)
    X, encoder = prepare_features(table.X, impute=table.impute)
    return table, X, encoder


def _same_encoder(got: dict, expected: dict) -> None:
    """Equal states, except that an imputed mean may differ in its last digits (it is summed
    part by part)."""
    got, expected = json.loads(json.dumps(got)), json.loads(json.dumps(expected))
    fills = [(g.pop("fill"), e.pop("fill"))
             for g, e in zip(got["columns"], expected["columns"], strict=True)]
    assert json.dumps(got) == json.dumps(expected)
    for g, e in fills:
        assert g == pytest.approx(e, rel=1e-12) if isinstance(e, float) else g == e


@pytest.mark.parametrize("chunk_rows", PARTS)
@pytest.mark.parametrize("target, impute", [("y", "mean"), ("label", "mean")])
def test_parts_settle_the_file_as_a_whole_read(tmp_path, chunk_rows, target, impute):
    path = tmp_path / "mixed.csv"
    _mixed().drop(columns="label" if target == "y" else "y").to_csv(path, index=False)
    table, X, encoder = _whole(path, target=target, impute=impute)
    scan = chunked.scan_table(path, target=target, impute=impute, chunk_rows=chunk_rows)
    assert (scan.task, scan.target_name, scan.n_rows) == (table.task, target, len(X))
    assert scan.feature_names == table.feature_names and scan.read_options == table.read_options
    assert "05" in next(c for c in encoder["columns"] if c["name"] == "e")["categories"]
    _same_encoder(scan.encoder, encoder)
    parts = list(scan.parts())
    np.testing.assert_allclose(np.concatenate([x for x, _ in parts]), X, rtol=1e-12)
    y = np.concatenate([y for _, y in parts])
    if scan.classes is None:
        np.testing.assert_array_equal(y, table.y.to_numpy())
    else:
        np.testing.assert_array_equal(scan.classes[y], table.y.to_numpy())


def test_integer_labels_keep_their_type_and_the_task_is_inferred_as_at_once(tmp_path):
    rng = np.random.default_rng(1)
    for values, expected in (([0, 1], "classification"), (range(30), "regression"),
                             ([0.5, 1.5], "regression")):
        path = tmp_path / "ints.csv"
        pd.DataFrame({"x": rng.normal(size=90), "k": np.resize(list(values), 90)}).to_csv(
            path, index=False)
        table = read_table(path, target="k")
        scan = chunked.scan_table(path, target="k", chunk_rows=8)
        assert scan.task == table.task == expected
        if expected == "classification":
            assert scan.classes.dtype == table.y.dtype
            assert scan.classes.tolist() == sorted(table.y.unique().tolist())


def test_reading_options_apply_to_every_part(tmp_path):
    path = tmp_path / "latin.csv"
    rows = [f"{i};{'é' if i % 2 else 'ü'};{'-9' if i == 17 else i % 3};{i * 0.5}" for i in range(40)]
    path.write_bytes(("a;b;c;y\n" + "\n".join(rows) + "\n").encode("latin-1"))
    options = {"target": "y", "sep": ";", "encoding": "latin-1", "na_values": ["-9"],
               "impute": "mean"}
    _, X, encoder = _whole(path, **options)
    scan = chunked.scan_table(path, chunk_rows=6, **options)
    _same_encoder(scan.encoder, encoder)
    np.testing.assert_allclose(np.concatenate([x for x, _ in scan.parts()]), X, rtol=1e-12)
    # The same without a header: columns named by position.
    headless = tmp_path / "headless.csv"
    headless.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    _, X, encoder = _whole(headless, **{**options, "target": -1}, header=False)
    scan = chunked.scan_table(headless, chunk_rows=6, **{**options, "target": -1}, header=False)
    _same_encoder(scan.encoder, encoder)


# -- every rule that looks at whole columns, and its error, through parts --------------------


def _bad_files():
    """`(frame, read options)` that `read_table` or `prepare_features` refuse, each problem
    placed after the first parts."""
    base = _mixed(120).drop(columns="label")
    stray = base.assign(a=base.a.fillna(1.0).astype(object))
    stray.loc[[70, 90], "a"] = "?"  # numbers with stray cells, '?' not a marker here
    few_numbers = base.assign(b=np.resize(["x", "y", "7"], 120))  # categories, some numbers
    many_numbers = base.assign(b=[str(i) if i % 3 else "n/a" for i in range(120)])
    missing = base.assign(c=base.c.astype(float))
    missing.loc[[80, 81], "c"] = np.nan
    infinite = base.assign(c=base.c.astype(float))
    infinite.loc[100, "c"] = np.inf
    no_target = base.copy()
    no_target.loc[110, "y"] = np.nan
    constant = base.assign(y=3.0)
    text_target = base.assign(y=np.resize(["low", "high"], 120))
    text_target.loc[100, "y"] = "3"
    return {
        "stray cells": (stray, {"na_values": ["NA"]}),
        "many distinct numbers": (many_numbers, {"na_values": ["NA"], "impute": "mean"}),
        "categories with some numbers": (few_numbers, {"impute": "mean"}),
        "missing feature": (missing, {}),
        "infinite feature": (infinite, {"impute": "mean"}),
        "missing target": (no_target, {"impute": "mean"}),
        "constant target": (constant, {"impute": "mean"}),
        "text target": (text_target, {"impute": "mean", "task": "regression"}),
    }


@pytest.mark.parametrize("case", list(_bad_files()))
def test_whole_column_rules_and_their_errors_are_those_of_a_whole_read(tmp_path, case):
    frame, options = _bad_files()[case]
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    try:
        _whole(path, target="y", **options)
        expected = None
    except ValueError as err:
        expected = str(err)
    for chunk_rows in (9, 1000):
        if expected is None:  # accepted: the same encoding
            _same_encoder(chunked.scan_table(path, target="y", chunk_rows=chunk_rows,
                                             **options).encoder, _whole(path, target="y",
                                                                        **options)[2])
            continue
        with pytest.raises(ValueError) as got:
            chunked.scan_table(path, target="y", chunk_rows=chunk_rows, **options)
        assert str(got.value) == expected
    assert (expected is None) == (case == "categories with some numbers")


def test_many_classes_warn_as_for_a_whole_read(tmp_path):
    path = tmp_path / "ids.csv"
    pd.DataFrame({"x": np.arange(300.0), "id": [f"u{i}" for i in range(300)]}).to_csv(
        path, index=False)
    with pytest.warns(DataWarning, match="'id' has 300 classes for 300 rows"):
        chunked.scan_table(path, target="id", chunk_rows=50)


def test_target_and_file_errors(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("a;b\n1;2\n3;4\n")
    with pytest.raises(ValueError, match="only the target column 'a;b'.*use sep=';'"):
        chunked.scan_table(path, target="a;b", chunk_rows=1)
    with pytest.raises(ValueError, match="not found.*use sep=';'"):
        chunked.scan_table(path, target="a", chunk_rows=1)
    with pytest.raises(ValueError, match="Target column 'z' not found"):
        chunked.scan_table(path, target="z", sep=";", chunk_rows=1)
    with pytest.raises(ValueError, match="chunk_rows"):
        chunked.scan_table(path, target="a", sep=";", chunk_rows=0)
    with pytest.raises(FileNotFoundError):
        chunked.scan_table(tmp_path / "none.csv", target="a", chunk_rows=5)


# -- batches ---------------------------------------------------------------------------------


def test_batches_hold_every_row_once_per_pass_shuffled_within_parts(tmp_path):
    path = tmp_path / "mixed.csv"
    _mixed().drop(columns="label").to_csv(path, index=False)
    _, X, _ = _whole(path, target="y", impute="mean")
    scan = chunked.scan_table(path, target="y", impute="mean", chunk_rows=40)
    batches = scan.batches(batch_size=16, seed=0)
    first, second = list(batches()), list(batches())
    assert [len(x) for x, _ in first] == [16] * 6 + [1]  # leftovers join the next part
    for one_pass in (first, second):
        rows = np.concatenate([x for x, _ in one_pass])
        assert rows.dtype == np.float32
        # Every row once, and the first part's rows in the first batches.
        np.testing.assert_allclose(np.sort(rows, axis=0), np.sort(X.astype(np.float32), axis=0))
        assert {tuple(r) for r in rows[:40]} == {tuple(r) for r in X[:40].astype(np.float32)}
    assert not np.array_equal(first[0][0], second[0][0])  # each pass shuffles anew
    with pytest.raises(ValueError, match="batch_size"):
        scan.batches(0)


def test_memory_of_a_scan_and_a_pass_does_not_grow_with_the_rows(tmp_path):
    def peak(n_rows):
        path = tmp_path / f"rows{n_rows}.csv"
        _mixed(n_rows).drop(columns="label").to_csv(path, index=False)
        tracemalloc.start()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                scan = chunked.scan_table(path, target="y", impute="mean", chunk_rows=500)
                for _ in scan.batches(64)():
                    pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(2_000), peak(40_000)
    # The whole table of 40,000 rows holds more than 4 MB in pandas alone.
    assert large < 1.5 * small + 500_000, (small, large)
