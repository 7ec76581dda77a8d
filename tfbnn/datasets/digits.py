"""scikit-learn's handwritten digits as images, split for out-of-distribution detection.

The 1797 8x8 grey-level digits ship with scikit-learn (no download). A model is
trained on some digits (0-4 by default) and tested on held-out images of those
digits, while the other digits (5-9) are inputs of classes it has never seen: a
model that knows what it does not know is more uncertain about them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tfbnn.validation import check_fraction, check_probability

IN_DISTRIBUTION_DIGITS = (0, 1, 2, 3, 4)
"""The digits `digit_images` trains on; the others are out of distribution."""


@dataclasses.dataclass(frozen=True)
class DigitImages:
    """Images `(n, 8, 8, 1)` float32 in [0, 1] with their digit labels `(n,)`.

    `x_train`/`y_train`, `x_val`/`y_val` and `x_test`/`y_test` hold the
    in-distribution digits (split at random, stratified; the validation split is
    carved out of the training images and is empty unless asked for); `x_ood`/`y_ood`
    every image of the other digits.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_ood: np.ndarray
    y_ood: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def digit_images(test_fraction: float = 0.25, digits=IN_DISTRIBUTION_DIGITS,
                 seed: int = 0, validation_fraction: float = 0.0) -> DigitImages:
    """scikit-learn's digits as images: a train/test split of `digits`, the rest as OOD.

    Args:
        test_fraction: share of the in-distribution images held out for testing.
        digits: the in-distribution digits (a non-empty proper subset of 0-9).
        seed: seeds the split.
        validation_fraction: share of the training images set aside as a
            validation split (for early stopping or tuning; never the test images).

    Example:

    >>> data = digit_images()
    >>> data.x_train.shape[1:], sorted(set(data.y_train)), sorted(set(data.y_ood))
    ((8, 8, 1), [0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    """
    test_fraction = check_probability("test_fraction", test_fraction)
    validation_fraction = check_fraction("validation_fraction", validation_fraction)
    digits = sorted({int(d) for d in digits})
    if not digits or len(digits) == 10 or not set(digits) <= set(range(10)):
        raise ValueError(f"digits must be some but not all of 0-9, got {digits}")
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[..., np.newaxis]
    labels = bunch.target.astype(np.int64)
    inside = np.isin(labels, digits)
    x_train, x_test, y_train, y_test = train_test_split(
        images[inside], labels[inside], test_size=test_fraction, random_state=seed,
        stratify=labels[inside])
    x_val, y_val = x_train[:0], y_train[:0]
    if validation_fraction:
        x_train, x_val, y_train, y_val = train_test_split(
            x_train, y_train, test_size=validation_fraction, random_state=seed, stratify=y_train)
    return DigitImages(x_train, y_train, x_test, y_test, images[~inside], labels[~inside],
                       x_val, y_val)
