"""What a CSMS may ask of the station, in the station's own words, for every OCPP version.

The adapters' handlers translate a request into one of these calls and spell the :class:`Answer` back; the rules
(a remote start while boot is Pending, AuthorizeRemoteStart, which messages a trigger may ask for) live here.
Handlers run inside the connection's receive loop and never wait for a CALL of the station's own: anything that
needs the CSMS again is spawned, or done in the ``after_*`` hook that runs once the answer is on the wire.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any

from controller.domain.events import StatusChanged
from controller.domain.types import Answer, AuthDecision, IdToken, StopReason, TriggerReason
from controller.evse.reservation import Reservation
from controller.ocpp import device_model as dm
from controller.ocpp.adapter import Registration
from controller.ocpp.network import SLOTS, NetworkProfile, profile_problem
from controller.ocpp.statuses import current_status
from controller.tasks import until

if TYPE_CHECKING:
    from controller.ocpp.client import OcppClient
    from controller.ocpp.diagnostics import Diagnostics
    from controller.ocpp.firmware import Firmware
    from controller.ocpp.security import Security
    from controller.ocpp.smart_charging import SmartCharging

log = logging.getLogger(__name__)

# How long a reset waits for the stops to reach the CSMS before restarting (they stay on disk).
SOFT_RESET_DRAIN = 10.0
HARD_RESET_DRAIN = 2.0


class Trigger(enum.Enum):
    """What TriggerMessage may ask for."""

    BOOT = "boot"
    HEARTBEAT = "heartbeat"
    STATUS = "status"
    METER_VALUES = "meter values"
    #: 2.0.1: a TransactionEvent Updated (triggerReason Trigger) of each ongoing transaction.
    TRANSACTION_EVENT = "transaction event"
    FIRMWARE_STATUS = "firmware status"
    #: 1.6 ExtendedTriggerMessage's FirmwareStatusNotification: the signed update's SignedFirmwareStatusNotification.
    SIGNED_FIRMWARE_STATUS = "signed firmware status"
    DIAGNOSTICS_STATUS = "diagnostics status"
    #: The security whitepaper's and 2.0.1's LogStatusNotification.
    LOG_STATUS = "log status"
    #: A CSR for a new station certificate (1.6 SignChargePointCertificate, 2.0.1 SignChargingStationCertificate).
    SIGN_CERTIFICATE = "sign certificate"


class Commands:
    """The CSMS's requests, executed against the station."""

    def __init__(self, client: OcppClient) -> None:
        self.client = client

    @property
    def vendor_id(self) -> str:
        """The vendor id DataTransfer messages of ours would carry."""
        return self.client.config.station.vendor

    def now(self) -> datetime:
        """The station's UTC time (following the CSMS's clock)."""
        return self.client.clock.utcnow()

    @property
    def diagnostics(self) -> Diagnostics:
        """Log and diagnostics uploads (GetDiagnostics / GetLog go straight there)."""
        return self.client.diagnostics

    @property
    def firmware(self) -> Firmware:
        """Firmware updates (UpdateFirmware and SignedUpdateFirmware go straight there)."""
        return self.client.firmware

    @property
    def security(self) -> Security:
        """Certificates and the security profile (the certificate messages go straight there)."""
        return self.client.security

    @property
    def smart(self) -> SmartCharging:
        """The charging profiles (SetChargingProfile and its kin go straight there)."""
        return self.client.smart

    def has_evse(self, evse_id: int) -> bool:
        """Whether the station has this EVSE (0: the station itself)."""
        return evse_id == 0 or evse_id in self.client.station.evses

    # ------------------------------------------------------------ transactions

    def remote_start(self, id_token: IdToken, evse_id: int | None, *, remote_start_id: int | None = None) -> Answer:
        """A remote start: REJECTED while boot is not Accepted or when no EVSE can take it.

        With AuthorizeRemoteStart the identifier is authorised like a card first (local list, cache or the
        CSMS); the answer is ACCEPTED when an EVSE can take it, and the session follows only if that succeeds.
        """
        client = self.client
        if client.registration != Registration.ACCEPTED:
            return Answer.REJECTED
        station = client.station
        if not client.model.flag(dm.AUTHORIZE_REMOTE_START):
            ok = station.remote_start(id_token, evse_id, remote_start_id=remote_start_id)
            return Answer.ACCEPTED if ok else Answer.REJECTED
        if not station.can_start(id_token, evse_id):
            return Answer.REJECTED
        client.spawn(self._authorized_start(id_token, evse_id, remote_start_id))
        return Answer.ACCEPTED

    async def _authorized_start(self, id_token: IdToken, evse_id: int | None, remote_start_id: int | None) -> None:
        decision: AuthDecision = await self.client.authorize(id_token)
        if not decision.accepted:
            log.info("remote start for %s not authorised (%s)", id_token.value, decision.status.value)
            return
        if not self.client.station.remote_start(id_token, evse_id, decision, remote_start_id=remote_start_id):
            log.info("remote start for %s: the connector is no longer free", id_token.value)

    def transaction_of(self, csms_id: int) -> str | None:
        """The station-local id of the transaction the CSMS calls ``csms_id`` (1.6 numbers them)."""
        return self.client.queue.local_id_for(csms_id)

    def remote_stop(self, local_id: str | None) -> Answer:
        """A remote stop of the transaction with this station-local id (None: unknown to the station)."""
        if local_id is None:
            return Answer.REJECTED
        ok = self.client.station.stop_transaction(local_id, StopReason.REMOTE, TriggerReason.REMOTE_STOP)
        return Answer.ACCEPTED if ok else Answer.REJECTED

    def send_later(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Send these after the request's answer, one after another (a report in parts)."""
        self.client.send_all(messages)

    def customer_information(self, id_tag: str, *, report: bool, clear: bool) -> str:
        """What the station keeps of an identifier (its cached and listed authorisation, its sessions not yet
        delivered), as text for the CSMS; ``clear`` forgets the cached one (the local list is the CSMS's)."""
        store = self.client.store
        cache, listed = store.auth_entry("auth_cache", id_tag), store.auth_entry("local_list", id_tag)
        sessions = [t for t in store.transactions() if t.id_tag.upper() == id_tag.upper()]
        text = ""
        if report:
            found = [f"cached authorisation {cache[0]}" if cache else "",
                     f"local list entry {listed[0]}" if listed else "",
                     f"{len(sessions)} session(s) still queued for the CSMS, the first started {sessions[0].started_at}"
                     if sessions else ""]
            text = f"{id_tag}: " + "; ".join(f for f in found if f) if any(found) else "No data"
        if clear:
            store.clear_auth_cache(id_tag)
            log.info("customer information of %s cleared at the CSMS's request", id_tag)
        return text[:512]

    def transaction_status(self, local_id: str | None) -> tuple[bool, bool]:
        """(messages of it still queued, it is still running); with no id: (any message queued, False)."""
        client = self.client
        if local_id is None:
            return len(client.queue) > 0, False
        record = client.store.transaction(local_id)  # open from its first event to its last (2.0.1 TxStopPoint)
        return client.store.queued_for(local_id) > 0, record is not None and record.open

    # --------------------------------------------------------------- control

    def set_network_profile(self, slot: int, url: str, security_profile: int, message_timeout: int) -> Answer:
        """SetNetworkProfile: ACCEPTED (kept for the next start that lists it), REJECTED (unusable here, or the
        slot in use) or FAILED (it could not be kept)."""
        client = self.client
        current = client.network.active
        if slot == 1 or slot not in SLOTS or slot == current.slot:
            problem: str | None = f"slot {slot} is the configured CSMS's, in use, or not one of 2-{SLOTS[-1]}"
        else:
            problem = profile_problem(url, security_profile, current=current.security_profile,
                                      has_password=bool(client.model.get(dm.BASIC_AUTH_PASSWORD)),
                                      has_client_certificate=client.certificates.has_client_certificate())
        if problem is not None:
            log.info("SetNetworkProfile for slot %d refused: %s", slot, problem)
            return Answer.REJECTED
        try:
            client.network.put(NetworkProfile(slot, url, security_profile, float(max(1, message_timeout))))
        except sqlite3.Error as exc:
            log.error("SetNetworkProfile for slot %d could not be kept: %s", slot, exc)
            return Answer.FAILED
        return Answer.ACCEPTED

    def change_availability(self, evse_id: int, operative: bool) -> Answer:
        """ChangeAvailability (EVSE 0: the whole station): ACCEPTED, SCHEDULED or REJECTED."""
        return self.client.station.change_availability(evse_id, operative)

    async def unlock(self, evse_id: int) -> Answer:
        """UnlockConnector: ACCEPTED, FAILED or NOT_SUPPORTED (no such EVSE, or no cable lock on it)."""
        return await self.client.station.unlock(evse_id)

    def clear_cache(self) -> Answer:
        """ClearCache."""
        self.client.auth.clear_cache()
        return Answer.ACCEPTED

    def after_reset(self, hard: bool) -> None:
        """Reset (already answered Accepted): end transactions, let them reach the CSMS, restart."""
        self.client.spawn(self._reset(hard))

    def booted(self) -> bool:
        """The CSMS has Accepted this station's BootNotification."""
        return self.client.registration == Registration.ACCEPTED

    def busy(self, evse_id: int | None = None) -> bool:
        """A transaction runs (on ``evse_id``, or on any EVSE): a charging session, or a transaction record still
        open (2.0.1 opens one at the plug or keeps it to the unplug)."""
        if any(e.transaction is not None for e in self.client.station.evses.values() if evse_id in (None, e.id)):
            return True
        return any(t.connector_id == evse_id or evse_id is None
                   for t in self.client.store.transactions(open_only=True))

    def reset_evse(self, evse_id: int, *, immediate: bool) -> Answer:
        """Reset of one EVSE: ACCEPTED, or SCHEDULED until its transaction ends (OnIdle)."""
        return self.client.station.evses[evse_id].reset(immediate=immediate)

    def reset_when_idle(self) -> None:
        """Reset OnIdle (answered Scheduled): wait until no transaction runs, then reset as a soft one."""
        async def wait_then_reset() -> None:
            log.info("reset scheduled for when the running transactions have ended")
            await until(lambda: not self.busy(), math.inf, 1.0)
            await self._reset(hard=False, scheduled=True)

        self.client.spawn(wait_then_reset())

    async def _reset(self, hard: bool, *, scheduled: bool = False) -> None:
        client = self.client
        reason = StopReason.HARD_RESET if hard else StopReason.SOFT_RESET
        stopped = client.station.stop_all(reason, TriggerReason.RESET_COMMAND)
        end_open = getattr(client.adapter, "end_open", None)  # 2.0.1: transactions open outside a session
        for message in end_open(reason, TriggerReason.RESET_COMMAND) if end_open is not None else []:
            client.queue.put(message)
            stopped += 1
        log.warning("%s reset requested by the CSMS: %d transaction(s) stopped; restarting", "hard" if hard else "soft",
                    stopped)
        try:
            await asyncio.wait_for(client.queue.drained(), HARD_RESET_DRAIN if hard else SOFT_RESET_DRAIN)
        except TimeoutError:
            log.warning("restarting with %d message(s) still queued (they are kept on disk)", len(client.queue))
        client.reset(hard, scheduled=scheduled)

    # --------------------------------------------------------------- local list

    def update_local_list(self, version: int, full: bool,
                          entries: list[tuple[IdToken, AuthDecision | None]]) -> Answer:
        """SendLocalList: ACCEPTED, FAILED or VERSION_MISMATCH."""
        return self.client.auth.update_list(version, full, entries)

    def local_list_version(self, *, empty_is_none: bool = True) -> int:
        """GetLocalListVersion (``empty_is_none``: an empty list answers 0, as 1.6 says)."""
        return self.client.auth.list_version(empty_is_none=empty_is_none)

    # ------------------------------------------------------------ reservation

    def reserve(self, evse_id: int, expires_at: datetime, id_token: IdToken, reservation_id: int,
                group: IdToken | None, *, among: list[int] | None = None) -> Answer:
        """ReserveNow (EVSE 0: any, where NonEvseSpecific reservations are supported; ``among``: any of these)."""
        if expires_at <= self.client.clock.utcnow():
            return Answer.REJECTED
        reservation = Reservation(reservation_id, id_token, group, expires_at)
        return self.client.station.reserve(evse_id, reservation,
                                           self.client.model.flag(dm.NON_EVSE_SPECIFIC_RESERVATION), among=among)

    def cancel_reservation(self, reservation_id: int) -> Answer:
        """CancelReservation: ACCEPTED, or REJECTED when no such reservation exists."""
        return Answer.ACCEPTED if self.client.station.cancel_reservation(reservation_id) else Answer.REJECTED

    # --------------------------------------------------------------- trigger

    def trigger(self, what: Trigger, evse_id: int | None) -> Answer:
        """TriggerMessage: ACCEPTED when the message can be sent, REJECTED otherwise.

        ``evse_id`` None means every EVSE; 0 the station itself, which has no meter of its own.
        """
        if evse_id is not None and not self.has_evse(evse_id):
            return Answer.REJECTED
        if what == Trigger.METER_VALUES and evse_id == 0:
            return Answer.REJECTED
        if what == Trigger.METER_VALUES and not any(e.reading is not None for e in self.client.station.evses.values()
                                                    if evse_id in (None, e.id)):
            return Answer.REJECTED  # no reading yet (a meter not answering): nothing could be sent
        if what == Trigger.SIGN_CERTIFICATE and not self.booted():
            return Answer.REJECTED  # the CSR goes out in SignCertificate: not before an Accepted boot
        if what == Trigger.TRANSACTION_EVENT and not any(
                e.transaction is not None for e in self.client.station.evses.values() if evse_id in (None, e.id)):
            return Answer.REJECTED  # no transaction there to tell of
        return Answer.ACCEPTED

    def after_trigger(self, what: Trigger, evse_id: int | None) -> None:
        """Send what TriggerMessage asked for (its answer is already on the wire, as the spec orders)."""
        client, adapter = self.client, self.client.adapter
        evses = [e for e in client.station.evses.values() if evse_id in (None, e.id)]
        if what == Trigger.BOOT:
            if not client.boot_now():
                client.spawn(client.send(adapter.boot()))
        elif what == Trigger.HEARTBEAT:
            client.spawn(client.send(adapter.heartbeat()))
        elif what == Trigger.STATUS:
            events = [current_status(evse) for evse in evses]
            if evse_id in (None, 0):
                events.insert(0, StatusChanged(0, client.station.station_status()))
            for message in (adapter.status(event) for event in events):
                if message is not None:  # 2.0.1 reports no status of the station as a whole
                    client.spawn(client.send(message))
        elif what == Trigger.METER_VALUES:
            for evse in evses:
                if evse.reading is not None:
                    client.spawn(client.send(adapter.triggered_sample(evse)))
        elif what == Trigger.TRANSACTION_EVENT:
            triggered = getattr(adapter, "triggered_event", None)  # 2.0.1 only: 1.6 has no such trigger
            for evse in evses:
                if evse.transaction is not None and triggered is not None:
                    client.queue.put(triggered(evse))  # a transaction's message: in its order, with its seqNo
        elif what == Trigger.FIRMWARE_STATUS:
            client.spawn(client.send(adapter.firmware_status()))
        elif what == Trigger.SIGNED_FIRMWARE_STATUS:
            client.spawn(client.send(adapter.firmware_status(signed=True)))
        elif what == Trigger.DIAGNOSTICS_STATUS:
            client.spawn(client.send(adapter.diagnostics_status()))
        elif what == Trigger.LOG_STATUS:
            client.spawn(client.send(adapter.log_status()))
        elif what == Trigger.SIGN_CERTIFICATE:
            client.security.sign_request()
