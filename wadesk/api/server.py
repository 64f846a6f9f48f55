"""``wadesk --headless``: the session, the HTTP API (waitress, threads in this process), the
webhook delivery threads, and a graceful shutdown on SIGTERM/SIGINT.

Start-up order keeps ``/health`` fast: secrets, logging, our database, then the listening
socket, and only then the session, whose worker thread loads neonize's library while the
API already answers.

Shutdown (SIGTERM or SIGINT): the listening socket closes (new connections are refused),
open event streams end, requests in flight finish (up to :data:`DRAIN_TIMEOUT`), idle
keep-alive connections close, then the session and the webhook threads stop; exit code 0
within 10 s. A message answered with 202 was committed before the answer, so nothing
accepted is lost. A second signal exits at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..config import Config, ConfigError

if TYPE_CHECKING:
    from ..core.datadir import DataDir
    from .auth import Secret

log = logging.getLogger("wadesk.api")
qr_log = logging.getLogger("wadesk.qr")

THREADS = 16  # waitress worker threads; /events streams take at most MAX_STREAMS of them
MAX_STREAMS = 8
# Shutdown budget, well inside Docker's 10 s: requests in flight, the session (a send in flight
# may finish), the webhook threads, waitress' worker threads.
DRAIN_TIMEOUT = 3.0
SESSION_STOP_TIMEOUT = 5.0
WEBHOOKS_STOP_TIMEOUT = 0.5
WORKERS_STOP_TIMEOUT = 0.5
EXIT_CONFIG = 2
EXIT_LISTEN = 1


def run(config: Config, data: DataDir) -> int:
    """What ``wadesk --headless`` runs; returns the exit code."""
    from .auth import resolve_api_token, resolve_webhook_secret

    try:
        token = resolve_api_token(config, data)
        secret = resolve_webhook_secret(config, data) if config.webhook_urls else None
    except ConfigError as exc:
        print(f"wadesk: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    from .. import logs
    from .logstream import AccessLog, BufferedLogStream

    stream = BufferedLogStream(sys.stderr.fileno())
    handler = logs.setup(config.log_level, config.log_format, stream=stream)  # type: ignore[arg-type]
    handler.addFilter(stream.mark_urgent)
    logs.capture_stray_output()
    _log_secret("API token", token)
    if secret is not None:
        _log_secret("webhook secret", secret)

    gateway = Gateway(
        config,
        data,
        token=token.value,
        webhook_secret=secret.value if secret else None,
        access=AccessLog(config.log_format, stream),
    )

    def on_signal(signum: int, _frame: Any) -> None:
        if gateway.stopping:
            stream.sync()
            os.write(2, b"wadesk: second signal, exiting now\n")
            os._exit(1)
        gateway.request_stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return gateway.serve()
    finally:
        logging.shutdown()
        stream.close()


def _log_secret(what: str, secret: Secret) -> None:
    if secret.path is None:
        log.info("%s: from %s", what, secret.source)
    elif secret.created:
        log.info(
            "%s: generated a new one, kept in %s (readable by this user only)",
            what,
            secret.path,
            extra={"path": str(secret.path)},
        )
    else:
        log.info("%s: read from %s", what, secret.path, extra={"path": str(secret.path)})


class Gateway:
    """The session, the app and the HTTP server of one ``wadesk --headless`` process."""

    def __init__(
        self,
        config: Config,
        data: DataDir,
        *,
        token: str,
        webhook_secret: str | None = None,
        session: Any = None,
        threads: int = THREADS,
        access: Any = None,
    ) -> None:
        from ..core import open_session
        from .app import create_app
        from .feed import EventFeed
        from .metrics import Metrics
        from .webhooks import WebhookDispatcher

        self.config = config
        self.threads = threads
        self.session = session if session is not None else open_session(config, data)
        self.metrics = Metrics(self.session)
        self.feed = EventFeed(self.session)
        self.webhooks = None
        if config.webhook_urls:
            if not webhook_secret:
                raise ValueError("webhooks need a secret")
            self.webhooks = WebhookDispatcher(
                self.session.store,
                config.webhook_urls,
                webhook_secret,
                events=config.webhook_events,
                metrics=self.metrics,
            )
            self.feed.add(self.webhooks.handle)  # first: queued durably before anyone else sees it
        self.feed.add(self._log_qr)
        self.app = create_app(
            self.session,
            token=token,
            metrics=self.metrics,
            feed=self.feed,
            webhooks=self.webhooks,
            max_streams=MAX_STREAMS,
            access=access,
        )
        self.ctx = self.app.extensions["wadesk"]
        self._stop = threading.Event()
        self._stop_reason = ""
        self._map: dict[int, Any] = {}
        self._servers: list[Any] = []
        self._dispatcher: Any = None

    # -- control --
    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(str(s.effective_host), int(s.effective_port)) for s in self._servers]

    def request_stop(self, reason: str = "") -> None:
        """Begin the shutdown (safe from a signal handler or another thread)."""
        self._stop_reason = reason
        self._stop.set()
        if self._servers:
            with contextlib.suppress(OSError):
                self._servers[0].pull_trigger()  # wake the loop at once

    # -- running --
    def bind(self) -> None:
        from waitress.adjustments import Adjustments
        from waitress.task import ThreadedTaskDispatcher

        from .app import MAX_BODY

        adj = Adjustments(
            host=self.config.host,
            port=self.config.port,
            threads=self.threads,
            ident="wadesk",
            max_request_body_size=MAX_BODY + 1,  # waitress refuses at >= this: exactly 1 MiB passes
            asyncore_use_poll=True,
            connection_limit=200,
        )
        self._dispatcher = ThreadedTaskDispatcher()
        self._dispatcher.set_thread_count(adj.threads)
        server_class = _server_class()
        try:
            for sockinfo in adj.listen:
                self._servers.append(
                    server_class(self.app, self._map, dispatcher=self._dispatcher, adj=adj, sockinfo=sockinfo)
                )
        except OSError:
            self._close_all()
            raise

    def serve(self) -> int:
        from waitress import wasyncore

        if not self._servers:
            try:
                self.bind()
            except OSError as exc:
                log.error(
                    "cannot listen on %s port %d: %s",
                    self.config.host,
                    self.config.port,
                    exc.strerror or exc,
                )
                return EXIT_LISTEN
        self.session.start()
        if self.webhooks is not None:
            self.webhooks.start()
        for host, port in self.addresses:
            shown = f"[{host}]" if ":" in host else host
            log.info(
                "wadesk %s serves the API on http://%s:%s (GET /qr to pair, /openapi.json for the API)",
                __version__,
                shown,
                port,
                extra={"host": host, "port": port},
            )
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=1.0, map=self._map, use_poll=True, count=1)
        finally:
            self._shutdown()
        return 0

    def _shutdown(self) -> None:
        from waitress import wasyncore

        started = time.monotonic()
        log.info("shutting down%s", f" ({self._stop_reason})" if self._stop_reason else "")
        self.ctx.draining = True
        self.ctx.broker.close()
        for server in self._servers:
            wasyncore.dispatcher.close(server)  # refuse new connections; keep the loop's trigger
        busy = self._drain(started + DRAIN_TIMEOUT)
        if busy:
            log.warning(
                "%d request(s) still running after %.0f s; closing their connections", busy, DRAIN_TIMEOUT
            )
        if not self.session.stop(SESSION_STOP_TIMEOUT):
            log.warning("the session did not stop within %.0f s", SESSION_STOP_TIMEOUT)
        if self.webhooks is not None:
            self.webhooks.stop(WEBHOOKS_STOP_TIMEOUT)
        self._close_all()
        self.feed.close()
        log.info("stopped after %.1f s", time.monotonic() - started)

    def _drain(self, deadline: float) -> int:
        """Run the loop until every request in flight is answered and flushed; close idle
        connections. Returns the number of connections still busy at the deadline."""
        from waitress import wasyncore

        while True:
            busy = 0
            for server in self._servers:
                for channel in list(server.active_channels.values()):
                    if channel.requests or channel.request is not None or channel.total_outbufs_len:
                        busy += 1
                    else:
                        channel.will_close = True  # idle keep-alive connection
            open_channels = sum(len(s.active_channels) for s in self._servers)
            if (not busy and not open_channels) or time.monotonic() >= deadline:
                return busy
            wasyncore.loop(timeout=0.05, map=self._map, use_poll=True, count=1)

    def _close_all(self) -> None:
        from waitress import wasyncore

        if self._dispatcher is not None:
            self._dispatcher.shutdown(cancel_pending=True, timeout=WORKERS_STOP_TIMEOUT)
        wasyncore.close_all(self._map)

    # -- the QR code in the log --
    def _log_qr(self, envelope: Any) -> None:
        if envelope.event != "qr":
            return
        from .. import qr

        code = envelope.payload["qr"]
        expires = envelope.payload.get("expires_at") or time.time()
        qr_log.info(
            "not paired: scan this QR code with WhatsApp on the phone (Linked devices > Link a device) "
            "within %.0f s, or GET /qr",
            max(0.0, expires - time.time()),
            extra={"qr": code, "qr_expires_at": expires},
        )
        for line in qr.text_art(code).splitlines():
            qr_log.info("%s", line)
        qr_log.info("QR code text: %s", code)


def _server_class() -> type:
    """waitress' TCP server whose own error answers (bad HTTP, body over the limit) are JSON."""
    from waitress.channel import HTTPChannel
    from waitress.server import TcpWSGIServer
    from waitress.task import ErrorTask

    from .errors import CODES, MESSAGES

    access_log = logging.getLogger("wadesk.http")

    class JsonErrorTask(ErrorTask):  # type: ignore[misc]
        def execute(self) -> None:
            error = self.request.error
            message = MESSAGES.get(error.code) or f"{error.reason}: {error.body}"
            code = CODES.get(error.code, "invalid_request")
            data = (json.dumps({"error": code, "message": message}) + "\n").encode("utf-8")
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(data)
            self.write(data)
            access_log.info(
                "- - %d (refused by the HTTP server)",
                error.code,
                extra={"status": error.code, "route": "unmatched"},
            )

    class JsonChannel(HTTPChannel):  # type: ignore[misc]
        error_task_class = JsonErrorTask

    class Server(TcpWSGIServer):  # type: ignore[misc]
        channel_class = JsonChannel

    return Server
