"""One charger per state directory: the daemon holds ``<state_dir>/evse.lock``; a second daemon or a probe sees it.

Two processes driving the same contactor, pilot and buses would fight over them, so ``evse run`` refuses to start
and ``evse probe`` refuses to touch the hardware while another holds the lock. It is an ``flock`` on an open file:
the kernel drops it when the process ends, however it ends (a crash, a kill, a power cut leaves no stale lock),
and an exec (a reset, a firmware switch) closes the file so that the new program takes the lock again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

FILE = "evse.lock"


class Locked(OSError):
    """Another process holds the state directory; the message names it and says what to do."""


class RunLock:
    """The state directory's lock, held from :meth:`acquire` until :meth:`release` or the process's end."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`Locked` naming the process that has it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise Locked(f"the charger on {self.path.parent} is running ({holder}): stop it first "
                         "(systemctl stop evse), then try again") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"PID {os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (the file stays: removing it would race with the next taker)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None
