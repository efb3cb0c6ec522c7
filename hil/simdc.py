"""One simulated DC outlet for ``hardware = "sim"``: the far end of every bus a CHAdeMO or GB/T connector has.

The controller builds its real drivers (python-can buses, the InfyPower stage, the isoCHA425HV over
Modbus, the DC meter, gpiozero lines); this supplies what they talk to, all on one
:class:`~hil.dccircuit.DcCircuit`: InfyPower modules on the module bus, the IMD and the DC meter as
Modbus TCP servers on 127.0.0.1, the contactor, bleed relay, e-stop loop and lock on mock pins, and
the car. The car runs here on a ``virtual`` car bus; on any other interface (python-can-remote) it
runs in another process (``evse-hil car``) and reaches its pins and the circuit through a
:class:`~hil.carlink.CarLinkServer`, while a thread here steps the circuit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.config import ConnectorSection
from controller.hardware import PlatformError
from hil.carlink import CarLinkServer, DcPins
from hil.chademo_ev import ChademoEv, EvSpec
from hil.chademo_ev_bus import ChademoEvOnBus
from hil.dccircuit import DcCircuit
from hil.ev import ContactorSim
from hil.gbt_bms import BmsSpec, GbtBms
from hil.gbt_bms_bus import GbtBmsOnBus
from hil.gpio import MockMcp3008, WatchedPin
from hil.imd_sim import IsoCha425Sim
from hil.infypower_sim import InfyPowerSim
from hil.meter import MeterSimulator
from hil.timeline import DcSampler, Timeline

#: Module ratings the bench gives each outlet's stage: a CHAdeMO charger's 500 V, a GB/T one's 750 V.
MODULE_MAX_VOLTAGE = {"chademo": 500, "gbt": 750}

class DcCar:
    """What a script's ``plug`` / ``unplug`` reach on a DC outlet: the car on the bus, here."""

    def __init__(self, car: ChademoEvOnBus | GbtBmsOnBus, locked: Callable[[], bool]) -> None:
        self.car = car
        self.locked = locked

    def plug(self) -> None:
        """The connector goes into the inlet."""
        self.car.plug_in()

    def unplug(self) -> None:
        """The connector comes out; a locked one cannot (``fault cc1`` is a connector coming loose)."""
        if self.locked():
            raise ValueError("the connector is locked: it cannot be pulled until the charger unlocks it")
        self.car.unplug()

    def __getattr__(self, name: str) -> Any:
        if name in ("set_mode", "draw", "set_behaviour"):
            raise ValueError("that step drives an AC car's pilot; a DC car charges as its protocol asks")
        raise AttributeError(name)


