"""``evse-hil car``: a simulated CHAdeMO or GB/T car in its own process, plugged into a charger.

Into a running simulated charger: its frames go over any python-can interface (python-can-remote:
``--interface remote --channel ws://127.0.0.1:54701/``) and its lines and power cable through the
charger's car link (:mod:`hil.carlink`). Into a real one (``--bench bench.toml``): a ``[[car]]`` of the
bench file on the bench's CAN interface and GPIO lines (:mod:`hil.benchcar`). Either way it plugs in at
once, prints one JSON line a second (state of charge, current, frames) and unplugs on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from hil.benchcar import BenchCar
from hil.benchfile import BenchCarSpec
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
    return GbtBmsOnBus(GbtBms(bms, client.circuit), cc1=client.set_cc1, aux=pins["aux"], interface=interface,
                       channel=channel)


def _until_signalled(report: Any, every: float) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(every):
        print(json.dumps(report()), flush=True)


def run_bench_car(spec: BenchCarSpec, *, report_every: float = 1.0, pin_factory: Any = None) -> int:
    """The bench file's car on the bench's own bus and lines: plug in, report until told to stop, unplug.
    :class:`~hil.benchcar.BenchCarError` when its lines or bus cannot be opened."""
    car = BenchCar(spec, pin_factory=pin_factory)
    car.start()
    car.plug()
    print(json.dumps({"event": "plugged in", "kind": spec.kind, "connector": spec.connector,
                      "bus": f"{spec.interface} {spec.channel}"}), flush=True)
    try:
        _until_signalled(lambda: {"phase": car.model.phase, "soc": round(car.model.soc, 2),
                                  "current": round(car.circuit.current, 1),
                                  "outlet_voltage": round(car.circuit.outlet_voltage, 1),
                                  "frames_heard": len(car.car.heard), "frames_said": len(car.car.said)},
                         report_every)
    finally:
        car.stop()
        print(json.dumps({"event": "unplugged"}), flush=True)
    return 0


def run_car(kind: str, link: Path, *, interface: str, channel: str, soc: float = 50.0, target_soc: float = 80.0,
            quick: bool = False, report_every: float = 1.0) -> int:
    """Link, plug in, report until told to stop, unplug. Returns the process's exit code."""
    client = CarLinkClient(link)
    client.start()
    car = build_car(kind, client, interface=interface, channel=channel, soc=soc, target_soc=target_soc,
                    quick=quick)
    car.start()
    car.plug_in()
    print(json.dumps({"event": "plugged in", "kind": kind, "link": str(link)}), flush=True)
    model: Any = car.ev if isinstance(car, ChademoEvOnBus) else car.bms
    try:
        _until_signalled(lambda: {"soc": round(model.soc, 2), "current": round(client.circuit.current, 1),
                                  "outlet_voltage": round(client.circuit.outlet_voltage, 1),
                                  "frames_heard": len(car.heard), "frames_said": len(car.said)}, report_every)
    finally:
        car.unplug()
        time.sleep(0.3)  # the charger sees the connector leave before the link does
        car.stop()
        client.stop()
        print(json.dumps({"event": "unplugged"}), flush=True)
    return 0
