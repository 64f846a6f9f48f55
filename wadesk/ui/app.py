"""``wadesk`` without --headless: the desktop window.

Start-up order: a window already running on the same data folder is asked to come to the
front (and this start ends, exit 0); then the data folder is locked and its databases are
checked (a refusal is one sentence in a dialog, exit 2). The rest is chosen for speed: Qt and
the window first; the WhatsApp session (whose worker thread loads neonize's Go library)
starts only once the window has been painted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from typing import Any

from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from .. import __version__, logs
from ..config import Config
from ..core import open_session
from ..core.datadir import DataDir, DataDirError
from . import collector
from . import theme as themes
from .icons import app_icon
from .single import SingleInstance, server_name
from .window import MainWindow

log = logging.getLogger("wadesk.ui")

EXIT_REFUSED = 2  # as for a bad setting: the data folder is in use, damaged or unusable


def process_age() -> float | None:
    """Seconds since this process started (Linux), for the start-up log line."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("wadesk")
    app.setApplicationDisplayName("wadesk")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("wadesk")
    app.setDesktopFileName("wadesk")
    app.setWindowIcon(app_icon())
    collector.install(app)  # cycles of Qt objects are freed on the GUI thread only
    return app


QUIT_SIGNALS = tuple(
    getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n)
)
STATE_SIGNALS = tuple(getattr(signal, n) for n in ("SIGUSR1",) if hasattr(signal, n))


class _SignalRelay:
    """SIGINT, SIGTERM, SIGHUP and SIGQUIT end the app cleanly, SIGUSR1 logs the state:
    Python runs the handler when the Qt loop wakes up on the wake-up socket."""

    def __init__(self, app: QApplication, on_signal: Any) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno())
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read, app)
        self._notifier.activated.connect(self._drain)
        self._previous = {}
        for sig in (*QUIT_SIGNALS, *STATE_SIGNALS):
            self._previous[sig] = signal.signal(sig, lambda signum, frame: on_signal(signum))

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            self._read.recv(256)

    def close(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._notifier.setEnabled(False)
        self._read.close()
        self._write.close()


def refuse(message: str) -> int:
    """Say why wadesk does not start, on stderr and in a dialog (one sentence), and return
    exit code 2."""
    print(f"wadesk: {message}", file=sys.stderr)
    QMessageBox.critical(None, "wadesk", message[:1].upper() + message[1:])
    return EXIT_REFUSED


def run(config: Config, data: DataDir) -> int:
    """The window on ``data`` (not yet opened: a second start only raises the first window,
    without touching the folder; otherwise the folder is locked and checked here)."""
    logs.setup(config.log_level, config.log_format)
    app = application()
    single = SingleInstance(server_name(data.path))
    if single.notify_running():
        print("wadesk is already running with this data folder; its window was brought to the front.")
        return 0
    try:
        data.open("desktop", reset_store=config.reset_store)  # held until the process ends
    except DataDirError as exc:
        themes.apply(app)
        return refuse(exc.one_line())
    single.listen()
    themes.apply(app)
    try:
        session = open_session(config, data)
    except Exception as exc:
        log.exception("the data folder %s cannot be used", data.path)
        QMessageBox.critical(None, "wadesk", f"wadesk cannot use its data folder {data.path}:\n{exc}")
        single.close()
        return 1

    window = MainWindow(session, data, config)
    single.raiseRequested.connect(window.bring_to_front)
    # closing the window (or Quit) stops the session on a thread; the loop ends when that is done
    window.quitRequested.connect(app.quit)
    app.setQuitOnLastWindowClosed(False)

    started = False

    def start_session(painted: bool = True) -> None:
        nonlocal started
        if started or window.is_shut_down:
            return
        started = True
        age = process_age()
        log.info(
            "%s%s",
            "window shown" if painted else "window not painted yet; starting anyway",
            f" {age:.2f} s after start" if age is not None else "",
            extra={"startup_s": round(age, 3) if age is not None else None},
        )
        session.start()
        if window.api_enabled:
            window.apply_api_setting()

    window.firstPainted.connect(start_session)
    # in case the window is never painted (minimised, hidden); bench/ reads "window shown" only
    QTimer.singleShot(1500, lambda: start_session(painted=False))

    def on_signal(signum: int) -> None:
        if signum in STATE_SIGNALS:
            waiting = window.outbox_waiting  # as last read (the GUI thread does not read the store)
            log.info(
                "signal %d: session %s; outbox %s",
                signum,
                session.state.describe(),
                "not read yet" if waiting is None else f"{waiting} waiting",
            )
            return
        log.info("signal %d: quitting", signum)
        window.quit()

    relay = _SignalRelay(app, on_signal)
    window.show()
    try:
        app.exec()
    finally:
        window.shutdown()  # no-op if closing the window started it already
        window.wait_stopped()  # the loop has ended: nothing on screen waits
        data.remember()  # what the databases hold now, for the next start's check
        single.close()
        relay.close()
    return 0
