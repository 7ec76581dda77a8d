import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tfbnn.data import UCI_DATASETS, default_data_dir, load_uci
from tfbnn.data.uci import find_data_dir, search_path

# Rows, features, splits and hidden units as tabled in the data folder's README.
EXPECTED = {
    "boston": (506, 13, 20, 50),
    "concrete": (1030, 8, 20, 50),
    "energy": (768, 8, 20, 50),
    "kin8nm": (8192, 8, 20, 50),
    "naval": (11934, 16, 20, 50),
    "power": (9568, 4, 20, 50),
    "protein": (45730, 9, 5, 100),
    "wine": (1599, 11, 20, 50),
    "yacht": (308, 6, 20, 50),
}


@pytest.fixture(scope="module")
def uci_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "uci"
    path = Path(os.environ.get("TFBNN_UCI_DIR", default))
    if not path.is_dir():
        pytest.skip(f"UCI data folder {path} not found; set TFBNN_UCI_DIR to run these tests")
    return path


@pytest.fixture
def yacht_copy(uci_dir, tmp_path) -> Path:
    """A private copy of the small yacht folder that a test may break."""
    shutil.copytree(uci_dir / "yacht", tmp_path / "yacht")
    return tmp_path / "yacht"


def test_the_nine_names():
    assert sorted(UCI_DATASETS) == sorted(EXPECTED)


@pytest.mark.parametrize("name", UCI_DATASETS)
def test_loads_each_data_set_with_its_protocol(uci_dir, name):
    rows, features, splits, hidden = EXPECTED[name]
    data = load_uci(name, data_dir=uci_dir)
    assert data.name == name
    assert data.X.shape == (rows, features) and data.X.dtype == np.float64
    assert data.y.shape == (rows,) and data.y.dtype == np.float64
    assert (data.n_splits, data.n_hidden) == (splits, hidden)
    assert data.n_epochs == (20 if name == "protein" else 40)
    for k in range(data.n_splits):
        train, test = data.split_indices(k)
        assert len(train) + len(test) == rows
        assert not np.intersect1d(train, test).size


def test_split_returns_the_indexed_rows(uci_dir):
    data = load_uci("yacht", data_dir=uci_dir)
    train, test = data.split_indices(3)
    X_train, y_train, X_test, y_test = data.split(3)
    np.testing.assert_array_equal(X_train, data.X[train])
    np.testing.assert_array_equal(y_test, data.y[test])
    assert X_train.shape == (277, 6) and X_test.shape == (31, 6)
    assert y_train.shape == (277,)


def test_target_is_the_column_named_in_index_target(uci_dir):
    data = load_uci("concrete", data_dir=uci_dir)
    # First row of the file: 540 kg/m3 cement, 28 days old, 79.99 MPa.
    assert data.X[0, 0] == 540.0 and data.X[0, 7] == 28.0
    assert data.y[0] == pytest.approx(79.99)


@pytest.mark.parametrize("k", [-1, 20])
def test_split_out_of_range(uci_dir, k):
    data = load_uci("yacht", data_dir=uci_dir)
    with pytest.raises(ValueError, match=r"Split k=.* expected 0 <= k < 20"):
        data.split(k)


def test_split_index_must_be_an_integer(uci_dir):
    data = load_uci("yacht", data_dir=uci_dir)
    with pytest.raises(TypeError, match="integer"):
        data.split_indices(1.0)


def test_data_dir_from_environment(uci_dir, monkeypatch):
    monkeypatch.setenv("TFBNN_UCI_DIR", str(uci_dir))
    assert default_data_dir() == uci_dir
    assert load_uci("yacht").X.shape == (308, 6)


def test_without_the_environment_variable_the_search_starts_in_the_user_cache(monkeypatch,
                                                                             tmp_path):
    monkeypatch.delenv("TFBNN_UCI_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert search_path()[0] == tmp_path / "tfbnn" / "uci"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert search_path()[0] == Path.home() / ".cache" / "tfbnn" / "uci"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "tfbnn" / "uci").mkdir(parents=True)
    assert default_data_dir() == find_data_dir() == tmp_path / "tfbnn" / "uci"


def test_the_data_beside_the_project_are_found_without_set_up(uci_dir, monkeypatch, tmp_path):
    # As the Makefile has it: ../shared/data/uci from the project folder one works in.
    monkeypatch.delenv("TFBNN_UCI_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty_cache"))
    shared = tmp_path / "shared" / "data" / "uci"
    shutil.copytree(uci_dir / "yacht", shared / "yacht")
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert search_path()[:2] == [tmp_path / "empty_cache" / "tfbnn" / "uci", shared]
    assert default_data_dir() == find_data_dir() == shared
    assert load_uci("yacht").path == shared / "yacht"
    # And beside tfbnn's own source folder, wherever one works.
    source = Path(__file__).resolve().parents[1]
    assert search_path()[-1] == source.parent / "shared" / "data" / "uci"


