"""The wires between a simulated charger and a simulated car in another process.

CAN crosses processes on its own (python-can-remote); the rest of a DC connector does not: the
sequence lines (CHAdeMO d1, d2, k, connector present; GB/T CC1 and the auxiliary supply) and the
power cable (the battery's voltage and the EV's contactor one way, the outlet's voltage and current
the other). :class:`CarLinkServer` is the charger's end, a unix socket in the charger's state
directory; :class:`CarLinkClient` is the car's, with pins and a circuit view the bench's car
simulators drive as if they were local. Each exchange is one JSON line each way, every few ms:

    car -> charger   {"k": true, "plug": true, "cc1": 4.0, "battery_voltage": 352.1, "ev_contactor": false}
    charger -> car   {"d1": true, "d2": false, "aux": false, "outlet_voltage": 0.4, "current": 0.0}

When the car's process goes away, the charger's end sees an unplugged car: k and the connector line
low, CC1 at 12 V, the EV contactor open.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.dccircuit import DcCircuit
from hil.gpio import MockMcp3008, WatchedPin

log = logging.getLogger(__name__)

#: The car's state while no car is linked (or once it has gone).
UNPLUGGED: dict[str, Any] = {"k": False, "plug": False, "cc1": 12.0, "battery_voltage": 0.0, "ev_contactor": False}


@dataclass
class DcPins:
    """A DC connector's lines on the charger's side (CHAdeMO: d1, d2, k, plug; GB/T: aux and CC1's ADC channel)."""

    d1: WatchedPin | None = None
    d2: WatchedPin | None = None
    k: WatchedPin | None = None
    plug: WatchedPin | None = None
    aux: WatchedPin | None = None
    adc: MockMcp3008 | None = None
    cc1_channel: int = 0
    cc1_scale: float = 13.2


class CarLinkServer:
    """The charger's end: applies the linked car's state to the pins and the circuit, answers with the charger's."""

    def __init__(self, path: Path, kind: str, pins: DcPins, circuit: DcCircuit) -> None:
        self.path, self.kind, self.pins, self.circuit = path, kind, pins, circuit
        self.state: dict[str, Any] = dict(UNPLUGGED)
        self.linked = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()

    def start(self) -> None:
        """Listen on the socket (replacing a stale one) and serve one car at a time."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.path))
        self._sock.listen(1)
        self._sock.settimeout(0.2)
        self._running.set()
        self._thread = threading.Thread(target=self._serve, name=f"car-link-{self.path.stem}", daemon=True)
        self._thread.start()
        log.info("car link for a %s car in another process at %s", self.kind, self.path)

    def stop(self) -> None:
        """Stop serving; the car counts as gone."""
        self._running.clear()
        if self._thread is not None:
            self._thread.join(1.0)
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def settle(self) -> None:
        """Drive the inputs again (opening the charger's input devices applied their pulls)."""
        self._apply(self.state)

    def _serve(self) -> None:
        assert self._sock is not None
        while self._running.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                with conn, conn.makefile("rwb") as stream:
                    self.linked.set()
                    log.info("car linked at %s", self.path)
                    self._exchange(stream)
            except OSError as exc:  # the car's process was killed mid-exchange (ECONNRESET)
                log.warning("car link at %s: %s", self.path, exc)
            finally:
                self.linked.clear()
                self._apply(dict(UNPLUGGED))
                log.info("car link at %s closed: the car counts as unplugged", self.path)

    def _exchange(self, stream: Any) -> None:
        while self._running.is_set():
            line = stream.readline()
            if not line:
                return
            try:
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise TypeError("not an object")
                state = {**UNPLUGGED, **message}
                self._apply(state)
            except (ValueError, TypeError) as exc:
                log.warning("car link: malformed line %r (%s); closing", line[:80], exc)
                return
            p, c = self.pins, self.circuit
            reply = {"d1": bool(p.d1 and p.d1.state), "d2": bool(p.d2 and p.d2.state),
                     "aux": bool(p.aux and p.aux.state), "outlet_voltage": c.outlet_voltage, "current": c.current}
            try:
                stream.write(json.dumps(reply).encode() + b"\n")
                stream.flush()
            except OSError:
                return

    def _apply(self, state: dict[str, Any]) -> None:
        self.state = state
        p = self.pins
        for pin, level in ((p.k, state["k"]), (p.plug, state["plug"])):
            if pin is not None and bool(pin.state) != bool(level):
                (pin.drive_high if level else pin.drive_low)()
        if p.adc is not None:
            p.adc.inputs[p.cc1_channel] = float(state["cc1"]) / p.cc1_scale
        with self.circuit.lock:
            self.circuit.battery_voltage = float(state["battery_voltage"])
            self.circuit.ev_contactor_closed = bool(state["ev_contactor"])


class LinkPin:
    """A pin on the car's side of the link: the charger's outputs are read, the car's are driven."""

    def __init__(self) -> None:
        self.state = False

    def drive_high(self) -> None:
        """The car drives its line high."""
        self.state = True

    def drive_low(self) -> None:
        """The car drives its line low."""
        self.state = False


class RemoteCircuit(DcCircuit):
    """The car's view of the power cable: its battery and contactor go to the charger; the outlet comes back."""

    def step(self, dt: float) -> None:
        """The physics runs in the charger's process."""


class CarLinkClient:
    """The car's end: its pins, CC1 and circuit view, kept in step with the charger every ``period`` s."""

    def __init__(self, path: Path, *, period: float = 0.005) -> None:
        self.path, self.period = path, period
        self.circuit = RemoteCircuit()
        self.pins = {name: LinkPin() for name in ("d1", "d2", "k", "plug", "aux")}
        self.cc1 = 12.0  # volts, as the car's side sets it
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self.exchanges = 0

    def start(self, timeout: float = 10.0) -> None:
        """Connect (waiting for the charger to listen) and exchange from now on."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock.connect(str(self.path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() >= deadline:
                    raise ConnectionError(f"no charger listening at {self.path} (is `evse run` up with this "
                                          "connector's car bus on a networked interface?)") from None
                time.sleep(0.1)
        self._running.set()
        self._thread = threading.Thread(target=self._run, name="car-link", daemon=True)
        self._thread.start()

    def set_cc1(self, volts: float) -> None:
        """The car's side of CC1: the voltage the charger's detection point reads (4 V plugged, 12 V out)."""
        self.cc1 = volts

    def stop(self) -> None:
        """Stop exchanging and close the link (the charger sees the car unplugged)."""
        self._running.clear()
        if self._thread is not None:
            self._thread.join(1.0)
        self._sock.close()

    def _run(self) -> None:
        with self._sock.makefile("rwb") as stream:
            while self._running.is_set():
                c = self.circuit
                state = {"k": self.pins["k"].state, "plug": self.pins["plug"].state,
                         "cc1": self.cc1, "battery_voltage": c.battery_voltage,
                         "ev_contactor": c.ev_contactor_closed}
                try:
                    stream.write(json.dumps(state).encode() + b"\n")
                    stream.flush()
                    line = stream.readline()
                except OSError:
                    line = b""
                if not line:
                    log.error("car link: the charger closed the link")
                    self._running.clear()
                    return
                reply = json.loads(line)
                for name in ("d1", "d2", "aux"):
                    self.pins[name].state = bool(reply[name])
                c.outlet_voltage, c.current = float(reply["outlet_voltage"]), float(reply["current"])
                self.exchanges += 1
                time.sleep(self.period)
