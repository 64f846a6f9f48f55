"""Fixtures for the desktop window tests (pytest-qt, offscreen).

The Qt platform is chosen here, before any QApplication exists. The real keyring is never
touched: tests that need a secure keyring pass an in-memory one to the token store.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import tempfile
import threading
import time

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
if not os.environ.get("XDG_RUNTIME_DIR"):  # Qt warns (and the warning fails a test) without it
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="wadesk-test-xdg-")

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wadesk.config import Config
from wadesk.core.datadir import DataDir

from .fakes import FakeSession

# The offscreen platform has no window system: it cannot pass size hints to one, nor raise a
# window above others, and says so. That is about the test platform, not about wadesk.
OFFSCREEN_NOISE = (
    r"^This plugin does not support propagateSizeHints\(\)$",
    r"^This plugin does not support raise\(\)$",
)


def pytest_itemcollected(item: pytest.Item) -> None:
    item.add_marker(pytest.mark.qt_log_ignore(*OFFSCREEN_NOISE))


# threads that the window, the session and the local API start (neonize's own calls may be
# left to finish in the background by the core, by design: not listed)
OWNED_THREADS = (
    "wadesk-session",
    "wadesk-sender",
    "wadesk-media",
    "wadesk-ui-",
    "wadesk-local-api",
    "waitress-",
)


@pytest.fixture(autouse=True)
def _threads_are_stopped() -> Iterator[None]:
    """Every test's teardown stops the threads the test started."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    left = [t for t in threading.enumerate() if t not in before and t.name.startswith(OWNED_THREADS)]
    for thread in left:
        thread.join(max(0.0, deadline - time.monotonic()))
    running = [t.name for t in left if t.is_alive()]
    assert not running, f"threads still running after the test: {running}"
    # the test's Qt objects caught in cycles are freed here, on the GUI thread, not by a
    # collection that a later test's worker thread happens to start (see wadesk/ui/collector.py)
    gc.collect()


@pytest.fixture(scope="session", autouse=True)
def _themed_app(qapp: Any) -> Any:
    """The application as ``wadesk`` sets it up: name, icon, Fusion style, palette, style sheet."""
    from wadesk.ui import theme
    from wadesk.ui.app import application

    app = application()
    theme.apply(app)
    return app


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    return DataDir(tmp_path / "data").prepare()


@pytest.fixture
def fake_session(data: DataDir) -> Iterator[FakeSession]:
    session = FakeSession(data.store_db)
    yield session
    session.store.close()


class MemoryKeyring:
    """A secure-looking keyring backend that keeps passwords in a dict."""

    priority = 5
    name = "Memory test keyring"

    def __init__(self) -> None:
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password


@pytest.fixture
def make_window(qtbot: Any, data: DataDir) -> Iterator[Callable[..., Any]]:
    """Build MainWindow instances; every one is shut down (its session stopped) at teardown."""
    from wadesk.ui.localapi import TokenStore
    from wadesk.ui.window import MainWindow

    windows: list[MainWindow] = []

    def make(
        session: Any,
        *,
        config: Config | None = None,
        keyring: Any = None,
        show: bool = True,
        use_tray: bool = False,
    ) -> MainWindow:
        cfg = config or Config(data_dir=data.path)
        window = MainWindow(
            session, data, cfg, use_tray=use_tray, token_store=TokenStore(cfg, data, backend=keyring)
        )
        qtbot.addWidget(window)
        windows.append(window)
        if show:
            window.show()
            qtbot.waitExposed(window)
        return window

    yield make
    for window in windows:
        window.shutdown()
        assert window.wait_stopped(5)
        assert window.jobs.wait(5)


@pytest.fixture
def make_rig(qtbot: Any, data: DataDir, make_window: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """Windows on a real Session with the fake driver (see rig.py); ``make_rig(**options)``
    passes options to the Session; the window is shown and active. ``paired`` (default):
    a phone was linked before, so the window shows the chats, not the pairing page."""
    from fake_driver import FakeDriverFactory

    from wadesk.core.mediafiles import MediaFiles
    from wadesk.core.session import Session
    from wadesk.core.store import Store

    from .rig import Rig

    rigs: list[Rig] = []

    def make(*, paired: bool = True, use_tray: bool = False, **session_options: Any) -> Rig:
        if paired:  # a phone was linked before: what neonize's session database shows then
            with contextlib.closing(sqlite3.connect(data.session_db)) as db:
                db.execute("CREATE TABLE IF NOT EXISTS whatsmeow_device (jid TEXT)")
                if not db.execute("SELECT count(*) FROM whatsmeow_device").fetchone()[0]:
                    db.execute("INSERT INTO whatsmeow_device VALUES ('15550001111:1@s.whatsapp.net')")
                db.commit()
        factory = FakeDriverFactory()
        session_options.setdefault("send_interval", 0)
        session = Session(
            Store(data.store_db),
            data.session_db,
            driver_factory=factory,
            media_files=MediaFiles(data.path / "media"),
            **session_options,
        )
        window = make_window(session, use_tray=use_tray)
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)
        rig = Rig(qtbot, window, session, factory)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.window.shutdown()
        assert rig.window.wait_stopped(5)
        assert rig.window.jobs.wait(5)
        assert rig.window.loader.wait(5)
        rig.session.store.close()


@pytest.fixture
def rig(make_rig: Callable[..., Any]) -> Any:
    return make_rig()
