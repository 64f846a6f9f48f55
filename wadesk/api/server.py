"""``wadesk --headless``: the session, the HTTP API (waitress, threads in this process), the
webhook delivery threads, and a graceful shutdown on SIGTERM, SIGINT, SIGHUP or SIGQUIT
(SIGUSR1 logs the state in one line and changes nothing).

Start-up order keeps ``/health`` fast: secrets, logging, our database, then the listening
socket, and only then the session, whose worker thread loads neonize's library while the
API already answers.

The HTTP server is :class:`wadesk.api.http.HttpServer` (shared with the desktop's local API):
JSON error answers, deadlines for slow and idle clients, a connection limit sized from the
open-file limit, and the graceful drain below.

Shutdown (SIGTERM, SIGINT, SIGHUP or SIGQUIT): the listening socket closes (new connections
are refused), open event streams end, requests in flight finish (up to :data:`DRAIN_TIMEOUT`),
idle keep-alive connections close, then the session and the webhook threads stop; exit code
0 within 10 s. A message answered with 202 was committed before the answer, so nothing
accepted is lost. A second signal exits at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..config import Config, ConfigError
from .http import HttpServer

if TYPE_CHECKING:
    from ..core.datadir import DataDir
    from ..core.session import Session
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
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")  # each stops gracefully, exit code 0
REPORT_SIGNAL = "SIGUSR1"  # logs the state in one line


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
    # a file-like object with write/flush, not a TextIO
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

    def on_report(_signum: int, _frame: Any) -> None:
        gateway.request_report()

    for name in STOP_SIGNALS:
        if hasattr(signal, name):  # SIGHUP and SIGQUIT do not exist on Windows
            signal.signal(getattr(signal, name), on_signal)
    if hasattr(signal, REPORT_SIGNAL):
        signal.signal(getattr(signal, REPORT_SIGNAL), on_report)
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
        session: Session | None = None,
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
                self.session.webhook_queue,
                config.webhook_urls,
                webhook_secret,
                events=config.webhook_events,
                metrics=self.metrics,
                supervise=getattr(self.session, "supervised", None),
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
            event_log_age=config.event_log_hours * 3600.0,
            event_log_max=config.event_log_max,
            cors_origins=config.cors_origins,
        )
        self.ctx = self.app.extensions["wadesk"]
        self.http = HttpServer(self.app, host=config.host, port=config.port, threads=threads)
        self._stop_reason = ""
        self._report = threading.Event()

    # -- control --
    @property
    def stopping(self) -> bool:
        return self.http.stopping

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return self.http.addresses

    def request_stop(self, reason: str = "") -> None:
        """Begin the shutdown (safe from a signal handler or another thread)."""
        self._stop_reason = reason
        self.http.request_stop()  # and wake the loop at once

    def request_report(self) -> None:
        """Log the state in one line soon, from the loop (safe from a signal handler: a
        handler that logged itself could interrupt the loop thread inside a log call)."""
        self._report.set()
        self.http.wake()

    def report(self) -> None:
        """One log line: the session state, the outbox depth, the webhook backlog, open
        connections and event streams."""
        state = self.session.state
        depth: int | None = None
        backlog: int | None = None
        try:  # both are counted in the database
            depth = int(self.session.outbox_depth())
            backlog = self.webhooks.total_backlog() if self.webhooks is not None else 0
        except Exception:  # a busy or failing database must not end the serve loop
            log.debug("the outbox depth could not be counted", exc_info=True)
        connections = self.http.connections
        streams = len(self.ctx.broker)
        log.info(
            "state: %s; outbox depth %s; webhook backlog %s; %d connection(s) open, %d event stream(s)",
            state.describe(),
            "unknown" if depth is None else depth,
            "unknown" if backlog is None else backlog,
            connections,
            streams,
            extra={
                "state": state.status.value,
                "outbox_depth": depth,
                "webhook_backlog": backlog,
                "connections": connections,
                "event_streams": streams,
            },
        )

    # -- running --
    def bind(self) -> None:
        self.http.bind()

    def serve(self) -> int:
        try:
            self.http.bind()
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
            self.http.serve(on_turn=self._on_turn)
        finally:
            self._shutdown()
        return 0

    def _on_turn(self) -> None:
        if self._report.is_set():
            self._report.clear()
            self.report()

    def _shutdown(self) -> None:
        started = time.monotonic()
        log.info("shutting down%s", f" ({self._stop_reason})" if self._stop_reason else "")
        self.ctx.draining = True
        self.ctx.broker.close()
        self.http.stop_listening()
        busy = self.http.drain(started + DRAIN_TIMEOUT)
        if busy:
            log.warning(
                "%d request(s) still running after %.0f s; closing their connections", busy, DRAIN_TIMEOUT
            )
        if not self.session.stop(SESSION_STOP_TIMEOUT):
            log.warning("the session did not stop within %.0f s", SESSION_STOP_TIMEOUT)
        if self.webhooks is not None:
            self.webhooks.stop(WEBHOOKS_STOP_TIMEOUT)
        self.http.close(WORKERS_STOP_TIMEOUT)
        self.ctx.close()  # the event log commits the last events
        self.feed.close()
        log.info("stopped after %.1f s", time.monotonic() - started)

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
