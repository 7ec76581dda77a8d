"""The training rows a method fits on: in-memory arrays (a validation share held out),
or a `tfbnn.training.stream.Stream` of batches (data larger than memory)."""

from __future__ import annotations

from dataclasses import dataclass

from tfbnn.inference.base import FitSettings, validation_split
from tfbnn.training.stream import Stream


@dataclass
class TrainingData:
    """What `tfbnn.train` takes (`x`, `y`, `validation`) and what building a network
    needs: one example's shape, the target columns and the training rows."""

    x: object
    y: object
    validation: tuple | None
    example_shape: tuple
    n_targets: int
    n_rows: int

    @property
    def streamed(self) -> bool:
        return isinstance(self.x, Stream)


def training_data(x, y, settings: FitSettings) -> TrainingData:
    """`x, y` arrays (`validation_fraction` held out), or `x` a `Stream` and `y` None."""
    if isinstance(x, Stream):
        if settings.validation_fraction:
            raise ValueError("validation_fraction needs in-memory data; a stream trains on "
                             "all of its rows (leave validation_fraction at 0)")
        return TrainingData(x, None, None, x.example_shape, x.n_targets, len(x))
    x_train, y_train, validation = validation_split(x, y, settings)
    return TrainingData(x_train, y_train, validation, tuple(x.shape[1:]), y.shape[1],
                        len(x_train))


def refuse_stream(x, method: str, instead: str) -> None:
    """A ValueError for a method that needs all rows in memory at once."""
    if isinstance(x, Stream):
        raise ValueError(f"inference={method!r} needs the training data in memory (it uses "
                         f"every row at every step); for data streamed in batches use {instead}")
