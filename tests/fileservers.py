"""File servers on 127.0.0.1 for the upload and download tests: FTP (pyftpdlib) and HTTP (GET and PUT)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import ThreadedFTPServer


@contextlib.contextmanager
def ftp_server(root: Path, user: str = "bench", password: str = "bench-ftp-pass") -> Iterator[str]:
    """An FTP server on a free loopback port serving ``root`` read-write; yields ``ftp://user:pass@host:port``."""
    root.mkdir(parents=True, exist_ok=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(root), perm="elradfmwMT")
    handler = type("BenchFtpHandler", (FTPHandler,), {"authorizer": authorizer, "passive_ports": None})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"ftp://{user}:{password}@127.0.0.1:{server.address[1]}"
    finally:
        server.close_all()
        thread.join(5)


@contextlib.contextmanager
def http_server(root: Path) -> Iterator[str]:
    """An HTTP server on a free loopback port: GET serves ``root``, PUT stores into it; yields its base URL."""
    root.mkdir(parents=True, exist_ok=True)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            target = root / Path(self.path).name
            target.write_bytes(self.rfile.read(length))
            self.send_response(201)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
