"""GB/T 27930-2015 layouts against the byte examples in the references (hardware.md 3, dc.md 2)."""

from __future__ import annotations

import pytest

from controller.charging.gbt.frames import (
    Bcl,
    Bcp,
    Bcs,
    Brm,
    Bsm,
    Bst,
    MalformedFrame,
    decode,
    encode,
    pgn_of,
)


def test_chm_is_v1_1_in_three_bytes() -> None:
    frame = encode("CHM", VersionMinor=1, VersionMajor=1)
    assert (frame.id, frame.data, frame.extended) == (0x1826F456, bytes([0x01, 0x01, 0x00]), True)


def test_a_charge_current_is_negative_on_the_wire() -> None:
    # 100 A of charging is -100 A, raw 0x0BB8 (hardware.md 3.1).
    ccs = encode("CCS", OutputVoltage=400.0, OutputCurrent=-100.0, ChargingTime=5, ChargingAllowed=1)
    assert ccs.id == 0x1812F456 and len(ccs.data) == 8
    assert ccs.data[:6] == bytes.fromhex("A00FB80B0500")
    # Byte 7: charging allowed = 01 in bits 1-2, every other bit 1 (0xFD); byte 8 all ones (7.9).
    assert ccs.data[6:] == bytes([0xFD, 0xFF])


def test_unused_bits_are_ones() -> None:
    assert encode("CRO", Ready=0xAA).data == b"\xaa"
    cst = encode("CST", ConditionReached=0, ManualStop=0, FaultStop=1, BmsStop=0, ChargerOverTemperature=0,
                 ConnectorFault=1, InternalOverTemperature=0, EnergyNotDeliverable=0, EmergencyStop=0,
                 OtherFault=0, CurrentMismatch=0, VoltageAbnormal=0)
    # Fault stop 0x10 in byte 1; connector fault 0x04 in byte 2 (hardware.md 3.3); bits 20-23 and 28-31 unused.
    assert cst.data == bytes([0x10, 0x04, 0xF0, 0xF0])


def test_bcl_reads_the_demand_as_a_positive_charge_current() -> None:
    bcl = Bcl.decode(bytes.fromhex("100E B80B 02".replace(" ", "")))
    assert (bcl.voltage, bcl.current, bcl.constant_current) == (pytest.approx(360.0), pytest.approx(100.0), True)


def test_a_bms_frame_padded_to_8_bytes_reads_the_same() -> None:
    exact = Bcl.decode(bytes.fromhex("100EB80B02"))
    assert Bcl.decode(bytes.fromhex("100EB80B02FFFFFF")) == exact
    assert decode("BHM", bytes.fromhex("A00F"))["MaxChargeVoltage"] == pytest.approx(400.0)
    assert decode("BHM", bytes.fromhex("A00FFFFFFFFFFFFF"))["MaxChargeVoltage"] == pytest.approx(400.0)


def test_bcp_and_bcs_after_transport() -> None:
    bcp = Bcp.decode(bytes.fromhex("6801" "D007" "5802" "A00F" "5A" "F401" "100E"))
    assert bcp.max_cell_voltage == pytest.approx(3.6)
    assert bcp.max_current == pytest.approx(200.0)  # raw 2000 = -200 A
    assert (bcp.max_voltage, bcp.max_temperature, bcp.soc, bcp.battery_voltage) == (
        pytest.approx(400.0), 40.0, pytest.approx(50.0), pytest.approx(360.0))
    bcs = Bcs.decode(bytes.fromhex("100E" "740E" "6841" "32" "1E00"))  # 3700: -30 A
    assert (bcs.voltage, bcs.current, bcs.soc, bcs.remaining_min) == (pytest.approx(360.0), pytest.approx(30.0),
                                                                     50, 30)


@pytest.mark.parametrize("length", [41, 49])
def test_brm_is_41_or_49_bytes_with_a_vin(length: int) -> None:
    head = bytes([0x01, 0x01, 0x00, 0x03]) + (1500).to_bytes(2, "little") + (3600).to_bytes(2, "little")
    body = head + bytes(16) + b"LFV2A21K0G3000001" + b"V2.01.00"[: length - 41]
    brm = Brm.decode(body)
    assert (brm.version, brm.battery_type, brm.rated_capacity_ah, brm.rated_voltage) == (
        (1, 1), 3, pytest.approx(150.0), pytest.approx(360.0))
    assert brm.vin == "LFV2A21K0G3000001"
    assert brm.software == (b"V2.01.00" if length == 49 else None)


@pytest.mark.parametrize("length", [40, 50])
def test_brm_of_another_length_is_malformed(length: int) -> None:
    with pytest.raises(MalformedFrame, match="41 to 49"):
        Brm.decode(bytes(length))


def test_bsm_pauses_and_names_its_alarms() -> None:
    ok = Bsm.decode(bytes([1, 90, 1, 80, 2, 0x00, 0x10]))
    assert ok == Bsm((), True)
    paused = Bsm.decode(bytes([1, 90, 1, 80, 2, 0x00, 0x00]))
    assert not paused.charging_allowed
    hot = Bsm.decode(bytes([1, 90, 1, 80, 2, 0x40, 0x10]))
    assert hot.alarms == ("OverTemperature",)


def test_bst_names_its_reasons() -> None:
    assert Bst.decode(bytes([0x01, 0x00, 0x00, 0x00])).reasons == ("SocReached",)
    assert Bst.decode(bytes([0x00, 0x01, 0x00, 0x00])).reasons == ("InsulationFault",)


def test_a_short_frame_is_malformed() -> None:
    with pytest.raises(MalformedFrame, match="GB/T BCL: 3 bytes, at least 5"):
        Bcl.decode(bytes(3))


def test_pgns() -> None:
    assert (pgn_of("BRM"), pgn_of("BCP"), pgn_of("BCS"), pgn_of("CHM")) == (0x0200, 0x0600, 0x1100, 0x2600)


def test_a_bcs_cut_to_one_8_byte_frame_is_still_read() -> None:
    bcs = Bcs.decode(bytes.fromhex("100E" "740E" "6841" "32" "1E"))
    assert (bcs.voltage, bcs.current, bcs.soc) == (pytest.approx(360.0), pytest.approx(30.0), 50)
