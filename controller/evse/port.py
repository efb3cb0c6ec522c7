"""The port between an EVSE's session logic and the charging protocol of its outlet (IEC 61851, CHAdeMO, GB/T).

The EVSE decides *whether* energy may flow and how much; the protocol knows *how* to tell the vehicle: a PWM,
or CAN frames. Commands go down (:class:`ChargingProtocol`), the vehicle's status comes up (:class:`EvseLink`).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import Protocol

from controller.domain.types import Answer, PowerLimit
from hal.meter import MeterReading


class VehicleStatus(enum.Enum):
    """What the protocol knows about the vehicle at the end of the cable."""

    UNKNOWN = "unknown"  # no reading yet, or an unreadable one
    ABSENT = "absent"  # no vehicle connected
    CONNECTED = "connected"  # connected, not asking for energy
    REQUESTING = "requesting"  # connected and asking for energy
    ERROR = "error"  # the vehicle side shows an error (IEC: CP shorted to PE)

    @property
    def plugged(self) -> bool:
        """A vehicle is connected (asking for energy or not)."""
        return self in (VehicleStatus.CONNECTED, VehicleStatus.REQUESTING)


class EvseLink(Protocol):
    """What a protocol may tell its EVSE (on the loop thread), and its last meter reading."""

    reading: MeterReading | None

    def on_vehicle(self, status: VehicleStatus) -> None:
        """The vehicle's status changed."""

    def refresh(self) -> None:
        """Something the protocol waited for is ready (a check passed, a timer ran out): look again."""

    def set_limit(self, name: str, limit: PowerLimit | None) -> None:
        """A limit the outlet itself imposes (the cable's rating), or lifts with None."""


class ChargingProtocol(ABC):
    """An outlet's charging protocol, as the EVSE drives it. Every method runs on the loop thread."""

    def __init__(self) -> None:
        self.evse: EvseLink | None = None

    def attach(self, evse: EvseLink) -> None:
        """Report vehicle changes to ``evse`` from now on."""
        self.evse = evse

    def start(self) -> None:
        """Start watching the vehicle (threads, bus readers)."""

    def stop(self) -> None:
        """Stop watching; the outputs stay as the supervisor and :meth:`disable` left them."""

    @abstractmethod
    def prepare(self) -> bool:
        """Get the outlet ready for energy (lock the cable, prove the safety devices); True once it is.

        When it becomes ready later, the protocol calls :meth:`EvseLink.refresh`.
        """

    def volts(self) -> float | None:
        """The voltage that turns this outlet's watts into amps (None: the mains' nominal per phase)."""
        return None

    @abstractmethod
    def offer(self, limit: PowerLimit) -> bool:
        """Offer the vehicle up to ``limit``; False when that is less than the protocol can offer at all."""

    @abstractmethod
    def withdraw(self) -> None:
        """Stop offering: the vehicle is asked to stop and given the protocol's time to do so."""

    @abstractmethod
    def release(self, unlock: bool) -> None:
        """The session is over: free the outlet for the next one (unlocking the cable unless told not to)."""

    @abstractmethod
    def disable(self) -> None:
        """The outlet is unavailable: nothing is offered until the next session is prepared."""

    @property
    @abstractmethod
    def offered_amps(self) -> float | None:
        """The current per phase the vehicle has been told it may draw now (None: nothing offered)."""

    def annotate(self, reading: MeterReading) -> MeterReading:
        """A meter reading with what the protocol knows added (a DC car's SoC); as it is by default."""
        return reading

    @property
    def has_lock(self) -> bool:
        """A cable lock holds the plug in this outlet (a socket); False for a tethered cable."""
        return False

    async def unlock(self) -> Answer:
        """Free the cable now (UnlockConnector): ACCEPTED, FAILED, or NOT_SUPPORTED with no lock to open."""
        return Answer.NOT_SUPPORTED
