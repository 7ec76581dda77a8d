"""Atomic writes leave the old file or the whole new one, with the usual permissions; a
model save may only replace a new, empty or model folder, and must be able to write there;
leftovers of killed saves are cleaned up, and a save killed midway is recovered.

Killing a save at every step is in test_cli_safety.py."""

import errno
import os
import subprocess
import sys
import warnings

import pytest

from tfbnn.files import (
    InterruptedSaveWarning,
    check_can_create,
    check_model_destination,
    recover_folder,
    replace_folder,
    write_atomic,
    write_text_atomic,
)


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
    assert check_model_destination(tmp_path / "new", "tfbnn.json") is False
    (tmp_path / "empty").mkdir()
    assert check_model_destination(tmp_path / "empty", "tfbnn.json") is False
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "tfbnn.json").write_text("{}")
    assert check_model_destination(tmp_path / "model", "tfbnn.json") is True
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError, match="is an existing file, not a model folder"):
        check_model_destination(tmp_path / "file", "tfbnn.json")
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="holds other files, not a tfbnn model"):
        check_model_destination(tmp_path / "documents", "tfbnn.json")


def _write(files: dict):
    """A `replace_folder` writer of `files` (name -> text)."""
    def write(folder):
        for name, text in files.items():
            (folder / name).write_text(text)
    return write


def _contents(folder) -> dict:
    return {p.name: p.read_text() for p in folder.iterdir()}


def _dead_pid() -> int:
    """The id of a process that has ended (and was reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_replace_folder_swaps_in_the_new_folder_with_the_usual_permissions(tmp_path):
    path = tmp_path / "sub" / "model"
    replace_folder(path, _write({"a": "old", "b": "old"}))
    replace_folder(path, _write({"a": "new"}))
    assert _contents(path) == {"a": "new"}
    assert path.stat().st_mode & 0o777 == 0o777 & ~_umask()
    assert [p.name for p in path.parent.iterdir()] == ["model"]


def test_a_failed_folder_write_keeps_the_old_folder(tmp_path):
    path = tmp_path / "model"
    replace_folder(path, _write({"a": "old"}))

    def fail(folder):
        (folder / "a").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_folder(path, fail)
    assert _contents(path) == {"a": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_the_next_save_removes_what_killed_saves_left_behind(tmp_path):
    path = tmp_path / "model"
    replace_folder(path, _write({"a": "old"}))
    dead = _dead_pid()
    (tmp_path / f".model.{dead}.0123abcd.tmp").mkdir()  # a killed save's new folder
    (tmp_path / f".model.{dead}.0123abcd.tmp" / "a").write_text("half")
    (tmp_path / f".model.{dead}.tmp").write_text("half")  # a killed atomic file write
    (tmp_path / ".model.old").mkdir()  # a save killed after its swap
    # Kept: the work of a process still running, and other names' temporaries.
    running = tmp_path / f".model.{os.getppid()}.89abcdef.tmp"
    running.mkdir()
    other = tmp_path / f".model.7.{dead}.tmp"  # model.7's, not model's
    other.write_text("not ours")
    replace_folder(path, _write({"a": "new"}))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["model", running.name, other.name])
    assert _contents(path) == {"a": "new"}


def test_atomic_file_writes_remove_what_killed_writes_left_behind(tmp_path):
    (tmp_path / f".out.txt.{_dead_pid()}.tmp").write_text("half")
    write_text_atomic(tmp_path / "out.txt", "whole")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_folder_left_only_under_its_old_name_is_restored_with_a_warning(tmp_path):
    # What a save killed between its two renames leaves: no "model", the last complete one
    # under ".model.old" (and possibly the new one, complete or not, under a temporary name).
    path = tmp_path / "model"
    backup = tmp_path / ".model.old"
    backup.mkdir()
    (backup / "a").write_text("old")
    with pytest.warns(InterruptedSaveWarning, match=r"model was missing.*\.model\.old"):
        assert recover_folder(path) == path
    assert _contents(path) == {"a": "old"} and not backup.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert recover_folder(path) == path  # nothing to recover: no warning


def test_a_read_only_backup_is_read_where_it_is(tmp_path, monkeypatch):
    backup = tmp_path / ".model.old"
    backup.mkdir()
    monkeypatch.setattr(os, "replace", _refuse(errno.EROFS, "Read-only file system"))
    with pytest.warns(InterruptedSaveWarning, match="using it where it is"):
        assert recover_folder(tmp_path / "model") == backup


def _refuse(code: int, reason: str):
    def refuse(src, *args, **kwargs):
        raise OSError(code, reason, str(src))
    return refuse


def test_an_unwritable_destination_is_refused_naming_the_real_folder(tmp_path, monkeypatch):
    # As the kernel answers for a folder without write permission (tests may run as root,
    # which permissions do not stop).
    locked = tmp_path / "locked"
    locked.mkdir()
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if os.path.dirname(os.fspath(path)) == str(locked):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    # A missing parent would be created in the nearest folder that exists: that one is named.
    for destination in (locked / "model", locked / "model" / "deeper" / "still"):
        with pytest.raises(PermissionError) as error:
            check_can_create(destination)
        assert error.value.filename == str(locked)
        assert "Permission denied" in error.value.strerror
    with pytest.raises(PermissionError) as error:
        check_model_destination(locked / "model", "tfbnn.json")
    assert error.value.filename == str(locked) and ".tmp" not in str(error.value)
    with pytest.raises(PermissionError) as error:
        replace_folder(locked / "model", _write({"a": "new"}))
    assert error.value.filename == str(locked) and ".tmp" not in str(error.value)
    assert list(locked.iterdir()) == []


def test_a_destination_under_a_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(NotADirectoryError) as error:
        check_can_create(tmp_path / "notes.txt" / "model")
    assert error.value.filename == str(tmp_path / "notes.txt")
