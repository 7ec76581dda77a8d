import numpy as np

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
