"""What the charger is doing, as plain data: the status API's JSON, ``evse status`` and ``status.json``.

Everything here reads the running :class:`~controller.app.App` on the loop thread and copies what it needs; nothing
is changed. The shape is documented in the README ("Status API").
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.clock import iso_utc

#: The chart's window: one sample per EVSE each second for this many seconds.
SAMPLE_WINDOW = 600
STALE_AFTER = 10.0


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def evse_status(app: Any, evse_id: int) -> dict[str, Any]:
    """One EVSE: status, vehicle, pilot, offered and drawn current, energy, faults, warnings, transaction."""
    evse = app.station.evses[evse_id]
    conn = next(c for c in app.config.connector if c.id == evse_id)
    protocol = app.protocols.get(evse_id)
    reading = evse.reading
    # A reading older than this is the meter's last word, not what flows now (the meter is lost).
    fresh = reading is not None and (not reading.taken_at or time.monotonic() - reading.taken_at < STALE_AFTER)
    tx = evse.transaction
    pilot = getattr(protocol, "state", None)
    session_wh = None
    if tx is not None and reading is not None:
        session_wh = max(0, round(reading.energy_wh) - tx.meter_start_wh)
    return {
        "id": evse_id,
        "kind": conn.kind,
        "status": evse.status.value,
        "vehicle": evse.vehicle.value,
        "pilot": getattr(pilot, "name", None),
        "offered_a": _round(protocol.offered_amps if protocol is not None else None),
        "max_current_a": conn.max_current,
        "current_a": [_round(a, 2) for a in reading.current] if fresh and reading else None,
        "voltage_v": [_round(v) for v in reading.voltage] if fresh and reading else None,
        "power_w": _round(reading.power_w, 0) if fresh and reading else None,
        "energy_wh": _round(reading.energy_wh, 0) if reading else None,
        "soc": reading.soc if fresh and reading else None,
        "contactor_closed": app.supervisor.closed(evse_id),
        "faults": [{"code": f.info.code, "detail": d, "latching": f.info.latching} for f, d in evse.faults.items()],
        "warnings": [w.info.code for w in evse.warnings],
        "transaction": None if tx is None else {
            "id": tx.local_id, "started_at": iso_utc(tx.started_at), "id_token": tx.id_token.value,
            "meter_start_wh": tx.meter_start_wh, "energy_wh": session_wh},
    }


def station_status(app: Any, version: str) -> dict[str, Any]:
    """The whole charger: who it is, its CSMS link, every EVSE."""
    ocpp = app.ocpp
    return {
        "station": {"id": app.config.station.id, "version": version, "ocpp_version": app.config.ocpp.version,
                    "hardware": app.config.station.hardware, "time": iso_utc(datetime.now(UTC))},
        "csms": {"url": ocpp.display_url if ocpp is not None else None,
                 "connected": bool(ocpp is not None and ocpp.connected.is_set()),
                 "queued": len(ocpp.queue) if ocpp is not None else 0},
        "evses": [evse_status(app, evse_id) for evse_id in sorted(app.station.evses)],
    }


@dataclass
class Sample:
    """One second of one EVSE, for the chart."""

    t: float
    current_a: float | None
    power_w: float | None
    offered_a: float | None


class Samples:
    """The last :data:`SAMPLE_WINDOW` seconds of current and power per EVSE (a ring per EVSE)."""

    def __init__(self, window: int = SAMPLE_WINDOW) -> None:
        self.window = window
        self.rings: dict[int, deque[Sample]] = {}

    def add(self, status: dict[str, Any]) -> dict[str, Any]:
        """Record the EVSEs of a station status; returns the new samples as the event stream sends them."""
        now = round(time.time(), 1)
        out: dict[str, Any] = {"t": now, "evses": {}}
        for evse in status["evses"]:
            amps = evse["current_a"]
            drawn = max((a for a in amps if a is not None), default=None) if amps else None
            sample = Sample(now, drawn, evse["power_w"], evse["offered_a"])
            self.rings.setdefault(evse["id"], deque(maxlen=self.window)).append(sample)
            out["evses"][str(evse["id"])] = {"current_a": drawn, "power_w": sample.power_w,
                                             "offered_a": sample.offered_a}
        return out

    def as_json(self) -> dict[str, Any]:
        """Every EVSE's ring: ``{"1": [{"t", "current_a", "power_w", "offered_a"}, ...]}``."""
        return {str(evse_id): [vars(s) for s in ring] for evse_id, ring in self.rings.items()}
