"""Atomic writes leave the old file or the whole new one, with the usual permissions; a
model save may only replace a new, empty or model folder."""

import os

import pytest

from tfbnn.files import check_model_destination, write_atomic, write_text_atomic


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_write_atomic_gives_the_usual_permissions_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    write_text_atomic(path, "één\n")
    assert path.read_text(encoding="utf-8") == "één\n"
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    write_atomic(path, lambda temp: temp.write_text("new"))
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def fail(temp):
        temp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_model_destination(tmp_path):
    check_model_destination(tmp_path / "new", "tfbnn.json")
    (tmp_path / "empty").mkdir()
    check_model_destination(tmp_path / "empty", "tfbnn.json")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "tfbnn.json").write_text("{}")
    check_model_destination(tmp_path / "model", "tfbnn.json")
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError, match="is an existing file, not a model folder"):
        check_model_destination(tmp_path / "file", "tfbnn.json")
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="holds other files, not a tfbnn model"):
        check_model_destination(tmp_path / "documents", "tfbnn.json")
