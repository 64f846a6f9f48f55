"""Logging: one line per record, JSON or text, to stderr.

Extra fields given with ``log.info(..., extra={...})`` become JSON keys (or ``key=value``
in text). The Go library inside neonize prints a few lines straight to file descriptor 1;
:func:`capture_stray_output` turns those into DEBUG records so that structured logs stay
structured.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sys
import threading
from typing import Any, TextIO

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def setup(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Configure the root logger (replacing earlier handlers) and return our handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # whatsmeow is chatty at INFO; show it one level quieter than ours, errors always
    quieter = {"DEBUG": "INFO", "INFO": "WARNING"}.get(level, level)
    for name in ("whatsmeow", "Whatsmeow", "neonize"):
        logging.getLogger(name).setLevel(quieter)
    logging.getLogger("waitress.queue").setLevel("ERROR")
    return handler


def capture_stray_output() -> None:
    """Point file descriptor 1 at a pipe read by a thread that logs each line at DEBUG.

    Python's own ``print`` output (sys.stdout) goes the same way. Only the headless mode
    uses this: there, stdout must not carry anything but what we decide.
    """
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os.dup2(write_fd, 1)
    os.close(write_fd)
    stray = logging.getLogger("wadesk.stdout")

    def pump() -> None:
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            buf = b""
            while True:
                chunk = pipe.read(4096)
                if not chunk:
                    return
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", "replace").rstrip()
                    if text:
                        stray.debug("library output: %s", text)

    threading.Thread(target=pump, name="wadesk-stdout", daemon=True).start()