class DcSimOutlet:
    """A DC connector's simulated far ends (built before the drivers, started before they open)."""

    def __init__(self, conn: ConnectorSection, factory: Any, adcs: dict[tuple[int, int], MockMcp3008],
                 timeline: Timeline, link_dir: Path) -> None:
        if conn.dc_power.can.interface != "virtual":
            raise PlatformError(f'connector {conn.id}: dc_power.can.interface = "{conn.dc_power.can.interface}": '
                                'the simulated power modules need "virtual" (they run in this process)')
        self.conn, self.timeline, self.factory = conn, timeline, factory
        io = conn.dc_io
        self.circuit = circuit = DcCircuit()
        pin = lambda number: factory.pin(number, pin_class=WatchedPin)  # noqa: E731
        mirror = pin(conn.contactor.mirror_pin) if conn.contactor.mirror_pin is not None else None
        self.contactor = ContactorSim(conn.id, pin(conn.contactor.pin), timeline, mirror, conn.contactor.mirror_type)
        circuit.contactors_closed = lambda: self.contactor.closed
        self.bleed = pin(io.bleed_pin)
        circuit.bleed_on = lambda: bool(self.bleed.state) == io.bleed_active_high
        self.estop = pin(io.estop_pin)
        self.estop_pressed = False
        count = len(conn.dc_power.addresses)
        self.modules = InfyPowerSim(circuit, conn.dc_power.addresses, channel=conn.dc_power.can.channel,
                                    max_current=math.ceil(conn.max_current / count),
                                    max_voltage=MODULE_MAX_VOLTAGE[conn.kind])
        self.imd = IsoCha425Sim(circuit, unit=conn.imd.address)
        self.meter = MeterSimulator(conn.meter.model, phases=1, unit=conn.meter.address, voltage=0.0,
                                    measure=lambda: circuit.measured()[1:])
        self.pins = self._car_pins(pin, adcs)
        self.car: ChademoEvOnBus | GbtBmsOnBus | None = None
        self.link: CarLinkServer | None = None
        self.in_process = conn.can.interface == "virtual"
        if self.in_process:
            self.car = self._car()
        else:
            self.link = CarLinkServer(link_dir / f"car-{conn.id}.sock", conn.kind, self.pins, circuit)
        self._stepping = threading.Event()
        self._stepper: threading.Thread | None = None
        self._dc = DcSampler(timeline, conn.id)

    def _car_pins(self, pin: Any, adcs: dict[tuple[int, int], MockMcp3008]) -> DcPins:
        io = self.conn.dc_io
        if self.conn.kind == "chademo":
            return DcPins(d1=pin(io.d1_pin), d2=pin(io.d2_pin), k=pin(io.k_pin), plug=pin(io.plug_pin))
        key = (io.spi_port, io.spi_device)
        if key not in adcs:
            adcs[key] = MockMcp3008(self.factory, device=io.spi_device)
        return DcPins(aux=pin(io.aux_pin), adc=adcs[key], cc1_channel=io.cc1_channel, cc1_scale=io.cc1_scale)

    def _car(self) -> ChademoEvOnBus | GbtBmsOnBus:
        can, p = self.conn.can, self.pins
        if self.conn.kind == "chademo":
            assert p.d1 is not None and p.d2 is not None and p.k is not None and p.plug is not None
            return ChademoEvOnBus(ChademoEv(EvSpec(), self.circuit), d1=p.d1, d2=p.d2, k=p.k, plug=p.plug,
                                  interface=can.interface, channel=can.channel, **can.options)
        assert p.adc is not None and p.aux is not None
        return GbtBmsOnBus(GbtBms(BmsSpec(), self.circuit), cc1=p.adc.volts_on(p.cc1_channel, p.cc1_scale),
                           aux=p.aux, interface=can.interface, channel=can.channel)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Modules answering, Modbus servers up, the car (or its link) running, the e-stop loop closed."""
        self.modules.start()
        await self.imd.start_tcp()
        await self.meter.start_tcp()
        self.press_estop(False)
        if self.car is not None:
            self.car.start()
        if self.link is not None:
            self.link.start()
        self._stepping.set()
        self._stepper = threading.Thread(target=self._step, name=f"dc-circuit-{self.conn.id}", daemon=True)
        self._stepper.start()

    def _step(self) -> None:
        # The in-process car steps the circuit itself (in its own thread, with its frames); a linked car's
        # circuit is stepped here. Both: the timeline gets the outlet's voltage and current.
        last = time.monotonic()
        while self._stepping.is_set():
            now = time.monotonic()
            if self.car is None:
                self.circuit.step(now - last)
            last = now
            self._dc.sample(self.circuit.outlet_voltage, self.circuit.current, now)
            time.sleep(0.005)

    def settle(self) -> None:
        """After the drivers opened their inputs: drive them again."""
        self.contactor.settle()
        self.press_estop(self.estop_pressed)
        if self.car is not None and not self.car.plugged:
            self.car.unplug()  # the connector line's pull applied over the car's level
        if self.link is not None:
            self.link.settle()

    async def stop(self) -> None:
        """Car, link, stepper, servers and modules down."""
        self._stepping.clear()
        if self._stepper is not None:
            self._stepper.join(1.0)
        if self.car is not None:
            self.car.stop()
        if self.link is not None:
            self.link.stop()
        await self.imd.stop()
        await self.meter.stop()
        self.modules.stop()

    # ---------------------------------------------------------------- the bench

    def press_estop(self, pressed: bool) -> None:
        """Open (pressed) or close the emergency-stop loop."""
        self.estop_pressed = pressed
        closed_level = self.conn.dc_io.estop_closed_high
        (self.estop.drive_high if closed_level != pressed else self.estop.drive_low)()

    def quicken(self) -> None:
        """Bench timings: the car gives its permission in 0.5 s and closes its contactors 0.3 s after d2 (a
        Leaf takes 3.9 s and 1.3 s), the IMD measures in 0.3 s (2 s); the sequences and limits are the same."""
        self.imd.measure_time, self.imd.self_test_time = 0.3, 0.2
        if isinstance(self.car, ChademoEvOnBus) and isinstance(self.car.ev, ChademoEv):
            self.car.ev.spec.permission_delay, self.car.ev.spec.contactor_delay = 0.5, 0.3
        elif isinstance(self.car, GbtBmsOnBus):
            self.car.bms.spec.relay_delay = 0.3

    def set_soc(self, percent: float) -> None:
        """The car's battery at ``percent`` (a benchmark's trials each start from the same charge)."""
        if isinstance(self.car, ChademoEvOnBus) and isinstance(self.car.ev, ChademoEv):
            self.car.ev.soc = percent
        elif isinstance(self.car, GbtBmsOnBus):
            self.car.bms.soc = percent

    def inject(self, kind: str, active: bool) -> None:
        """A DC fault at the far end.

        insulation: 20 kOhm to PE; evsilent: the car stops sending; overvoltage: a 200 V surge the charger's
        sensors see (past the emergency limit); estop: the loop opens; cc1: CHAdeMO's connector line drops, or
        GB/T's CC1 reads 6 V, while the connector stays in; psu: the first module reports a module fault.
        """
        circuit = self.circuit
        if kind == "insulation":
            circuit.insulation_ohms = 20e3 if active else 10e6
        elif kind == "overvoltage":
            circuit.surge = 200.0 if active else 0.0
        elif kind == "estop":
            self.press_estop(active)
        elif kind == "psu":
            self.modules.fault(self.conn.dc_power.addresses[0], "module fault", active)
        elif self.car is None:
            raise ValueError(f"fault {kind} needs the car in this process (connector {self.conn.id}'s is linked)")
        elif kind == "evsilent":
            model = self.car.ev if isinstance(self.car, ChademoEvOnBus) else self.car.bms
            bad: set[str] = model.spec.misbehaviours  # type: ignore[union-attr]  # a replayed car has no spec
            (bad.add if active else bad.discard)("silent")
        elif kind == "cc1":
            p, plugged = self.pins, self.car.plugged
            if p.plug is not None:
                (p.plug.drive_high if plugged and not active else p.plug.drive_low)()
            elif p.adc is not None:
                p.adc.inputs[p.cc1_channel] = (6.0 if active else 4.0 if plugged else 12.0) / p.cc1_scale
        else:
            raise ValueError(f"fault {kind} is not one a DC connector has")

    def ev(self, locked: Callable[[], bool]) -> DcCar:
        """The car, for script steps; ``locked`` tells whether the cable lock holds the connector."""
        if self.car is None:
            raise RuntimeError(f"connector {self.conn.id}'s car runs in another process (evse-hil car)")
        return DcCar(self.car, locked)
