"""The CHAdeMO charger sequence against the bench's CHAdeMO EV on a simulated DC circuit, in fake time."""

from __future__ import annotations

import itertools

import pytest

from controller.charging.chademo.frames import CHARGER_EXTENDED, CHARGER_LIMITS, CHARGER_STATUS, EV_STATUS
from controller.charging.chademo.model import Blame, Phase
from controller.domain.faults import Fault
from hal.can import Frame
from hil.chademo_ev import EvSpec
from tests.controller.charging.chademo.harness import Harness


def _session(**spec: object) -> Harness:
    h = Harness(EvSpec(**spec))  # type: ignore[arg-type]
    h.start()
    return h


def _finish(h: Harness, timeout: float = 60.0) -> None:
    h.run_until(lambda: h.seq.phase == Phase.DONE and not h.out.lock, timeout)


def test_a_whole_session_keeps_the_order_the_standard_gives() -> None:
    h = _session(soc=79.0, target_soc=80.0)
    _finish(h)
    first_ev = next(t for t, f in h.ev_frames if f.id == EV_STATUS)
    charger = [t for t, f in h.charger_frames]
    # Nothing goes out before the EV's first 0x102; then 0x108 before 0x109, every 100 ms.
    assert min(charger) >= first_ev and min(charger) - first_ev <= 0.1
    assert [f.id for _, f in h.charger_frames[:2]] == [CHARGER_LIMITS, CHARGER_STATUS]
    status_times = [t for t, f in h.charger_frames if f.id == CHARGER_STATUS]
    periods = [b - a for a, b in itertools.pairwise(status_times)]
    assert len(periods) > 200 and all(abs(p - 0.1) <= 0.0101 for p in periods)  # one 10 ms step either way
    # Permission, then the lock, then the test voltage on a closed pair of contactors.
    locked = h.first(lambda s: s.out.lock)
    assert locked.k and h.first(lambda s: s.out.contactors).t >= locked.t
    assert h.test_voltages == [485.0]  # min(EV max 435 + 50, 500, the stage's 500)
    # d2 only once the outlet is below 20 V; the EV closes into a dead inlet.
    d2 = h.first(lambda s: s.out.d2)
    assert d2.outlet < 20 and d2.out.power is None
    ev_closed = h.first(lambda s: s.ev_contactor)
    assert h.samples[h.samples.index(ev_closed) - 1].outlet < 10
    # 0x109.5.0 within 0.5 s of the first request above 0, and 0x109.5.5 cleared with it.
    request = next(t for t, f in h.ev_frames if f.id == EV_STATUS and f.data[3] > 0)
    charging = next(t for t, f in h.charger_frames if f.id == CHARGER_STATUS and f.data[5] & 0x01)
    assert charging - request <= 0.5
    assert h.charger_status(charging)["StopControl"] == 0


def test_the_stop_order_ramps_then_waits_for_the_ev_then_d2_d1_and_unlocks_dead() -> None:
    h = _session(soc=79.0, target_soc=80.0)
    _finish(h)
    stop = h.first(lambda s: s.phase == Phase.RAMP_DOWN)
    low = h.first(lambda s: abs(s.current) <= 5, after=stop.t)
    assert low.t - stop.t <= 0.5  # 5 A within 0.5 s
    opened = h.first(lambda s: not s.out.contactors, after=stop.t)
    assert opened.t >= low.t and not opened.ev_contactor  # only after 5 A, and after the EV's contactors
    ev_open = h.first(lambda s: not s.ev_contactor, after=stop.t)
    before = h.samples[h.samples.index(ev_open) - 1].outlet
    # The welding check the EV makes: 25 % within 1 s and 10 V within 2 s of its contactors opening.
    assert h.first(lambda s: s.outlet <= 0.25 * before, after=ev_open.t).t - ev_open.t <= 1.0
    assert h.first(lambda s: s.outlet <= 10, after=ev_open.t).t - ev_open.t <= 2.0
    d2_off = h.first(lambda s: not s.out.d2, after=stop.t)
    d1_off = h.first(lambda s: not s.out.d1, after=stop.t)
    assert d2_off.t >= ev_open.t and d1_off.t - d2_off.t >= 0.5
    unlock = h.first(lambda s: not s.out.lock, after=stop.t)
    assert unlock.outlet <= 10 and unlock.t >= d1_off.t
    assert h.charger_status()["Energizing"] == 0


