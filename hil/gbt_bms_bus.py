"""The bench's GB/T BMS on a CAN bus, its long messages sent by an independent J1939 stack (python-can-j1939).

One thread steps the DC circuit and the BMS (:class:`~hil.gbt_bms.GbtBms`) every ``step`` s: single
frames go straight onto the bus, BRM/BCP/BCS through python-can-j1939's RTS/CTS (so the charger's
transport receiver meets a stack it did not write), and CC1 follows the plug (4 V in, 12 V out) through
``cc1``: the ADC channel the charger reads, or the bench's relay on a real CC1 line.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import can
import j1939

from hal.can import Frame
from hil.carbus import HISTORY, GuardedSends
from hil.gbt_bms import GbtBms

BMS, CHARGER = 0xF4, 0x56


class GbtBmsOnBus:
    """A GB/T vehicle plugged into one outlet."""

    def __init__(self, bms: GbtBms, *, cc1: Callable[[float], None], aux: Any, interface: str = "virtual",
                 channel: str, step: float = 0.005) -> None:
        self.bms = bms
        self.circuit = bms.circuit
        self._set_cc1, self._aux = cc1, aux
        self._bus = can.Bus(interface=interface, channel=channel)
        self._ecu = j1939.ElectronicControlUnit(max_cmdt_packets=0xFF)
        try:
            self._ecu.connect(interface=interface, channel=channel)
        except Exception:
            self._bus.shutdown()  # the first bus opened; the stack's did not
            raise
        name = j1939.Name(arbitrary_address_capable=0, industry_group=0, vehicle_system=0, function=0,
                          function_instance=0, ecu_instance=0, manufacturer_code=0, identity_number=BMS)
        self._ca = j1939.ControllerApplication(name, BMS, bypass_address_claim=True)  # GB/T claims no address
        self._ecu.add_ca(controller_application=self._ca)
        self.step = step
        self.plugged = False
        self.heard: deque[tuple[float, Frame]] = deque(maxlen=HISTORY)
        self.said: deque[tuple[float, str]] = deque(maxlen=HISTORY)
        #: Called with each charger frame the BMS hears, from its thread (a bench car reads the CCS here).
        self.listeners: list[Callable[[Frame], None]] = []
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._send = GuardedSends("GB/T BMS")
        self._set_cc1(12.0)

    def plug_in(self) -> None:
        """The vehicle connector goes in: CC1 at 4 V; a BMS that was plugged in before starts a new session."""
        self.bms.new_session()
        self.plugged = True
        self._set_cc1(4.0)

    def unplug(self) -> None:
        """The connector comes out: CC1 back at 12 V."""
        self.plugged = False
        self._set_cc1(12.0)

    def start(self) -> None:
        """Run the BMS's thread and its J1939 stack."""
        self._ca.start()
        self._running.set()
        self._thread = threading.Thread(target=self._run, name="gbt-bms", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End both and release the buses."""
        self._running.clear()
        if self._thread is not None:
            self._thread.join(1.0)
        self._ca.stop()
        self._ecu.disconnect()
        self._bus.shutdown()

    def _run(self) -> None:
        last = time.monotonic()
        while self._running.is_set():
            now = time.monotonic()
            self.circuit.step(now - last)
            last = now
            while (msg := self._bus.recv(0)) is not None:
                if msg.is_extended_id and (msg.arbitration_id >> 8) & 0xFF == BMS:
                    frame = Frame(msg.arbitration_id, bytes(msg.data), True, now)
                    self.heard.append((now, frame))
                    self.bms.on_frame(frame)
                    for listener in self.listeners:
                        listener(frame)
            aux = bool(self._aux.state) and self.plugged
            for item in self.bms.tick(now, aux):
                if isinstance(item, Frame):
                    self.said.append((now, f"{item.id:08X}"))
                    message = can.Message(arbitration_id=item.id, data=item.data, is_extended_id=True)
                    self._send(functools.partial(self._bus.send, message))
                else:
                    pgn, data = item
                    self.said.append((now, f"PGN {pgn:04X} ({len(data)} bytes)"))
                    self._send(functools.partial(self._ca.send_pgn, 0, pgn >> 8, CHARGER, 7, list(data)))
            time.sleep(self.step)
