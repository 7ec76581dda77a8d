"""Registries of pluggable pieces by name, and the small config-defined objects they hold."""

from __future__ import annotations

from collections.abc import Callable


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
