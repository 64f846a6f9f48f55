"""Part of bench_desktop.py: the wadesk window on a data folder, timing how long opening a
chat takes until its newest messages are painted, and how long scrolling a long chat to the
top takes until the older page is in and painted.

Usage: python bench/desktop_chat_open.py DATA_DIR SMALL_JID BIG_JID ROUNDS

The window is the real one (MainWindow on a real session; the WhatsApp connection points at
a closed port, so nothing comes from the network). Each round opens the small chat, then the
big one, and scrolls the big one to the top. For each it notes the seconds until painted and
the longest stall of the GUI thread meanwhile (how late a 4 ms timer came at worst). Prints
one line ``RESULT <json>`` with the seconds of each round.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from wadesk.config import Config
from wadesk.core import open_session
from wadesk.core.datadir import DataDir
from wadesk.core.events import Status
from wadesk.ui import theme
from wadesk.ui.app import application
from wadesk.ui.localapi import TokenStore
from wadesk.ui.messenger import CONVERSATION_PAGE
from wadesk.ui.window import MainWindow

TIMEOUT_S = 60.0


class PaintWatch(QObject):
    """Notes the end of the first paint of a widget after which ``ready()`` holds, and ends
    the event loop that waits for it."""

    def __init__(self, widget: Any) -> None:
        super().__init__(widget)
        self.ready: Callable[[], bool] = lambda: False
        self.painted_at: float | None = None
        self.loop = QEventLoop()
        widget.installEventFilter(self)

    def arm(self, ready: Callable[[], bool]) -> None:
        self.ready, self.painted_at = ready, None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self.painted_at is None and self.ready():
            QTimer.singleShot(0, self._done)  # fires once this paint event has been handled
        return False

    def _done(self) -> None:
        if self.painted_at is None:
            self.painted_at = time.perf_counter()
            self.loop.quit()

    def wait(self, what: str | Callable[[], str]) -> float:
        """Run the event loop until the paint; returns when it ended (perf_counter)."""
        if self.painted_at is None:
            timer = QTimer()
            timer.setSingleShot(True)
            timer.timeout.connect(self.loop.quit)
            timer.start(int(TIMEOUT_S * 1000))
            self.loop.exec()
            timer.stop()
        if self.painted_at is None:
            raise RuntimeError(f"timed out waiting for {what if isinstance(what, str) else what()}")
        return self.painted_at


class Heartbeat(QObject):
    """A timer every few ms: how late it comes at worst is the longest time the GUI thread
    did not get back to its event loop (what a person feels as a stall)."""

    INTERVAL_MS = 4

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.last = time.perf_counter()
        self.longest = 0.0

    def start(self) -> None:
        self.last, self.longest = time.perf_counter(), 0.0
        self.timer.start(self.INTERVAL_MS)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now

    def stop(self) -> float:
        """How late the timer came at worst since start(): the longest gap between two ticks
        (up to now) less the interval it was due after."""
        self.timer.stop()
        self._tick()
        return max(0.0, self.longest - self.INTERVAL_MS / 1000)


def wait(app: QApplication, until: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not until():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.005)


def main() -> int:
    path, small, big, rounds = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    app = application()
    theme.apply(app)
    data = DataDir(path).prepare()
    data.open("desktop")
    config = Config(data_dir=data.path, proxy="http://127.0.0.1:9", send_interval=0)
    session = open_session(config, data)
    window = MainWindow(
        session, data, config, use_tray=False, token_store=TokenStore(config, data, backend=None)
    )
    window.resize(960, 700)
    window.show()
    session.start()
    messenger, model, view = window.messenger, window.model, window.log_view
    wait(
        app,
        lambda: window.chat_model.chat(big) is not None and window.chat_model.chat(small) is not None,
        "the chat list",
    )
    # the session has loaded the WhatsApp library and tried the (closed) port once: what is
    # timed below is the window, not the start-up
    wait(app, lambda: session.state.status is Status.RECONNECTING, "the first connection attempt")
    settle = time.monotonic() + 1.0
    wait(app, lambda: time.monotonic() > settle, "a quiet second")
    watch = PaintWatch(view.viewport())
    bar = view.verticalScrollBar()

    def opened(jid: str) -> Callable[[], bool]:
        return lambda: model.chat == jid and model.rowCount() > 0 and not model.loading and not view.settling

    heartbeat = Heartbeat()

    def open_chat(jid: str, name: str) -> None:
        watch.arm(opened(jid))
        heartbeat.start()
        started = time.perf_counter()
        messenger.open_chat(jid, focus=False)
        results[f"{name}_open_s"].append(watch.wait(f"{jid} painted") - started)
        results[f"{name}_open_stall_s"].append(heartbeat.stop())

    keys = ("small_open", "big_open", "big_top")
    results: dict[str, Any] = {f"{k}{s}": [] for k in keys for s in ("_s", "_stall_s")}
    results["first_rows"] = []
    for _ in range(rounds):
        open_chat(small, "small")
        open_chat(big, "big")
        results["first_rows"].append(model.rowCount())
        wait(app, lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), "the newest shown")
        rows = model.rowCount()
        watch.arm(lambda rows=rows: model.rowCount() >= rows + CONVERSATION_PAGE and not model.fetching)
        heartbeat.start()
        started = time.perf_counter()
        bar.setValue(0)
        results["big_top_s"].append(
            watch.wait(
                lambda rows=rows: (
                    f"the older page painted (rows {model.rowCount()}, was {rows}; fetching"
                    f" {model.fetching}; scroll bar {bar.value()} of {bar.maximum()})"
                )
            )
            - started
        )
        results["big_top_stall_s"].append(heartbeat.stop())
    results["page"] = CONVERSATION_PAGE
    print("RESULT " + json.dumps(results), flush=True)
    window.shutdown()
    window.wait_stopped(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
