"""Local authorisation: the authorisation cache and the local list, on the station's own identifiers.

The cache remembers what the CSMS said about an identifier (answers to Authorize and to transaction messages)
with its expiry; the local list is what the CSMS sent with SendLocalList. Both survive restarts. Which one may
decide, and when, is up to the device model (LocalPreAuthorize, LocalAuthorizeOffline,
OfflineTxForUnknownIdEnabled, AuthCacheCtrlr.Enabled, LocalAuthListCtrlr.Enabled); :class:`LocalAuthorization`
answers the questions they ask.
"""

from __future__ import annotations

import logging
from datetime import datetime

from controller.clock import Clock, iso_utc, parse_time
from controller.domain.types import Answer, AuthDecision, AuthSource, AuthStatus, IdToken, IdTokenType
from controller.ocpp import device_model as dm
from controller.ocpp.device_model import DeviceModel
from controller.storage import Store

log = logging.getLogger(__name__)

CACHE, LIST = "auth_cache", "local_list"


class _ListTooLong(Exception):
    """An update would make the local list longer than it may be."""


class LocalAuthorization:
    """The cache and the local list, and the rules for using them."""

    def __init__(self, store: Store, model: DeviceModel, clock: Clock) -> None:
        self._store = store
        self._model = model
        self._clock = clock

    def remember(self, id_token: IdToken, decision: AuthDecision) -> None:
        """Update the cache from a CSMS answer (if the cache is enabled)."""
        if not self._model.flag(dm.AUTH_CACHE_ENABLED):
            return
        with self._store.atomic() as db:
            self._store.put_auth_entry(db, CACHE, id_token.value, decision.status.value, _text(decision.expiry),
                                       decision.group.value if decision.group else None)

    def clear_cache(self) -> None:
        """ClearCache."""
        self._store.clear_auth_cache()
        log.info("authorisation cache cleared at the CSMS's request")

    # -------------------------------------------------------------- local list

    def list_version(self, *, empty_is_none: bool) -> int:
        """The local list's version: 0 while the list is disabled, and for an empty list where the version says
        so (1.6: "0 indicates that the local authorization list is empty"; 2.0.1 keeps the version it was sent)."""
        if not self._model.flag(dm.LOCAL_LIST_ENABLED) or (empty_is_none and self._store.local_list_size() == 0):
            return 0
        return int(self._store.get_setting("local_list.version") or 0)

    def update_list(self, version: int, full: bool, entries: list[tuple[IdToken, AuthDecision | None]]) -> Answer:
        """SendLocalList: ACCEPTED, FAILED (too many entries; nothing changes) or VERSION_MISMATCH.

        In a differential update an entry without a decision removes that identifier.
        """
        if not self._model.flag(dm.LOCAL_LIST_ENABLED):
            log.info("SendLocalList refused: the local list is disabled (LocalAuthListEnabled false)")
            return Answer.FAILED
        if len(entries) > self._model.number(dm.LOCAL_LIST_ITEMS_PER_MESSAGE):
            return Answer.FAILED
        if not full and version <= int(self._store.get_setting("local_list.version") or 0):
            return Answer.VERSION_MISMATCH
        try:
            with self._store.atomic() as db:
                if full:
                    self._store.drop_list_entry(db, None)
                for token, decision in entries:
                    if decision is None:
                        self._store.drop_list_entry(db, token.value)
                    else:
                        self._store.put_auth_entry(db, LIST, token.value, decision.status.value,
                                                   _text(decision.expiry),
                                                   decision.group.value if decision.group else None)
                limit = self._model.variables[dm.LOCAL_LIST_ENTRIES].max_items or 0
                if self._store.list_size(db) > limit:
                    raise _ListTooLong  # rolls the whole update back
                self._store.set_setting("local_list.version", str(version), db)
        except _ListTooLong:
            return Answer.FAILED
        log.info("local authorisation list %s update to version %d (%d entries)", "full" if full else "differential",
                 version, len(entries))
        return Answer.ACCEPTED

    # ---------------------------------------------------------------- lookups

    def lookup(self, id_token: IdToken) -> AuthDecision | None:
        """The local list (when enabled) first, then the cache (when enabled); an expired entry is Expired."""
        sources = []
        if self._model.flag(dm.LOCAL_LIST_ENABLED):
            sources.append((LIST, AuthSource.LOCAL_LIST))
        if self._model.flag(dm.AUTH_CACHE_ENABLED):
            sources.append((CACHE, AuthSource.CACHE))
        for table, source in sources:
            entry = self._store.auth_entry(table, id_token.value)
            if entry is None:
                continue
            status, expiry, group = entry
            decision = AuthDecision(_status(status), source, IdToken(group, IdTokenType.CENTRAL) if group else None,
                                    _time(expiry))
            if decision.accepted and self._expired(expiry):
                return AuthDecision(AuthStatus.EXPIRED, source, decision.group, decision.expiry)
            return decision
        return None

    def _expired(self, expiry: str | None) -> bool:
        if not expiry:
            return False
        moment = _time(expiry)
        return moment is None or moment <= self._clock.utcnow()  # an unreadable expiry is no proof of validity

    def decide_offline(self, id_token: IdToken) -> AuthDecision:
        """May ``id_token`` start while offline? (LocalAuthorizeOffline, OfflineTxForUnknownIdEnabled)."""
        known = self.lookup(id_token)
        if known is not None:
            if known.accepted and not self._model.flag(dm.LOCAL_AUTHORIZE_OFFLINE):
                return AuthDecision(AuthStatus.UNKNOWN, AuthSource.OFFLINE_RULE, known.group)
            return known
        if self._model.flag(dm.OFFLINE_TX_FOR_UNKNOWN_ID):
            return AuthDecision(AuthStatus.ACCEPTED, AuthSource.OFFLINE_RULE)
        return AuthDecision(AuthStatus.UNKNOWN, AuthSource.OFFLINE_RULE)

    def pre_authorized(self, id_token: IdToken) -> AuthDecision | None:
        """With LocalPreAuthorize: a locally valid identifier starts without waiting for the CSMS."""
        if not self._model.flag(dm.LOCAL_PRE_AUTHORIZE):
            return None
        known = self.lookup(id_token)
        return known if known is not None and known.accepted else None


def _status(text: str) -> AuthStatus:
    return next((s for s in AuthStatus if s.value == text), AuthStatus.INVALID)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def _text(moment: datetime | None) -> str | None:
    return iso_utc(moment) if moment is not None else None
