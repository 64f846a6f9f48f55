"""The fast access-log line is the line wadesk.logs would write; the buffered stream loses nothing."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from headless_harness import wait_until

from wadesk import logs
from wadesk.api.logstream import AccessLog, BufferedLogStream


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize(
    ("method", "path", "route", "status", "seconds"),
    [
        ("GET", "/health", "/health", 200, 0.000512),
        ("POST", "/send", "/send", 202, 0.0123456),
        ("GET", '/we"ird\\path/\u00e9', "unmatched", 404, 1.5),
        ("DELETE", "/messages/msg_1", "/messages/<message_id>", 405, 0.0),
    ],
)
def test_access_line_matches_the_configured_formatter(
    fmt: str, method: str, path: str, route: str, status: int, seconds: float
) -> None:
    formatter = logs.JsonFormatter() if fmt == "json" else logs.TextFormatter()
    created = 1_795_539_696.2605412
    record = logging.LogRecord("wadesk.http", logging.INFO, __file__, 0, "%s %s %d %.1f ms", None, None)
    record.args = (method, path, status, seconds * 1000)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    for key, value in AccessLog.fields(method, route, status, seconds).items():
        setattr(record, key, value)
    fast = AccessLog(fmt, None).line(created, method, path, route, status, seconds)  # type: ignore[arg-type]
    assert fast == formatter.format(record)


def test_access_lines_keep_their_place_among_other_records(tmp_path: Path) -> None:
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    stream = BufferedLogStream(fd, interval=3600)
    access = AccessLog("json", stream)
    logger = logging.getLogger("wadesk.http")
    old = logger.level
    try:
        logger.setLevel(logging.WARNING)
        access("GET", "/skipped", "/health", 200, 0.001)  # below the level: nothing
        logger.setLevel(logging.INFO)
        stream.write("before\n")
        access("GET", "/health", "/health", 200, 0.001)
        stream.write("after\n")
        stream.sync()
        before, line, after = path.read_text().splitlines()
        assert (before, after) == ("before", "after")
        assert json.loads(line)["message"].startswith("GET /health 200 ")
    finally:
        logger.setLevel(old)
        stream.close()
        os.close(fd)


def test_buffered_stream_writes_in_batches_and_at_once_after_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    stream = BufferedLogStream(fd, interval=3600)  # no periodic flush during the test
    handler = logging.StreamHandler(stream)  # type: ignore[arg-type]
    handler.addFilter(stream.mark_urgent)
    logger = logging.Logger("buffered-test")
    logger.addHandler(handler)
    try:
        logger.info("first")
        logger.info("second")
        assert path.read_text() == ""  # collected, not written yet
        logger.warning("a warning")
        assert path.read_text() == "first\nsecond\na warning\n"
        logger.info("third")
        stream.close()  # at exit everything is written
        assert path.read_text().endswith("a warning\nthird\n")
    finally:
        os.close(fd)


def test_buffered_stream_flushes_periodically(tmp_path: Path) -> None:
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    stream = BufferedLogStream(fd, interval=0.02)
    try:
        stream.write("line\n")
        stream.flush()
        wait_until(lambda: path.read_text() == "line\n", 5, "the periodic write")
    finally:
        stream.close()
        os.close(fd)
