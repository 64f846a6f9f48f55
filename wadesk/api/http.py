"""The HTTP server of the API: waitress on one loop thread and a few worker threads, with
JSON error answers, deadlines against slow clients, a connection limit and a graceful drain.

:class:`HttpServer` is used by ``wadesk --headless`` (:class:`wadesk.api.server.Gateway`) and
by the desktop's local API (:class:`wadesk.ui.localapi.LocalApiServer`), so both answer the
same way to the same clients.

Slow and idle clients cost a socket, never a thread, and not for long: waitress reads every
request completely (head and body) on its loop thread before a worker thread sees it, and
the channel here gives that reading deadlines a trickle cannot extend. A new connection must
start its request within :data:`FIRST_REQUEST_TIMEOUT`; a request's head must be complete
:data:`HEAD_TIMEOUT` after its first byte, the whole request :data:`REQUEST_TIMEOUT` after it
(else a JSON 408 and the connection closes); an idle keep-alive connection closes after
:data:`KEEPALIVE_TIMEOUT`. Deadlines are checked every :data:`MAINTENANCE_INTERVAL` on the
loop thread, which wakes at least that often, so each may be up to about that much late.
:func:`connection_limit` sizes the gateway's connection limit from the open-file limit.

Stopping is done in steps, so that a caller can stop its own work between them:
:meth:`HttpServer.request_stop` ends :meth:`HttpServer.serve`;
:meth:`HttpServer.stop_listening` refuses new connections (from then on each answer closes
its connection); :meth:`HttpServer.drain` lets requests in flight finish and closes idle
connections; :meth:`HttpServer.close` stops the worker threads and closes everything
(:meth:`HttpServer.shutdown` does the last three in a row).

waitress internals
------------------
waitress has no public API for any of this, so the classes here subclass its channel (for
the deadlines, the drain and the client-gone check), request parser (when a request began),
tasks (JSON error answers, ``Connection: close`` while draining) and TCP server (deadline
checks, accepting in batches), and rely on their attributes:

* ``TcpWSGIServer``: ``active_channels`` (the open connections, for the deadlines, the
  drain and the report), ``_map`` (the socket map shared with the loop, for the connection
  limit), ``channel_class``, ``accept``, ``set_socket_options``, ``fix_addr``,
  ``pull_trigger``, ``add_task``, ``effective_host`` and ``effective_port``; the loop is
  driven with ``wasyncore.loop``/``close_all`` and ``wasyncore.dispatcher.close``.
* ``HTTPChannel``: ``request``, ``requests``, ``requests_lock``, ``will_close``,
  ``close_when_flushed``, ``total_outbufs_len``, ``connected``, ``socket``, ``addr``,
  ``adj``, ``server``, ``task_class``, ``error_task_class``, ``parser_class`` and the
  methods ``service``, ``readable``, ``received`` and ``check_client_disconnected``.
* ``HTTPRequestParser``: ``headers_finished``, ``completed``, ``error``, ``version``,
  ``close``; ``ErrorTask``: ``request.error``, ``status``, ``response_headers``,
  ``set_close_on_finish``, ``content_length``, ``write``; ``WSGITask``: ``environ``,
  ``channel``, ``build_response_header``, ``set_close_on_finish``; ``waitress.utilities.Error``.
* ``ThreadedTaskDispatcher``: ``set_thread_count`` and ``shutdown``.

Any of these may change in a minor release, so ``pyproject.toml`` pins waitress to the
minor version these classes are tested with (3.0.x).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("wadesk.api")
access_log = logging.getLogger("wadesk.http")
http_log = logging.getLogger("wadesk.api.http")

# Connections (seconds).
FIRST_REQUEST_TIMEOUT = 5.0  # a new connection that has not sent a byte of a request is closed
KEEPALIVE_TIMEOUT = 30.0  # an idle connection after a response is closed
HEAD_TIMEOUT = 10.0  # from a request's first byte to the end of its head, else 408
REQUEST_TIMEOUT = 30.0  # from a request's first byte to the end of its body, else 408 ...
MIN_BODY_RATE = 64 * 1024  # ... plus a second for each 64 KiB its body declares (a large upload)
BUSY_IDLE_TIMEOUT = 1.0  # both idle timeouts while nearly all connections are in use
BUSY_SHARE = 0.9  # ... that is, this share of the connection limit
STALLED_RESPONSE_TIMEOUT = 60  # a response the client does not read at all (waitress' own check)
MAINTENANCE_INTERVAL = 0.5  # deadline checks; also the longest the loop sleeps
DRAIN_INTERVAL = 0.05  # the loop's sleep while draining
WORKERS_STOP_TIMEOUT = 0.5  # waiting for the worker threads at close
MAX_CONNECTIONS = 10_000  # every open connection costs a little on each turn of the poll loop
SELECT_MAX_CONNECTIONS = 400  # without poll(): select() handles few sockets (512 on Windows)
FD_RESERVE = 256  # descriptors left for the databases, neonize, webhooks, logs
BACKLOG = 2048  # connections the kernel holds until the loop accepts them
ACCEPT_BATCH = 64  # connections accepted per turn of the loop


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


class HttpServer:
    """A WSGI app served by waitress on ``host``:``port`` (port 0: a free one).

    ``connection_limit`` is the most connections it keeps open at once (default: as many as
    the open-file limit allows, see :func:`connection_limit`). :meth:`bind` opens the
    listening sockets (an ``OSError`` when the port cannot be used, with nothing left open
    and no thread started); :meth:`serve` runs the loop in the calling thread until
    :meth:`request_stop`. Every call but :meth:`request_stop` and
    :meth:`wake` belongs to the thread that runs the loop.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        host: str,
        port: int,
        threads: int,
        connection_limit: int | None = None,
        max_body: int | None = None,
        backlog: int = BACKLOG,
    ) -> None:
        if max_body is None:  # what the app accepts (Flask's MAX_CONTENT_LENGTH), else 1 MiB
            from .app import MAX_BODY

            configured = getattr(app, "config", {}).get("MAX_CONTENT_LENGTH")
            max_body = int(configured) if configured else MAX_BODY
        self.app = app
        self.host = host
        self.port = port
        self.threads = threads
        self.connection_limit = connection_limit
        self.max_body = max_body
        self.backlog = backlog
        self._map: dict[int, Any] = {}
        self._servers: list[Any] = []
        self._dispatcher: Any = None
        self._stop = threading.Event()
        # wake() writes to the loop's trigger, a pipe: never once close() has begun, as its
        # descriptor may then belong to another file (reentrant: wake() may be called from a
        # signal handler on the thread that is in close())
        self._trigger_lock = threading.RLock()
        self._closing = False

    # -- state --
    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where it listens: (host, port) of each listening socket."""
        return [(str(s.effective_host), int(s.effective_port)) for s in self._servers]

    @property
    def connections(self) -> int:
        """Connections open now."""
        return sum(len(s.active_channels) for s in self._servers)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- control (any thread, or a signal handler) --
    def request_stop(self) -> None:
        """End :meth:`serve` soon."""
        self._stop.set()
        self.wake()

    def wake(self) -> None:
        """Make the loop take a turn now (its ``on_turn`` callback runs)."""
        with self._trigger_lock:
            if self._servers and not self._closing:
                with contextlib.suppress(OSError):
                    self._servers[0].pull_trigger()

    # -- running (the loop thread) --
    def bind(self) -> None:
        from waitress import wasyncore
        from waitress.adjustments import Adjustments
        from waitress.task import ThreadedTaskDispatcher

        if self._servers:
            return
        if self._closing:
            raise RuntimeError("this server was closed")
        adj = Adjustments(
            host=self.host,
            port=self.port,
            threads=self.threads,
            ident="wadesk",
            max_request_body_size=self.max_body + 1,  # refused at >= this: exactly max_body passes
            asyncore_use_poll=True,
            connection_limit=self.connection_limit if self.connection_limit else connection_limit(),
            backlog=self.backlog,
            channel_timeout=STALLED_RESPONSE_TIMEOUT,
            cleanup_interval=5,
        )
        dispatcher = ThreadedTaskDispatcher()
        server_class = _server_class()
        servers = []
        try:
            for sockinfo in adj.listen:
                servers.append(
                    server_class(
                        _server_owns_connection(self.app),
                        self._map,
                        dispatcher=dispatcher,
                        adj=adj,
                        sockinfo=sockinfo,
                    )
                )
        except BaseException:
            wasyncore.close_all(self._map)
            raise
        dispatcher.set_thread_count(adj.threads)  # only once every socket is bound
        self._servers, self._dispatcher = servers, dispatcher

    def serve(self, on_turn: Callable[[], None] | None = None) -> None:
        """Run the loop until :meth:`request_stop` (binding first if needed); ``on_turn`` is
        called after each turn. Returns with the sockets still open: see :meth:`shutdown`."""
        from waitress import wasyncore

        self.bind()
        while not self._stop.is_set():
            wasyncore.loop(timeout=MAINTENANCE_INTERVAL, map=self._map, use_poll=True, count=1)
            if on_turn is not None:
                on_turn()

    def stop_listening(self) -> None:
        """Close the listening sockets: new connections are refused. The loop's trigger stays."""
        from waitress import wasyncore

        for server in self._servers:
            server.draining = True
            wasyncore.dispatcher.close(server)

    def drain(self, deadline: float) -> int:
        """Run the loop until every request in flight is answered and flushed, closing idle
        connections, or until ``deadline`` (``time.monotonic()``). Returns the number of
        connections still busy then."""
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
            if (not busy and not self.connections) or time.monotonic() >= deadline:
                return busy
            wasyncore.loop(timeout=DRAIN_INTERVAL, map=self._map, use_poll=True, count=1)

    def close(self, timeout: float = WORKERS_STOP_TIMEOUT) -> None:
        """Stop the worker threads (waiting up to ``timeout``) and close every socket."""
        from waitress import wasyncore

        with self._trigger_lock:
            self._closing = True
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            dispatcher.shutdown(cancel_pending=True, timeout=timeout)
        wasyncore.close_all(self._map)
        self._servers = []

    def shutdown(self, drain_timeout: float, workers_timeout: float = WORKERS_STOP_TIMEOUT) -> int:
        """:meth:`stop_listening`, :meth:`drain` for up to ``drain_timeout`` seconds, then
        :meth:`close`. Returns the number of connections that were still busy."""
        self.stop_listening()
        busy = self.drain(time.monotonic() + drain_timeout)
        self.close(workers_timeout)
        return busy