def test_a_silent_ev_is_stopped_after_1_s_and_the_current_is_down_within_half_a_second() -> None:
    h = _session(soc=50.0)
    h.run_until(lambda: h.circuit.current > 60, 30)
    h.ev.spec.misbehaviours.add("silent")
    last = h.now
    detected = h.run_until(lambda: h.seq.phase == Phase.RAMP_DOWN, 2)
    assert 1.0 <= detected - last <= 1.1
    down = h.run_until(lambda: abs(h.circuit.current) <= 5, 0.5)
    assert down - detected <= 0.5
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault == Fault.EV_COMM_LOST
    assert h.contactors  # still closed at 5 A: the EV's contactors are not known to be open
    _finish(h, 20)


def test_k_opening_alone_stops_the_session() -> None:
    h = _session(soc=50.0, misbehaviours={"drop_k"})
    h.run_until(lambda: h.seq.phase == Phase.RAMP_DOWN, 30)
    assert h.seq.stop_cause is not None and "k opened" in h.seq.stop_cause.reason
    assert h.run_until(lambda: abs(h.circuit.current) <= 5, 0.5)


def test_an_ev_asking_for_more_gets_no_more_than_available() -> None:
    h = Harness(EvSpec(soc=30.0, max_current=125, misbehaviours={"over_request"}), offer=40.0)
    h.start()
    h.run(25)
    assert h.ev.request > 40
    assert max(s.current for s in h.samples) <= 40.0 + 1e-6
    assert h.charger_limits()["AvailableCurrent"] == 40


def test_a_lower_offer_reaches_a_dynamic_ev_and_the_output() -> None:
    h = _session(soc=30.0, protocol=3)
    h.run_until(lambda: h.circuit.current > 100, 30)
    h.seq.set_offer(32.0)
    h.run(1.0)
    assert h.charger_limits()["AvailableCurrent"] == 32
    assert h.circuit.current == pytest.approx(32.0, abs=0.5)
    assert any(f.id == CHARGER_EXTENDED for _, f in h.charger_frames)


def test_a_1x_ev_sees_no_extended_frame() -> None:
    h = _session(soc=79.5)
    _finish(h)
    assert not any(f.id == CHARGER_EXTENDED for _, f in h.charger_frames)


@pytest.mark.parametrize(("spec", "why"), [
    ({"target_voltage": 510}, "target 510 V is above the charger's 500 V"),
    ({"min_voltage": 40}, "minimum 40 V is below the charger's lowest output 50 V"),
])
def test_an_incompatible_battery_is_told_so_and_never_energised(spec: dict[str, int], why: str) -> None:
    h = _session(**spec)
    _finish(h, 15)
    assert h.seq.stop_cause is not None and why in h.seq.stop_cause.reason
    assert h.seq.stop_cause.blame == Blame.BATTERY
    assert any(f.id == CHARGER_STATUS and f.data[5] & 0x08 for _, f in h.charger_frames)
    assert not any(s.out.contactors or s.out.d2 or s.out.power for s in h.samples)


def test_an_ev_with_its_contactors_closed_before_the_test_is_refused() -> None:
    h = _session(misbehaviours={"live_inlet"})
    h.run_until(lambda: h.seq.phase == Phase.DONE, 15)
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault == Fault.VOLTAGE_MISMATCH
    assert h.seq.stop_cause.blame == Blame.SYSTEM
    assert not any(s.out.contactors or s.out.power for s in h.samples)
    assert h.out.lock  # the inlet is live: the connector stays locked


