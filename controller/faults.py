"""The one fault catalogue: what the supervisor raises, logs show, indicators light and OCPP reports.

Each fault maps to an OCPP 1.6 ChargePointErrorCode, with a vendorErrorCode
naming it exactly (1.6 has no code of its own for most of them); the names
follow EVerest's error catalogue where one exists. ``latching`` faults stay
until their condition is gone *and* the vehicle has been unplugged, so a
damaged contactor or a tripped RCM is never reset by the next car.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class FaultInfo:
    """How a fault is reported and cleared."""

    ocpp16_code: str
    vendor_code: str
    description: str
    latching: bool


class Fault(enum.Enum):
    """Every fault the station knows."""

    PILOT_FAULT = FaultInfo("OtherError", "PilotFault", "control pilot shorted to PE (state E)", False)
    DIODE_FAULT = FaultInfo("OtherError", "DiodeFault", "EV diode missing or shorted", False)
    VENTILATION_NOT_AVAILABLE = FaultInfo("OtherError", "VentilationNotAvailable",
                                          "EV asks for ventilation (state D); the site has none", False)
    PROXIMITY_FAULT = FaultInfo("OtherError", "ProximityFault", "cable PP resistor out of range", False)
    CONTACTOR_WELDED = FaultInfo("PowerSwitchFailure", "ContactorWelded", "contactor still closed after opening",
                                 True)
    CONTACTOR_FAILED_TO_CLOSE = FaultInfo("PowerSwitchFailure", "ContactorFailedToClose",
                                          "contactor did not close when driven", True)
    RCM_TRIP = FaultInfo("GroundFailure", "RcmTripped", "residual current monitor tripped", True)
    RCM_SELFTEST_FAILED = FaultInfo("GroundFailure", "RcmSelfTestFailed", "RCM self-test failed", True)
    LOCK_FAILURE = FaultInfo("ConnectorLockFailure", "LockFailure", "cable lock did not reach its position", True)
    OVERCURRENT = FaultInfo("OverCurrentFailure", "OverCurrent", "EV draws more than offered", True)
    OVER_TEMPERATURE = FaultInfo("HighTemperature", "OverTemperature", "temperature above the stop threshold",
                                 False)
    METER_COMM_LOST = FaultInfo("PowerMeterFailure", "MeterCommunicationLost", "energy meter does not answer",
                                False)
    READER_FAILURE = FaultInfo("ReaderFailure", "ReaderFailure", "card reader does not answer", False)

    @property
    def info(self) -> FaultInfo:
        """The catalogue entry."""
        value: FaultInfo = self.value
        return value
