"""File transfers to and from the CSMS's servers: FTP (STOR / RETR) and HTTP(S) (PUT / GET), as curl does them.

Blocking calls: run them in a thread. Every failure is a :class:`TransferError` whose text never carries the
URL's password.
"""

from __future__ import annotations

import ftplib
import io
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from controller.config import redact

SCHEMES = ("ftp", "http", "https")
TIMEOUT = 60.0
#: The largest file the station fetches (a release with its dependencies is a few tens of MB).
MAX_DOWNLOAD = 512 * 1024 * 1024


def location_problem(location: str) -> str | None:
    """What keeps ``location`` from being a place to transfer to or from (None: nothing)."""
    parts = urlsplit(location)
    if parts.scheme not in SCHEMES or not parts.hostname:
        return f"{redact(location)[:80]!r} is not an ftp://, http:// or https:// URL"
    return None


class TransferError(Exception):
    """A transfer that failed; the message says why (without a password)."""


def upload(location: str, name: str, data: bytes) -> None:
    """Put ``data`` as ``name`` in the folder ``location`` names."""
    parts = urlsplit(location)
    try:
        if parts.scheme == "ftp":
            with _FtpSession(location) as ftp:
                ftp.storbinary(f"STOR {name}", io.BytesIO(data))
            return
        url = location if location.endswith("/") else location + "/"
        request = urllib.request.Request(url + name, data=data, method="PUT",
                                         headers={"Content-Type": "application/gzip"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            if answer.status >= 300:
                raise TransferError(f"HTTP {answer.status}")
    except (OSError, ftplib.Error, ValueError, urllib.error.URLError) as exc:
        raise TransferError(_why(exc, location)) from exc


def download(location: str) -> bytes:
    """The file at ``location``."""
    parts = urlsplit(location)
    try:
        if parts.scheme == "ftp":
            chunks: list[bytes] = []
            with _FtpSession(location, folder_only=True) as ftp:
                ftp.retrbinary(f"RETR {parts.path.rsplit('/', 1)[-1]}", _collect(chunks))
            return b"".join(chunks)
        if parts.scheme not in ("http", "https"):
            raise TransferError(f"{parts.scheme}:// is not FTP or HTTP(S)")
        with urllib.request.urlopen(location, timeout=TIMEOUT) as answer:
            data: bytes = answer.read(MAX_DOWNLOAD + 1)
    except (OSError, ftplib.Error, ValueError, urllib.error.URLError) as exc:
        raise TransferError(_why(exc, location)) from exc
    if len(data) > MAX_DOWNLOAD:
        raise TransferError(f"larger than {MAX_DOWNLOAD} bytes")
    return data


def _collect(chunks: list[bytes]) -> Callable[[bytes], None]:
    def keep(chunk: bytes) -> None:
        chunks.append(chunk)
        if sum(map(len, chunks)) > MAX_DOWNLOAD:
            raise TransferError(f"larger than {MAX_DOWNLOAD} bytes")
    return keep


class _FtpSession:
    """An FTP session logged in and in the URL's folder (of the file's, with ``folder_only``)."""

    def __init__(self, location: str, *, folder_only: bool = False) -> None:
        parts = urlsplit(location)
        self.ftp = ftplib.FTP(timeout=TIMEOUT)
        self.ftp.connect(parts.hostname or "", parts.port or 21)
        self.ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
        path = parts.path.rsplit("/", 1)[0] if folder_only else parts.path
        if path.strip("/"):
            self.ftp.cwd(path.strip("/"))

    def __enter__(self) -> ftplib.FTP:
        return self.ftp

    def __exit__(self, *_: object) -> None:
        try:
            self.ftp.quit()
        except (OSError, ftplib.Error):
            self.ftp.close()


def _why(exc: BaseException, location: str) -> str:
    return (str(exc) or type(exc).__name__).replace(location, redact(location))
