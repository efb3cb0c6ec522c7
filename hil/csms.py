"""A CSMS for the bench: an OCPP 1.6J and 2.0.1 websocket server on 127.0.0.1 built on the ``ocpp`` package.

It records every frame both ways and every close code, accepts every idTag
except a configurable set, hands out transaction ids, checks every timestamp
strictly, can answer with a scripted (even schema-breaking) payload, and can run
CSMS-initiated operations (remote start and stop, or any CALL).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import websockets
from ocpp.v16 import call
from ocpp.v16.enums import AuthorizationStatus
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

log = logging.getLogger(__name__)

# RFC 3339 date-time: what a strict validator accepts.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_TIME_KEYS = ("timestamp", "currentTime")


def is_strict_timestamp(value: object) -> bool:
    """True for an RFC 3339 date-time with an explicit offset that also parses."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Frame:
    """One websocket frame as the CSMS saw it."""

    t: float
    cp_id: str
    direction: str  # "in" (station -> CSMS) or "out"
    raw: str

    def call(self) -> tuple[str, dict[str, Any]] | None:
        """(action, payload) when the frame is an OCPP CALL; None for a result, an error or garbage."""
        try:
            message = json.loads(self.raw)
        except ValueError:
            return None
        if isinstance(message, list) and len(message) >= 4 and message[0] == 2 and isinstance(message[2], str):
            return message[2], message[3] if isinstance(message[3], dict) else {}
        return None


@dataclass
class CsmsTransaction:
    """A transaction as the CSMS recorded it."""

    id: int
    cp_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    start_time: str
    meter_stop: int | None = None
    stop_time: str | None = None
    reason: str | None = None
    meter_values: list[dict[str, Any]] = field(default_factory=list)


class _Recorder:
    """Wraps the server connection so every frame is recorded (and checked) on the way through."""

    def __init__(self, ws: Any, csms: CsmsSimulator, cp_id: str) -> None:
        self._ws = ws
        self._csms = csms
        self._cp_id = cp_id

    async def recv(self) -> str:
        raw = await self._ws.recv()
        self._csms._record(self._cp_id, "in", raw)
        return str(raw)

    async def send(self, raw: str) -> None:
        self._csms._record(self._cp_id, "out", raw)
        await self._ws.send(raw)


