import keras
import numpy as np
import pytest
import tensorflow as tf

from tfbnn import optimizers


def _minimise(flat, state, shape, steps=200, jit_compile=True):
    """`steps` updates of `(theta - 0.5)**2` summed, in one compiled while-loop."""

    @tf.function(jit_compile=jit_compile)
    def run(theta, state):
        def body(i, theta, state):
            theta, state = flat.apply(state, 2.0 * (theta - 0.5), theta)
            return i + 1, theta, state

        return tf.while_loop(lambda i, *_: i < steps, body, (tf.constant(0), theta, state))[1:]

    return run(tf.zeros(shape), state)


def _adam_by_hand(steps, lr, shape):
    theta, m, v = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for t in range(1, steps + 1):
        g = 2.0 * (theta - 0.5)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        theta -= lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-7)
    return theta


@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_adam_matches_its_update_rule_inside_a_compiled_loop(shape):
    flat = optimizers.FlatOptimizer(keras.optimizers.Adam(0.01), shape)
    theta, state = _minimise(flat, flat.initial_state(), shape)
    np.testing.assert_allclose(theta.numpy(), _adam_by_hand(200, 0.01, shape), rtol=1e-4)
    assert int(flat.iterations(state)) == 200


def test_learning_rate_is_run_time_state_and_shares_the_program():
    fast, slow = keras.optimizers.Adam(0.05), keras.optimizers.Adam(0.001)
    assert optimizers.program_key(fast) == optimizers.program_key(slow)
    flat = optimizers.FlatOptimizer(slow, (3,))
    theta, _ = _minimise(flat, flat.initial_state(fast), (3,), steps=50, jit_compile=False)
    np.testing.assert_allclose(theta.numpy(), _adam_by_hand(50, 0.05, (3,)), rtol=1e-4)
    with pytest.raises(ValueError, match="does not match"):
        flat.initial_state(keras.optimizers.SGD(0.1))


def test_a_schedule_is_part_of_the_program_and_decays_the_steps():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    flat = optimizers.FlatOptimizer(keras.optimizers.SGD(schedule), (1,))
    theta, _ = _minimise(flat, flat.initial_state(), (1,), steps=3, jit_compile=False)
    # SGD on (theta - 0.5)^2 from 0 with rates 0.1, 0.05, 0.025.
    expected = 0.0
    for rate in (0.1, 0.05, 0.025):
        expected -= rate * 2.0 * (expected - 0.5)
    np.testing.assert_allclose(theta.numpy(), [expected], rtol=1e-5)
    assert optimizers.program_key(flat.optimizer) != optimizers.program_key(
        keras.optimizers.SGD(0.1))


def test_the_users_optimizer_is_never_updated():
    user = keras.optimizers.RMSprop(0.01, momentum=0.9)
    flat = optimizers.FlatOptimizer(user, (4,))
    _minimise(flat, flat.initial_state(user), (4,), steps=10, jit_compile=False)
    assert int(user.iterations.numpy()) == 0
    assert not user.built


def test_names_and_bad_optimizers():
    assert isinstance(optimizers.get(None), keras.optimizers.Adam)
    sgd = optimizers.get("sgd", learning_rate=0.3)
    assert isinstance(sgd, keras.optimizers.SGD)
    assert float(sgd.learning_rate.numpy()) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="Unknown optimizer='adamm'"):
        optimizers.get("adamm")


def test_slots_are_read_by_name_from_the_state():
    flat = optimizers.FlatOptimizer(keras.optimizers.RMSprop(0.1, rho=0.5), (2,))
    state = flat.initial_state()
    _, state = flat.apply(state, tf.constant([1.0, -2.0]), tf.zeros(2))
    np.testing.assert_allclose(flat.slot(state, "velocity").numpy(), [0.5, 2.0], rtol=1e-6)
    with pytest.raises(ValueError, match="RMSprop has no slot 'momentum'; it has \\['velocity'\\]"):
        flat.slot(state, "momentum")


def test_a_view_holds_the_state_as_a_keras_optimizer_callbacks_can_change():
    flat = optimizers.FlatOptimizer(keras.optimizers.Adam(0.1), (2,))
    view = flat.view(keras.optimizers.Adam(0.05))
    assert isinstance(view, keras.optimizers.Adam)
    assert float(view.learning_rate) == pytest.approx(0.05)
    _, state = flat.apply(flat.read_view(view), tf.constant([1.0, -2.0]), tf.zeros(2))
    flat.write_view(view, state)
    assert int(view.iterations) == 1
    np.testing.assert_allclose(view.variables[2].numpy(), [0.1, -0.2], rtol=1e-6)  # momentum
    view.learning_rate = 0.5
    read = flat.read_view(view)
    assert float(read[1]) == 0.5 and float(flat.iterations(read)) == 1
    # Given a state, only the step count and learning rate come from the view.
    other = flat.initial_state()
    mixed = flat.read_view(view, other)
    assert float(mixed[1]) == 0.5 and int(flat.iterations(mixed)) == 1
    np.testing.assert_array_equal(flat.slot(mixed, "momentum").numpy(), [0.0, 0.0])


def _rates(optimizer, steps):
    """The step sizes of `optimizer`'s schedule at the given step counts."""
    schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    return np.array([float(schedule(step)) for step in steps])


def test_decaying_at_end_holds_the_rate_then_decays_it_to_the_floor():
    optimizer = optimizers.decaying_at_end("sgd", 0.01, total_steps=1000, fraction=0.3,
                                           floor=0.1)
    assert isinstance(optimizer, keras.optimizers.SGD)
    rates = _rates(optimizer, [0, 350, 699, 700, 850, 1000, 2000])
    np.testing.assert_allclose(rates[:4], 0.01, rtol=1e-5)  # constant for 70% of the steps
    # Half a cosine from 0.01 to 0.001 over the last 300 steps: the middle is halfway.
    np.testing.assert_allclose(rates[4:], [0.0055, 0.001, 0.001], rtol=1e-4)


def test_decaying_at_end_with_no_decay_is_the_constant_rate_in_state():
    optimizer = optimizers.decaying_at_end(None, 0.002, total_steps=10, fraction=0.0)
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert optimizers.describe_learning_rate(optimizer) == "0.002"


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": keras.optimizers.Adam()}, "decaying_at_end takes None or an optimizer name"),
    ({"fraction": 1.5}, "fraction must be"),
    ({"floor": -0.1}, "floor must be"),
    ({"total_steps": 0}, "total_steps must be an integer >= 1"),
    ({"learning_rate": 0.0}, "learning_rate must be a positive"),
])
def test_decaying_at_end_refuses_bad_settings(kwargs, message):
    options = {"optimizer": None, "learning_rate": 1e-3, "total_steps": 10, "fraction": 0.3,
               **kwargs}
    with pytest.raises(ValueError, match=message):
        optimizers.decaying_at_end(**options)
