"""Network connection profiles: which CSMS the station connects to, how, and in which order it tries them.

Slot 1 is the configured CSMS (``ocpp.csms_url`` with the configured security). A 2.0.1 CSMS may store more
with SetNetworkProfile (B09) and order them with OCPPCommCtrlr.NetworkConfigurationPriority, which takes effect
at the next start (B10: it then Resets the station). The link tries the profiles in that order, moving to the
next after NetworkProfileConnectionAttempts failures in a row. Once the station has connected with a security
profile, it never connects with a lower one again (A05 upgrade): those profiles leave the order.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from controller.config import OcppSection
from controller.ocpp import device_model as dm
from controller.ocpp.device_model import DeviceModel
from controller.storage import Store

log = logging.getLogger(__name__)

#: Slots a CSMS may fill (slot 1 is the configured CSMS's).
SLOTS = tuple(range(1, 9))
_KEY = "network.profile.{}"
#: The slot of a raised security profile that has not connected yet (1.6 SecurityProfile).
_RAISED = "network.raised"
#: The highest profile there is: 3, TLS with the station's client certificate.
HIGHEST_PROFILE = 3


@dataclass(frozen=True)
class NetworkProfile:
    """One NetworkConnectionProfile as the station keeps it."""

    slot: int
    url: str
    #: 0: none, 1: HTTP Basic, 2: HTTP Basic over TLS (the CSMS's certificate checked against ocpp.ca_file and
    #: the installed CSMS roots), 3: TLS with the station's client certificate.
    security_profile: int
    #: Seconds an answer may take on this connection (its messageTimeout).
    message_timeout: float


def configured_profile(url: str, ocpp: OcppSection) -> int:
    """The security profile the configured CSMS is used with (``ocpp.security_profile``, or inferred)."""
    if ocpp.security_profile >= 0:
        return ocpp.security_profile
    tls = url.startswith("wss://")
    if tls and ocpp.client_cert_file:
        return 3
    if ocpp.basic_auth_password:
        return 2 if tls else 1
    return 0


def profile_problem(url: str, security_profile: int, *, current: int, has_password: bool,
                    has_client_certificate: bool) -> str | None:
    """What makes a profile unusable here (B09.FR.02 / .04, the 1.6 whitepaper's prerequisites), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return f"ocppCsmsUrl {url[:80]!r} is not a ws:// or wss:// URL"
    if not 0 <= security_profile <= HIGHEST_PROFILE:
        return f"security profile {security_profile} is not 0-{HIGHEST_PROFILE}"
    if security_profile < current:
        return f"security profile {security_profile} is lower than the one in use ({current})"
    if (security_profile >= 2) != (parts.scheme == "wss"):
        return f"security profile {security_profile} goes with {'wss' if security_profile >= 2 else 'ws'}://"
    if security_profile in (1, 2) and not has_password:
        return f"security profile {security_profile} needs SecurityCtrlr.BasicAuthPassword"
    if security_profile == 3 and not has_client_certificate:
        return "security profile 3 needs a client certificate (ocpp.client_cert_file, or one the CSMS signed)"
    return None


class NetworkProfiles:
    """The stored profiles, the order to try them in, and the one connected."""

    def __init__(self, store: Store, model: DeviceModel, configured: NetworkProfile) -> None:
        self.store = store
        self.model = model
        self.configured = configured
        #: The profile of the connection of the moment (or the last one).
        self.active = configured
        #: NetworkConfigurationPriority as it was at this start: a change applies from the next (RebootRequired).
        self._priority = model.items(dm.NETWORK_PRIORITY)

    def get(self, slot: int) -> NetworkProfile | None:
        """The profile in a slot, or None."""
        if slot == 1:
            return self.configured
        text = self.store.get_setting(_KEY.format(slot))
        return NetworkProfile(**json.loads(text)) if text else None

    def put(self, profile: NetworkProfile) -> None:
        """Keep a profile a CSMS set (it is used once the priority lists it, at the next start)."""
        self.store.set_setting(_KEY.format(profile.slot), json.dumps(asdict(profile)))
        log.info("network profile %d stored: %s (security profile %d)", profile.slot, profile.url,
                 profile.security_profile)

    def prefer(self, slot: int, *, fallback: int) -> None:
        """Try ``slot`` first from now on (and after restarts), ``fallback`` when it does not connect: a raised
        security profile (1.6 SecurityProfile) that has never connected falls back to the one before."""
        priority = [str(slot), str(fallback)] + [s for s in self._priority if s not in (str(slot), str(fallback))]
        self.model.set(dm.NETWORK_PRIORITY, ",".join(priority))
        self._priority = priority
        self.store.set_setting(_RAISED, str(slot))

    def order(self) -> list[NetworkProfile]:
        """The profiles to try, in NetworkConfigurationPriority order; those below the highest security profile
        the station has used are left out."""
        floor = int(self.store.get_setting("network.security_floor") or "0")
        found = [self.get(int(slot)) for slot in self._priority]
        usable = [p for p in found if p is not None and p.security_profile >= floor]
        return usable or [self.configured]

    def connected(self, profile: NetworkProfile) -> None:
        """The link connected with ``profile``: it is the active one, and no lower security follows it. When a
        raised profile is still on trial and another one connected, the raise is given up."""
        self.active = profile
        raised = self.store.get_setting(_RAISED)
        if raised is not None:
            with self.store.atomic() as db:
                Store.drop_setting(db, _RAISED)
            if int(raised) != profile.slot:
                log.warning("the raised security profile (slot %s) never connected: back to profile %d for good",
                            raised, profile.security_profile)
                self._priority = [s for s in self._priority if s != raised] or ["1"]
                self.model.set(dm.NETWORK_PRIORITY, ",".join(self._priority))
        floor = int(self.store.get_setting("network.security_floor") or "0")
        if profile.security_profile > floor:
            self.store.set_setting("network.security_floor", str(profile.security_profile))
            log.info("connected with security profile %d: lower ones are no longer used", profile.security_profile)
