"""Option enums and a small registry shared by every pluggable piece of tfbnn."""

from __future__ import annotations

import argparse
import enum
import json
import math
from collections.abc import Callable


def json_object(text: str) -> dict:
    """An argparse type: a JSON object (method options on the command line)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({err})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def check_option(name: str, value, allowed) -> str:
    """Returns `value` if it is one of `allowed`, else raises a ValueError naming both."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"Unknown {name}={value!r}; expected one of {allowed}")
    return value


class Registry:
    """A name -> class table filled by a decorator, so options stay explicit and listable."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type] = {}

    def register(self, *names: str) -> Callable[[type], type]:
        def decorate(cls: type) -> type:
            for name in names:
                if name in self._entries:
                    raise ValueError(f"{self.kind} {name!r} is registered twice")
                self._entries[name] = cls
            return cls

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> type:
        if not isinstance(name, str) or name not in self._entries:
            raise ValueError(f"Unknown {self.kind}={name!r}; expected one of {self.names()}")
        return self._entries[name]


class Task(enum.StrEnum):
    """What the target column is."""

    REGRESSION = "regression"
    """A real-valued (or count) target."""
    CLASSIFICATION = "classification"
    """A target taking one of a finite set of labels."""


def check_positive(name: str, value) -> float:
    """`value` as a float if it is positive and finite, else a ValueError naming it."""
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def check_finite(name: str, value) -> float:
    """`value` as a float if it is finite, else a ValueError naming it."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


class ConfigObject:
    """Small objects defined by their `get_config()`: rebuilt, shown and compared by it."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))
