import numpy as np
import pytest

import tfbnn
from tfbnn import compiled


def test_cache_is_bounded_least_recently_used_first(monkeypatch):
    monkeypatch.setattr(compiled, "MAX_PROGRAMS", 3)
    tfbnn.clear_cache()
    built = []
    for key in ["a", "b", "c"]:
        compiled.cached(("test", key), lambda key=key: built.append(key) or key)
    assert compiled.cached(("test", "a"), lambda: "rebuilt") == "a"  # a is now the newest
    compiled.cached(("test", "d"), lambda: "d")  # evicts b, the least recently used
    assert compiled.cache_size() == 3
    assert compiled.cached(("test", "b"), lambda: "b again") == "b again"
    assert compiled.cached(("test", "c"), lambda: "c again") == "c again"  # evicted by b
    assert built == ["a", "b", "c"]


def test_clear_cache_forgets_programs_and_fits_still_work():
    X = np.linspace(-1, 1, 32)[:, None]
    y = X[:, 0] ** 2
    model = tfbnn.BayesianRegressor(hidden_units=(4,), epochs=2, random_state=0,
                                    inference_options={"jit_compile": False})
    first = model.fit(X, y).predict(X)
    assert compiled.cache_size() > 0
    tfbnn.clear_cache()
    assert compiled.cache_size() == 0
    np.testing.assert_allclose(model.fit(X, y).predict(X), first, rtol=1e-5)


def test_function_traces_without_autograph_and_passes_options():
    import tensorflow as tf

    def double_if_positive(x):
        return tf.cond(x > 0, lambda: 2 * x, lambda: x)

    graph = compiled.function(double_if_positive, jit_compile=True, reduce_retracing=True)
    assert float(graph(tf.constant(3.0))) == 6.0
    assert float(graph(tf.constant(-3.0))) == -3.0

    def python_branch(x):
        if x > 0:  # AutoGraph would rewrite this into a tf.cond; compiled.function does not
            return 2 * x
        return x

    with pytest.raises(TypeError, match="tf.Tensor"):
        compiled.function(python_branch)(tf.constant(1.0))
    assert float(tf.function(python_branch)(tf.constant(1.0))) == 2.0  # AutoGraph converts it


def test_function_refuses_an_autograph_option():
    with pytest.raises(TypeError, match="autograph"):
        compiled.function(lambda x: x, autograph=True)