def local_now() -> str:
    """The time now with this machine's UTC offset, as the bench CSMS writes it."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


class CsmsSimulator:
    """The bench's CSMS. ``url`` is what a station appends ``/<id>`` to."""

    def __init__(self, *, port: int = 0, heartbeat_interval: int = 300, rejected_tags: set[str] | None = None,
                 ssl_context: Any = None, host: str = "127.0.0.1") -> None:
        #: Where it listens: loopback for tests; a bench file's csms.listen for a charger on the network.
        self.host = host
        self.port = port
        #: TLS (security profile 2): served as wss:// with this server context.
        self.ssl_context = ssl_context
        #: Seconds the 2.0.1 side's currentTime is ahead of the local clock (a station must follow it).
        self.clock_offset = 0.0
        #: HTTP Basic passwords per station id (security profiles 1 and 2); a station not named needs none.
        self.passwords: dict[str, str] = {}
        #: (station id, the password it offered or None) of every refused handshake.
        self.refused: list[tuple[str, str | None]] = []
        self.heartbeat_interval = heartbeat_interval
        #: parentIdTag (1.6) or groupIdToken (2.0.1) per (upper-case) idTag.
        self.parents: dict[str, str] = {}
        #: An answer other than Accepted per (upper-case) idTag: Blocked, Expired, Invalid, ...
        self.tag_statuses: dict[str, str] = {}
        #: Tags that Authorize accepts but StartTransaction.conf calls Invalid.
        self.invalid_at_start: set[str] = set()
        #: Answer StartTransaction with a CALLERROR (InternalError): always, or the next ``refuse_next_starts``.
        self.refuse_starts = False
        self.refuse_next_starts = 0
        #: Answers for the next BootNotifications (then Accepted), and the retry interval they carry.
        self.boot_answers: list[str] = []
        self.boot_retry = 1
        self.rejected_tags = {t.upper() for t in rejected_tags or set()}
        self.frames: list[Frame] = []
        self.boots: list[str] = []
        self.statuses: list[tuple[float, str, int, str, str]] = []
        self.transactions: dict[int, CsmsTransaction] = {}
        self.duplicate_stops: list[int] = []
        self.unknown_stops: list[int] = []
        self.timestamp_errors: list[str] = []
        self.data_transfers: list[tuple[str, str | None, Any]] = []
        #: 2.0.1: TransactionEvents per transactionId in arrival order, events seen twice, reasons of the boots.
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.duplicate_events: list[tuple[str, int]] = []
        #: 2.0.1: per TransactionEvent, when it came, from which station, its EVSE, eventType and the chargingState
        #: the transaction is in (the event's, or the last one it gave: the field is there only on a change).
        self.charging_states: list[tuple[float, str, int | None, str, str | None]] = []
        self.boot_reasons: list[str] = []
        self.notified: list[dict[str, Any]] = []
        self.reports: dict[int, list[dict[str, Any]]] = {}
        #: ReportChargingProfiles parts by requestId (2.0.1 GetChargingProfiles).
        self.profile_reports: dict[int, list[dict[str, Any]]] = {}
        #: (station id, CN) of every client certificate a TLS handshake showed (security profile 3).
        self.client_certificates: list[tuple[str, str | None]] = []
        #: (action, status, requestId) of every Diagnostics/Firmware/LogStatusNotification, in order.
        self.file_statuses: list[tuple[str, str, int | None]] = []
        #: SignCertificate CSRs received, and the CSMS's CA that signs them (None: it refuses them).
        self.csrs: list[str] = []
        self.signer: Callable[[str], str] | None = None
        #: The station's answers to the CertificateSigned the signer sent.
        self.signed_answers: list[str] = []
        self.security_events: list[str] = []
        self.customer_data: list[tuple[int, str]] = []
        self.reservation_updates: list[tuple[int, str]] = []
        self.connections: dict[str, Any] = {}
        #: Payloads to answer the next CALLs of an action with, whatever their schema says.
        self.bad_answers: dict[str, list[dict[str, Any]]] = {}
        #: How the next CALLs of an action fail: "error" (CALLERROR InternalError) or "silence" (no answer).
        self.fail_next: dict[str, list[str]] = {}
        #: Seconds the CSMS takes before it handles a CALL of an action.
        self.slow_answers: dict[str, float] = {}
        #: The close code of every connection that ended (1000 normal, 1001 going away, 1011 an error, ...).
        self.close_codes: list[int | None] = []
        #: Until this monotonic time the CSMS refuses every handshake (an outage, :meth:`go_offline`).
        self.offline_until = 0.0
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: Any = None

    def now(self) -> str:
        """The CSMS's time as its answers say it: the local time plus ``clock_offset`` seconds."""
        moment = datetime.now().astimezone() + timedelta(seconds=self.clock_offset)
        return moment.isoformat(timespec="milliseconds")

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # a wildcard is reached on loopback here
        return f"{'wss' if self.ssl_context else 'ws'}://{host}:{self.port}"

    def tag_info(self, id_tag: str) -> dict[str, str]:
        """idTagInfo for a tag: its status and, if it has one, its parentIdTag."""
        info = {"status": self.tag_status(id_tag)}
        if id_tag.upper() in self.parents:
            info["parentIdTag"] = self.parents[id_tag.upper()]
        return info

    def tag_status(self, id_tag: str) -> str:
        """Accepted, unless the tag has a status of its own or is in the rejected set (then Invalid)."""
        if id_tag.upper() in self.tag_statuses:
            return self.tag_statuses[id_tag.upper()]
        return AuthorizationStatus.invalid if id_tag.upper() in self.rejected_tags else AuthorizationStatus.accepted

    async def start(self) -> None:
        """Listen on ``host`` (the same port again after a stop, to simulate a restart)."""
        self._server = await websockets.serve(
            self._handle, self.host, self.port, subprotocols=[Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")],
            ping_interval=None,
            close_timeout=1,  # a bench stop must not wait on a station that stopped answering
            process_request=self._authenticate, ssl=self.ssl_context,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("bench CSMS listening on %s", self.url)

    async def stop(self) -> None:
        """Stop listening and drop every station (its state is kept for a restart)."""
        if self._server is None:
            return
        self._server.close()
        for ws in list(self._server.connections):
            with contextlib.suppress(Exception):
                await ws.close()
        await self._server.wait_closed()
        self._server = None
        self.connections.clear()

    def go_offline(self, seconds: float) -> None:
        """An outage: every station's connection drops at once (no close handshake, as when a network goes) and
        handshakes are refused (503) for ``seconds``; state is kept for when they come back."""
        self.offline_until = time.monotonic() + seconds
        log.warning("bench CSMS offline for %.1f s", seconds)
        for ws in list(self._server.connections if self._server is not None else []):
            ws.transport.abort()

    def _authenticate(self, connection: Any, request: Any) -> Any:
        """HTTP Basic for the stations that have a password: 401 without it, or with another one. 503 during an
        outage (:meth:`go_offline`)."""
        if time.monotonic() < self.offline_until:
            return connection.respond(503, "the CSMS is offline (a bench outage)\n")
        cp_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        peer = connection.transport.get_extra_info("peercert") if self.ssl_context is not None else None
        if peer:
            # Security profile 3: the TLS handshake checked the client certificate; its CN names the station.
            names = dict(pair for rdn in peer.get("subject", ()) for pair in rdn)
            self.client_certificates.append((cp_id, names.get("commonName")))
            if names.get("commonName") == cp_id:
                return None
        wanted = self.passwords.get(cp_id)
        if wanted is None:
            return None
        offered = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            with contextlib.suppress(ValueError):
                user, _, offered = base64.b64decode(header[6:]).decode().partition(":")
                offered = offered if user == cp_id else None
        if offered == wanted:
            return None
        self.refused.append((cp_id, offered))
        return connection.respond(401, "wrong or missing credentials\n")

    async def _handle(self, ws: Any) -> None:
        cp_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        if ws.subprotocol not in ("ocpp1.6", "ocpp2.0.1"):
            await ws.close(1002, "subprotocol ocpp1.6 or ocpp2.0.1 required")
            return
        if ws.subprotocol == "ocpp2.0.1":
            from hil.csms201 import CentralChargePoint201

            cp: Any = CentralChargePoint201(cp_id, _Recorder(ws, self, cp_id), self)
        else:
            from hil.csms16 import CentralChargePoint16

            cp = CentralChargePoint16(cp_id, _Recorder(ws, self, cp_id), self)
        self.connections[cp_id] = cp
        try:
            await cp.start()
        except ConnectionClosed:
            pass
        finally:
            self.close_codes.append(ws.close_code)
            if self.connections.get(cp_id) is cp:
                del self.connections[cp_id]

    def _record(self, cp_id: str, direction: str, raw: str | bytes) -> None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        self.frames.append(Frame(time.monotonic(), cp_id, direction, text))
        if direction == "in":
            self._check_timestamps(text)

    def _check_timestamps(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        payload = message[3] if message and message[0] == 2 and len(message) > 3 else None

        def walk(node: Any, path: str) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in _TIME_KEYS and not is_strict_timestamp(value):
                        self.timestamp_errors.append(f"{path}.{key} = {value!r}")
                    walk(value, f"{path}.{key}")
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    walk(value, f"{path}[{i}]")

        walk(payload, message[2] if payload is not None else "")

    def actions(self, direction: str = "in", cp_id: str | None = None) -> list[str]:
        """Actions of the CALLs received (or sent), in order."""
        return [call[0] for f in self.frames
                if f.direction == direction and (not cp_id or f.cp_id == cp_id) and (call := f.call()) is not None]

    def csr_received(self, csr: str) -> str:
        """Keep a SignCertificate's CSR; the answer's status (Accepted when a signer is set)."""
        self.csrs.append(csr)
        return "Accepted" if self.signer else "Rejected"

    def answer_csr(self, cp: Any, csr: str, signed: Callable[[str], Any]) -> None:
        """With a signer: send ``signed(chain)``, the version's CertificateSigned (after the SignCertificate answer
        is on the wire), and keep its answer."""
        if self.signer is None:
            return
        request = signed(self.signer(csr))

        async def send() -> None:
            result = await cp.call(request)
            self.signed_answers.append(str(result.status) if result is not None else "CALLERROR")

        task = asyncio.get_running_loop().create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def call(self, cp_id: str, request: Any) -> Any:
        """Send any CALL to a connected station; returns its result (None for a CALLERROR)."""
        return await self.connections[cp_id].call(request)

    async def remote_start(self, cp_id: str, id_tag: str, connector_id: int | None = None) -> str:
        """RemoteStartTransaction to a connected station; returns its status."""
        result = await self.connections[cp_id].call(
            call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector_id)
        )
        return str(result.status)

    async def remote_stop(self, cp_id: str, transaction_id: int) -> str:
        """RemoteStopTransaction to a connected station; returns its status."""
        result = await self.connections[cp_id].call(call.RemoteStopTransaction(transaction_id=transaction_id))
        return str(result.status)
