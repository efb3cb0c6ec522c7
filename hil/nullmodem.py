"""A null-modem cable made of two pty pairs: two real tty paths whose bytes cross over.

A pty's master side has no path of its own (``ttyname`` of a master is
``/dev/ptmx``), so a simulator that insists on opening a port by name (the
pymodbus serial server) gets one end and the driver under test the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty


class NullModem:
    """Two tty paths, ``a`` and ``b``; what is written to one is read from the other."""

    def __init__(self) -> None:
        self._ends = [os.openpty(), os.openpty()]
        for master, slave in self._ends:
            tty.setraw(master)
            tty.setraw(slave)
            os.set_blocking(master, False)
        self.a = os.ttyname(self._ends[0][1])
        self.b = os.ttyname(self._ends[1][1])
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start carrying bytes both ways."""
        self._loop = asyncio.get_running_loop()
        (ma, _), (mb, _) = self._ends
        self._loop.add_reader(ma, self._carry, ma, mb)
        self._loop.add_reader(mb, self._carry, mb, ma)

    @staticmethod
    def _carry(src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # the far end closed; it may reopen
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(dst, data)

    def close(self) -> None:
        """Stop carrying and close every fd."""
        if self._loop is not None:
            for master, _ in self._ends:
                self._loop.remove_reader(master)
        for master, slave in self._ends:
            for fd in (master, slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
