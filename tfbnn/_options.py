"""Option enums and a small registry shared by every pluggable piece of tfbnn."""

from __future__ import annotations

import enum
from collections.abc import Callable


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
