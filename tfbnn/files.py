"""Writing files and folders safely: atomic replacement, and where a model folder may be saved.

Both the command line and the benchmark runner write results that a reader (or
a resumed run) must never find half-written, and both save model folders that
replace whatever is at their destination.

Work in progress is kept in hidden siblings named after the writing process,
`.NAME.PID.tmp` for a file and `.NAME.PID.XXXXXXXX.tmp` for a folder, so that
the next write to NAME can tell the leftovers of a killed process (no longer
running) from the work of one still writing, and remove them. A folder is
swapped in by two renames, the old one to `.NAME.old` and the new one to NAME;
a process killed between them leaves NAME missing and the last complete folder
under `.NAME.old`, which `recover_folder` (called by every save and load) puts
back.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path


class InterruptedSaveWarning(UserWarning):
    """A save was interrupted between its two renames; the last complete one was restored."""


def write_atomic(path, write: Callable[[Path], object]) -> None:
    """Calls `write(temp)` for a temporary sibling of `path`, then renames it to `path`.

    A rename within a folder is atomic, so `path` is always either the old file
    or the complete new one, even when the process is interrupted while
    writing. The temporary file is created by `write` itself like any new file
    (`open()` honours the umask), so the result has the usual permissions;
    `tempfile.mkstemp` would make it private (mode 0600). Temporary files that
    killed writers left beside `path` are removed first.

    Args:
        path: the file to write; missing parent folders are created.
        write: called with the temporary path, writes the whole content there
            (e.g. `frame.to_csv` or `Path.write_text`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> None:
    """Writes `text` to `path` through `write_atomic` (UTF-8)."""
    write_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def replace_folder(path, write: Callable[[Path], object]) -> None:
    """Calls `write(folder)` for a new hidden sibling folder of `path`, then swaps it in.

    Whenever the process stops, even killed, `path` holds the old folder or the
    complete new one, except between two renames: then the old one is under
    `.NAME.old` until `recover_folder` restores it. A failure in `write` leaves
    `path` as it was. Leftovers of earlier killed saves are removed first.

    Args:
        path: the folder to write; missing parent folders are created.
        write: called with the new, empty folder; writes the whole content there.

    Raises:
        OSError: If the folder cannot be written, naming the folder it is in.
    """
    path = Path(path)
    recover_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    staging = _new_staging_folder(path)
    try:
        write(staging)
        if not os.path.lexists(path):
            os.replace(staging, path)
            return
        backup = _backup(path)
        os.replace(path, backup)
        try:
            os.replace(staging, path)
        except BaseException:
            os.replace(backup, path)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def recover_folder(path) -> Path:
    """The folder saved at `path`, restored first if a `replace_folder` was killed midway.

    If `path` is missing but an interrupted save left the last complete folder
    under `.NAME.old`, it is renamed back (or, where it cannot be, returned where
    it is) with an `InterruptedSaveWarning`. Otherwise returns `path` as it is.
    """
    path = Path(path)
    backup = _backup(path)
    if os.path.lexists(path) or not backup.is_dir():
        return path
    try:
        os.replace(backup, path)
        found, done = path, "restored it"
    except OSError:  # e.g. a read-only copy: read it where it is
        found, done = backup, "using it where it is"
    warnings.warn(
        f"{path} was missing: a save into it was interrupted, and the last complete save "
        f"was found in {backup.name}; {done}", InterruptedSaveWarning, stacklevel=2)
    return found


def remove_stale_temporaries(path) -> None:
    """Removes what killed writes to `path` left beside it.

    That is the temporary files and folders of processes no longer running (or of
    this one, which is not writing `path` now), and `.NAME.old` once `path` exists.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)(\.[0-9a-f]{{8}})?\.tmp")
    try:
        entries = list(path.parent.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    stale = [entry for entry in entries if (match := pattern.fullmatch(entry.name))
             and not _another_running_process(int(match[1]))]
    if os.path.lexists(path):
        stale.append(_backup(path))
    for entry in stale:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif os.path.lexists(entry):
            entry.unlink(missing_ok=True)


def check_can_create(path) -> None:
    """Raises an OSError naming the folder in which `path` cannot be created or replaced.

    It tries, with a hidden temporary folder beside `path` (or in its nearest
    existing ancestor, where a save would create the missing folders), so that
    permissions, read-only file systems and access lists all answer for real.
    """
    path = Path(path).absolute()
    folder = path.parent
    while not folder.is_dir():
        if folder.exists():
            raise NotADirectoryError(errno.ENOTDIR, f"not a folder, cannot hold {path}", str(folder))
        folder = folder.parent
    try:
        _new_staging_folder(folder / path.name).rmdir()
    except OSError as err:
        raise OSError(err.errno, f"{err.strerror} (cannot write {path} there)",
                      str(folder)) from None


def check_model_destination(path, config_file: str) -> bool:
    """Refuses a save destination that is not new, empty, or a model folder already.

    Saving a model replaces the whole folder at `path`, so a slip such as
    `--out .` must not delete a user's files: the folder may only be replaced if
    it holds `config_file`, the file every saved model folder has. The check
    also tries that the folder can be written, so that a save fails before the
    work that precedes it rather than after.

    Returns:
        Whether a model folder (one with `config_file`) is at `path` already.

    Raises:
        ValueError: If `path` is a file, or a folder with other contents.
        OSError: If `path` cannot be written (`check_can_create`).
    """
    path = Path(path)
    recover_folder(path)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{path} is an existing file, not a model folder")
        if any(path.iterdir()) and not (path / config_file).is_file():
            raise ValueError(f"{path} is a folder that holds other files, not a tfbnn model; "
                             "choose a new or empty folder")
    check_can_create(path)
    return (path / config_file).is_file()


def _backup(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _new_staging_folder(path: Path) -> Path:
    """A new, empty hidden folder beside `path`, named after this process.

    `os.mkdir` honours the umask, so the folder swapped in has the usual
    permissions (`tempfile.mkdtemp` would make it private); a failure names the
    folder it was to be made in, not the temporary name.
    """
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        staging.mkdir()
    except OSError as err:
        raise OSError(err.errno, f"{err.strerror} (cannot write {path.name} there)",
                      str(path.parent)) from None
    return staging


def _another_running_process(pid: int) -> bool:
    if pid == os.getpid():
        return False
    if os.name != "posix":
        return True  # no harmless way to ask: keep its files
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
