"""Name -> driver class registries, imported lazily.

A config names a driver (``meter = "modbus"``); the registry maps that name to
``"module:Class"`` and imports the module only when the driver is built, so a
charger without a CAN board never imports python-can.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from hal.errors import HalConfigError

T = TypeVar("T")


class DriverRegistry(Generic[T]):
    """Maps driver names of one role to their implementing classes."""

    def __init__(self, role: str, base: Any, drivers: dict[str, str]) -> None:
        self.role = role
        self.base = base
        self._drivers = dict(drivers)

    @property
    def names(self) -> list[str]:
        """The driver names this role accepts, sorted."""
        return sorted(self._drivers)

    def register(self, name: str, target: str) -> None:
        """Add a driver, given as ``"package.module:ClassName"``."""
        self._drivers[name] = target

    def resolve(self, name: str) -> Callable[..., T]:
        """Import and return the class registered under ``name`` (called with the driver's settings)."""
        try:
            target = self._drivers[name]
        except KeyError:
            raise HalConfigError(
                f"unknown {self.role} driver {name!r}; expected one of {', '.join(self.names)}"
            ) from None
        module_name, _, class_name = target.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise HalConfigError(f"{target} is not a {self.base.__name__}")
        constructor: Callable[..., T] = cls
        return constructor
