"""The one fault catalogue: what the supervisor raises, logs show, indicators light and every protocol reports.

Each fault has a name that says exactly what is wrong (the names follow EVerest's error catalogue where one
exists), whether it latches, and the reason a transaction it ends is given. ``latching`` faults stay until their
condition is gone *and* the vehicle has left, so a damaged contactor or a tripped RCM is never reset by the next
car. How a protocol spells a fault (1.6's ChargePointErrorCode, 2.0.1's events) lives in its adapter.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from controller.domain.types import StopReason


@dataclass(frozen=True)
class FaultInfo:
    """How a fault is named, described, cleared, and what it ends a transaction with."""

    code: str
    description: str
    latching: bool
    stop_reason: StopReason = StopReason.EMERGENCY_STOP


class Fault(enum.Enum):
    """Every fault the station knows."""

    PILOT_FAULT = FaultInfo("PilotFault", "control pilot shorted to PE (state E)", False)
    PILOT_UNREADABLE = FaultInfo("PilotUnreadable", "control pilot unreadable or outside every state's band", False)
    DIODE_FAULT = FaultInfo("DiodeFault", "EV diode missing or shorted", False)
    VENTILATION_NOT_AVAILABLE = FaultInfo("VentilationNotAvailable",
                                          "EV asks for ventilation (state D); the site has none", False)
    PROXIMITY_FAULT = FaultInfo("ProximityFault", "cable PP resistor out of range", False)
    CONTACTOR_WELDED = FaultInfo("ContactorWelded", "contactor still closed after opening", True)
    CONTACTOR_FAILED_TO_CLOSE = FaultInfo("ContactorFailedToClose", "contactor did not close when driven", True)
    RCM_TRIP = FaultInfo("RcmTripped", "residual current monitor tripped", True, StopReason.GROUND_FAULT)
    RCM_SELFTEST_FAILED = FaultInfo("RcmSelfTestFailed", "RCM self-test failed", True, StopReason.GROUND_FAULT)
    LOCK_FAILURE = FaultInfo("LockFailure", "cable lock did not reach its position", True)
    OVERCURRENT = FaultInfo("OverCurrent", "EV draws more than offered", True, StopReason.OVERCURRENT_FAULT)
    OVER_TEMPERATURE = FaultInfo("OverTemperature", "temperature above the stop threshold", False)
    METER_COMM_LOST = FaultInfo("MeterCommunicationLost", "energy meter does not answer", False, StopReason.OTHER)
    READER_FAILURE = FaultInfo("ReaderFailure", "card reader does not answer", False, StopReason.OTHER)
    # DC outlets (CHAdeMO, GB/T): budgets and sources in dc.md 6.
    EV_COMM_LOST = FaultInfo("EvCommunicationLost", "the EV stopped talking on CAN", False, StopReason.OTHER)
    INSULATION_FAULT = FaultInfo("InsulationFault", "DC output insulation to PE below the fault level", True,
                                 StopReason.GROUND_FAULT)
    INSULATION_WARNING = FaultInfo("InsulationWarning", "DC output insulation to PE below the warning level",
                                   False, StopReason.OTHER)
    OVER_VOLTAGE = FaultInfo("OverVoltage", "DC output above the vehicle's maximum or the emergency limit", True)
    VOLTAGE_MISMATCH = FaultInfo("VoltageMismatch", "DC voltage at the outlet is not what closing needs", False,
                                 StopReason.OTHER)
    POWER_STAGE_FAULT = FaultInfo("PowerStageFault", "DC power modules report a fault or do not answer", False,
                                  StopReason.OTHER)
    EMERGENCY_STOP = FaultInfo("EmergencyStop", "emergency stop pressed (or its loop broken)", False)
    INTERNAL_ERROR = FaultInfo("InternalError", "the outlet's control step failed (see the log)", True,
                               StopReason.OTHER)
    CONNECTOR_LOST = FaultInfo("ConnectorLost", "the connector left the inlet during a session (CC1 / plug)",
                               False, StopReason.EV_DISCONNECTED)

    @property
    def info(self) -> FaultInfo:
        """The catalogue entry."""
        value: FaultInfo = self.value
        return value
