"""The CAN bus role on a networked interface: three processes share one bus through python-can-remote on loopback.

A python-can-remote server (bound to 127.0.0.1 only) serves a ``virtual`` bus; a peer in its own process
answers every frame; the driver under test talks to it as ``interface = "remote"``, as an EV simulator on
another process or machine would be reached.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from hal.can import Frame, PythonCanBus
from hil.meter import free_tcp_port

PEER = """
import sys, can
bus = can.Bus(interface="remote", channel=sys.argv[1])
print("ready", flush=True)
while True:
    msg = bus.recv(5.0)
    if msg is None:
        break
    bus.send(can.Message(arbitration_id=msg.arbitration_id + 1, data=bytes(reversed(msg.data)),
                         is_extended_id=msg.is_extended_id))
"""


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"python-can-remote did not listen on 127.0.0.1:{port}")


@pytest.fixture
def remote() -> Iterator[str]:
    port = free_tcp_port()
    server = subprocess.Popen([sys.executable, "-m", "can_remote", "-i", "virtual", "-c", "remote-test",
                               "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"ws://127.0.0.1:{port}/"
    try:
        _wait_listening(port)
        peer = subprocess.Popen([sys.executable, "-c", PEER, url], stdout=subprocess.PIPE, text=True)
        try:
            assert peer.stdout is not None and peer.stdout.readline().strip() == "ready"
            yield url
        finally:
            peer.kill()
            peer.wait()
    finally:
        server.kill()
        server.wait()


async def test_frames_cross_processes_over_a_networked_interface(remote: str) -> None:
    bus = PythonCanBus(interface="remote", channel=remote)
    await bus.open()
    heard: list[Frame] = []
    all_heard = asyncio.Event()

    def hear(frame: Frame) -> None:
        heard.append(frame)
        if len(heard) == 50:
            all_heard.set()

    bus.subscribe(hear)
    try:
        for i in range(50):
            assert bus.send(Frame(0x102, bytes([i, 1, 2, 3])))
        await asyncio.wait_for(all_heard.wait(), 5)
        assert [f.id for f in heard] == [0x103] * 50
        assert [f.data for f in heard] == [bytes([3, 2, 1, i]) for i in range(50)]  # in order, none lost
    finally:
        await bus.close()
