"""DC outlet I/O on GPIO: CHAdeMO's sequence lines, GB/T's CC1 and auxiliary power, the bleed resistor, the e-stop.

CHAdeMO (pins per ``dc.md`` 1.1): d1 (pin 2) and d2 (pin 10) are relay outputs that feed the EV's
sequence circuits; k is the EV's permission switch (pin 4), read through the charger's
optocoupler j; pin 7 tells the connector is in the inlet. GB/T: CC1 (detection point 1) is read
as a voltage (12 V unplugged, 6 V connecting, 4 V connected: 3.2-4.8 V counts as connected) and
the auxiliary 12 V supply (A+/A-) is a relay. The bleed resistor discharges the output; the
emergency stop is a normally-closed loop, so a broken wire reads as pressed.

Inputs report their edges through a callback in gpiozero's thread (``on_change(name, value)``):
the safety paths act from the thread that saw the edge.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpiozero import MCP3008, DigitalInputDevice, DigitalOutputDevice

from hal.errors import HalConfigError

#: Told ("k" | "plug" | "estop", new value) on every edge, in gpiozero's callback thread.
EdgeCallback = Callable[[str, bool], None]

CC1_CONNECTED = (3.2, 4.8)  # V: connected (GB/T 18487.1 as tested by GB/T 34657.1, dc.md 2.4)


class _Inputs:
    """Named GPIO inputs that report their edges."""

    def __init__(self) -> None:
        self.on_change: EdgeCallback | None = None
        self._inputs: dict[str, DigitalInputDevice] = {}

    def _input(self, name: str, pin: int, active_high: bool, pin_factory: Any) -> DigitalInputDevice:
        # The pull holds the inactive level, so a broken wire reads inactive (no permission, no plug).
        device = DigitalInputDevice(pin, pull_up=not active_high, pin_factory=pin_factory)
        device.when_activated = lambda: self._edge(name, True)
        device.when_deactivated = lambda: self._edge(name, False)
        self._inputs[name] = device
        return device

    def _edge(self, name: str, value: bool) -> None:
        callback = self.on_change
        if callback is not None:
            callback(name, value)

    def close(self) -> None:
        """Release every pin."""
        for device in self._inputs.values():
            device.close()


class ChademoLines(_Inputs):
    """d1 and d2 out; k and the connector-present line in."""

    def __init__(self, *, d1_pin: int, d2_pin: int, k_pin: int, plug_pin: int, k_active_high: bool = True,
                 plug_active_high: bool = True, pin_factory: Any = None) -> None:
        super().__init__()
        pins = [d1_pin, d2_pin, k_pin, plug_pin]
        if len(set(pins)) != len(pins):
            raise HalConfigError(f"CHAdeMO lines need four different pins, got d1 {d1_pin}, d2 {d2_pin}, "
                                 f"k {k_pin}, plug {plug_pin}")
        self._d1 = DigitalOutputDevice(d1_pin, initial_value=False, pin_factory=pin_factory)
        self._d2 = DigitalOutputDevice(d2_pin, initial_value=False, pin_factory=pin_factory)
        self._k = self._input("k", k_pin, k_active_high, pin_factory)
        self._plug = self._input("plug", plug_pin, plug_active_high, pin_factory)

    def set(self, *, d1: bool, d2: bool) -> None:
        """Drive the sequence lines (d2 never without d1)."""
        self._d2.value = d2 and d1
        self._d1.value = d1

    @property
    def d1(self) -> bool:
        """d1 as driven."""
        return bool(self._d1.value)

    @property
    def d2(self) -> bool:
        """d2 as driven."""
        return bool(self._d2.value)

    @property
    def k(self) -> bool:
        """The EV permits charging."""
        return bool(self._k.value)

    @property
    def plugged(self) -> bool:
        """The connector is in the inlet."""
        return bool(self._plug.value)

    def close(self) -> None:
        self._d2.off()
        self._d1.off()
        self._d2.close()
        self._d1.close()
        super().close()


class GbtLines:
    """CC1 on an MCP3008 channel behind a divider, and the auxiliary-power relay."""

    def __init__(self, *, cc1_channel: int, aux_pin: int, cc1_scale: float = 13.2,
                 spi_port: int = 0, spi_device: int = 0, pin_factory: Any = None) -> None:
        if cc1_scale <= 0:
            raise HalConfigError(f"CC1 scale must be positive (volts at full scale), got {cc1_scale}")
        self.cc1_scale = cc1_scale  # CC1 volts when the ADC reads full scale (13.2: a 1:4 divider onto 3.3 V)
        self._adc = MCP3008(channel=cc1_channel, port=spi_port, device=spi_device, pin_factory=pin_factory)
        self._aux = DigitalOutputDevice(aux_pin, initial_value=False, pin_factory=pin_factory)

    @property
    def cc1_volts(self) -> float:
        """The voltage at detection point 1."""
        return float(self._adc.value) * self.cc1_scale

    @property
    def connected(self) -> bool:
        """CC1 says the vehicle connector is fully in (3.2-4.8 V)."""
        low, high = CC1_CONNECTED
        return low <= self.cc1_volts <= high

    def set_aux(self, on: bool) -> None:
        """Switch the vehicle's auxiliary 12 V supply (K3/K4)."""
        self._aux.value = on

    @property
    def aux(self) -> bool:
        """The auxiliary supply as driven."""
        return bool(self._aux.value)

    def close(self) -> None:
        """Auxiliary supply off; release the pins."""
        self._aux.off()
        self._aux.close()
        self._adc.close()


class Bleeder:
    """The output's discharge resistor, switched by a relay."""

    def __init__(self, *, pin: int, active_high: bool = True, pin_factory: Any = None) -> None:
        self._relay = DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                          pin_factory=pin_factory)

    def set(self, on: bool) -> None:
        """Connect or disconnect the resistor (any thread)."""
        self._relay.value = on

    @property
    def on(self) -> bool:
        """The resistor is connected."""
        return bool(self._relay.value)

    def close(self) -> None:
        """Leave the resistor connected: an outlet the software no longer watches drains."""
        self._relay.on()
        self._relay.close()


class EmergencyStop(_Inputs):
    """A normally-closed e-stop loop: the input is active while the loop is closed (not pressed)."""

    def __init__(self, *, pin: int, closed_high: bool = True, pin_factory: Any = None) -> None:
        super().__init__()
        self._loop = self._input("loop", pin, closed_high, pin_factory)
        self._loop.when_activated = lambda: self._edge("estop", False)
        self._loop.when_deactivated = lambda: self._edge("estop", True)

    @property
    def pressed(self) -> bool:
        """Pressed, or its wire is broken."""
        return not self._loop.value
