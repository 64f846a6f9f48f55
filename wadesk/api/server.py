"""``wadesk --headless``: the session, the HTTP API (waitress, threads in this process), the
webhook delivery threads, and a graceful shutdown on SIGTERM, SIGINT, SIGHUP or SIGQUIT
(SIGUSR1 logs the state in one line and changes nothing).

Start-up order keeps ``/health`` fast: secrets, logging, our database, then the listening
socket, and only then the session, whose worker thread loads neonize's library while the
API already answers.

Slow and idle clients cost a socket, never a thread, and not for long: waitress reads every
request completely (head and body) on its one loop thread before a worker thread sees it,
and this module gives that reading deadlines a trickle cannot extend (see
:func:`_server_class`). A new connection must start its request within
:data:`FIRST_REQUEST_TIMEOUT`; a request's head must be complete :data:`HEAD_TIMEOUT` after its
first byte, the whole request :data:`REQUEST_TIMEOUT` after it (else a JSON 408 and the
connection closes); an idle keep-alive connection closes after :data:`KEEPALIVE_TIMEOUT`.
The connection limit is sized from the open-file limit, whose soft value is raised toward
the hard one at start (:func:`connection_limit`).

Shutdown (SIGTERM, SIGINT, SIGHUP or SIGQUIT): the listening socket closes (new connections
are refused), open event streams end, requests in flight finish (up to :data:`DRAIN_TIMEOUT`),
idle keep-alive connections close, then the session and the webhook threads stop; exit code
0 within 10 s. A message answered with 202 was committed before the answer, so nothing
accepted is lost. A second signal exits at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
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
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")  # each stops gracefully, exit code 0
REPORT_SIGNAL = "SIGUSR1"  # logs the state in one line

# Connections (seconds). Deadlines are checked every MAINTENANCE_INTERVAL on the loop thread,
# which wakes at least once a second, so each may be up to about a second late.
FIRST_REQUEST_TIMEOUT = 5.0  # a new connection that has not sent a byte of a request is closed
KEEPALIVE_TIMEOUT = 30.0  # an idle connection after a response is closed
HEAD_TIMEOUT = 10.0  # from a request's first byte to the end of its head, else 408
REQUEST_TIMEOUT = 30.0  # from a request's first byte to the end of its body, else 408
BUSY_IDLE_TIMEOUT = 1.0  # both idle timeouts while nearly all connections are in use
BUSY_SHARE = 0.9  # ... that is, this share of the connection limit
STALLED_RESPONSE_TIMEOUT = 60  # a response the client does not read at all (waitress' own check)
MAINTENANCE_INTERVAL = 0.5
MAX_CONNECTIONS = 10_000  # every open connection costs a little on each turn of the poll loop
SELECT_MAX_CONNECTIONS = 400  # without poll(): select() handles few sockets (512 on Windows)
FD_RESERVE = 256  # descriptors left for the databases, neonize, webhooks, logs
BACKLOG = 2048  # connections the kernel holds until the loop accepts them
ACCEPT_BATCH = 64  # connections accepted per turn of the loop


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


def connection_limit() -> int:
    """How many connections the server keeps open at once: :data:`MAX_CONNECTIONS`, or fewer
    when the open-file limit does not allow as many. The soft limit is raised toward the
    hard one first (many systems start processes with a soft limit of 1024)."""
    import select

    if not hasattr(select, "poll"):
        return SELECT_MAX_CONNECTIONS
    try:
        import resource
    except ImportError:  # pragma: no cover - every system with poll() has it
        return SELECT_MAX_CONNECTIONS
    want = MAX_CONNECTIONS + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        for candidate in (target, min(target, 10240)):  # macOS refuses more than OPEN_MAX
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (candidate, hard))
            except (OSError, ValueError):
                continue
            soft = candidate
            break
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    usable = soft - FD_RESERVE if soft >= 2 * FD_RESERVE else soft // 2
    limit = max(1, min(MAX_CONNECTIONS, usable))
    if limit < 1000:
        log.warning(
            "the open-file limit (%d) allows only %d connections at once; raise it (ulimit -n)",
            soft,
            limit,
            extra={"nofile": soft, "connection_limit": limit},
        )
    return limit


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
        )
        self.ctx = self.app.extensions["wadesk"]
        self._stop = threading.Event()
        self._stop_reason = ""
        self._report = threading.Event()
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

    def request_report(self) -> None:
        """Log the state in one line soon, from the loop (safe from a signal handler: a
        handler that logged itself could interrupt the loop thread inside a log call)."""
        self._report.set()
        if self._servers:
            with contextlib.suppress(OSError):
                self._servers[0].pull_trigger()

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
        connections = sum(len(s.active_channels) for s in self._servers)
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
            connection_limit=connection_limit(),
            backlog=BACKLOG,
            channel_timeout=STALLED_RESPONSE_TIMEOUT,
            cleanup_interval=5,
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
                if self._report.is_set():
                    self._report.clear()
                    self.report()
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
                    reading = channel.request is not None and channel.request.headers_finished
                    if channel.requests or reading or channel.total_outbufs_len:
                        busy += 1
                    else:
                        channel.will_close = True  # idle, or not even the head of a request yet
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
    """waitress' TCP server, with deadlines for reading requests and JSON error answers.

    * Its own error answers (bad HTTP, body over the limit, a request read too slowly) are
      JSON, like the app's.
    * Reading a request has deadlines counted from fixed points, so a client that trickles a
      byte at a time cannot extend them (waitress' ``channel_timeout`` starts again with every
      byte): see the module docstring for the values. A request not read in time is answered
      with a JSON 408 and its connection closes; a connection that is merely idle closes.
    * ``environ["waitress.client_disconnected"]`` really says whether the client is gone: it
      peeks at the socket, so an event stream notices a closed or reset connection within
      its next check instead of at its next write (waitress itself only notices while it
      reads the socket, which it does not while answering with ``channel_request_lookahead``
      at 0; raising that instead would also treat a client that half-closes after sending
      its request as gone, and it would never get its answer).
    * Up to :data:`ACCEPT_BATCH` connections are accepted per turn of the loop.
    """
    from waitress.channel import HTTPChannel
    from waitress.parser import HTTPRequestParser
    from waitress.server import TcpWSGIServer
    from waitress.task import ErrorTask
    from waitress.utilities import Error

    from .errors import CODES, MESSAGES

    access_log = logging.getLogger("wadesk.http")
    http_log = logging.getLogger("wadesk.api.http")

    class RequestTimeout(Error):  # type: ignore[misc]
        code = 408
        reason = "Request Timeout"

    class JsonErrorTask(ErrorTask):  # type: ignore[misc]
        def execute(self) -> None:
            error = self.request.error
            message = MESSAGES.get(error.code) or f"{error.reason}: {error.body}"
            code = "request_timeout" if error.code == 408 else CODES.get(error.code, "invalid_request")
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

    class TimedParser(HTTPRequestParser):  # type: ignore[misc]
        """A request being read; made when its first byte arrives."""

        def __init__(self, adj: Any) -> None:
            super().__init__(adj)
            self.started = time.monotonic()

    class JsonChannel(HTTPChannel):  # type: ignore[misc]
        error_task_class = JsonErrorTask
        parser_class = TimedParser

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # since when it has been waiting for a request: accepted, or its last answer done
            self.waiting_since = time.monotonic()
            self.served = False
            self.timed_out = False
            super().__init__(*args, **kwargs)

        def service(self) -> None:
            try:
                super().service()
            finally:
                self.served = True
                self.waiting_since = time.monotonic()
                if not self.connected:
                    self.server.pull_trigger()  # let the loop close it now, not in up to a second

        def readable(self) -> bool:
            # after a 408, go on reading (and dropping) what the client still sends: closing
            # a socket with unread input resets the connection, and the reset can destroy
            # the answer before the client has read it
            if self.timed_out and not self.will_close:
                return True
            return bool(super().readable())

        def received(self, data: bytes) -> bool:
            if self.timed_out:
                return False
            return bool(super().received(data))

        def check_client_disconnected(self) -> bool:
            if not self.connected:
                return True
            sock = self.socket
            if sock is None:
                return True
            try:
                gone = not sock.recv(1, socket.MSG_PEEK)  # non-blocking; b"": the client closed
            except (BlockingIOError, InterruptedError):
                return False  # nothing to read: still there
            except OSError:  # reset, or closed meanwhile
                gone = True
            if gone:
                self.connected = False  # what waitress sets when its loop sees the close
            return gone

        def check_deadlines(self, now: float, busy: bool) -> None:
            """On the loop thread: close an idle connection, or answer a request that is
            read too slowly with 408."""
            if self.will_close or self.close_when_flushed or self.timed_out:
                return
            if self.requests or self.total_outbufs_len:  # answering: not waiting for the client
                self.waiting_since = now
                return
            request = self.request
            if request is None:
                idle = KEEPALIVE_TIMEOUT if self.served else FIRST_REQUEST_TIMEOUT
                if busy:
                    idle = min(idle, BUSY_IDLE_TIMEOUT)
                if now - self.waiting_since >= idle:
                    self.will_close = True  # the loop closes it on its next turn
                return
            if request.headers_finished:
                limit, what = REQUEST_TIMEOUT, "request"
            else:
                limit, what = HEAD_TIMEOUT, "request head"
            if now - request.started >= limit:
                self._time_out(request, f"the {what} was not received within {limit:g} s")

        def _time_out(self, request: Any, message: str) -> None:
            with self.requests_lock:
                if self.request is not request or self.requests:
                    return
                self.request = None
                answer = self.parser_class(self.adj)
                answer.error = RequestTimeout(message)
                answer.version = request.version
                answer.completed = True
                request.close()
                self.timed_out = True
                self.requests.append(answer)
            http_log.debug(
                "%s from %s; answered 408",
                message,
                self.addr[0] if self.addr else "?",
                extra={"status": 408},
            )
            self.server.add_task(self)

    class Server(TcpWSGIServer):  # type: ignore[misc]
        channel_class = JsonChannel
        next_deadline_check = 0.0

        def readable(self) -> bool:
            now = time.monotonic()
            if now >= self.next_deadline_check:
                self.next_deadline_check = now + MAINTENANCE_INTERVAL
                busy = len(self._map) >= self.adj.connection_limit * BUSY_SHARE
                for channel in list(self.active_channels.values()):
                    channel.check_deadlines(now, busy)
            return bool(super().readable())

        def handle_accept(self) -> None:
            for _ in range(ACCEPT_BATCH):
                if len(self._map) >= self.adj.connection_limit:
                    return
                try:
                    accepted = self.accept()
                    if accepted is None:
                        return
                    conn, addr = accepted
                    self.set_socket_options(conn)
                except OSError:  # as in waitress: a connection gone before it was accepted
                    if self.adj.log_socket_errors:
                        self.logger.warning("server accept() threw an exception", exc_info=True)
                    return
                self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)

    return Server
