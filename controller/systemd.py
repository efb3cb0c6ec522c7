"""sd_notify without a dependency: READY, STOPPING and watchdog pings to systemd."""

from __future__ import annotations

import asyncio
import os
import socket


def notify(message: str) -> bool:
    """Send one sd_notify message; False (and nothing done) when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract socket namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


async def watchdog_loop() -> None:
    """Ping systemd's watchdog at half its interval, from the loop: a hung loop stops the pings."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return
    interval = int(usec) / 2_000_000
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
