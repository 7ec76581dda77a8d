"""A persistent cache of XLA-compiled programs on disk, shared by later processes.

tfbnn keeps compiled programs in memory (`tfbnn.compiled`), so the second fit of an
architecture in one process skips tracing and compilation. A fresh process (every
`tfbnn fit`, every new notebook) compiles again. TensorFlow can save each program
that `tf.function(jit_compile=True)` compiles, keyed by a fingerprint of its HLO,
into a directory, and load it in the next process instead of compiling it again
(the `--tf_xla_persistent_cache_directory` entry of the `TF_XLA_FLAGS` environment
variable). A saved program is used only when its HLO equals the new one exactly,
and TensorFlow writes each file under a temporary name and moves it into place, so
processes that fit at the same time share the directory safely. A saved CPU program
is machine code for the CPU that compiled it, and TensorFlow loads it on any CPU
(with a logged warning), so tfbnn keeps one subfolder per CPU model, CPU features and
TensorFlow version (`machine_tag()`): a cache in a home folder that several kinds of
machine share never hands one machine another's code.

The cache is off unless asked for:

* `TFBNN_XLA_CACHE=1` (or `on`, `true`, `yes`) before `import tfbnn` caches under
  `default_directory()`; `TFBNN_XLA_CACHE=/some/folder` caches there; unset, empty,
  `0`, `off`, `false` or `no` leave it off;
* `tfbnn.xla_cache.enable()` (or `enable("/some/folder")`) in Python before the
  process's first XLA compilation does the same.

TensorFlow reads `TF_XLA_FLAGS` once, at the process's first XLA compilation; a
setting made after that has no effect until the next process. The cache is never
pruned by tfbnn: `clear()` deletes it. XLA prints one line to standard error each
time it loads a saved CPU program (`Loading XLA:CPU AOT result ... machine type used
for XLA:CPU compilation doesn't match`) because the compiler records two tuning
features the host feature list does not name; the program is built for this machine.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path

#: The environment variable that turns the cache on (`1`) or names its folder.
ENV_VAR = "TFBNN_XLA_CACHE"
#: TensorFlow's flag, an entry of the `TF_XLA_FLAGS` environment variable.
FLAG = "--tf_xla_persistent_cache_directory"
_ON = ("1", "on", "true", "yes")
_OFF = ("", "0", "off", "false", "no")


def default_directory() -> Path:
    """`$XDG_CACHE_HOME/tfbnn/xla`, or `~/.cache/tfbnn/xla` without XDG_CACHE_HOME."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tfbnn" / "xla"


def machine_tag() -> str:
    """A short name for this CPU model, its instruction-set features and TensorFlow's
    version: programs compiled under one tag run on every machine with that tag."""
    cpu = platform.machine() + platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            lines = info.read().split("\n\n")[0].splitlines()
        cpu += "".join(line for line in lines if line.split(":")[0].strip() in
                       ("vendor_id", "cpu family", "model", "model name", "flags", "Features"))
    except OSError:  # not Linux: the platform's processor name stands for it
        pass
    try:
        version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        version = "unknown"
    digest = hashlib.sha256(cpu.encode()).hexdigest()[:12]
    return f"tf{version}-{platform.machine() or 'cpu'}-{digest}"


def directory(environ=None) -> Path | None:
    """The cache folder `TF_XLA_FLAGS` names now, or None when the cache is off."""
    environ = os.environ if environ is None else environ
    for entry in environ.get("TF_XLA_FLAGS", "").split():
        if entry.startswith(FLAG + "="):
            value = entry.split("=", 1)[1]
            return Path(value) if value else None
    return None


def enable(folder=None, environ=None) -> Path:
    """Turns the persistent cache on for programs this process compiles from now on.

    Args:
        folder: where to keep compiled programs; None for `default_directory()`.
        environ: the environment to change (default `os.environ`; for tests).

    Returns:
        The cache folder: `folder / machine_tag()`. If `TF_XLA_FLAGS` already names
        one, that one is kept and returned as it is: a folder the user chose wins.

    Raises:
        ValueError: `folder` is not a str or path, or names an existing file.
    """
    environ = os.environ if environ is None else environ
    current = directory(environ)
    if current is not None:
        return current
    if folder is None:
        folder = default_directory()
    if not isinstance(folder, (str, os.PathLike)) or not str(folder):
        raise ValueError(f"xla_cache folder must be a non-empty path, got {folder!r}")
    folder = Path(folder).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"xla_cache folder {str(folder)!r} exists and is not a folder")
    folder = folder / machine_tag()
    if any(c.isspace() for c in str(folder)):
        raise ValueError(f"xla_cache folder {str(folder)!r} contains white space, which "
                         "TF_XLA_FLAGS cannot hold")
    flags = [e for e in environ.get("TF_XLA_FLAGS", "").split() if not e.startswith(FLAG + "=")]
    environ["TF_XLA_FLAGS"] = " ".join([*flags, f"{FLAG}={folder}"])
    return folder


def configure_from_environment(environ=None) -> Path | None:
    """Applies `TFBNN_XLA_CACHE` (see the module docstring); the folder, or None if off.

    Raises:
        ValueError: `TFBNN_XLA_CACHE` names an existing file.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(ENV_VAR, "").strip()
    if value.lower() in _OFF:
        return directory(environ)
    return enable(None if value.lower() in _ON else value, environ)


def clear(folder=None) -> int:
    """Deletes the cached programs in `folder` (default: `default_directory()`) and in
    its per-machine subfolders.

    Run it when no other process is fitting with the same folder. Returns how many
    files were removed; a missing folder removes none.
    """
    folder = Path(default_directory() if folder is None else folder)
    if not folder.is_dir():
        return 0
    files = [p for p in folder.rglob("*.pb") if p.is_file()]
    for path in files:
        path.unlink(missing_ok=True)
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(sub.iterdir()):
            shutil.rmtree(sub, ignore_errors=True)
    return len(files)
