"""TensorFlow without the C++ log lines it writes to standard error, for the command line.

Measured with TensorFlow 2.21 on a machine without a GPU, every command printed
about eight lines: importing TensorFlow writes, twice (two shared libraries),
absl's "All log messages before absl::InitializeLog() is called are written to
STDERR", the oneDNN notice and "Could not find cuda drivers", plus the
CPU-instruction notice; the first operation adds the CUDA stub's "failed call to
cuInit" error. `TF_CPP_MIN_LOG_LEVEL=3` hides the last (and any later runtime
line below FATAL), but not the others: absl logs them while the libraries load,
before its logging is initialised, when no setting applies.
`TF_ENABLE_ONEDNN_OPTS=1` does not hide the oneDNN notice either (and `=0`
would change the numerics, so it is left alone). `import_quietly` therefore
sets the level and imports TensorFlow with the process's standard error (file
descriptor 2) pointed at a temporary file, shown only if the import fails;
Python's `sys.stderr` stays on the real standard error meanwhile, so that
Python warnings still show.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile


def import_quietly() -> None:
    """Imports TensorFlow, if not yet imported, without its C++ log lines."""
    if "tensorflow" in sys.modules:
        return  # its log settings are read once, at import: nothing left to do
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with _native_stderr_held_back():
        importlib.import_module("tensorflow")


@contextlib.contextmanager
def _native_stderr_held_back():
    """Sends what native code writes to file descriptor 2 to a temporary file, which is
    shown on the real standard error only if the block raises."""
    python_stderr = sys.stderr
    python_stderr.flush()
    try:
        terminal = os.dup(2)
    except OSError:  # no standard error to protect
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        sys.stderr = open(os.dup(terminal), "w", buffering=1,
                          encoding=getattr(python_stderr, "encoding", None) or "utf-8",
                          errors="backslashreplace")
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.close()
            sys.stderr = python_stderr
            os.dup2(terminal, 2)
            os.close(terminal)
            if failed:
                held.seek(0)
                os.write(2, held.read())
