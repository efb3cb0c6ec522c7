"""CHAdeMO layouts against a real car's session (the Leaf ZE0 log) and the bytes its charger sent."""

from __future__ import annotations

from typing import Any

import pytest

from controller.charging.chademo.frames import (
    CHARGER_LIMITS,
    CHARGER_STATUS,
    EV_LIMITS,
    EV_STATUS,
    EV_TIMES,
    ChargerExtended,
    ChargerLimits,
    ChargerStatus,
    EvLimits,
    EvStatus,
    EvTimes,
    MalformedFrame,
    signals,
)
from hal.can import Frame
from hil.canlog import LoggedFrame, bundled_log


@pytest.fixture(scope="module")
def leaf() -> list[LoggedFrame]:
    return bundled_log()


def _first(log: list[LoggedFrame], frame_id: int, test: object, after: float = 0.0) -> float:
    """Seconds from the log's first frame to the first ``frame_id`` frame after ``after`` passing ``test``."""
    start = log[0].t
    for entry in log:
        if entry.frame.id == frame_id and entry.t - start > after and test(entry.frame):  # type: ignore[operator]
            return entry.t - start
    raise AssertionError(f"no {frame_id:#x} frame matches")


def test_the_leaf_says_what_a_leaf_is(leaf: list[LoggedFrame]) -> None:
    statuses = [EvStatus.decode(e.frame) for e in leaf if e.frame.id == EV_STATUS]
    limits = {EvLimits.decode(e.frame) for e in leaf if e.frame.id == EV_LIMITS}
    times = [EvTimes.decode(e.frame) for e in leaf if e.frame.id == EV_TIMES]
    assert {s.protocol for s in statuses} == {2}  # CHAdeMO 1.x
    assert {s.target_voltage for s in statuses} == {410}
    assert {lim.max_voltage for lim in limits} == {435}
    # The charged-rate reference is 240 in the first frame, then 100 on a 1.x charger (dc.md 1.1).
    assert [lim.charged_rate_reference for lim in limits if lim.charged_rate_reference != 100] == [240]
    assert times[1].capacity_kwh == pytest.approx(24.0)  # a 24 kWh ZE0
    assert max(t.max_charging_s or 0 for t in times) == 3600
    assert max(s.current_request for s in statuses) == 14  # under the 15 A the charger made available
    assert all(s.legacy_dynamic_control and s.discharge_capable for s in statuses)  # st = 0b11xx_xxxx
    assert not any(s.faults for s in statuses)


def test_the_leaf_session_keeps_the_times_dc_md_reads_from_it(leaf: list[LoggedFrame]) -> None:
    def status(frame: Frame) -> EvStatus:
        return EvStatus.decode(frame)

    def charger(frame: Frame) -> dict[str, Any]:
        return signals(frame)

    permitted = _first(leaf, EV_STATUS, lambda f: status(f).charging_enabled)
    assert permitted == pytest.approx(3.9, abs=0.05)  # 102.5.0 3.4-3.9 s after the first frame
    stop = _first(leaf, CHARGER_STATUS, lambda f: charger(f)["StopControl"] == 1, after=30)
    assert stop == pytest.approx(46.76, abs=0.015)  # 109.5.5 set
    ev_stops = _first(leaf, EV_STATUS, lambda f: not status(f).charging_enabled, after=30)
    assert ev_stops == pytest.approx(46.97, abs=0.015)  # 102.5.0 cleared
    ev_open = _first(leaf, EV_STATUS, lambda f: status(f).contactor_open, after=30)
    assert ev_open == pytest.approx(49.87, abs=0.015)  # 102.5.3 set after welding detection
    unlocked = _first(leaf, CHARGER_STATUS, lambda f: charger(f)["Energizing"] == 0, after=30)
    assert unlocked == pytest.approx(50.56, abs=0.015)  # 109.5.2 cleared once V = 0
    # The EV closed its contactors into an output at about 0 V (the charger does not pre-charge: dc.md 2.3 step 6).
    closed = _first(leaf, EV_STATUS, lambda f: not status(f).contactor_open)
    last_output = [e for e in leaf if e.frame.id == CHARGER_STATUS and e.t - leaf[0].t < closed][-1]
    assert charger(last_output.frame)["PresentVoltage"] < 60


def test_the_charger_frames_encode_to_the_bytes_a_real_charger_sent(leaf: list[LoggedFrame]) -> None:
    sent = {bytes(e.frame.data) for e in leaf if e.frame.id in (CHARGER_LIMITS, CHARGER_STATUS)}
    assert ChargerLimits(True, 500, 15, 435).encode().data in sent
    charging = ChargerStatus(protocol=2, present_voltage=376, present_current=14, charging=True, malfunction=False,
                             energizing=True, battery_incompatible=False, system_malfunction=False,
                             stop_control=False, remaining_s=3600).encode()
    assert charging.id == CHARGER_STATUS
    # That charger was V2X-capable (byte 4 = 1, with 0x208/0x209); this one says it is not.
    assert charging.data == bytes.fromhex("0278010E0005FF3C")
    assert bytes.fromhex("0278010E0105FF3C") in sent
    before = ChargerStatus(2, 0, 0, False, False, False, False, False, True).encode()
    assert before.data == bytes.fromhex("0200000000 20FFFF".replace(" ", ""))


@pytest.mark.parametrize(("seconds", "tail"), [(0, "0000"), (590, "3B00"), (2540, "FE00"), (2541, "FF2A"),
                                               (99_999, "FFFF")])
def test_remaining_time_uses_tens_of_seconds_then_minutes(seconds: int, tail: str) -> None:
    frame = ChargerStatus(2, 0, 0, True, False, True, False, False, False, remaining_s=seconds).encode()
    assert frame.data[6:].hex().upper() == tail


def test_fields_are_clamped_to_their_width_not_wrapped() -> None:
    assert ChargerLimits(False, 500, 300, 450).encode().data[3] == 255
    status = ChargerStatus(3, -2, 400, True, False, True, False, False, False).encode()
    assert status.data[1:4] == bytes([0, 0, 255])


def test_the_extended_frame_grants_dynamic_control() -> None:
    assert ChargerExtended(dynamic_control=True).encode().data == bytes.fromhex("0100000000000100")


def test_a_short_frame_is_malformed_and_names_itself() -> None:
    with pytest.raises(MalformedFrame, match=r"CHAdeMO frame 102 \[3\] 02 9A 01"):
        EvStatus.decode(Frame(EV_STATUS, bytes.fromhex("029A01")))
