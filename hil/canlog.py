"""Recorded CAN sessions (CSV as the logs in ``hil/canlogs`` are written) read into frames.

A row is ``time stamp µs, id hex, extended true/false, direction, bus, length, data bytes hex...``.
Times come back in seconds, as recorded (the log's own origin).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from hal.can import Frame

LEAF_ZE0 = "nissan-leaf-ze0-chademo-start-stop.csv"


@dataclass(frozen=True, slots=True)
class LoggedFrame:
    """One frame of a log, at its recorded time (s)."""

    t: float
    frame: Frame


def read_log(path: str | Path) -> list[LoggedFrame]:
    """Every frame of a log file, in recorded order; a row that does not parse names its line."""
    return list(_rows(Path(path).read_text(encoding="utf-8"), str(path)))


def bundled_log(name: str = LEAF_ZE0) -> list[LoggedFrame]:
    """A log shipped in ``hil/canlogs``."""
    return list(_rows(files("hil.canlogs").joinpath(name).read_text(encoding="utf-8"), name))


def _rows(text: str, name: str) -> Iterator[LoggedFrame]:
    reader = csv.reader(text.splitlines())
    next(reader, None)  # the header
    for line, row in enumerate(reader, start=2):
        try:
            length = int(row[5])
            data = bytes(int(b, 16) for b in row[6:6 + length])
            if len(data) != length:
                raise ValueError(f"{len(data)} data bytes for length {length}")
            frame = Frame(int(row[1], 16), data, row[2].strip().lower() == "true")
            yield LoggedFrame(int(row[0]) / 1e6, frame)
        except (IndexError, ValueError) as exc:
            raise ValueError(f"{name} line {line}: {exc}") from None
