"""Cheap logging for a busy gateway: a buffered log stream and a fast access-log line.

Every request writes one access-log line. Through the logging machinery that line costs
more CPU than a small request itself (a LogRecord, the JSON formatter, a write and flush
per line that also hands the GIL around), which showed as a quarter less throughput on
GET /health. Two things keep it cheap without changing what is logged:

* :class:`BufferedLogStream` is the log handler's stream: lines collect in memory and a
  thread writes them to the file descriptor in one ``write`` every 50 ms; a WARNING or
  worse is written at once, and so is everything at exit. A hard crash can lose the last
  50 ms of INFO lines, never an error that was logged before it.
* :class:`AccessLog` hands the stream the request's few fields; the writer thread turns
  them into the line, byte for byte as the configured :mod:`wadesk.logs` formatter would
  (a test compares them), in batches, off the request threads.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

ACCESS_LOGGER = "wadesk.http"
FLUSH_INTERVAL = 0.05


class BufferedLogStream:
    """A write-only text stream over a file descriptor, flushed in batches."""

    encoding = "utf-8"

    def __init__(self, fd: int = 2, interval: float = FLUSH_INTERVAL) -> None:
        self._fd = fd
        self._interval = interval
        self._lines: collections.deque[Any] = collections.deque()  # str, or (render, args)
        self._lock = threading.RLock()  # an RLock: sync() may run in a signal handler
        self._urgent = False
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wadesk-log-writer", daemon=True)
        self._thread.start()

    # -- the stream interface the log handler uses --
    def write(self, text: str) -> int:
        self._lines.append(text)  # deque.append is atomic: no lock on the request path
        return len(text)

    def defer(self, render: Callable[..., str], *args: Any) -> None:
        """Queue a line that ``render(*args)`` makes when the batch is written."""
        self._lines.append((render, args))

    def flush(self) -> None:
        """The handler calls this after every record: a real write only after a warning."""
        if self._urgent:
            self._urgent = False
            self.sync()

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    # -- control --
    def mark_urgent(self, record: logging.LogRecord) -> bool:
        """A handler filter: records of WARNING and above are written at once."""
        if record.levelno >= logging.WARNING:
            self._urgent = True
        return True

    def sync(self) -> None:
        """Write everything collected so far."""
        with self._lock:
            count = len(self._lines)
            if not count:
                return
            parts = []
            for _ in range(count):
                item = self._lines.popleft()
                if type(item) is not str:
                    render, args = item
                    try:
                        item = render(*args) + "\n"
                    except Exception as exc:  # noqa: BLE001 - never lose the rest of the batch
                        item = f"(a log line could not be written: {exc!r})\n"
                parts.append(item)
            data = "".join(parts).encode("utf-8", "backslashreplace")
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self._fd, view)
                except InterruptedError:
                    continue
                except OSError:
                    return  # nowhere to log to; the process goes on
                view = view[written:]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(1.0)
        self.sync()

    def _run(self) -> None:
        while not self._closed.wait(self._interval):
            self.sync()


class AccessLog:
    """One access-log line per request, in the format of :mod:`wadesk.logs` (json or text)."""

    def __init__(self, fmt: str, stream: BufferedLogStream) -> None:
        self._json = fmt == "json"
        self._stream = stream
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self._name = ACCESS_LOGGER

    def __call__(self, method: str, path: str, route: str, status: int, seconds: float) -> None:
        if self._logger.isEnabledFor(logging.INFO):
            self._stream.defer(self.line, time.time(), method, path, route, status, seconds)

    def line(self, created: float, method: str, path: str, route: str, status: int, seconds: float) -> str:
        millis = seconds * 1000
        message = f"{method} {path} {status} {millis:.1f} ms"
        duration = round(millis, 2)
        if self._json:
            stamp = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
            return (
                f'{{"time": "{stamp}", "level": "INFO", "logger": "{self._name}", '
                f'"message": {encode_basestring(message)}, "method": {encode_basestring(method)}, '
                f'"route": {encode_basestring(route)}, "status": {status}, "duration_ms": {duration!r}}}'
            )
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
        return (
            f"{stamp} INFO    {self._name}: {message} "
            f"method={method} route={route} status={status} duration_ms={duration}"
        )

    @staticmethod
    def fields(method: str, route: str, status: int, seconds: float) -> dict[str, Any]:
        """The same fields as ``extra`` for a LogRecord (the slow path, used by tests' log capture)."""
        return {"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 2)}
