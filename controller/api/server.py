"""The local status API and page, read-only, on aiohttp.

``GET /`` the page; ``/api/v1/status`` the station and every EVSE; ``/api/v1/sessions?limit=N`` the local
session history; ``/api/v1/samples`` the last minutes of current and power; ``/api/v1/changes`` the last
100 change lines; ``/api/v1/events`` server-sent events
(``status``, ``sample``, ``change``). With ``api.token`` set every request carries it (``Authorization: Bearer``,
or ``?token=`` where a browser's EventSource cannot set headers). Nothing here changes the charger.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from importlib.resources import files
from typing import Any

from aiohttp import web

from controller.api.history import read_sessions
from controller.api.publisher import StatusPublisher

log = logging.getLogger(__name__)

#: Events a slow client may fall behind by before it is dropped (it reconnects and reloads the status).
CLIENT_BACKLOG = 100
#: A comment line this often keeps proxies and browsers from closing an idle stream.
KEEPALIVE = 15.0


class StatusApi:
    """The HTTP server of one charger's status."""

    def __init__(self, publisher: StatusPublisher, listen: str, token: str = "") -> None:
        self.publisher = publisher
        host, _, port = listen.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.token = token
        self._runner: web.AppRunner | None = None
        self._streams: set[asyncio.Queue[tuple[str, dict[str, Any]] | None]] = set()
        self._page = files("controller.api").joinpath("page.html").read_text(encoding="utf-8")

    @property
    def url(self) -> str:
        """Where the page is (the bound port, when the config asked for port 0)."""
        return f"http://{self.host}:{self.port}/"

    async def start(self) -> None:
        """Bind and serve; an address in use is an OSError the daemon reports in one line."""
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/", self._index)
        app.router.add_get("/api/v1/status", self._status)
        app.router.add_get("/api/v1/sessions", self._sessions)
        app.router.add_get("/api/v1/samples", self._samples)
        app.router.add_get("/api/v1/changes", self._changes)
        app.router.add_get("/api/v1/events", self._events)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise OSError(f"status API cannot listen on {self.host}:{self.port}: {exc.strerror or exc} "
                          "(api.listen or --api)") from exc
        if self.port == 0 and self._runner.addresses:
            self.port = int(self._runner.addresses[0][1])
        self.publisher.subscribers.append(self._publish)
        log.info("status page at %s (%s)", self.url, "token required" if self.token else "no token")

    async def stop(self) -> None:
        """End every event stream and stop serving."""
        with contextlib.suppress(ValueError):
            self.publisher.subscribers.remove(self._publish)
        for queue in list(self._streams):
            queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        for queue in list(self._streams):
            if queue.qsize() >= CLIENT_BACKLOG:
                self._streams.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait((kind, data))

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.token:
            given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.json_response({"error": "a token is required: Authorization: Bearer TOKEN or "
                                                   "?token=TOKEN (api.token)"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=self._page, content_type="text/html", charset="utf-8")

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.publisher.current())

    async def _samples(self, request: web.Request) -> web.Response:
        return web.json_response(self.publisher.samples.as_json())

    async def _changes(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.publisher.changes))

    async def _sessions(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 10000:
            return web.json_response({"error": "limit: expected a whole number from 1 to 10000"}, status=400)
        sessions = await asyncio.to_thread(read_sessions, self.publisher.app.state_dir, limit)
        return web.json_response({"days": self.publisher.history.days, "sessions": sessions})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._streams.add(queue)
        try:
            await response.write(_frame("status", self.publisher.current()))
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE):  # (not wait_for: see StatusPublisher._run)
                        item = await queue.get()
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if item is None:
                    break
                await response.write(_frame(*item))
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            self._streams.discard(queue)
        return response


def _frame(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
