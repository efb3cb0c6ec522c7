"""The GB/T 27930-2015 charger sequence against the bench's BMS on a simulated DC circuit, in fake time."""

from __future__ import annotations

import itertools

import pytest

from controller.charging.gbt.frames import decode
from controller.charging.gbt.model import Phase
from controller.domain.faults import Fault
from hil.gbt_bms import BmsSpec
from tests.controller.charging.gbt.harness import Harness

CHM, CRM, CML, CRO, CCS, CST, CSD, CEM = 0x26, 0x01, 0x08, 0x0A, 0x12, 0x1A, 0x1D, 0x1F


def _session(**spec: object) -> Harness:
    h = Harness(BmsSpec(**spec))  # type: ignore[arg-type]
    h.start()
    return h


def _done(h: Harness, timeout: float = 60.0) -> None:
    h.run_until(lambda: h.seq.phase == Phase.DONE, timeout)


def _periods(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_a_whole_session_keeps_the_standards_order_and_periods() -> None:
    h = _session(soc=79.9)
    _done(h)
    # Lock and auxiliary power first, CHM only then; CHM every 250 ms until BHM.
    assert h.samples[0].out.lock and h.samples[0].out.aux
    assert h.sent_ids(CHM)
    # The insulation test at min(BHM 450 V, rated 750 V), on closed K1/K2, then bled below 60 V before CRM.
    assert h.test_voltages == [450.0]
    first_crm = min(h.sent_ids(CRM))
    crm_sample = h.first(lambda s: s.t >= first_crm)
    assert crm_sample.outlet < 60 and not crm_sample.out.contactors
    # K1/K2 close only with the stage 1-10 V below the battery the BMS put on the outlet.
    closing = h.first(lambda s: s.out.contactors, after=first_crm)
    assert closing.relays and 1.0 <= closing.outlet - closing.stage <= 10.0
    # CCS every 50 ms while charging, CML every 250 ms while parameters.
    assert all(abs(p - 0.05) <= 0.0051 for p in _periods(h.sent_ids(CCS)))
    assert all(abs(p - 0.25) <= 0.0051 for p in _periods(h.sent_ids(CML)))
    assert h.seq.stop_cause is not None and h.seq.stop_cause.cst == "BmsStop"
    assert h.sent_ids(CSD) and not h.out.lock and not h.out.aux


def test_the_stop_brings_the_current_to_5_a_before_k1_k2_open() -> None:
    h = _session(soc=50.0)
    h.run_until(lambda: h.circuit.current > 90, 20)
    h.seq.stop("remote")
    asked = h.now
    low = h.run_until(lambda: abs(h.circuit.current) <= 5, 1.0)
    assert (100 - 5) / (low - asked) >= 100  # at 100 A/s or faster
    opened = h.first(lambda s: not s.out.contactors, after=asked)
    assert opened.t >= low
    cst = [f for t, f in h.sent if (f.id >> 16) & 0xFF == CST and t >= asked]
    assert cst and decode("CST", cst[0].data)["ManualStop"] == 1
    assert all(abs(p - 0.01) <= 0.0051 for p in _periods([t for t, f in h.sent if (f.id >> 16) & 0xFF == CST])[:5])
    _done(h, 20)


def test_contactors_a_fault_opened_are_bled_at_once_not_after_a_stage_reading() -> None:
    h = _session(soc=50.0)
    h.run_until(lambda: h.circuit.current > 90, 20)
    h.stale_current = h.circuit.current  # the stage's last reading, before its next 100 ms poll
    h.forced_open = True  # the supervisor opened K1/K2 on a fault
    h.step()
    h.seq.stop("insulation fault", emergency=True)
    faulted = h.now
    bled = h.run_until(lambda: h.out.bleed, 1.0)
    assert bled - faulted <= 0.03 and h.out.power is None  # the stage off and the outlet bleeding together
    h.run_until(lambda: h.circuit.outlet_voltage < 60, 1.0)
    h.stale_current = None
    _done(h, 20)


def test_a_silent_bcl_stops_after_1_s() -> None:
    h = _session(soc=50.0)
    h.run_until(lambda: h.circuit.current > 90, 20)
    h.bms.spec.misbehaviours.add("silent")
    quiet = h.now
    stop = h.run_until(lambda: h.seq.phase == Phase.STOPPING, 2)
    assert 0.95 <= stop - quiet <= 1.06  # 1 s after the last BCL, which came up to 50 ms before
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault == Fault.EV_COMM_LOST


def test_a_bsm_pause_takes_the_current_away_and_back() -> None:
    h = _session(soc=50.0)
    h.run_until(lambda: h.circuit.current > 90, 20)
    h.bms.spec.misbehaviours.add("pause")
    h.run(0.6)
    assert h.circuit.current < 1 and h.seq.phase == Phase.CHARGING
    ccs = [f for _, f in h.sent if (f.id >> 16) & 0xFF == CCS][-1]
    assert decode("CCS", ccs.data)["ChargingAllowed"] == 0
    h.bms.spec.misbehaviours.discard("pause")
    h.run_until(lambda: h.circuit.current > 90, 3)


def test_cc1_lost_cuts_the_current_within_50_ms() -> None:
    h = _session(soc=50.0)
    h.run_until(lambda: h.circuit.current > 90, 20)
    h.connected = False
    lost = h.now
    assert h.run_until(lambda: abs(h.circuit.current) <= 5, 0.05) - lost <= 0.05
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault == Fault.CONNECTOR_LOST
    cst = next(f for t, f in h.sent if (f.id >> 16) & 0xFF == CST and t >= lost)
    assert decode("CST", cst.data)["ConnectorFault"] == 1
    assert next(t for t, f in h.sent if (f.id >> 16) & 0xFF == CST and t >= lost) - lost <= 0.1


@pytest.mark.parametrize(("spec", "ok"), [
    ({"edition": 2011, "brm_length": 41}, True),  # no BHM: go on after 5 s
    ({"brm_length": 41}, True),
    ({"padded": True}, True),  # every single frame padded to 8 bytes
])
def test_bms_variants_charge(spec: dict[str, object], ok: bool) -> None:
    h = _session(soc=79.95, **spec)
    h.run_until(lambda: h.seq.phase == Phase.CHARGING, 30)
    _done(h)
    assert h.seq.brm is not None and h.seq.brm.vin == "LFV2A21K0G3000001"


def test_an_insulation_fault_stops_before_recognition() -> None:
    h = _session()
    h.circuit.insulation_ohms = 40_000.0  # below 100 ohm/V at 450 V
    _done(h, 20)
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault == Fault.INSULATION_FAULT
    assert not h.sent_ids(CRM)


def test_a_battery_that_does_not_match_bcp_is_refused() -> None:
    h = _session(soc=50.0, misbehaviours={"wrong_bcp"})
    _done(h, 30)
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault == Fault.VOLTAGE_MISMATCH
    assert not any(s.out.contactors and s.relays for s in h.samples)  # K1/K2 never closed onto that battery


def test_a_reading_that_still_shows_the_discharged_outlet_after_bro_is_waited_for() -> None:
    h = _session(soc=50.0)
    h.meter_lag = 0.4  # the DC meter's reading trails the car's relays closing
    h.run_until(lambda: h.seq.phase == Phase.CHARGING, 30)
    assert h.seq.stop_cause is None


def test_a_missing_brm_sends_cem_and_reconnects_three_times() -> None:
    h = Harness(BmsSpec())
    h.bms._sending = lambda: [("BHM", 0.25)] if h.bms.stage == "handshake" else []  # type: ignore[method-assign]
    h.start()
    h.run_until(lambda: h.seq.attempts == 1, 60)
    assert h.seq.stop_cause is None  # a reconnect is no fault (yet)
    _done(h, 120)
    assert h.seq.attempts == 3
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault == Fault.EV_COMM_LOST
    cem = [f for _, f in h.sent if (f.id >> 16) & 0xFF == CEM]
    assert cem and decode("CEM", cem[0].data)["BrmTimeout"] == 1
    assert len(h.test_voltages) == 4  # each handshake runs its own insulation test


def test_a_stage_that_keeps_delivering_gets_its_100_a_per_s_then_k1_k2_open(caplog: pytest.LogCaptureFixture) -> None:
    h = _session(soc=50.0)
    h.run_until(lambda: h.circuit.current > 90, 20)
    h.circuit.stage.current_fall = 0.0  # told 0 A, the modules keep pushing
    h.seq.stop("remote")
    asked, amps = h.now, h.circuit.current
    opened = h.run_until(lambda: not h.out.contactors, 3)
    assert opened - asked == pytest.approx((amps - 5) / 100 + 0.2, abs=0.03)  # the current still rose a step
    assert "still flowing" in caplog.text


def test_a_bms_that_never_answers_cst_gets_cem_and_no_fault() -> None:
    h = _session(soc=50.0, misbehaviours={"no_bst"})
    h.run_until(lambda: h.circuit.current > 90, 20)
    h.seq.stop("remote")
    _done(h, 30)
    cem = [f for _, f in h.sent if (f.id >> 16) & 0xFF == CEM]
    assert cem and decode("CEM", cem[0].data)["BstTimeout"] == 1
    assert len(cem) >= 19  # every 250 ms for 5 s
    assert h.seq.stop_cause is not None and h.seq.stop_cause.fault is None and h.seq.attempts == 0


def test_a_bem_before_charging_starts_a_new_handshake() -> None:
    from controller.charging.j1939 import frame_id
    from hal.can import Frame

    h = _session(soc=50.0)
    h.run_until(lambda: h.seq.phase == Phase.PARAMETERS, 20)
    h.seq.on_frame(Frame(frame_id(2, 0x1E00, 0x56, 0xF4), bytes([0xF1, 0xF0, 0xF0, 0xFC]), extended=True), h.now)
    h.run_until(lambda: h.seq.phase == Phase.ERROR, 0.1)
    h.run_until(lambda: h.seq.attempts == 1, 6)
    assert h.seq.stop_cause is None  # reconnecting: no fault
    h.run_until(lambda: h.seq.phase == Phase.CHARGING, 30)  # and the second handshake charges
