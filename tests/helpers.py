"""Constants shared by the estimator and persistence tests."""

# Tiny networks, one architecture per task: compiled code is shared between fits.
SMALL = {"hidden_units": (8,), "epochs": 30, "learning_rate": 1e-2, "n_samples": 30}
N = 300  # 10 minibatches per epoch: enough optimizer steps in a few epochs
