"""The time loop of tfbnn's recurrent layers, with Keras's masking and direction rules.

`run_recurrence` applies a step function along the time axis. It follows what
`keras.layers.RNN` does, so a tfbnn LSTM or GRU holding fixed weights gives the
Keras layer's outputs: `go_backwards` reads the sequence from its end and returns
the outputs in that (reversed) order; at a masked step the states are carried
over unchanged and the output repeats the previous one (zeros with
`zero_output_for_mask`).
"""

from __future__ import annotations

import tensorflow as tf


def run_recurrence(step, inputs, initial_states, *, mask=None, go_backwards=False,
                   zero_output_for_mask=False, return_sequences=False, unroll=False):
    """Runs `step(input_t, states) -> (output, new_states)` over axis 1 of `inputs`.

    Args:
        step: the cell; `input_t` is `inputs[:, t]`, `states` a tuple of tensors,
            `output` a `(batch, units)` tensor of the shape of `initial_states[0]`.
        inputs: `(batch, time, features)`.
        initial_states: a tuple of `(batch, ...)` tensors.
        mask: None or a `(batch, time)` boolean tensor, False at the steps to skip.
        go_backwards, zero_output_for_mask, return_sequences, unroll: as in
            `keras.layers.RNN`.

    Returns:
        `(outputs, final_states)`: outputs `(batch, time, units)` with
        `return_sequences`, else the last step's `(batch, units)`.
    """
    steps = tf.transpose(inputs, [1, 0, 2])  # time-major: one slice per step
    if mask is not None:
        mask = tf.transpose(tf.cast(mask, tf.bool))[..., None]  # (time, batch, 1)
    if go_backwards:
        steps = tf.reverse(steps, [0])
        mask = None if mask is None else tf.reverse(mask, [0])
    initial_output = tf.zeros_like(initial_states[0])

    def masked_step(input_t, keep, output, states):
        new_output, new_states = step(input_t, states)
        if keep is None:
            return new_output, tuple(new_states)
        fallback = initial_output if zero_output_for_mask else output
        return (tf.where(keep, new_output, fallback),
                tuple(tf.where(keep, new, old) for new, old in zip(new_states, states)))

    if unroll:
        return _unrolled(masked_step, steps, mask, initial_output, tuple(initial_states),
                         return_sequences)
    n_steps = tf.shape(steps)[0]
    # Reading the steps from a TensorArray keeps the gradient one stacked tensor; a
    # slice per step would scatter into a zero tensor of the whole sequence each time.
    reads = tf.TensorArray(steps.dtype, size=n_steps, element_shape=steps.shape[1:]).unstack(steps)
    written = (tf.TensorArray(initial_output.dtype, size=n_steps,
                              element_shape=initial_output.shape),) if return_sequences else ()

    def body(t, output, states, *written):
        keep = None if mask is None else mask[t]
        output, states = masked_step(reads.read(t), keep, output, states)
        return (t + 1, output, states, *(array.write(t, output) for array in written))

    # maximum_iterations gives XLA the fixed loop bound it needs for the TensorArrays.
    _, output, states, *written = tf.while_loop(
        lambda t, *_: t < n_steps, body, (0, initial_output, tuple(initial_states), *written),
        maximum_iterations=n_steps)
    if return_sequences:
        output = tf.transpose(written[0].stack(), [1, 0, 2])
    return output, states


def _unrolled(masked_step, steps, mask, output, states, return_sequences):
    """The loop written out step by step (`unroll=True`): needs a known length."""
    if steps.shape[0] is None:
        raise ValueError("unroll=True needs sequences of a known length; give the Input a "
                         "time dimension, e.g. keras.Input((10, n_features))")
    keeps = [None] * steps.shape[0] if mask is None else tf.unstack(mask)
    outputs = []
    for input_t, keep in zip(tf.unstack(steps), keeps):
        output, states = masked_step(input_t, keep, output, states)
        outputs.append(output)
    return (tf.stack(outputs, axis=1) if return_sequences else output), states
