"""The driver registry of every HAL role (config name -> implementing class)."""

from __future__ import annotations

from hal.contactor import Contactor
from hal.meter import EnergyMeter
from hal.pilot import ControlPilot
from hal.registry import DriverRegistry
from hal.rfid import CardReader

PILOTS: DriverRegistry[ControlPilot] = DriverRegistry(
    "pilot", ControlPilot, {"gpio": "hal.gpio_pilot:GpioPilot"}
)
CONTACTORS: DriverRegistry[Contactor] = DriverRegistry(
    "contactor", Contactor, {"gpio": "hal.gpio_contactor:GpioContactor"}
)
CARD_READERS: DriverRegistry[CardReader] = DriverRegistry(
    "card reader",
    CardReader,
    {"pn532": "hal.rfid.pn532:Pn532Reader", "rdm6300": "hal.rfid.rdm6300:Rdm6300Reader"},
)
METERS: DriverRegistry[EnergyMeter] = DriverRegistry(
    "meter", EnergyMeter, {"modbus": "hal.meter.modbus:ModbusMeter"}
)
