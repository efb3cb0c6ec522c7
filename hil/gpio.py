"""Mock circuit parts on gpiozero's MockFactory: watched pins and an MCP3008 ADC.

gpiozero's mock pins keep every state change in a list, which grows without
bound in a daemon that bit-bangs SPI hundreds of times a second; these pins
keep only their current state and tell observers (the bench timeline, the EV
simulator) about each change with its monotonic time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gpiozero import Device
from gpiozero.pins.mock import (
    MockFactory,
    MockPin,
    MockPWMPin,
    MockSPIClockPin,
    MockSPIDevice,
    MockSPISelectPin,
)

PinObserver = Callable[[float, float], None]


class _Watched:
    """Mixin: no unbounded history; observers called with (monotonic time, new state)."""

    _state: Any
    _last_change: float

    def _init_watch(self) -> None:
        self.observers: list[PinObserver] = []

    def _change_state(self, value: Any) -> bool:
        if self._state == value:
            return False
        now = time.monotonic()
        self._state = value
        self._last_change = now
        for observer in list(getattr(self, "observers", ())):
            observer(now, float(value))
        return True


class WatchedPin(_Watched, MockPin):
    """A plain mock pin that reports its changes."""

    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self._init_watch()

    def drive(self, active: bool, active_high: bool) -> None:
        """Drive this input as a device's output would: ``active`` at the level ``active_high`` names."""
        if active == active_high:
            self.drive_high()
        else:
            self.drive_low()


class WatchedPWMPin(_Watched, MockPWMPin):
    """A PWM-capable mock pin that reports duty changes (0.0-1.0)."""

    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self._init_watch()


class _QuietClockPin(_Watched, MockSPIClockPin):
    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self._init_watch()


class _QuietSelectPin(_Watched, MockSPISelectPin):
    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self._init_watch()


# SPI0 pins (BCM): SCLK, MOSI, MISO and the chip selects CE0/CE1.
SPI0_CLOCK, SPI0_MOSI, SPI0_MISO = 11, 10, 9
SPI0_SELECT = (8, 7)


class BenchFactory(MockFactory):
    """MockFactory whose pre-wired pins are handed to whichever device asks for them.

    gpiozero refuses a PWM pin to a device that asks for the default pin class
    (and the reverse); on the bench the circuit part wired to a pin (PWM input
    of the EV, contactor coil, SPI clock) decides its class, not the device.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The simulated MCP3008 on each SPI0 chip select, answered by :class:`FastSpi` without bit-banging.
        self.adc_models: dict[int, MockMcp3008] = {}

    def spi(self, **spi_args: Any) -> Any:
        """An MCP3008 asked for by port and device gets :class:`FastSpi`: the model answers each transfer whole
        (the bit-banged mock SPI costs the simulated build most of its CPU, which is the bench's, not the
        controller's). Anything else gets gpiozero's mock SPI."""
        device = spi_args.get("device", 0)
        if spi_args.get("port", 0) == 0 and device in self.adc_models and "clock_pin" not in spi_args:
            return FastSpi(self.adc_models[device])
        return super().spi(**spi_args)

    def pin(self, name: Any, pin_class: Any = None, **kwargs: Any) -> Any:
        if pin_class is None:
            for _header, info in self.board_info.find_pin(name):
                if info in self.pins:
                    return self.pins[info]
        return super().pin(name, pin_class=pin_class, **kwargs)


def make_factory() -> MockFactory:
    """A mock factory installed as gpiozero's default (software SPI always uses the default)."""
    factory = BenchFactory(pin_class=WatchedPin)
    Device.pin_factory = factory
    return factory


class MockMcp3008(MockSPIDevice):
    """The slave side of an MCP3008 on mock SPI pins; ``inputs`` are channel fractions 0..1 of Vref.

    Protocol (datasheet, as gpiozero drives it): leading zeros, a start bit,
    single/differential, three channel bits; the chip answers with a sample
    bit, a null bit and ten result bits, MSB first.
    """

    def __init__(self, factory: MockFactory, device: int = 0) -> None:
        for pin in (SPI0_MOSI, SPI0_MISO):
            factory.pin(pin, pin_class=WatchedPin)
        factory.pin(SPI0_CLOCK, pin_class=_QuietClockPin)
        factory.pin(SPI0_SELECT[device], pin_class=_QuietSelectPin)
        super().__init__(SPI0_CLOCK, SPI0_MOSI, SPI0_MISO, SPI0_SELECT[device], pin_factory=factory)
        self.inputs = [0.0] * 8
        #: Channels that answer a fixed fraction of Vref whatever their input (0.0: stuck at zero), e.g. a
        #: broken front end or a dead converter channel.
        self.stuck: dict[int, float] = {}
        self._phase = "idle"
        self._channel: list[int] = []
        self.reads = 0
        if isinstance(factory, BenchFactory):
            factory.adc_models[device] = self

    def volts_on(self, channel: int, scale: float) -> Callable[[float], None]:
        """A setter for what ``channel`` reads, in volts before a front end that divides by ``scale``."""
        def set_volts(volts: float) -> None:
            self.inputs[channel] = volts / scale
        return set_volts

    def on_start(self) -> None:
        super().on_start()
        self._phase = "idle"
        self._channel = []

    def on_bit(self) -> None:
        bit = self.rx_buf[-1]
        if self._phase == "idle":
            if bit:
                self._phase = "mode"
        elif self._phase == "mode":
            self._phase = "channel"
        elif self._phase == "channel":
            self._channel.append(bit)
            if len(self._channel) == 3:
                channel = self._channel[0] << 2 | self._channel[1] << 1 | self._channel[2]
                level = min(1.0, max(0.0, self.stuck.get(channel, self.inputs[channel])))
                self.tx_word(round(level * 1023), 12)
                self.reads += 1
                self._phase = "answer"


class FastSpi:
    """gpiozero's SPI interface, as much of it as its MCP3008 uses, answered by a :class:`MockMcp3008` model."""

    bits_per_word = 8

    def __init__(self, model: MockMcp3008) -> None:
        self.model = model
        self.closed = False

    def transfer(self, data: list[int]) -> list[int]:
        """An MCP3008 conversion: start bit in word 0, single/differential and the channel in word 1."""
        channel = (data[1] >> 4) & 0x07
        model = self.model
        level = min(1.0, max(0.0, model.stuck.get(channel, model.inputs[channel])))
        value = round(level * 1023)
        model.reads += 1
        return [0, (value >> 8) & 0x03, value & 0xFF][-len(data):]

    def close(self) -> None:
        """Nothing to release (no pins are reserved)."""
        self.closed = True
