"""The contract every tfbnn layer must meet, checked in one place.

In the spirit of Keras' `run_layer_test`: a layer is built from its constructor
arguments and called once in training mode, then its output shape, weight
counts, layer losses, config round trip (through JSON) and `.keras` save/load
(with `safe_mode=True`) are checked. Stochastic layers are compared under the
same seed-generator state: the state is copied from the original to the copy,
so equal outputs prove that every weight and every config entry survived.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np


def _copy_state(source, target) -> None:
    """Gives `target` the non-trainable state (seed-generator states) of `source`."""
    assert len(source.non_trainable_variables) == len(target.non_trainable_variables)
    for src, dst in zip(source.non_trainable_variables, target.non_trainable_variables):
        dst.assign(src)


def _assert_same_weights(a, b) -> None:
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)


def check_layer(
    layer_cls,
    init_kwargs: dict,
    input_shape: tuple,
    *,
    expected_output_shape: tuple,
    expected_num_trainable_weights: int,
    expected_num_non_trainable_variables: int = 0,
    expected_num_losses: int = 0,
    stochastic: bool = False,
    tmp_path: Path,
    seed: int = 0,
):
    """Runs the shared layer checks; returns the built layer for further checks.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        input_shape: a concrete input shape, batch axis first.
        expected_output_shape: the output shape for `input_shape`.
        expected_num_trainable_weights: `len(layer.trainable_weights)` once built.
        expected_num_non_trainable_variables: e.g. 1 for a seed-generator state.
        expected_num_losses: layer losses added by one training call.
        stochastic: the layer draws noise, so two calls must differ.
        tmp_path: a folder to save the `.keras` file in.
        seed: seeds the test inputs.
    """
    x = np.random.default_rng(seed).normal(size=input_shape).astype("float32")

    # -- building and calling ----------------------------------------------------------
    layer = layer_cls(**init_kwargs)
    assert not layer.built, "weights must be created in build(), not __init__"
    outputs = layer(x, training=True)
    assert layer.built
    assert tuple(outputs.shape) == tuple(expected_output_shape)
    assert np.all(np.isfinite(np.asarray(outputs)))
    symbolic = (None, *input_shape[1:])
    assert tuple(layer.compute_output_shape(symbolic)) == (None, *expected_output_shape[1:])

    # -- weights -------------------------------------------------------------------
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert len(layer.non_trainable_variables) == expected_num_non_trainable_variables
    names = [w.name for w in layer.weights]
    assert len(set(names)) == len(names), f"duplicate weight names {names}"

    # -- losses --------------------------------------------------------------------
    losses = layer.losses
    assert len(losses) == expected_num_losses
    for loss in losses:
        value = np.asarray(loss)
        assert value.shape == () and np.isfinite(value)

    # -- stochasticity ---------------------------------------------------------------
    if stochastic:
        again = layer(x, training=True)
        assert not np.allclose(np.asarray(outputs), np.asarray(again)), (
            "a stochastic layer gave the same output twice: the comparisons below prove nothing"
        )

    # -- config: get_config -> JSON -> from_config -------------------------------------
    config = layer.get_config()
    missing = set(init_kwargs) - set(config)
    assert not missing, f"constructor arguments missing from get_config(): {missing}"
    restored = layer_cls.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    serialized = json.dumps(keras.saving.serialize_keras_object(layer))
    assert keras.saving.deserialize_keras_object(json.loads(serialized)).get_config() == config
    restored.build(input_shape)
    restored.set_weights(layer.get_weights())
    _copy_state(layer, restored)
    np.testing.assert_array_equal(
        np.asarray(layer(x, training=True)), np.asarray(restored(x, training=True))
    )

    # -- save to .keras -> load with safe_mode=True -> same predictions --------------------
    for build_model in (_sequential, _functional):
        model = build_model(layer_cls, config, input_shape, layer)
        path = Path(tmp_path) / f"{layer_cls.__name__}_{build_model.__name__}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        _assert_same_weights(model, loaded)
        _copy_state(model, loaded)
        for _ in range(2):  # and the states keep advancing in step
            np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(loaded(x)))
    return layer


def _sequential(layer_cls, config, input_shape, layer):
    return keras.Sequential([keras.Input(input_shape[1:]), layer])


def _functional(layer_cls, config, input_shape, layer):
    inputs = keras.Input(input_shape[1:])
    fresh = layer_cls.from_config(config)
    model = keras.Model(inputs, fresh(inputs))
    fresh.set_weights(layer.get_weights())
    return model


def check_draw_moments(draws, mean, var, *, power: float) -> None:
    """Output draws `(K calls, B rows, ...)` have the expected per-row `mean` and `var`.

    Each call's rows share one seed state, so the per-call averages are the
    independent units: their mean must match within 4.5 standard errors, and the
    standard error of the variance must be below `power * var` for the check to mean
    anything.
    """
    per_call_mean = draws.mean(axis=1)
    per_call_sq = ((draws - mean) ** 2).mean(axis=1)
    k = len(draws)
    se_mean = per_call_mean.std(axis=0, ddof=1) / math.sqrt(k)
    se_var = per_call_sq.std(axis=0, ddof=1) / math.sqrt(k)
    assert np.all(se_var < power * var), "too few draws for this test to have power"
    assert np.all(np.abs(per_call_mean.mean(axis=0) - mean) < 4.5 * se_mean)
    assert np.all(np.abs(per_call_sq.mean(axis=0) - var) < 4.5 * se_var)
