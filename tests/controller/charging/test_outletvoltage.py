"""The DC outlet's voltage: the DC meter's reading, the stage's when closed and higher, live when unknown."""

from __future__ import annotations

from controller.charging.outletvoltage import UNKNOWN_VOLTS, OutletVoltage
from hal.dc_power import DcPowerStage, PowerCapabilities, PowerReading
from hal.meter import MeterReading


class Stage(DcPowerStage):
    def __init__(self) -> None:
        self.volts = 0.0

    async def open(self) -> PowerCapabilities:
        return self.capabilities

    @property
    def capabilities(self) -> PowerCapabilities:
        return PowerCapabilities(min_voltage=50, max_voltage=500, max_current=125, max_power=50_000)

    def set(self, voltage: float, current: float) -> None:
        """Not used here."""

    def shut_off(self) -> None:
        """Not used here."""

    @property
    def reading(self) -> PowerReading:
        return PowerReading(voltage=self.volts, current=0.0, on=True)

    async def close(self) -> None:
        """Nothing to release."""


class Rig:
    def __init__(self) -> None:
        self.now = 100.0
        self.closed = False
        self.stage = Stage()
        self.voltage = OutletVoltage(self.stage, lambda: self.closed, clock=lambda: self.now)

    def meter(self, volts: float | None) -> None:
        self.voltage.on_reading(None, MeterReading(energy_wh=0.0, voltage=(volts, None, None)))


def test_before_the_meter_answers_the_outlet_counts_as_live() -> None:
    rig = Rig()
    assert rig.voltage() == UNKNOWN_VOLTS == 60.0


def test_the_meter_reading_is_the_outlet_voltage_until_it_is_stale() -> None:
    rig = Rig()
    rig.meter(3.2)
    assert rig.voltage() == 3.2
    rig.now += 0.9
    assert rig.voltage() == 3.2
    rig.now += 0.2  # older than 1 s: unknown, so live (nothing unlocks on it)
    assert rig.voltage() == UNKNOWN_VOLTS
    rig.meter(420.0)
    rig.now += 5
    assert rig.voltage() == 420.0  # a stale live reading stays what it said
    rig.meter(None)  # a reading without a voltage changes nothing
    assert rig.voltage() == 420.0


def test_with_the_contactors_closed_the_higher_of_meter_and_stage_counts() -> None:
    rig = Rig()
    rig.meter(380.0)
    rig.stage.volts = 395.0
    assert rig.voltage() == 380.0  # open: the stage is behind the contactors
    rig.closed = True
    assert rig.voltage() == 395.0  # closed: one node; the over-voltage guard sees the faster poll
    rig.stage.volts = 100.0
    assert rig.voltage() == 380.0
