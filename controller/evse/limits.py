"""An EVSE's named limits: the outlet's own maximum and every reason to offer less, combined."""

from __future__ import annotations

from controller.domain.types import PowerLimit


class LimitStack:
    """Named :class:`PowerLimit` entries ("cable", "site", "temperature", "overcurrent", ...) over a maximum."""

    def __init__(self, maximum: PowerLimit) -> None:
        self.maximum = maximum
        self._limits: dict[str, PowerLimit] = {}

    def set(self, name: str, limit: PowerLimit | None) -> bool:
        """Set (or lift, with None) one limit; True when that changed anything."""
        if limit is None:
            return self._limits.pop(name, None) is not None
        if self._limits.get(name) == limit:
            return False
        self._limits[name] = limit
        return True

    def get(self, name: str) -> PowerLimit | None:
        """One named limit, or None."""
        return self._limits.get(name)

    def effective(self) -> PowerLimit:
        """The smallest of the maximum and every limit, in every dimension."""
        result = self.maximum
        for limit in self._limits.values():
            result = result.combine(limit)
        return result

    def __contains__(self, name: str) -> bool:
        return name in self._limits

    def names(self) -> list[str]:
        """The limits set now, in the order they were set."""
        return list(self._limits)