def test_no_data_folder_anywhere_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.delenv("TFBNN_UCI_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    places = [tmp_path / "cache" / "tfbnn" / "uci", tmp_path.parent / "shared" / "data" / "uci"]
    monkeypatch.setattr("tfbnn.data.uci.search_path", lambda: places)
    with pytest.raises(FileNotFoundError) as error:
        load_uci("yacht")
    message = str(error.value)
    assert f"UCI data folder not found: none of {places[0]}, {places[1]} exists" in message
    assert "--data-dir" in message and "$TFBNN_UCI_DIR" in message


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown name='mnist'; expected one of \['boston'"):
        load_uci("mnist", data_dir=tmp_path)


def test_missing_folder_says_where_it_looked(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"(?s)'yacht' not found.*data_dir argument.*TFBNN_UCI_DIR"
    ):
        load_uci("yacht", data_dir=tmp_path)


def test_missing_folder_names_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TFBNN_UCI_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"nowhere.*\$TFBNN_UCI_DIR"):
        load_uci("yacht")


def test_missing_split_file(yacht_copy):
    (yacht_copy / "index_test_7.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"Missing file .*index_test_7\.txt"):
        load_uci("yacht", data_dir=yacht_copy.parent)


def test_malformed_number_names_file_and_line(yacht_copy):
    data_file = yacht_copy / "data.txt"
    lines = data_file.read_text().splitlines()
    lines[4] = lines[4].replace("0.568", "0.5x8", 1)
    data_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"data\.txt, line 5: '0\.5x8' is not a finite number"):
        load_uci("yacht", data_dir=yacht_copy.parent)


def test_non_finite_number_names_file_and_line(yacht_copy):
    data_file = yacht_copy / "data.txt"
    lines = data_file.read_text().splitlines()
    lines[9] = "nan " + lines[9].split(maxsplit=1)[1]
    data_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"data\.txt, line 10: 'nan' is not a finite number"):
        load_uci("yacht", data_dir=yacht_copy.parent)


def test_ragged_row_names_file_and_line(yacht_copy):
    data_file = yacht_copy / "data.txt"
    lines = data_file.read_text().splitlines()
    lines[2] = lines[2].rsplit(maxsplit=1)[0]
    data_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"data\.txt, line 3: expected 7 numbers, found 6"):
        load_uci("yacht", data_dir=yacht_copy.parent)


def test_row_index_out_of_range(yacht_copy):
    with (yacht_copy / "index_train_2.txt").open("a") as file:
        file.write("308\n")
    with pytest.raises(
        ValueError, match=r"index_train_2\.txt: row index 308 is not an integer in \[0, 308\)"
    ):
        load_uci("yacht", data_dir=yacht_copy.parent)


def test_feature_index_out_of_range(yacht_copy):
    (yacht_copy / "index_features.txt").write_text("0\n1\n9\n")
    with pytest.raises(ValueError, match=r"index_features\.txt: column index 9"):
        load_uci("yacht", data_dir=yacht_copy.parent)


def test_train_and_test_overlap(yacht_copy):
    first_test_row = (yacht_copy / "index_test_0.txt").read_text().split()[0]
    with (yacht_copy / "index_train_0.txt").open("a") as file:
        file.write(f"{first_test_row}\n")
    with pytest.raises(ValueError, match=r"Split 0 of .* overlaps: 1 rows .*index_train_0\.txt"):
        load_uci("yacht", data_dir=yacht_copy.parent)


def test_protocol_file_must_hold_one_positive_integer(yacht_copy):
    (yacht_copy / "n_splits.txt").write_text("2.5\n")
    with pytest.raises(ValueError, match=r"n_splits\.txt must hold one positive integer"):
        load_uci("yacht", data_dir=yacht_copy.parent)


def test_empty_file(yacht_copy):
    (yacht_copy / "index_target.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"index_target\.txt holds no numbers"):
        load_uci("yacht", data_dir=yacht_copy.parent)


def test_fewer_splits_in_a_private_copy(yacht_copy):
    (yacht_copy / "n_splits.txt").write_text("3\n")
    data = load_uci("yacht", data_dir=yacht_copy.parent)
    assert data.n_splits == 3
    with pytest.raises(ValueError, match="expected 0 <= k < 3"):
        data.split(3)