CLOSE_AFTER = "wadesk.close_after"  # environ key: the app asked to close the connection


def _server_owns_connection(app: Callable[..., Any]) -> Callable[..., Any]:
    """The app, minus any ``Connection`` header it answers with: that header is the server's
    (PEP 3333 forbids hop-by-hop headers to apps, and waitress turns such an answer into a
    500). A ``Connection: close`` is honoured: the connection closes after the answer."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = []
            for name, value in headers:
                if name.lower() != "connection":
                    kept.append((name, value))
                elif "close" in value.lower():
                    environ[CLOSE_AFTER] = True
            return start_response(status, kept, exc_info)

        return app(environ, start)

    return wsgi


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
    * Once it stops listening (the drain), every answer says ``Connection: close`` and its
      connection closes after it.
    """
    from waitress.channel import HTTPChannel
    from waitress.parser import HTTPRequestParser
    from waitress.server import TcpWSGIServer
    from waitress.task import ErrorTask, WSGITask
    from waitress.utilities import Error

    from .errors import CODES, MESSAGES

    class RequestTimeout(Error):
        code = 408
        reason = "Request Timeout"

    class JsonErrorTask(ErrorTask):
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

    class AppTask(WSGITask):
        """An answer by the app; the connection closes after it while the server drains or
        when the app said ``Connection: close`` (see :func:`_server_owns_connection`)."""

        def build_response_header(self) -> bytes:
            if self.channel.server.draining or (self.environ or {}).get(CLOSE_AFTER):
                self.set_close_on_finish()  # adds Connection: close
            return bytes(super().build_response_header())

    class TimedParser(HTTPRequestParser):
        """A request being read; made when its first byte arrives."""

        def __init__(self, adj: Any) -> None:
            super().__init__(adj)
            self.started = time.monotonic()

    class JsonChannel(HTTPChannel):
        task_class = AppTask
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
                # a large body may take longer, at a rate a trickle cannot undercut: the
                # allowance follows the declared length (chunked bodies: the largest allowed)
                declared = int(getattr(request, "content_length", 0) or 0)
                if declared <= 0 and getattr(request, "chunked", False):
                    declared = self.adj.max_request_body_size
                limit, what = REQUEST_TIMEOUT + declared / MIN_BODY_RATE, "request"
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

    class Server(TcpWSGIServer):
        channel_class = JsonChannel
        next_deadline_check = 0.0
        draining = False  # set once it stops listening: each answer closes its connection

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
