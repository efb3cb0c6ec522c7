"""The websocket link to the CSMS, for every OCPP version: connect, back off, ping, close properly.

One connection at a time to ``<csms>/<station id>`` with the version's subprotocol. A dead link is noticed by
websocket pings every WebSocketPingInterval (no pong within the interval: reconnect). Reconnects back off as
OCPP 2.0.1 Part 4 §5.3 says, with OCPPCommCtrlr's variables (:class:`Backoff`). The station closes with 1001
(going away) when it shuts down or resets and with 1000 otherwise, never 1011, and waits at most a couple of
seconds for the CSMS to answer its close. A password in the URL never reaches a log line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from controller.config import OcppSection, redact
from controller.ocpp.certificates import CertificateStore, Kind
from controller.ocpp.network import NetworkProfile

log = logging.getLogger(__name__)

#: The longest the station waits for the CSMS to answer its own close frame.
CLOSE_TIMEOUT = 2.0
NORMAL, GOING_AWAY = 1000, 1001
#: OpenSSL's reasons for a handshake that failed on the protocol version (a CSMS offering TLS 1.0 or 1.1 only).
OLD_TLS = frozenset({"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "WRONG_SSL_VERSION",
                     "NO_PROTOCOLS_AVAILABLE", "VERSION_TOO_LOW"})
#: How long after a credentials change the link closes to reconnect with them.
RECONNECT_DELAY = 0.2


@dataclass(frozen=True)
class Backoff:
    """The reconnect rule: the first retry after ``minimum`` plus up to ``random_range`` s (RetryBackOffWaitMinimum,
    RetryBackOffRandomRange); each failure doubles the wait, ``repeat_times`` times at most (RetryBackOffRepeatTimes),
    then it stays flat. After ``attempts`` failures in a row (NetworkProfileConnectionAttempts) the station moves to
    its next network profile: with one, it starts over on the same."""

    minimum: float
    random_range: float
    repeat_times: int
    attempts: int
    #: The longest wait (``ocpp.reconnect_max``, or the minimum when the CSMS set a longer one).
    longest: float = math.inf

    def wait(self, failures: int) -> float:
        """Seconds before the next attempt, after ``failures`` failed ones in a row (0: the first retry)."""
        doubled = min(self.minimum * 2 ** min(failures, self.repeat_times), max(self.longest, self.minimum))
        return doubled + random.uniform(0, self.random_range)


class Link:
    """Keeps one websocket to the CSMS and runs a session on each connection."""

    def __init__(self, profiles: Callable[[], list[NetworkProfile]], station_id: str, subprotocol: str,
                 settings: OcppSection, ping_interval: Callable[[], int], backoff: Callable[[], Backoff], *,
                 password: Callable[[], str] | None = None,
                 on_connected: Callable[[NetworkProfile], None] | None = None,
                 on_security_event: Callable[[str], None] | None = None,
                 certificates: CertificateStore | None = None) -> None:
        #: The network profiles to try, in order (:mod:`controller.ocpp.network`); the first is tried first.
        self._profiles = profiles
        self.profile = profiles()[0]
        self.station_id = station_id
        #: Security profiles 1 and 2: HTTP Basic as the station id with the password of the moment.
        self._password = password
        self._on_connected = on_connected
        #: Told InvalidCsmsCertificate, InvalidTLSVersion or FailedToAuthenticateAtCsms (2.0.1 security events).
        self._security_event = on_security_event
        self._certificates = certificates
        #: Set by :meth:`reconnect`: the next attempt starts from the first profile (a new one may lead now).
        self._from_top = False
        self._ws: Any = None
        self.subprotocol = Subprotocol(subprotocol)
        self.settings = settings
        self._ping_interval = ping_interval
        self._backoff = backoff
        self.connections = 0

    @property
    def url(self) -> str:
        """``<csms>/<station id>`` of the profile tried now."""
        return self.profile.url.rstrip("/") + "/" + self.station_id

    @property
    def display_url(self) -> str:
        """The URL as logs and reports show it: never with a password."""
        return redact(self.url)

    async def run(self, session: Callable[[Any], Awaitable[None]]) -> None:
        """Connect, run ``session(ws)``, reconnect with back-off and jitter; until cancelled."""
        failures = -1  # the wait after the first failed attempt is the first retry's
        while True:
            candidates = self._profiles()
            if self.profile not in candidates or self._from_top:
                self.profile, self._from_top = candidates[0], False
            ws = None
            try:
                ping = self._ping_interval() or None
                ws = self._ws = await websockets.connect(
                    self.url, subprotocols=[self.subprotocol], open_timeout=self.settings.connect_timeout,
                    ping_interval=ping,
                    ping_timeout=ping,  # no pong within the interval: the link is dead, reconnect
                    close_timeout=min(ping, CLOSE_TIMEOUT) if ping else CLOSE_TIMEOUT,
                    additional_headers=self._headers(), **self._tls())
                if ws.subprotocol != self.subprotocol:
                    log.error("CSMS at %s did not agree to subprotocol %s; closing", self.display_url,
                              self.subprotocol)
                else:
                    log.info("connected to CSMS at %s (network profile %d)", self.display_url, self.profile.slot)
                    self.connections += 1
                    if self._on_connected is not None:
                        self._on_connected(self.profile)
                    failures = -1  # the next wait is the first of a dropped link
                    await session(ws)
                    log.warning("connection to CSMS at %s closed", self.display_url)
            except asyncio.CancelledError:
                if ws is not None:
                    await _close(ws, GOING_AWAY, "station going away")
                raise
            except ssl.SSLCertVerificationError as exc:
                log.error("CSMS at %s: its TLS certificate does not verify (%s); check ocpp.ca_file", self.display_url,
                          exc.verify_message or exc)
                self._tell("InvalidCsmsCertificate")
            except ssl.SSLError as exc:  # before OSError, which it is
                if exc.reason in OLD_TLS:
                    log.error("CSMS at %s offers only TLS older than 1.2 (%s); the station refuses it: the CSMS must "
                              "offer TLS 1.2 or 1.3", self.display_url, exc.reason)
                    self._tell("InvalidTLSVersion")
                else:
                    log.warning("CSMS at %s: the TLS handshake failed (%s)", self.display_url, exc.reason or exc)
            except InvalidStatus as exc:
                log.warning("CSMS at %s refused the connection: HTTP %d", self.display_url, exc.response.status_code)
                if exc.response.status_code == 401:
                    self._tell("FailedToAuthenticateAtCsms")
            except (OSError, TimeoutError, ValueError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
                # Some of these carry the URL itself in their text: never with its password.
                why = str(exc).replace(self.url, self.display_url) or type(exc).__name__
                log.warning("CSMS at %s unreachable: %s", self.display_url, why)
            if ws is not None:
                await _close(ws, NORMAL, "")
            backoff = self._backoff()
            failures += 1
            if failures >= backoff.attempts:
                following = candidates[(candidates.index(self.profile) + 1) % len(candidates)]
                log.error("CSMS at %s: %d connection attempts in a row failed; trying network profile %d next "
                          "(check ocpp.csms_url and the network)", self.display_url, failures, following.slot)
                self.profile, failures = following, 0
            wait = backoff.wait(failures)
            log.info("reconnecting to CSMS in %.1f s", wait)
            await asyncio.sleep(wait)


    def _tell(self, kind: str) -> None:
        if self._security_event is not None:
            self._security_event(kind)

    def _headers(self) -> dict[str, str] | None:
        password = self._password() if self._password is not None else ""
        if not password or self.profile.security_profile < 1:
            return None
        token = base64.b64encode(f"{self.station_id}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _tls(self) -> dict[str, Any]:
        # Security profile 2: the CSMS's certificate must chain to ocpp.ca_file or an installed CSMS root (with
        # neither: the system's CAs). Profile 3 shows the station's own certificate as well.
        if not self.url.startswith("wss://"):
            return {}
        certificates = self._certificates
        roots = certificates.roots_pem(Kind.CSMS) if certificates is not None else ""
        if self.settings.ca_file or roots:
            context = ssl.create_default_context(cafile=self.settings.ca_file or None, cadata=roots or None)
        else:
            context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # OCPP security: TLS 1.2 or higher, whatever the system allows
        if self.profile.security_profile >= 3 and certificates is not None and certificates.has_client_certificate():
            context.load_cert_chain(certificates.station_cert, certificates.station_key)
        return {"ssl": context}

    def reconnect(self) -> None:
        """Close the connection of the moment (a new password takes effect on the next one).

        A moment later, not now: the answer to the request that changed the credentials goes out first.
        """
        ws = self._ws
        self._from_top = True
        if ws is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(RECONNECT_DELAY, lambda: loop.create_task(_close(ws, NORMAL, "credentials changed")))


async def _close(ws: Any, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code, reason)
