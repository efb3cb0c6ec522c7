"""The car link: a car in another process drives the charger's lines; a bad line or a lost car means unplugged."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hil.carlink import CarLinkClient, CarLinkServer, DcPins
from hil.dccircuit import DcCircuit
from hil.gpio import WatchedPin, make_factory


def _until(predicate: Callable[[], object], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CarLinkServer]:
    factory = make_factory()
    pins = DcPins(**{name: factory.pin(n, pin_class=WatchedPin)
                     for name, n in (("d1", 5), ("d2", 6), ("k", 22), ("plug", 24))})
    link = CarLinkServer(tmp_path / "car-1.sock", "chademo", pins, DcCircuit())
    link.start()
    yield link
    link.stop()
    factory.reset()


def test_the_car_side_drives_k_and_plug_and_sees_d1_and_the_outlet(server: CarLinkServer) -> None:
    client = CarLinkClient(server.path)
    client.start()
    try:
        client.pins["plug"].drive_high()
        client.pins["k"].drive_high()
        client.circuit.battery_voltage, client.circuit.ev_contactor_closed = 352.0, True
        pins = server.pins
        assert pins.plug is not None and pins.k is not None and pins.d1 is not None
        _until(lambda: pins.plug.state and pins.k.state and server.circuit.battery_voltage == 352.0)
        assert server.circuit.ev_contactor_closed
        pins.d1.drive_high()
        server.circuit.outlet_voltage = 351.5
        _until(lambda: client.pins["d1"].state and client.circuit.outlet_voltage == 351.5)
    finally:
        client.stop()
    _until(lambda: not server.linked.is_set())
    assert not server.pins.plug.state and not server.pins.k.state  # type: ignore[union-attr]  # gone: unplugged
    assert not server.circuit.ev_contactor_closed


def test_a_malformed_line_closes_the_link_and_the_next_car_is_served(server: CarLinkServer,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(server.path))
        raw.sendall(json.dumps({"plug": True, "k": True}).encode() + b"\n")
        assert json.loads(raw.makefile().readline())["d1"] is False
        raw.sendall(b"{not json\n")
        assert raw.recv(100) == b""  # closed
    assert "malformed line" in caplog.text
    _until(lambda: not server.linked.is_set() and not server.pins.plug.state)  # type: ignore[union-attr]
    client = CarLinkClient(server.path)
    client.start()
    try:
        _until(lambda: client.exchanges > 3)
    finally:
        client.stop()
