"""How a config key is declared: its default and what values it may take."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import field
from typing import Any


def opt(default: Any, *, choices: tuple[Any, ...] | None = None, lo: float | None = None,
        hi: float | None = None) -> Any:
    """A dataclass field with validation metadata: ``choices``, or a ``lo``..``hi`` range."""
    meta = {"choices": choices, "min": lo, "max": hi}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    if dataclasses.is_dataclass(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)
