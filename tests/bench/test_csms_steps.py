"""The bench CSMS steered from a script: reject and accept cards, remote start and stop, availability, unlock,
configuration, reset, an outage, and `expect csms ACTION`; on both OCPP versions. Steps the configured charger
cannot do are refused when the script is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.config import parse_config
from hil.benchconfig import socket_config
from hil.runner import run_script
from hil.script import ScriptError, check_script, parse_script
from hil.steps import run_steps
from tests.conftest import sim_config

TAG = "04A1B2C3"


async def run(tmp_path: Path, version: str, text: str, **kwargs: Any) -> dict[str, Any]:
    config = sim_config(version=version)
    config.ocpp.csms_url = ""  # the built-in CSMS
    steps = parse_script(text)
    check_script(steps, config)
    return await run_script(config, steps, state_dir=tmp_path, **kwargs)


def details(summary: dict[str, Any]) -> dict[str, str]:
    return {s["step"]: s["detail"] for s in summary["steps"]}


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_rejected_card_does_not_charge_until_the_csms_accepts_it(tmp_path: Path, version: str) -> None:
    summary = await run(tmp_path, version, f"csms reject {TAG}; plug; tap {TAG}; wait 1; expect Preparing; "
                                           f"csms accept {TAG}; wait 0.6; tap {TAG}; expect Charging")
    assert summary["ok"], summary["steps"]
    assert details(summary)[f"csms reject {TAG}"] == f"the CSMS rejects {TAG} from now on"
    assert len(summary["sessions"]) == 1 and summary["sessions"][0]["id_tag"] == TAG


async def test_the_command_line_reject_list_is_the_same_as_the_step(tmp_path: Path) -> None:
    summary = await run(tmp_path, "1.6", "plug; tap DEADBEEF; wait 1; expect Preparing; expect Charging within 0.5",
                        rejected={"DEADBEEF"})
    assert [s["status"] for s in summary["steps"]][-1] == "failed" and summary["sessions"] == []


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_remote_start_and_stop_and_the_messages_the_csms_saw(tmp_path: Path, version: str) -> None:
    started = "StartTransaction" if version == "1.6" else "TransactionEvent"
    summary = await run(tmp_path, version, f"plug; csms remote-start 1 {TAG}; expect Charging; "
                                           f"expect csms {started} within 5; csms remote-stop 1; "
                                           "expect Finishing; unplug; expect Available")
    assert summary["ok"], summary["steps"]
    assert details(summary)[f"csms remote-start 1 {TAG}"] == "the station answered Accepted"
    assert details(summary)[f"expect csms {started} within 5"] == f"the CSMS received {started}"
    assert summary["sessions"][0]["reason"] == "Remote"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_availability_unlock_and_configuration(tmp_path: Path, version: str) -> None:
    key = "HeartbeatInterval" if version == "1.6" else "OCPPCommCtrlr.HeartbeatInterval"
    summary = await run(tmp_path, version, f"csms availability 1 inoperative; expect Unavailable; "
                                           f"csms availability 1 operative; expect Available; csms set {key} 120")
    assert summary["ok"], summary["steps"]
    assert details(summary)[f"csms set {key} 120"] == "the station answered Accepted"
    # This bench's cable is tethered: 1.6 answers NotSupported (no lock), 2.0.1 Unlocked (nothing holds it).
    unlock = await run(tmp_path / "2", version, "csms unlock 1")
    answer = "NotSupported" if version == "1.6" else "Unlocked"
    assert unlock["ok"] == (version != "1.6") and unlock["steps"][0]["detail"] == f"the station answered {answer}"
    refused = await run(tmp_path / "3", version, "csms set NoSuchKey 1" if version == "1.6" else
                        "csms set NoSuchCtrlr.NoSuchVariable 1")
    assert refused["steps"][0]["status"] == "failed"
    assert refused["steps"][0]["detail"] == ("the station answered NotSupported" if version == "1.6" else
                                             "the station answered UnknownComponent")


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_an_outage_mid_session_reaches_the_csms_afterwards_in_order(tmp_path: Path, version: str) -> None:
    stop = "StopTransaction" if version == "1.6" else "TransactionEvent"
    summary = await run(tmp_path, version, f"plug; tap {TAG}; expect Charging; csms offline 1.5; wait 0.6; "
                                           f"tap {TAG}; expect Finishing; expect csms {stop} within 20")
    assert summary["ok"], summary["steps"]
    assert details(summary)["csms offline 1.5"] == "the CSMS dropped every station and refuses them for 1.5 s"
    assert summary["sessions"][0]["reason"] == "Local"


async def test_a_soft_reset_ends_the_session(tmp_path: Path) -> None:
    summary = await run(tmp_path, "1.6", f"plug; tap {TAG}; expect Charging; csms reset soft; "
                                         "expect csms StopTransaction within 5")
    assert summary["ok"], summary["steps"]
    assert summary["sessions"][0]["reason"] == "SoftReset"


async def test_expect_csms_fails_saying_what_did_not_come(tmp_path: Path) -> None:
    summary = await run(tmp_path, "1.6", "expect csms RemoteStartTransaction within 0.3")
    assert summary["steps"][0]["detail"] == "the CSMS received no RemoteStartTransaction within 0.3 s"


def test_the_csms_steps_parse_strictly() -> None:
    assert parse_script("csms remote-start 04a1b2c3")[0].args == ("remote-start", None, "04A1B2C3")
    assert parse_script("csms remote-start 2 04a1b2c3")[0].args == ("remote-start", 2, "04A1B2C3")
    assert parse_script("csms remote-stop")[0].args == ("remote-stop", 1)
    assert parse_script("csms reset hard")[0].args == ("reset", True)
    assert parse_script("csms availability 0 inoperative")[0].args == ("availability", 0, False)
    assert parse_script("csms set MeterValuesSampledData Energy.Active.Import.Register, Power.Active.Import")[0] \
        .args == ("set", "MeterValuesSampledData", "Energy.Active.Import.Register, Power.Active.Import")
    assert parse_script("csms offline 30")[0].args == ("offline", 30.0)
    assert parse_script("expect csms StartTransaction within 20")[0].args == ("StartTransaction", 20.0)
    for bad in ("csms reject", "csms reject A B", "csms remote-start", "csms remote-start x TAG", "csms reset",
                "csms reset warm", "csms availability 1", "csms availability one operative", "csms unlock",
                "csms set Key", "csms offline", "csms offline 7200", "expect csms", "expect csms startTransaction",
                "expect csms Boot within", "csms reject " + "A" * 37):
        with pytest.raises(ScriptError):
            parse_script(bad)


def test_steps_the_charger_cannot_do_are_refused_when_the_script_is_read() -> None:
    plain = sim_config()
    cases = [
        ("plug 2", plain, "the charger has no connector 2 (it has 1)"),
        ("csms remote-start 3 04A1B2C3", plain, "the charger has no connector 3"),
        ("csms limit 10 4", plain, "the charger has no connector 4"),
        ("csms profile 5 tx 0=16", plain, "the charger has no connector 5"),
        ("fault rcm", plain, "fault rcm needs an RCM ([connector.rcm] driver); connector 1 has none"),
        ("fault lock", plain, "fault lock needs a cable lock"),
        ("fault insulation", plain, "fault insulation needs a DC connector; connector 1 is AC"),
        ("fault temp", plain, "fault temp needs a temperature sensor"),
    ]
    for text, config, message in cases:
        with pytest.raises(ScriptError, match=message.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            check_script(parse_script(text), config)
    # Multi-line scripts say where.
    with pytest.raises(ScriptError, match=r"^line 2: step 'fault rcm'"):
        check_script(parse_script("plug\nfault rcm\n"), plain)
    # The socket build has every device: all its AC kinds pass.
    socket = socket_config()
    check_script(parse_script("; ".join(f"fault {k}; clear {k}" for k in
                                        ("short", "adc", "diode", "rcm", "rcmdead", "weld", "stuck", "lock", "meter",
                                         "overcurrent", "temp", "pp", "reader"))), socket)
    no_reader = parse_config({"station": {"hardware": "sim"}, "rfid": {"driver": "none"}, "connector": [{"id": 1}]},
                             "<no reader>")
    with pytest.raises(ScriptError, match="no simulated card reader"):
        check_script(parse_script("tap 04A1B2C3"), no_reader)


async def test_a_station_that_does_not_answer_the_csms_fails_the_step_saying_so() -> None:
    class SilentLink:
        frames: list[object] = []
        connections = {"CP": object()}

        async def call(self, _cp_id: str, _request: object) -> object:
            raise TimeoutError  # what the ocpp package raises when no CALLRESULT comes

    class Bench:
        csms = SilentLink()

    results = await run_steps(parse_script("csms unlock 1; csms reset soft"), Bench())  # type: ignore[arg-type]
    assert [(r.status, r.detail) for r in results] == [
        ("failed", "the station did not answer the CSMS in time"), ("skipped", "not run: an earlier step failed")]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_profile_of_periods_steps_the_offer_down_on_time(tmp_path: Path, version: str) -> None:
    summary = await run(tmp_path, version, f"plug; tap {TAG}; expect Charging; csms profile 1 tx 0=20,2=10; wait 3")
    assert summary["ok"], summary["steps"]
    started = next(s["start"] for s in summary["steps"] if s["step"].startswith("csms profile"))
    duty = [(o["t"], o["value"]) for o in summary["timeline"] if o["kind"] == "pwm" and 0 < o["value"] < 100
            and o["t"] >= started]
    # 20 A (33.3 %) now, then 10 A (16.7 %) from two seconds on.
    assert [round(d, 1) for _, d in duty[:2]] == [33.3, 16.7]
    assert 1.5 <= duty[1][0] - started <= 3.0


def test_profile_steps_parse_strictly() -> None:
    assert parse_script("csms profile tx 0=16,60=10 for 600 stack 2")[0].args == \
        ("profile", 1, "tx", [(0, 16.0), (60, 10.0)], "A", 600, 2)
    assert parse_script("csms profile 0 max 0=11000W")[0].args == ("profile", 0, "max", [(0, 11000.0)], "W", None, 0)
    assert parse_script("csms profile default 0=7400w")[0].args[1] == 0  # the station when N is not given
    for bad in ("csms profile", "csms profile tx", "csms profile weekly 0=16", "csms profile tx 10=16",
                "csms profile tx 0=16,0=10", "csms profile tx 0=16,60=7400W", "csms profile tx 0=16 for",
                "csms profile tx 0=sixteen", "csms profile tx 0=16 stack x"):
        with pytest.raises(ScriptError):
            parse_script(bad)