def test_an_insulation_fault_ends_the_session_before_d2() -> None:
    h = _session()
    h.circuit.insulation_ohms = 30_000
    _finish(h, 30)
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault == Fault.INSULATION_FAULT
    assert h.seq.stop_cause.blame == Blame.CHARGER
    assert not any(s.out.d2 for s in h.samples)
    opened = h.first(lambda s: s.phase == Phase.SHUTDOWN)
    assert opened.outlet <= 10  # bled before the contactors opened


def test_no_frame_within_6_s_of_d1_ends_the_attempt() -> None:
    h = Harness(ev_talks=False)
    h.start()
    h.run_until(lambda: h.seq.phase == Phase.DONE, 7)
    assert h.now == pytest.approx(6.0, abs=0.05)
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault == Fault.EV_COMM_LOST
    assert h.charger_frames == []


def test_no_permission_within_8_s_of_d1_ends_the_attempt() -> None:
    h = _session(permission_delay=9.0)
    h.run_until(lambda: h.seq.phase == Phase.DONE, 9)
    assert h.now == pytest.approx(8.0, abs=0.05)
    assert not any(s.out.lock for s in h.samples)


def test_a_welded_ev_contactor_leaves_the_connector_locked() -> None:
    h = _session(soc=79.5, misbehaviours={"welded"})
    h.run_until(lambda: h.seq.phase == Phase.DONE, 40)
    wait = h.first(lambda s: s.phase == Phase.WAIT_EV_OPEN)
    assert h.now - wait.t >= 10.0  # waited the whole T-time
    h.run(5)
    assert h.out.lock and h.circuit.outlet_voltage > 300


def test_a_slow_ev_is_waited_for() -> None:
    h = _session(soc=79.5, misbehaviours={"slow_open"})
    _finish(h, 40)
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault is None


def test_a_09_ev_closes_by_the_inlet_voltage_and_gets_4_s_for_welding_detection() -> None:
    h = _session(protocol=1, soc=79.5)
    _finish(h)
    wait = h.first(lambda s: s.phase == Phase.WAIT_EV_OPEN)
    shutdown = h.first(lambda s: s.phase == Phase.SHUTDOWN)
    assert shutdown.t - wait.t == pytest.approx(4.0, abs=0.05)
    assert {f.data[0] for _, f in h.charger_frames if f.id == CHARGER_STATUS} == {1}


def test_the_station_stops_in_the_same_order() -> None:
    h = _session(soc=30.0)
    h.run_until(lambda: h.circuit.current > 60, 30)
    h.seq.stop("remote")
    asked = h.now
    assert h.run_until(lambda: abs(h.circuit.current) <= 5, 0.5) - asked <= 0.5
    _finish(h, 20)
    assert h.seq.stop_cause is not None and h.seq.stop_cause.reason == "remote"


def test_an_output_that_overshoots_to_the_threshold_voltage_stops_charging() -> None:
    h = Harness(EvSpec(soc=99.0, target_soc=101.0, full_voltage=430.0, max_voltage=435))
    h.start()
    h.run_until(lambda: h.circuit.current > 20, 30)
    h.circuit.overshoot = 30.0  # the stage regulates above its target
    h.run_until(lambda: h.seq.phase == Phase.RAMP_DOWN, 10)
    assert h.seq.stop_cause is not None and "threshold voltage 435 V" in h.seq.stop_cause.reason


def test_malformed_and_v2x_frames_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    h = _session(soc=79.5)
    h.run(5)
    h.seq.on_frame(Frame(EV_STATUS, bytes(3)), h.now)
    h.seq.on_frame(Frame(0x200, bytes.fromhex("FF000000FA00FFFF")), h.now)
    h.seq.on_frame(Frame(0x700, bytes(8)), h.now)
    _finish(h)
    assert "CHAdeMO frame 102 [3]" in caplog.text
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault is None
