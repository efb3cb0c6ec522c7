"""Local authorisation (OCPP 1.6 section 3.5): the authorisation cache and the local list.

The cache remembers what the CSMS said about an idTag (Authorize,
StartTransaction and StopTransaction answers) with its expiry; the local list
is what the CSMS sent with SendLocalList. Both survive restarts. Which one
may decide, and when, is up to the keys LocalPreAuthorize,
LocalAuthorizeOffline, AllowOfflineTxForUnknownId, AuthorizationCacheEnabled
and LocalAuthListEnabled; :class:`LocalAuthorization` answers the questions
they ask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from controller.clock import Clock, parse_time
from controller.ocpp.keys import ConfigurationKeys
from controller.storage import Store

log = logging.getLogger(__name__)

ACCEPTED = "Accepted"


class _ListTooLong(Exception):
    """A SendLocalList would make the list longer than LocalAuthListMaxLength."""


@dataclass(frozen=True)
class IdTagInfo:
    """What is known about an idTag."""

    status: str
    expiry: str | None = None
    parent_id_tag: str | None = None

    @classmethod
    def from_ocpp(cls, info: dict[str, Any]) -> IdTagInfo:
        """From an idTagInfo object (snake_case keys)."""
        return cls(str(info.get("status", "Invalid")), info.get("expiry_date"), info.get("parent_id_tag"))


class LocalAuthorization:
    """The cache and the local list, and the rules for using them."""

    def __init__(self, store: Store, keys: ConfigurationKeys, clock: Clock) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock

    # ------------------------------------------------------------------ cache

    def remember(self, id_tag: str, info: IdTagInfo) -> None:
        """Update the cache from a CSMS answer (if the cache is enabled)."""
        if not self._keys.flag("AuthorizationCacheEnabled"):
            return
        with self._store.atomic() as db:
            self._store.put_auth_entry(db, "auth_cache", id_tag, info.status, info.expiry, info.parent_id_tag)

    # -------------------------------------------------------------- local list

    def list_version(self) -> int:
        """GetLocalListVersion: 0 for an empty list."""
        if self._store.local_list_size() == 0:
            return 0
        return int(self._store.get_setting("local_list.version") or 0)

    def send_local_list(self, version: int, update_type: str, entries: list[dict[str, Any]]) -> str:
        """SendLocalList: Accepted, Failed or VersionMismatch."""
        if len(entries) > self._keys.number("SendLocalListMaxLength"):
            return "Failed"
        if update_type == "Differential" and version <= int(self._store.get_setting("local_list.version") or 0):
            return "VersionMismatch"
        try:
            self._apply_list(version, update_type, entries)
        except _ListTooLong:
            return "Failed"
        log.info("local authorisation list %s update to version %d (%d entries)", update_type, version, len(entries))
        return "Accepted"

    def _apply_list(self, version: int, update_type: str, entries: list[dict[str, Any]]) -> None:
        with self._store.atomic() as db:
            if update_type == "Full":
                db.execute("DELETE FROM local_list")
            for entry in entries:
                tag, info = entry["id_tag"], entry.get("id_tag_info")
                if info is None:
                    db.execute("DELETE FROM local_list WHERE id_tag = ?", (tag.upper(),))
                else:
                    parsed = IdTagInfo.from_ocpp(info)
                    self._store.put_auth_entry(db, "local_list", tag, parsed.status, parsed.expiry,
                                               parsed.parent_id_tag)
            size = int(db.execute("SELECT COUNT(*) FROM local_list").fetchone()[0])
            if size > self._keys.number("LocalAuthListMaxLength"):
                raise _ListTooLong  # rolls the whole update back
            db.execute("INSERT OR REPLACE INTO settings VALUES ('local_list.version', ?)", (str(version),))

    # ---------------------------------------------------------------- lookups

    def lookup(self, id_tag: str) -> IdTagInfo | None:
        """The local list (when enabled) first, then the cache (when enabled); expired entries don't count."""
        sources = []
        if self._keys.flag("LocalAuthListEnabled"):
            sources.append("local_list")
        if self._keys.flag("AuthorizationCacheEnabled"):
            sources.append("auth_cache")
        for table in sources:
            entry = self._store.auth_entry(table, id_tag)
            if entry is None:
                continue
            info = IdTagInfo(*entry)
            if info.status == ACCEPTED and self._expired(info):
                return IdTagInfo("Expired", info.expiry, info.parent_id_tag)
            return info
        return None

    def _expired(self, info: IdTagInfo) -> bool:
        if not info.expiry:
            return False
        try:
            return parse_time(info.expiry) <= self._clock.utcnow()
        except ValueError:
            return True  # an expiry we cannot read is no proof of validity

    def decide_offline(self, id_tag: str) -> tuple[bool, IdTagInfo | None]:
        """May ``id_tag`` start while offline? (LocalAuthorizeOffline, AllowOfflineTxForUnknownId)."""
        known = self.lookup(id_tag)
        if known is not None:
            return known.status == ACCEPTED and self._keys.flag("LocalAuthorizeOffline"), known
        return self._keys.flag("AllowOfflineTxForUnknownId"), None

    def pre_authorized(self, id_tag: str) -> IdTagInfo | None:
        """With LocalPreAuthorize: a locally valid idTag starts without waiting for Authorize.conf."""
        if not self._keys.flag("LocalPreAuthorize"):
            return None
        known = self.lookup(id_tag)
        return known if known is not None and known.status == ACCEPTED else None
