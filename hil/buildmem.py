"""``python -m hil.buildmem CONFIG``: the resident memory of what ``evse run`` imports for a config.

It imports the daemon's modules and each driver the config names, opens no hardware, and prints one JSON line:
``rss_mb``, the module count and which of the heavy optional libraries got loaded. It imports nothing of the
bench (whose CSMS would load the OCPP libraries a station may not need), so the figure is the station's own.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def rss_mb(pid: int | None = None) -> float:
    """A process's resident memory (``VmRSS``) in MB; this process's by default."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    return round(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024, 1)


def import_build(path: str) -> None:
    """In a fresh interpreter: import what ``evse run`` loads for the config at ``path`` (the daemon's modules and
    each configured driver's), without opening any hardware, and print the resident memory as JSON."""
    import controller.app
    import controller.cli  # noqa: F401  (the daemon, as `evse run` imports it)
    from controller.config import load_config
    from hal import drivers
    from hal.registry import DriverRegistry

    config = load_config(path)
    roles: dict[str, DriverRegistry[Any]] = {
        "pilot": drivers.PILOTS, "contactor": drivers.CONTACTORS, "meter": drivers.METERS, "rcm": drivers.RCMS,
        "lock": drivers.LOCKS, "led": drivers.LEDS, "temperature": drivers.THERMOMETERS}
    for conn in config.connector:
        for section, registry in roles.items():
            name = getattr(conn, section).driver
            if name != "none":
                registry.resolve(name)
    if config.rfid.driver != "none":
        drivers.CARD_READERS.resolve(config.rfid.driver)
    heavy = [m for m in ("cryptography", "ocpp.v201", "aiohttp", "cantools", "pymodbus.server") if m in sys.modules]
    print(json.dumps({"rss_mb": rss_mb(), "modules": len(sys.modules), "heavy_modules": heavy}))


if __name__ == "__main__":
    import_build(sys.argv[1])
