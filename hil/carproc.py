"""``evse-hil car``: a simulated CHAdeMO or GB/T car in its own process, plugged into a running simulated charger.

Its frames go over any python-can interface (python-can-remote: ``--interface remote --channel
ws://127.0.0.1:54701/``) and its lines and power cable through the charger's car link
(:mod:`hil.carlink`). It plugs in at once, prints one JSON line a second (state of charge, current,
permission) and unplugs on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from hil.carlink import CarLinkClient
from hil.chademo_ev import ChademoEv, EvSpec
from hil.chademo_ev_bus import ChademoEvOnBus
from hil.gbt_bms import BmsSpec, GbtBms
from hil.gbt_bms_bus import GbtBmsOnBus


def build_car(kind: str, client: CarLinkClient, *, interface: str, channel: str, soc: float, target_soc: float,
              quick: bool) -> ChademoEvOnBus | GbtBmsOnBus:
    """The car on the link's pins and circuit view; ``quick``: the bench's short permission and contactor times."""
    pins: dict[str, Any] = dict(client.pins)
    if kind == "chademo":
        spec = EvSpec(soc=soc, target_soc=target_soc)
        if quick:
            spec.permission_delay, spec.contactor_delay = 0.5, 0.3
        return ChademoEvOnBus(ChademoEv(spec, client.circuit), d1=pins["d1"], d2=pins["d2"], k=pins["k"],
                              plug=pins["plug"], interface=interface, channel=channel)
    bms = BmsSpec(soc=soc, target_soc=target_soc)
    if quick:
        bms.relay_delay = 0.3
    adc: Any = client.adc
    return GbtBmsOnBus(GbtBms(bms, client.circuit), adc=adc, cc1_channel=0, cc1_scale=client.cc1_scale,
                       aux=pins["aux"], interface=interface, channel=channel)


def run_car(kind: str, link: Path, *, interface: str, channel: str, soc: float = 50.0, target_soc: float = 80.0,
            quick: bool = False, report_every: float = 1.0) -> int:
    """Link, plug in, report until told to stop, unplug. Returns the process's exit code."""
    client = CarLinkClient(link)
    client.start()
    car = build_car(kind, client, interface=interface, channel=channel, soc=soc, target_soc=target_soc,
                    quick=quick)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    car.start()
    car.plug_in()
    print(json.dumps({"event": "plugged in", "kind": kind, "link": str(link)}), flush=True)
    try:
        while not stop.wait(report_every):
            model: Any = car.ev if isinstance(car, ChademoEvOnBus) else car.bms
            print(json.dumps({"soc": round(model.soc, 2), "current": round(client.circuit.current, 1),
                              "outlet_voltage": round(client.circuit.outlet_voltage, 1),
                              "frames_heard": len(car.heard), "frames_said": len(car.said)}), flush=True)
    finally:
        car.unplug()
        time.sleep(0.3)  # the charger sees the connector leave before the link does
        car.stop()
        client.stop()
        print(json.dumps({"event": "unplugged"}), flush=True)
    return 0
