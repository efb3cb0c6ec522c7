"""OCPP 2.0.1 remote control on the bench: availability, unlock, trigger, the local list and reservations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from ocpp.v201 import call
from pymodbus.constants import ExcCodes

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_ocpp201_core import CP, calls, events
from tests.conftest import wait_until


def statuses(csms: CsmsSimulator) -> list[str]:
    return [s["connectorStatus"] for s in calls(csms, "StatusNotification")]


async def test_TC_G_03_04_CS_change_availability_of_an_evse_and_back(station201: App, csms: CsmsSimulator) -> None:
    answer = await csms.call(CP, call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}))
    assert answer.status == "Accepted"
    await wait_until(lambda: statuses(csms)[-1:] == ["Unavailable"], what="Unavailable")
    answer = await csms.call(CP, call.ChangeAvailability(operational_status="Operative"))
    assert answer.status == "Accepted"
    await wait_until(lambda: statuses(csms)[-1:] == ["Available"], what="Available again")


async def test_TC_F_05_CS_unlock_connector_and_an_unknown_one(station201: App, csms: CsmsSimulator) -> None:
    assert (await csms.call(CP, call.UnlockConnector(evse_id=1, connector_id=1))).status == "Unlocked"
    assert (await csms.call(CP, call.UnlockConnector(evse_id=9, connector_id=1))).status == "UnknownConnector"
    assert (await csms.call(CP, call.UnlockConnector(evse_id=0, connector_id=1))).status == "UnknownConnector"


async def test_TC_F_11_CS_trigger_message_status_and_meter_values(station201: App, csms: CsmsSimulator) -> None:
    before = len(calls(csms, "StatusNotification"))
    answer = await csms.call(CP, call.TriggerMessage(requested_message="StatusNotification", evse={"id": 1}))
    assert answer.status == "Accepted"
    await wait_until(lambda: len(calls(csms, "StatusNotification")) > before, what="the triggered status")
    await wait_until(lambda: station201.station.evses[1].reading is not None, what="the first meter reading")
    answer = await csms.call(CP, call.TriggerMessage(requested_message="MeterValues", evse={"id": 1}))
    assert answer.status == "Accepted"
    await wait_until(lambda: calls(csms, "MeterValues"), what="the triggered MeterValues")
    value = calls(csms, "MeterValues")[0]
    assert value["evseId"] == 1 and value["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
    answer = await csms.call(CP, call.TriggerMessage(requested_message="SignV2GCertificate"))
    assert answer.status == "NotImplemented"
    assert station201.platform is not None
    station201.platform.meters[1].refuse = ExcCodes.DEVICE_FAILURE  # the meter stops answering
    station201.station.evses[1].reading = None
    answer = await csms.call(CP, call.TriggerMessage(requested_message="MeterValues", evse={"id": 1}))
    assert answer.status == "Rejected"  # no reading: nothing to send


async def test_TC_D_01_CS_a_local_list_authorises_offline_and_has_a_version(station201: App,
                                                                           csms: CsmsSimulator) -> None:
    entry = {"id_token": {"id_token": "0A0B0C0D", "type": "ISO14443"}, "id_token_info": {"status": "Accepted"}}
    answer = await csms.call(CP, call.SendLocalList(version_number=5, update_type="Full",
                                                    local_authorization_list=[entry]))
    assert answer.status == "Accepted"
    assert (await csms.call(CP, call.GetLocalListVersion())).version_number == 5
    differential = await csms.call(CP, call.SendLocalList(version_number=4, update_type="Differential"))
    assert differential.status == "VersionMismatch"


async def test_TC_H_01_CS_a_reservation_holds_the_evse_for_its_token(station201: App, csms: CsmsSimulator) -> None:
    expiry = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    answer = await csms.call(CP, call.ReserveNow(id=11, expiry_date_time=expiry, evse_id=1,
                                                 id_token={"id_token": TAG, "type": "ISO14443"}))
    assert answer.status == "Accepted"
    await wait_until(lambda: statuses(csms)[-1:] == ["Reserved"], what="Reserved")
    await script(station201, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: events(csms), what="Started")
    assert events(csms)[0]["reservationId"] == 11
    assert (await csms.call(CP, call.CancelReservation(reservation_id=11))).status == "Rejected"  # used up


async def test_TC_H_cancel_a_reservation(station201: App, csms: CsmsSimulator) -> None:
    expiry = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    answer = await csms.call(CP, call.ReserveNow(id=12, expiry_date_time=expiry,
                                                 id_token={"id_token": "0E0E0E0E", "type": "ISO14443"}))
    assert answer.status == "Accepted"  # no EVSE named: any one that is free
    assert (await csms.call(CP, call.CancelReservation(reservation_id=12))).status == "Accepted"


async def test_TC_N_32_CS_customer_information_reported_then_cleared(station201: App, csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging")  # the card is now in the cache
    token = {"id_token": TAG, "type": "ISO14443"}
    answer = await csms.call(CP, call.CustomerInformation(request_id=3, report=True, clear=True, id_token=token))
    assert answer.status == "Accepted"
    await wait_until(lambda: csms.customer_data, what="NotifyCustomerInformation")
    assert csms.customer_data[0][0] == 3 and "cached authorisation Accepted" in csms.customer_data[0][1]
    assert station201.ocpp is not None and station201.ocpp.store.auth_entry("auth_cache", TAG) is None
    answer = await csms.call(CP, call.CustomerInformation(request_id=4, report=True, clear=False))
    assert answer.status == "Invalid"  # no idToken: nothing the station could look up


async def test_TC_B_21_CS_reset_on_idle_is_scheduled_while_a_transaction_runs(station201: App,
                                                                             csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging")
    assert (await csms.call(CP, call.Reset(type="OnIdle"))).status == "Scheduled"
    await asyncio.sleep(0.5)
    assert station201.restart is None and station201.status(1) == "Charging"  # nothing was ended for it
    await script(station201, f"tap {TAG}; expect Finishing")
    await wait_until(lambda: station201.restart == "soft", 5, "the reset once idle")
    assert station201.ocpp is not None and station201.ocpp.take_boot_cause() == "scheduled_reset"  # next boot's


async def test_TC_F_05_CS_unlock_during_a_transaction_is_refused(station201: App, csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging")
    answer = await csms.call(CP, call.UnlockConnector(evse_id=1, connector_id=1))
    assert answer.status == "OngoingAuthorizedTransaction"
    assert station201.status(1) == "Charging"


async def test_TC_F_26_CS_a_boot_notification_is_not_triggered_once_accepted(station201: App,
                                                                            csms: CsmsSimulator) -> None:
    boots = len(csms.boots)
    answer = await csms.call(CP, call.TriggerMessage(requested_message="BootNotification"))
    assert answer.status == "Rejected"
    await asyncio.sleep(0.3)
    assert len(csms.boots) == boots


async def test_TC_H_07_CS_an_expired_reservation_is_reported(station201: App, csms: CsmsSimulator) -> None:
    expiry = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    answer = await csms.call(CP, call.ReserveNow(id=13, expiry_date_time=expiry, evse_id=1,
                                                 id_token={"id_token": TAG, "type": "ISO14443"}))
    assert answer.status == "Accepted"
    await wait_until(lambda: csms.reservation_updates, 5, "ReservationStatusUpdate")
    assert csms.reservation_updates == [(13, "Expired")]
    await wait_until(lambda: statuses(csms)[-1:] == ["Available"], what="Available again")


async def test_TC_F_13_CS_a_triggered_transaction_event_in_its_transaction_order(station201: App,
                                                                                csms: CsmsSimulator) -> None:
    answer = await csms.call(CP, call.TriggerMessage(requested_message="TransactionEvent", evse={"id": 1}))
    assert answer.status == "Rejected"  # no transaction to tell of
    await script(station201, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: events(csms), what="Started")
    answer = await csms.call(CP, call.TriggerMessage(requested_message="TransactionEvent", evse={"id": 1}))
    assert answer.status == "Accepted"
    await wait_until(lambda: any(e["triggerReason"] == "Trigger" for e in events(csms)), what="the triggered event")
    triggered = next(e for e in events(csms) if e["triggerReason"] == "Trigger")
    assert triggered["eventType"] == "Updated" and triggered["transactionInfo"]["chargingState"] == "Charging"
    assert triggered["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
    assert [e["seqNo"] for e in events(csms)] == list(range(len(events(csms))))
