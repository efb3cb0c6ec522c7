"""The bench's builds with bench timings: the AC socket build and the two-outlet DC station.

``config/sim-two-socket.toml`` (every AC safety device) is what the fault tests and ``evse-hil perf
--faults`` run on; ``config/sim-dc.toml`` (CHAdeMO and GB/T) the DC tests and ``evse-hil perf --dc``. Timings that are
seconds in service (the EV's IEC stop time, overcurrent grace, RCM test
windows, lock pulses) are fractions of a second here so hundreds of trials fit
in minutes; the logic under test is the same.
"""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path
from typing import Any

from controller.config import Config, parse_config

SOCKET_BUILD = Path(__file__).resolve().parent.parent / "config" / "sim-two-socket.toml"
DC_BUILD = SOCKET_BUILD.with_name("sim-dc.toml")
_dc_builds = itertools.count()

FAST_CONNECTOR: dict[str, Any] = {
    "overcurrent_grace": 0.3,
    "pilot": {"ev_stop_timeout": 0.5},
    "meter": {"poll_interval": 0.1, "loss_timeout": 1.0},
    "contactor": {"feedback_delay": 0.05},
    "rcm": {"test_timeout": 0.5, "release_timeout": 0.5, "reclose_delay": 0.3},
    "lock": {"pulse": 0.1, "min_interval": 0.05},
    "temperature": {"poll_interval": 0.05},
}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` laid over it, tables merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def socket_config(connectors: int = 1, *, connector: dict[str, Any] | None = None,
                  station: dict[str, Any] | None = None, ocpp: dict[str, Any] | None = None) -> Config:
    """The socket build's first ``connectors`` connectors, bench timings, and optional overrides."""
    data = tomllib.loads(SOCKET_BUILD.read_text())
    data["station"] = merge(data["station"], {"id": "TEST-CP", **(station or {})})
    data["ocpp"] = {"meter_value_sample_interval": 1, "reconnect_min": 0.2, "reconnect_max": 0.5, **(ocpp or {})}
    data["rfid"] = {"poll_interval": 0.05}
    data["connector"] = [merge(merge(c, FAST_CONNECTOR), connector or {}) for c in data["connector"][:connectors]]
    return parse_config(data, f"<{SOCKET_BUILD.name} with bench timings>")


def dc_config(kinds: tuple[str, ...] = ("chademo", "gbt"), *, connector: dict[str, Any] | None = None,
              ocpp: dict[str, Any] | None = None) -> Config:
    """The DC station's connectors of ``kinds`` (numbered from 1 again), on CAN channels no other build uses.

    python-can's ``virtual`` channels are process-wide: each build gets its own names, so a charger built
    next in the same process (the tests, the benchmarks) never hears this one's frames.
    """
    data = tomllib.loads(DC_BUILD.read_text())
    build = next(_dc_builds)
    data["station"] = merge(data["station"], {"id": "TEST-DC"})
    data["ocpp"] = {"meter_value_sample_interval": 1, "reconnect_min": 0.2, "reconnect_max": 0.5, **(ocpp or {})}
    data["rfid"] = {"poll_interval": 0.05}
    chosen = [c for c in data["connector"] if c["kind"] in kinds]
    for number, conn in enumerate(chosen, start=1):
        conn["id"] = number
        for bus in (conn["can"], conn["dc_power"]["can"]):
            bus["channel"] = f"{bus['channel']}-{build}"
        conn["meter"] = merge(conn["meter"], {"loss_timeout": 1.0})
        conn["contactor"] = merge(conn.get("contactor", {}), {"feedback_delay": 0.05})
    data["connector"] = [merge(c, connector or {}) for c in chosen]
    return parse_config(data, f"<{DC_BUILD.name} with bench timings>")
