"""`[sim] external`: a simulated charger whose meter and card reader are served from outside its process."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.app import App
from controller.config import ConfigError, parse_config
from hil.csms import CsmsSimulator
from hil.meter import MeterSimulator
from hil.readers import Pn532Simulator
from hil.script import parse_script
from hil.steps import run_steps
from tests.conftest import wait_until

TAG = "04A1B2C3"


def external_config(meter_port: int, reader: str) -> dict[str, object]:
    return {
        "station": {"hardware": "sim", "id": "EXT-CP"},
        "ocpp": {"reconnect_min": 0.2, "reconnect_max": 0.5},
        "sim": {"external": ["meter", "rfid"]},
        "rfid": {"port": reader, "poll_interval": 0.05},
        "connector": [{"id": 1, "meter": {"transport": "tcp", "tcp_port": meter_port, "poll_interval": 0.2},
                       "pilot": {"adc_low_channel": 1}, "contactor": {"mirror_pin": 27, "feedback_delay": 0.05}}],
    }


async def test_a_card_on_the_outside_reader_charges_and_the_outside_meter_bills_it(
        tmp_path: Path, csms: CsmsSimulator) -> None:
    meter, reader = MeterSimulator("sdm630", phases=3, energy_wh=5_000.0), Pn532Simulator()
    await meter.start_tcp()
    await reader.start()
    assert meter.port is not None
    app = App(parse_config(external_config(meter.port, reader.path), "<ext>"), state_dir=tmp_path,
              csms_url=csms.url)
    await app.start()
    try:
        assert app.platform is not None
        assert app.platform.meters == {} and app.platform.reader is None  # nothing simulated in the daemon
        await wait_until(lambda: "EXT-CP" in csms.boots, what="BootNotification")
        failed = [r for r in await run_steps(parse_script("plug; expect Preparing"), app.platform) if not r.ok]
        assert not failed, failed
        reader.tap(TAG)
        failed = [r for r in await run_steps(parse_script("expect Charging within 5"), app.platform) if not r.ok]
        assert not failed, failed
        (tx,) = csms.transactions.values()
        assert tx.id_tag == TAG and tx.meter_start == 5000  # the outside meter's register, in Wh
        # The daemon's own bench cannot present a card or break a meter it does not simulate, and says so.
        with pytest.raises(RuntimeError, match="external"):
            app.platform.tap(TAG)
        with pytest.raises(ValueError, match="external"):
            app.platform.inject("meter", 1, True)
    finally:
        await app.stop()
        await meter.stop()
        await reader.stop()


def test_external_buses_need_a_simulated_build() -> None:
    data = {**external_config(502, "/dev/ttyUSB1"), "station": {"hardware": "pi", "id": "EXT-CP"}}
    data["ocpp"] = {"csms_url": "ws://csms.example/ocpp"}
    with pytest.raises(ConfigError, match=r"sim.external = \['meter', 'rfid'\]: expected \[\] unless"):
        parse_config(data, "<ext>")
