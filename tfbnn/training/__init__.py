"""Compiled minibatch training of Keras models under a tfbnn likelihood.

* `loop`: `train`, its `History` and `NonFiniteLossError`;
* `groups`: one network or an ensemble's groups of members, advanced chunk by chunk;
* `monitor`: what happens between compiled calls (history, Keras callbacks);
* `runner`: the compiled epochs (`EpochRunner`), cached per architecture.
"""

from tfbnn.training.loop import History, NonFiniteLossError, train
from tfbnn.training.runner import EpochRunner, runner_for

__all__ = ["EpochRunner", "History", "NonFiniteLossError", "runner_for", "train"]
