"""The contactor role: a coil to drive and an optional feedback contact to read.

Only the safety supervisor calls :meth:`Contactor.close`; anything may call
:meth:`Contactor.open`. An optional mirror contact reports the main contacts'
real position: a true mirror contact (IEC 60947-4-1 Annex F) is normally
closed, made while the main contacts are open ("nc"); a plain auxiliary
contact follows the main contacts ("no").
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class Contactor(ABC):
    """A power contactor with an optional feedback contact."""

    @abstractmethod
    def close(self) -> None:
        """Energise the coil (connect mains to the vehicle)."""

    @abstractmethod
    def open(self) -> None:
        """De-energise the coil. Must be safe to call from any thread, at any time."""

    @property
    @abstractmethod
    def commanded_closed(self) -> bool:
        """True while the coil is driven."""

    @property
    def feedback_closed(self) -> bool | None:
        """The main contacts' position from the feedback contact, or None without one."""
        return None

    def shutdown(self) -> None:
        """Open and release the hardware."""
        self.open()
