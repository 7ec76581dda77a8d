import os
import subprocess
import sys

import pytest

from tfbnn import xla_cache


def test_off_unless_asked_for():
    for value in (None, "", "0", "off", "False", "no"):
        environ = {} if value is None else {xla_cache.ENV_VAR: value}
        assert xla_cache.configure_from_environment(environ) is None
        assert "TF_XLA_FLAGS" not in environ


def test_on_caches_under_the_user_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    environ = {xla_cache.ENV_VAR: "1", "TF_XLA_FLAGS": "--tf_xla_auto_jit=2"}
    folder = xla_cache.configure_from_environment(environ)
    assert xla_cache.default_directory() == tmp_path / "tfbnn" / "xla"
    assert folder == tmp_path / "tfbnn" / "xla" / xla_cache.machine_tag()
    assert environ["TF_XLA_FLAGS"].split() == ["--tf_xla_auto_jit=2", f"{xla_cache.FLAG}={folder}"]
    assert xla_cache.directory(environ) == folder


def test_machine_tag_names_tensorflow_and_is_stable():
    from importlib import metadata

    tag = xla_cache.machine_tag()
    assert tag.startswith(f"tf{metadata.version('tensorflow')}-")
    assert tag == xla_cache.machine_tag()
    assert all(c.isalnum() or c in "._-" for c in tag)


def test_a_path_names_the_folder_and_a_users_flag_wins(tmp_path):
    environ = {xla_cache.ENV_VAR: str(tmp_path / "mine")}
    mine = tmp_path / "mine" / xla_cache.machine_tag()
    assert xla_cache.configure_from_environment(environ) == mine
    assert xla_cache.enable(tmp_path / "other", environ) == mine
    users = {"TF_XLA_FLAGS": f"{xla_cache.FLAG}={tmp_path / 'users'}"}
    assert xla_cache.enable(None, users) == tmp_path / "users"
    assert environ["TF_XLA_FLAGS"].count(xla_cache.FLAG) == 1


def test_bad_folders_are_refused(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is not a folder"):
        xla_cache.enable(a_file, {})
    with pytest.raises(ValueError, match="white space"):
        xla_cache.enable(tmp_path / "two words", {})
    with pytest.raises(ValueError, match="non-empty path"):
        xla_cache.enable(3, {})
    with pytest.raises(ValueError, match="is not a folder"):
        xla_cache.configure_from_environment({xla_cache.ENV_VAR: str(a_file)})


def test_clear_removes_cached_programs_only(tmp_path):
    (tmp_path / "tag").mkdir()
    (tmp_path / "tag" / "a.pb").write_bytes(b"1")
    (tmp_path / "b.pb").write_bytes(b"2")
    (tmp_path / "notes.txt").write_text("kept")
    assert xla_cache.clear(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert xla_cache.clear(tmp_path / "missing") == 0


_CHILD = """
import tensorflow as tf
from tfbnn import xla_cache
assert xla_cache.configure_from_environment() is not None
step = tf.function(lambda x: tf.reduce_sum(tf.sin(x) * x), jit_compile=True)
print(float(step(tf.linspace(0.0, 1.0, 7))))
"""


@pytest.mark.slow
def test_a_second_process_loads_what_the_first_compiled(tmp_path):
    folder = tmp_path / "xla"
    env = {**os.environ, xla_cache.ENV_VAR: str(folder), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_XLA_FLAGS", None)

    def run():
        done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return float(done.stdout.split()[-1])

    first = run()
    saved = sorted(folder.glob("*/*.pb"))
    assert len(saved) == 1
    stamp = saved[0].stat().st_mtime_ns
    assert run() == first
    assert sorted(folder.glob("*/*.pb")) == saved
    assert saved[0].stat().st_mtime_ns == stamp  # loaded, not compiled and written again


def test_import_tfbnn_applies_the_environment(tmp_path):
    """`TFBNN_XLA_CACHE` set before `import tfbnn` reaches TensorFlow's flags."""
    code = "import os, tfbnn; print(os.environ.get('TF_XLA_FLAGS', ''))"
    env = {**os.environ, xla_cache.ENV_VAR: str(tmp_path / "xla"), "TF_XLA_FLAGS": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert f"{xla_cache.FLAG}={tmp_path / 'xla'}" in out
    env[xla_cache.ENV_VAR] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert xla_cache.FLAG not in out
