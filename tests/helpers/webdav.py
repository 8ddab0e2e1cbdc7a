"""A real WebDAV server (wsgidav on cheroot) for tests: 127.0.0.1, basic auth, free port.

The server runs in a thread of the test process, serves one folder under ``/webdav`` and
records every request it answered, so tests can count PUTs. ``stop()`` closes the port;
``start()`` again serves the same folder on the same port (an outage, then recovery).
``put_delay`` slows uploads down (seconds per 8 KiB block) so a test can interrupt one.

The ``webdav_server`` fixture (tests/conftest.py) starts one per test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp

USER = "kws-user"
PASSWORD = "s3cret-Pa55-wd"  # distinctive, so tests can grep for leaks
MOUNT = "/webdav"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int


class _SlowReader:
    def __init__(self, inner: object, delay: float) -> None:
        self._inner, self._delay = inner, delay

    def read(self, size: int = -1) -> bytes:
        time.sleep(self._delay)
        return self._inner.read(size)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class WebDAVServer:
    root: Path
    user: str = USER
    password: str = PASSWORD
    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)
    # called (from a server thread) after each answered request; tests use it to stop mid-push
    on_request: Callable[[Request], None] | None = None
    put_delay: float = 0.0

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._server: wsgi.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The DVC remote URL of the share root (webdav:// is plain http for dvc-webdav)."""
        return f"webdav://127.0.0.1:{self.port}{MOUNT}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{MOUNT}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def _app(self) -> Callable:
        dav = WsgiDAVApp(
            {
                "host": "127.0.0.1",
                "port": self.port,
                "provider_mapping": {MOUNT: str(self.root)},
                "http_authenticator": {
                    "domain_controller": None,
                    "accept_basic": True,
                    "accept_digest": False,
                    "default_to_digest": False,
                },
                "simple_dc": {"user_mapping": {"*": {self.user: {"password": self.password}}}},
                "verbose": 0,
                "logging": {"enable": False},
                "dir_browser": {"enable": False},
            }
        )

        def recording_app(environ: dict, start_response: Callable) -> object:
            def recording_start(status: str, headers: list, exc_info: object = None) -> object:
                request = Request(
                    environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), int(status[:3])
                )
                with self._lock:
                    self.requests.append(request)
                if self.on_request is not None:
                    self.on_request(request)
                return start_response(status, headers, exc_info)

            if self.put_delay and environ["REQUEST_METHOD"] == "PUT":
                environ["wsgi.input"] = _SlowReader(environ["wsgi.input"], self.put_delay)
            return dav(environ, recording_start)

        return recording_app

    def start(self) -> WebDAVServer:
        if self._server is not None:
            return self
        server = wsgi.Server(("127.0.0.1", self.port), self._app(), numthreads=8)
        server.shutdown_timeout = 1
        deadline = time.monotonic() + 10
        while True:  # the port of a just-stopped server can take a moment to free
            try:
                server.prepare()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._server = server
        self._thread = threading.Thread(target=server.serve, name="webdav", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def stop_soon(self) -> None:
        """Stop from another thread (a request handler cannot join its own pool)."""
        threading.Thread(target=self.stop, daemon=True).start()

    def count(self, method: str, prefix: str = "", status: int | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if r.method == method
                and r.path.startswith(prefix)
                and (status is None or r.status == status)
            )

    def files(self) -> dict[str, int]:
        """Every file stored on the server: path relative to the share -> size."""
        return {
            p.relative_to(self.root).as_posix(): p.stat().st_size
            for p in self.root.rglob("*")
            if p.is_file()
        }

    def __enter__(self) -> WebDAVServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
