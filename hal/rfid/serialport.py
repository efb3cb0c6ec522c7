"""A pyserial port read through the asyncio loop, so a silent reader blocks nothing."""

from __future__ import annotations

import asyncio

import serial

from hal.errors import HalIOError, HalTimeoutError


class AsyncSerial:
    """Non-blocking pyserial port; bytes arrive through ``loop.add_reader``.

    Accepts anything ``serial.serial_for_url`` does: ``/dev/ttyUSB0``,
    ``/dev/serial0``, a pty path, ``socket://host:port``.
    """

    def __init__(self, url: str, baudrate: int) -> None:
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=1.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise HalIOError(f"cannot open serial port {url}: {exc}") from exc
        self.url = url
        self._buffer = bytearray()
        self._event = asyncio.Event()
        self._error: Exception | None = None
        self._loop = asyncio.get_running_loop()
        self._fd = self._port.fileno()
        self._loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = self._port.read(4096)
        except (serial.SerialException, OSError) as exc:
            self._error = exc
            self._loop.remove_reader(self._fd)
            self._event.set()
            return
        if data:
            self._buffer.extend(data)
            self._event.set()

    async def read(self, timeout: float) -> bytes:
        """Return the bytes received so far, waiting up to ``timeout`` s for at least one."""
        if not self._buffer and self._error is None:
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), timeout)
            except TimeoutError:
                raise HalTimeoutError(f"no data from {self.url} within {timeout:.3f} s") from None
        if self._error is not None and not self._buffer:
            raise HalIOError(f"serial port {self.url} failed: {self._error}")
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def write(self, data: bytes) -> None:
        """Send bytes; raises HalIOError when the port is gone."""
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise HalIOError(f"write to {self.url} failed: {exc}") from exc

    def close(self) -> None:
        """Stop watching the port and close it."""
        if self._error is None:
            self._loop.remove_reader(self._fd)
        self._port.close()
