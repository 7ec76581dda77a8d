"""Writing files safely: atomic replacement, and where a model folder may be saved.

Both the command line and the benchmark runner write results that a reader (or
a resumed run) must never find half-written, and both save model folders that
replace whatever is at their destination.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomic(path, write: Callable[[Path], object]) -> None:
    """Calls `write(temp)` for a temporary sibling of `path`, then renames it to `path`.

    A rename within a folder is atomic, so `path` is always either the old file
    or the complete new one, even when the process is interrupted while
    writing. The temporary file is created by `write` itself like any new file
    (`open()` honours the umask), so the result has the usual permissions;
    `tempfile.mkstemp` would make it private (mode 0600).

    Args:
        path: the file to write; missing parent folders are created.
        write: called with the temporary path, writes the whole content there
            (e.g. `frame.to_csv` or `Path.write_text`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> None:
    """Writes `text` to `path` through `write_atomic` (UTF-8)."""
    write_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def check_model_destination(path, config_file: str) -> None:
    """Refuses a save destination that is not new, empty, or a model folder already.

    Saving a model replaces the whole folder at `path`, so a slip such as
    `--out .` must not delete a user's files: the folder may only be replaced if
    it holds `config_file`, the file every saved model folder has.

    Raises:
        ValueError: If `path` is a file, or a folder with other contents.
    """
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(f"{path} is an existing file, not a model folder")
    if any(path.iterdir()) and not (path / config_file).is_file():
        raise ValueError(f"{path} is a folder that holds other files, not a tfbnn model; "
                         "choose a new or empty folder")
