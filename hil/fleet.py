"""What the bench CSMS runs on a station, in either OCPP version: remote start and stop, reset, availability,
unlock, configuration, charging limits, firmware updates and log uploads. The ``csms`` script steps and the tests
call these; each returns the station's answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from controller.clock import iso_utc
from controller.ocpp.transfer import download
from controller.tasks import until
from hil.csms import CsmsSimulator

#: How long a remote stop waits for the CSMS to know the transaction (its start may still be in flight).
TRANSACTION_WAIT = 5.0
_PURPOSES = {"1.6": {"max": "ChargePointMaxProfile", "default": "TxDefaultProfile", "tx": "TxProfile"},
             "2.0.1": {"max": "ChargingStationMaxProfile", "default": "TxDefaultProfile", "tx": "TxProfile"}}


class Fleet:
    """The bench CSMS's fleet operations on one connected station."""

    def __init__(self, csms: CsmsSimulator, cp_id: str | None = None) -> None:
        self.csms = csms
        if cp_id is None:
            if len(csms.connections) != 1:
                raise RuntimeError(f"{len(csms.connections)} stations are connected to the bench CSMS; name one")
            cp_id = next(iter(csms.connections))
        self.cp_id = cp_id
        self._ids = itertools.count(1000)

    @property
    def version(self) -> str:
        """The OCPP version the station speaks to the CSMS."""
        connection = self.csms.connections.get(self.cp_id)
        if connection is None:
            raise RuntimeError(f"{self.cp_id} is not connected to the bench CSMS")
        return "2.0.1" if type(connection).__module__.endswith("csms201") else "1.6"

    async def remote_start(self, connector: int | None, tag: str) -> str:
        """RemoteStartTransaction (1.6) / RequestStartTransaction (2.0.1) for ``tag`` (on ``connector``)."""
        if self.version == "1.6":
            request: Any = call16.RemoteStartTransaction(id_tag=tag, connector_id=connector)
        else:
            request = call201.RequestStartTransaction(id_token={"idToken": tag, "type": "ISO14443"},
                                                      remote_start_id=next(self._ids), evse_id=connector)
        return await self._status(request)

    async def remote_stop(self, connector: int) -> str:
        """RemoteStopTransaction / RequestStopTransaction of the transaction running on ``connector``."""
        transaction = await self._running_transaction(connector)
        if self.version == "1.6":
            request: Any = call16.RemoteStopTransaction(transaction_id=transaction)
        else:
            request = call201.RequestStopTransaction(transaction_id=transaction)
        return await self._status(request)

    async def reset(self, hard: bool) -> str:
        """Reset Hard/Soft (1.6) or Immediate/OnIdle (2.0.1)."""
        if self.version == "1.6":
            request: Any = call16.Reset(type="Hard" if hard else "Soft")
        else:
            request = call201.Reset(type="Immediate" if hard else "OnIdle")
        return await self._status(request)

    async def availability(self, connector: int, operative: bool) -> str:
        """ChangeAvailability of ``connector`` (0: the station)."""
        if self.version == "1.6":
            request: Any = call16.ChangeAvailability(connector_id=connector,
                                                     type="Operative" if operative else "Inoperative")
        else:
            request = call201.ChangeAvailability(operational_status="Operative" if operative else "Inoperative",
                                                 evse=None if connector == 0 else {"id": connector})
        return await self._status(request)

    async def unlock(self, connector: int) -> str:
        """UnlockConnector (2.0.1: the EVSE's connector 1)."""
        if self.version == "1.6":
            request: Any = call16.UnlockConnector(connector_id=connector)
        else:
            request = call201.UnlockConnector(evse_id=connector, connector_id=1)
        return await self._status(request)

    async def configure(self, key: str, value: str) -> str:
        """ChangeConfiguration (1.6, a configuration key) or SetVariables (2.0.1, ``Component.Variable``)."""
        if self.version == "1.6":
            return await self._status(call16.ChangeConfiguration(key=key, value=value))
        component, dot, variable = key.rpartition(".")
        if not dot or not component or not variable:
            raise ValueError(f"a 2.0.1 key is Component.Variable (such as OCPPCommCtrlr.HeartbeatInterval), "
                             f"got {key!r}")
        result = await self.csms.call(self.cp_id, call201.SetVariables(set_variable_data=[{
            "attributeValue": value, "component": {"name": component}, "variable": {"name": variable}}]))
        if result is None:
            return "CALLERROR"
        return str(result.set_variable_result[0]["attribute_status"])

    async def _status(self, request: Any) -> str:
        result = await self.csms.call(self.cp_id, request)
        return "CALLERROR" if result is None else str(result.status)

    async def limit(self, connector: int, value: float, unit: str = "A", *, seconds: int | None = None,
                    purpose: str = "default", stack_level: int = 0, profile_id: int | None = None) -> str:
        """Install a profile of one period (``value`` in ``unit``, for ``seconds`` or for ever) from now on
        ``connector`` (0: the station); ``purpose`` is max, default or tx (the running transaction's)."""
        return await self.profile(connector, [(0, value)], unit, seconds=seconds, purpose=purpose,
                                  stack_level=stack_level, profile_id=profile_id)

    async def profile(self, connector: int, periods: list[tuple[int, float]], unit: str = "A", *,
                      seconds: int | None = None, purpose: str = "default", stack_level: int = 0,
                      profile_id: int | None = None) -> str:
        """Install an Absolute profile starting now: ``periods`` are (seconds from now, limit in ``unit``)."""
        pid = profile_id if profile_id is not None else next(self._ids)
        version = self.version
        start = iso_utc(datetime.now(UTC) - timedelta(seconds=1))
        schedule: dict[str, Any] = {
            "chargingRateUnit": unit, "startSchedule": start, **({"duration": seconds + 1} if seconds else {}),
            # The schedule starts a second ago (a station whose clock is a little ahead still finds it begun), so
            # the later periods (and the end) are a second further into it: they come when asked, counted from now.
            "chargingSchedulePeriod": [{"startPeriod": begin + 1 if begin else 0, "limit": limit}
                                       for begin, limit in periods]}
        body: dict[str, Any] = {"stackLevel": stack_level, "chargingProfilePurpose": _PURPOSES[version][purpose],
                                "chargingProfileKind": "Absolute"}
        if purpose == "tx":
            body["transactionId"] = await self._running_transaction(connector)
        if version == "1.6":
            request: Any = call16.SetChargingProfile(connector_id=connector, cs_charging_profiles={
                "chargingProfileId": pid, **body, "chargingSchedule": schedule})
        else:
            request = call201.SetChargingProfile(evse_id=connector, charging_profile={
                "id": pid, **body, "chargingSchedule": [{"id": pid, **schedule}]})
        return await self._status(request)

    async def unlimit(self, connector: int | None = None) -> str:
        """Clear every profile (of ``connector`` only, when given)."""
        if self.version == "1.6":
            request: Any = call16.ClearChargingProfile(connector_id=connector)
        else:
            request = call201.ClearChargingProfile(
                charging_profile_criteria=None if connector is None else {"evseId": connector})
        return str((await self.csms.call(self.cp_id, request)).status)

    async def composite(self, connector: int, seconds: int, unit: str | None = None) -> list[tuple[int, float]]:
        """The station's composite schedule for ``connector``: (start, limit) periods."""
        if self.version == "1.6":
            result = await self.csms.call(self.cp_id, call16.GetCompositeSchedule(
                connector_id=connector, duration=seconds, charging_rate_unit=unit))
            schedule = result.charging_schedule
        else:
            result = await self.csms.call(self.cp_id, call201.GetCompositeSchedule(
                duration=seconds, evse_id=connector, charging_rate_unit=unit))
            schedule = result.schedule
        if result.status != "Accepted":
            raise RuntimeError(f"GetCompositeSchedule for connector {connector}: {result.status}")
        return [(p["start_period"], float(p["limit"])) for p in schedule["charging_schedule_period"]]

    async def update(self, location: str, *, signed: bool = True, retries: int = 1) -> str:
        """Update the station's firmware from ``location`` (an image from ``evse firmware pack --key``). The
        signature and signing certificate come from ``<location>.sig``; ``signed`` False on 1.6 sends the plain
        UpdateFirmware, whose station fetches them itself. Returns the answer (1.6 UpdateFirmware has none:
        Accepted)."""
        now = iso_utc(datetime.now(UTC))
        if self.version == "1.6" and not signed:
            await self.csms.call(self.cp_id, call16.UpdateFirmware(location=location, retrieve_date=now,
                                                                   retries=retries, retry_interval=10))
            return "Accepted"
        sidecar = json.loads(await asyncio.to_thread(download, location + ".sig"))
        firmware = {"location": location, "retrieveDateTime": now, "signature": sidecar["signature"],
                    "signingCertificate": sidecar["signingCertificate"]}
        request_id = next(self._ids)
        if self.version == "1.6":
            request: Any = call16.SignedUpdateFirmware(request_id=request_id, firmware=firmware, retries=retries,
                                                       retry_interval=10)
        else:
            request = call201.UpdateFirmware(request_id=request_id, firmware=firmware, retries=retries,
                                             retry_interval=10)
        return str((await self.csms.call(self.cp_id, request)).status)

    async def logs(self, location: str, kind: str = "DiagnosticsLog") -> tuple[str, str | None]:
        """Ask for a log upload to ``location`` (``kind`` DiagnosticsLog or SecurityLog): (answer, file name)."""
        request_id = next(self._ids)
        if self.version == "1.6":
            request: Any = call16.GetLog(log={"remoteLocation": location}, log_type=kind, request_id=request_id)
        else:
            request = call201.GetLog(log={"remoteLocation": location}, log_type=kind, request_id=request_id)
        result = await self.csms.call(self.cp_id, request)
        return str(result.status), result.filename

    async def _running_transaction(self, connector: int) -> Any:
        """The open transaction's id, waiting up to TRANSACTION_WAIT s for the CSMS to have handled the message
        that opened it (a script may ask right after the station said Charging); RuntimeError without one."""
        await until(lambda: self._open_transaction(connector) is not None, TRANSACTION_WAIT, 0.01)
        found = self._open_transaction(connector)
        if found is None:
            raise RuntimeError(f"no transaction runs on {'connector' if self.version == '1.6' else 'EVSE'} "
                               f"{connector}")
        return found

    def _open_transaction(self, connector: int) -> Any:
        """The id of the newest transaction the CSMS knows is open on ``connector``, or None."""
        if self.version == "1.6":
            running = [t for t in self.csms.transactions.values()
                       if t.cp_id == self.cp_id and t.connector_id == connector and t.meter_stop is None]
            return running[-1].id if running else None
        ended = {tx for tx, events in self.csms.events.items() if events[-1]["event_type"] == "Ended"}
        open_ = [tx for tx in self.csms.events if tx not in ended]
        return open_[-1] if open_ else None
