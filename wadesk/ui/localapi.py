"""The optional local HTTP API of the desktop app, and where its token is kept.

The token lives in the operating system's keyring (Secret Service, KWallet, macOS
Keychain, Windows Credential Locker) when a secure one is available. Where there is none
(keyring's ``fail``/``null`` backends, or the plaintext and "encrypted file" backends of
``keyrings.alt``), it stays in the data folder in a file only the owner can read, and the
window says so: it is never put silently into a plaintext "keyring".

Keyring calls may block (an unlock prompt, a slow D-Bus): callers run them off the GUI
thread. Nothing here imports Qt.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..core.datadir import API_TOKEN_FILE, DataDir

if TYPE_CHECKING:
    from ..core.session import Session

log = logging.getLogger("wadesk.ui.api")

KEYRING_SERVICE = "wadesk"
INSECURE_MODULES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


def _username(data: DataDir) -> str:
    return f"api-token:{Path(data.path).resolve()}"


def backend_is_secure(backend: Any) -> bool:
    """A real OS keyring: not the fail/null placeholders, not a file-based stand-in."""
    module = type(backend).__module__
    name = type(backend).__name__.lower()
    if module.startswith(INSECURE_MODULES) or "plaintext" in name:
        return False
    try:
        return float(backend.priority) > 0
    except Exception:  # noqa: BLE001  (a backend that cannot even say its priority is not usable)
        return False


def secure_backend() -> Any | None:
    """The keyring backend to keep the token in, or None when no secure one exists."""
    try:
        import keyring
        from keyring.backends import chainer
    except ImportError:
        return None
    try:
        current = keyring.get_keyring()
    except Exception:
        log.exception("the keyring could not be loaded")
        return None
    if isinstance(current, chainer.ChainerBackend):
        # the chainer writes to the first member that accepts: pick a secure one ourselves
        members = [b for b in current.backends if backend_is_secure(b)]
        return members[0] if members else None
    return current if backend_is_secure(current) else None


def backend_label(backend: Any) -> str:
    name = getattr(backend, "name", "") or type(backend).__name__
    return str(name)


@dataclass(frozen=True)
class TokenInfo:
    value: str
    where: str  # for people: "the system keyring (…)", a file path, or the environment variable
    in_keyring: bool
    path: Path | None = None
    created: bool = False

    @property
    def warning(self) -> str:
        """Why the token is not in a keyring, or '' when it is (or came from the environment)."""
        if self.in_keyring or self.path is None:
            return ""
        return (
            "No secure keyring is available on this system, so the token is kept in "
            f"{self.path} (readable only by you)."
        )


class TokenStore:
    """Finds or creates the local API token (thread-safe; call it off the GUI thread)."""

    def __init__(self, config: Config, data: DataDir, backend: Any | None = ...) -> None:
        self.config = config
        self.data = data
        self._backend = backend  # ... = look it up on first use
        self._lock = threading.Lock()
        self._cached: TokenInfo | None = None

    def backend(self) -> Any | None:
        if self._backend is ...:
            self._backend = secure_backend()
        return self._backend

    def get(self) -> TokenInfo:
        with self._lock:
            if self._cached is None:
                self._cached = self._resolve()
            return self._cached

    def _resolve(self) -> TokenInfo:
        if self.config.api_token:
            return TokenInfo(self.config.api_token, "the WADESK_API_TOKEN environment variable", False)
        if self.config.api_token_file is not None:
            from ..api.auth import resolve_api_token  # validates the file like the headless mode does

            secret = resolve_api_token(self.config, self.data)
            return TokenInfo(secret.value, str(secret.path), False, secret.path)
        backend = self.backend()
        if backend is not None:
            user = _username(self.data)
            try:
                value = backend.get_password(KEYRING_SERVICE, user)
                created = False
                if not value:
                    value = secrets.token_urlsafe(32)
                    backend.set_password(KEYRING_SERVICE, user, value)
                    created = True
                return TokenInfo(value, f"the system keyring ({backend_label(backend)})", True, None, created)
            except Exception as exc:  # noqa: BLE001  (locked, D-Bus gone, ...: fall back to the file)
                log.warning("the keyring refused the API token (%s); keeping it in the data folder", exc)
        value, created = self.data.secret(API_TOKEN_FILE)
        return TokenInfo(
            value, str(self.data.file(API_TOKEN_FILE)), False, self.data.file(API_TOKEN_FILE), created
        )


class LocalApiServer:
    """The headless HTTP API, served on 127.0.0.1 in this process while the window is open.

    It shares the window's session (one WhatsApp connection per data folder): stopping the
    API never stops the session. It runs the gateway's HTTP server
    (:class:`wadesk.api.http.HttpServer`: the same JSON error answers, deadlines for slow
    clients and graceful drain), its loop on a daemon thread of its own and requests on a
    few worker threads; :meth:`stop` ends both.
    """

    HOST = "127.0.0.1"
    THREADS = 6
    MAX_STREAMS = 4
    CONNECTION_LIMIT = 100
    WORKERS_STOP_TIMEOUT = 0.5  # part of stop()'s timeout kept for the worker threads

    def __init__(self, session: Session, token: str, *, host: str = HOST, port: int = 8080) -> None:
        if host != self.HOST:
            raise ValueError(f"the local API listens on {self.HOST} only, not {host}")
        self.session = session
        self.token = token
        self.host = host
        self.port = port
        self._http: Any = None
        self._ctx: Any = None
        self._drain_timeout = 0.0
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Bind and serve; raises OSError when the port cannot be used (call off the GUI thread)."""
        from ..api.app import create_app
        from ..api.http import HttpServer

        app = create_app(self.session, token=self.token, max_streams=self.MAX_STREAMS)
        ctx = app.extensions["wadesk"]
        http = HttpServer(
            app,
            host=self.host,
            port=self.port,
            threads=self.THREADS,
            connection_limit=self.CONNECTION_LIMIT,
        )
        try:
            http.bind()  # a port in use fails here, before any worker thread starts
        except BaseException:
            ctx.close()
            ctx.feed.close()
            raise
        self._http, self._ctx = http, ctx
        [(_, self.port)] = http.addresses
        self._thread = threading.Thread(target=self._serve, name="wadesk-local-api", daemon=True)
        self._thread.start()
        log.info("local API listening on %s", self.url, extra={"port": self.port})

    def _serve(self) -> None:
        http, ctx = self._http, self._ctx
        try:
            http.serve()
        except Exception:  # a broken loop ends the API, never the window
            log.exception("the local API stopped unexpectedly")
        finally:
            ctx.draining = True  # answers say Connection: close
            ctx.broker.close()  # event streams end
            try:
                busy = http.shutdown(self._drain_timeout, self.WORKERS_STOP_TIMEOUT)
                if busy:
                    log.warning("the local API closed %d connection(s) with a request still running", busy)
            finally:
                ctx.close()
                ctx.feed.close()

    def stop(self, timeout: float = 2.0) -> None:
        """Refuse new connections, let requests in flight finish, close the rest; returns
        within about ``timeout`` seconds."""
        thread, http = self._thread, self._http
        if thread is None:
            return
        self._drain_timeout = max(0.0, timeout - self.WORKERS_STOP_TIMEOUT - 0.2)
        http.request_stop()
        thread.join(timeout)
        self._thread = None
        log.info("local API stopped")
