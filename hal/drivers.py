"""The driver registry of every HAL role (config name -> implementing class)."""

from __future__ import annotations

from hal.can import CanBus
from hal.contactor import Contactor
from hal.dc_io import Bleeder, ChademoLines, EmergencyStop, GbtLines
from hal.dc_power import DcPowerStage
from hal.imd import InsulationMonitor
from hal.led import StatusLed
from hal.lock import CableLock
from hal.meter import EnergyMeter
from hal.pilot import ControlPilot
from hal.proximity import ProximityInput
from hal.rcm import ResidualCurrentMonitor
from hal.registry import DriverRegistry
from hal.rfid import CardReader
from hal.temperature import Thermometer

PILOTS: DriverRegistry[ControlPilot] = DriverRegistry(
    "pilot", ControlPilot, {"gpio": "hal.gpio_pilot:GpioPilot", "pwm": "hal.gpio_pilot:HardwarePwmPilot",
                                  "evsewb": "hal.evsewb:EvseWbPilot", "rapi": "hal.rapi:RapiPilot"}
)
CONTACTORS: DriverRegistry[Contactor] = DriverRegistry(
    "contactor", Contactor, {"gpio": "hal.gpio_contactor:GpioContactor", "evsewb": "hal.evsewb:EvseWbContactor",
                  "rapi": "hal.rapi:RapiContactor"}
)
CARD_READERS: DriverRegistry[CardReader] = DriverRegistry(
    "card reader",
    CardReader,
    {"pn532": "hal.rfid.pn532:Pn532Reader", "rdm6300": "hal.rfid.rdm6300:Rdm6300Reader"},
)
METERS: DriverRegistry[EnergyMeter] = DriverRegistry(
    "meter", EnergyMeter, {"modbus": "hal.meter.modbus:ModbusMeter"}
)
PROXIMITY: DriverRegistry[ProximityInput] = DriverRegistry(
    "proximity", ProximityInput, {"mcp3008": "hal.proximity:AdcProximity"}
)
RCMS: DriverRegistry[ResidualCurrentMonitor] = DriverRegistry(
    "rcm", ResidualCurrentMonitor,
    {"gpio": "hal.rcm:GpioRcm", "evsewb": "hal.evsewb:EvseWbRcm", "rapi": "hal.rapi:RapiRcm"}
)
LOCKS: DriverRegistry[CableLock] = DriverRegistry("cable lock", CableLock, {"gpio": "hal.lock:GpioCableLock"})
LEDS: DriverRegistry[StatusLed] = DriverRegistry("status LED", StatusLed, {"gpio": "hal.led:GpioStatusLed"})
THERMOMETERS: DriverRegistry[Thermometer] = DriverRegistry(
    "temperature", Thermometer, {"w1": "hal.temperature:W1Thermometer"}
)
CAN_BUSES: DriverRegistry[CanBus] = DriverRegistry("CAN bus", CanBus, {"python-can": "hal.can:PythonCanBus"})
DC_POWER_STAGES: DriverRegistry[DcPowerStage] = DriverRegistry(
    "DC power stage", DcPowerStage, {"infypower": "hal.infypower:InfyPowerStage"}
)
IMDS: DriverRegistry[InsulationMonitor] = DriverRegistry(
    "insulation monitor", InsulationMonitor, {"bender": "hal.bender:BenderIsoCha425"}
)
CHADEMO_LINES: DriverRegistry[ChademoLines] = DriverRegistry(
    "CHAdeMO lines", ChademoLines, {"gpio": "hal.dc_io:ChademoLines"}
)
GBT_LINES: DriverRegistry[GbtLines] = DriverRegistry("GB/T lines", GbtLines, {"gpio": "hal.dc_io:GbtLines"})
BLEEDERS: DriverRegistry[Bleeder] = DriverRegistry("bleed resistor", Bleeder, {"gpio": "hal.dc_io:Bleeder"})
EMERGENCY_STOPS: DriverRegistry[EmergencyStop] = DriverRegistry(
    "emergency stop", EmergencyStop, {"gpio": "hal.dc_io:EmergencyStop"}
)
