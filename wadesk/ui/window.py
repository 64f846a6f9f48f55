"""The main window: connection state, pairing, the send form and the conversation log.

Threading: core events arrive through :class:`~.bridge.SessionBridge` signals (GUI thread).
``Session.send`` (a durable database write), ``logout``, ``request_pairing_code``, the
keyring and starting the local API run through :class:`~.bridge.Background`; at quit, the
local API and the session stop on a thread of their own. ``refresh_qr`` and ``reconnect``
only post a command to the session worker and return at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QGuiApplication, QKeySequence, QPaintEvent
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..config import Config
from ..core.datadir import DataDir
from ..core.events import IncomingMessage, SessionState, Status
from ..core.recipients import RecipientError
from ..core.session import StorageError, TextError
from . import theme as themes
from .banner import StatusBanner
from .bridge import Background, SessionBridge
from .compose import ComposeForm
from .dialogs import LocalApiDialog, about_box, logout_box
from .icons import app_icon
from .localapi import LocalApiServer, TokenInfo, TokenStore
from .messages import LogView, MessageLog, jid_label
from .pairing import PairingPage
from .status import Action, account_text, describe, needs_ticking
from .tray import Tray
from .tray import available as tray_available

if TYPE_CHECKING:
    from ..core.session import Session

log = logging.getLogger("wadesk.ui")

LOG_LIMIT = 500
SHUTDOWN_TIMEOUT = 4.0  # the session and the local API stop within this; the process ends within 5 s
JOBS_GRACE = 1.0  # at quit, background calls (a message being queued) may finish for this long
PAGE_PAIRING, PAGE_MESSAGES = 0, 1


class MainWindow(QMainWindow):
    firstPainted = Signal()
    quitRequested = Signal()  # after shutdown(): the session has stopped (or the time ran out)
    _stopped = Signal()  # from the stopper thread

    def __init__(
        self,
        session: Session,
        data: DataDir,
        config: Config,
        *,
        settings: QSettings | None = None,
        use_tray: bool | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.data = data
        self.config = config
        self.settings = settings or QSettings(str(data.file("desktop.ini")), QSettings.Format.IniFormat)
        self.token_store = token_store or TokenStore(config, data)
        self.theme = themes.current()
        self._painted = False
        self._closed = False
        self._quitting = False
        self._quit_sent = False
        self._stopper: threading.Thread | None = None
        self._stop_deadline = 0.0
        self._told_about_tray = False
        self._paired = session.state.paired
        self._state: SessionState = session.state
        self.api: LocalApiServer | None = None  # the running local API, as the GUI thread knows it
        self.api_error = ""
        self._api_server: LocalApiServer | None = None  # the running local API (guarded by _api_lock)
        self._api_lock = threading.Lock()
        self._api_change = 0

        self.setWindowTitle("wadesk")
        self.setWindowIcon(app_icon())
        self.setMinimumSize(640, 520)
        self.resize(960, 700)

        # ---- widgets ----
        self.banner = StatusBanner(self)
        self.banner.theme = self.theme
        self.pairing = PairingPage(self)
        self.model = MessageLog(self)
        self.log_view = LogView(self)
        self.log_view.bubbles.theme = self.theme
        self.log_view.setModel(self.model)
        self.compose = ComposeForm(self)
        self.compose.apply_theme(self.theme)
        messages_page = QWidget(self)
        mbox = QVBoxLayout(messages_page)
        mbox.setContentsMargins(0, 0, 0, 0)
        mbox.setSpacing(0)
        mbox.addWidget(self.log_view, 1)
        mbox.addWidget(self.compose, 0)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.pairing)
        self.pages.addWidget(messages_page)
        central = QWidget(self)
        cbox = QVBoxLayout(central)
        cbox.setContentsMargins(0, 0, 0, 0)
        cbox.setSpacing(0)
        cbox.addWidget(self.banner)
        cbox.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        self.outbox_label = QLabel("", self)
        self.outbox_label.setAccessibleName("Outbox")
        self.api_label = QLabel("", self)
        self.api_label.setAccessibleName("Local API")
        self.statusBar().addPermanentWidget(self.outbox_label)
        self.statusBar().addPermanentWidget(self.api_label)
        self.statusBar().setSizeGripEnabled(False)

        self._build_menus()

        # ---- plumbing ----
        self.jobs = Background(self)
        self._stopped.connect(self._shut_down)
        self.bridge = SessionBridge(session, self)
        self.bridge.stateChanged.connect(self.on_state)
        self.bridge.qrChanged.connect(self.on_qr)
        self.bridge.messageChanged.connect(self.on_message)
        self.bridge.incoming.connect(self.on_incoming)
        self.banner.actionTriggered.connect(self.on_banner_action)
        self.compose.sendRequested.connect(self.send)
        self.pairing.refreshRequested.connect(self.refresh_qr)
        self.pairing.pairCodeRequested.connect(self.request_pairing_code)
        self.log_view.replyRequested.connect(self.compose.set_recipient)
        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self.tick)

        self.tray: Tray | None = None
        if use_tray is None:
            use_tray = tray_available()
        if use_tray:
            self.tray = Tray(self)
            self.tray.showRequested.connect(self.bring_to_front)
            self.tray.quitRequested.connect(self.quit)
            self.tray.show()

        self._restore_geometry()
        self.reload_log()
        self.on_state(session.state)

    # ---- menus ----
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.quit_action.triggered.connect(self.quit)
        file_menu.addAction(self.quit_action)

        account = bar.addMenu("&Account")
        self.account_menu = account
        self.logout_action = QAction("&Log out…", self)
        self.logout_action.triggered.connect(self.confirm_logout)
        self.open_folder_action = QAction("&Open data folder", self)
        self.open_folder_action.triggered.connect(self.open_data_folder)
        self.copy_token_action = QAction("&Copy local API token", self)
        self.copy_token_action.triggered.connect(self.copy_api_token)
        self.api_settings_action = QAction("Local &API…", self)
        self.api_settings_action.triggered.connect(self.show_api_settings)
        account.addAction(self.logout_action)
        account.addSeparator()
        account.addAction(self.open_folder_action)
        account.addAction(self.copy_token_action)
        account.addAction(self.api_settings_action)

        help_menu = bar.addMenu("&Help")
        about = QAction("&About wadesk", self)
        about.triggered.connect(lambda: about_box(self).open())
        help_menu.addAction(about)

    # ---- geometry ----
    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def save_geometry(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.sync()

    # ---- content ----
    def reload_log(self) -> None:
        """Fill the log from the store (the messages survive a restart)."""
        try:
            records = self.session.messages(limit=LOG_LIMIT)
        except StorageError:
            log.exception("reading the message log failed")
            records = []
        self.model.load(records)
        self.update_outbox()

    def update_outbox(self) -> None:
        waiting = self.session.outbox_depth()
        if waiting:
            self.outbox_label.setText(f"Outbox: {waiting} waiting")
        else:
            self.outbox_label.setText("Outbox empty")
        # on the pairing page only when something waits (sent through the local API, or earlier)
        self.outbox_label.setVisible(bool(waiting) or self.pages.currentIndex() == PAGE_MESSAGES)

    # ---- core events (GUI thread) ----
    def on_state(self, state: SessionState) -> None:
        self._state = state
        self._paired = state.paired
        view = describe(state)
        self.banner.show_view(view)
        self.pairing.set_state(state)
        connected = state.status is Status.CONNECTED
        self.compose.set_connected(connected)
        self.logout_action.setEnabled(connected)
        show_pairing = state.status is Status.WAITING_FOR_SCAN or (
            not self._paired and state.status is not Status.CONNECTED
        )
        page = PAGE_PAIRING if show_pairing else PAGE_MESSAGES
        if self.pages.currentIndex() != page:
            self.pages.setCurrentIndex(page)
            if page == PAGE_MESSAGES and self.isActiveWindow():
                (
                    self.compose.recipient if not self.compose.recipient.text() else self.compose.message
                ).setFocus()
            if page == PAGE_PAIRING and not self.pairing.phone_mode:
                self.pairing.show_qr()
        if self.tray is not None:
            self.tray.set_status(view.text)
        if needs_ticking(state):
            if not self.ticker.isActive():
                self.ticker.start()
        else:
            self.ticker.stop()
        self.update_outbox()

    def on_qr(self, code: str, expires_at: float) -> None:
        # a rotation is not a state change: only this event carries the new code
        if self._state.status is Status.WAITING_FOR_SCAN:
            self.on_state(self._state.evolve(qr=code, qr_expires_at=expires_at))

    def on_message(self, event: Any) -> None:
        self.model.apply(event, lookup=self.session.message)
        self.update_outbox()

    def on_incoming(self, event: IncomingMessage) -> None:
        self.model.apply(event)
        if self.tray is not None and not (self.isVisible() and self.isActiveWindow()):
            who = event.push_name or jid_label(event.sender or event.chat)
            self.tray.notify(who, event.text)

    def tick(self) -> None:
        now = time.time()
        self.banner.show_view(describe(self._state, now))
        self.pairing.tick(now)

    # ---- actions ----
    def on_banner_action(self, action: str) -> None:
        if action in (Action.TRY_AGAIN.value, Action.RECONNECT_NOW.value):
            self.reconnect()
        elif action == Action.NEW_CODE.value:
            self.refresh_qr()

    def reconnect(self) -> None:
        self.session.reconnect()  # posts a command; returns at once

    def refresh_qr(self) -> None:
        self.pairing.new_code_button.setEnabled(False)
        button = self.pairing.new_code_button
        QTimer.singleShot(1500, button, lambda: button.setEnabled(True))
        self.session.refresh_qr()

    def send(self, recipient: str, text: str) -> None:
        """Queue a message in the durable outbox, off the GUI thread (a database write)."""
        if self.compose.busy:
            return
        self.compose.set_busy(True)

        def done(record: Any) -> None:
            log.info("message %s queued from the window", record.id, extra={"message_id": record.id})
            self.compose.set_busy(False)
            self.compose.sent(text)
            if self._state.status is not Status.CONNECTED:
                self.statusBar().showMessage("Queued: it goes out when wadesk is connected again.", 6000)
            self.update_outbox()

        def failed(exc: BaseException) -> None:
            self.compose.set_busy(False)
            if isinstance(exc, RecipientError):
                self.compose.show_error(f"Recipient: {exc}")
            elif isinstance(exc, TextError):
                self.compose.show_error(f"Message: {exc}")
            elif isinstance(exc, StorageError):
                log.warning("queueing a message failed: %s", exc)
                problem = "the disk is full" if exc.kind == "full" else f"its database is {exc.kind}"
                self.compose.show_error(
                    f"Not queued: wadesk cannot store messages right now ({problem}). "
                    "Nothing was lost; try again in a moment."
                )
            else:
                log.error("queueing a message failed: %s", exc)
                self.compose.show_error(f"Could not queue the message: {exc}")

        self.jobs.run(
            lambda: self.session.send(recipient, text, source="desktop")[0], done, failed, name="send"
        )

    def request_pairing_code(self, phone: str) -> None:
        def failed(exc: BaseException) -> None:
            self.pairing.show_pair_error(str(exc) or type(exc).__name__)

        self.jobs.run(
            lambda: self.session.request_pairing_code(phone),
            self.pairing.show_pair_code,
            failed,
            name="pair-code",
        )

    def confirm_logout(self) -> QMessageBox | None:
        if self._state.status is not Status.CONNECTED:
            return None
        box = logout_box(self, account_text(self._state))
        box.accepted.connect(self.logout)
        box.open()
        return box

    def logout(self) -> None:
        self.logout_action.setEnabled(False)
        self.statusBar().showMessage("Logging out…")

        def done(_: Any) -> None:
            self.statusBar().showMessage("Logged out. Scan the QR code to link a phone again.", 8000)

        def failed(exc: BaseException) -> None:
            self.statusBar().clearMessage()
            self.logout_action.setEnabled(self._state.status is Status.CONNECTED)
            box = QMessageBox(QMessageBox.Icon.Warning, "Log out", f"Logging out failed: {exc}", parent=self)
            box.open()

        self.jobs.run(self.session.logout, done, failed, name="logout")

    def open_data_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.data.path)))

    def copy_api_token(self) -> None:
        def done(info: TokenInfo) -> None:
            QGuiApplication.clipboard().setText(info.value)
            note = "Local API token copied."
            if info.warning:
                note += " " + info.warning
            self.statusBar().showMessage(note, 10000)

        self.jobs.run(self.token_store.get, done, self._token_failed, name="token")

    def _token_failed(self, exc: BaseException) -> None:
        self.statusBar().showMessage(f"The local API token is not available: {exc}", 10000)

    # ---- local API ----
    @property
    def api_enabled(self) -> bool:
        return str(self.settings.value("local_api/enabled", "false")).lower() == "true"

    @property
    def api_port(self) -> int:
        try:
            return int(str(self.settings.value("local_api/port", self.config.port)))
        except (TypeError, ValueError):
            return self.config.port

    def show_api_settings(self) -> LocalApiDialog:
        dialog = LocalApiDialog(self, enabled=self.api_enabled, port=self.api_port)
        self.jobs.run(
            self.token_store.get,
            dialog.set_token,
            lambda exc: dialog.set_token_error(str(exc)),
            name="token",
        )

        def save() -> None:
            self.settings.setValue("local_api/enabled", "true" if dialog.enabled.isChecked() else "false")
            self.settings.setValue("local_api/port", dialog.port.value())
            self.settings.sync()
            self.apply_api_setting()

        dialog.accepted.connect(save)
        dialog.open()
        return dialog

    def apply_api_setting(self) -> None:
        """Start, restart or stop the local API to match the setting (off the GUI thread).

        Changes are applied one at a time, in order, by whichever job holds ``_api_lock``; the
        server itself is kept in ``_api_server`` (guarded by that lock), and :attr:`api`
        mirrors it in the GUI thread once the newest change is done.
        """
        enabled, port = self.api_enabled, self.api_port
        self._api_change += 1
        change = self._api_change
        if enabled:
            self.api_label.setText("Local API: starting…")

        def work() -> LocalApiServer | None:
            with self._api_lock:
                server = self._api_server
                if server is not None and (not enabled or server.port != port):
                    self._api_server = None
                    server.stop()
                if enabled and self._api_server is None and not self._closed:
                    info = self.token_store.get()
                    server = LocalApiServer(self.session, info.value, host="127.0.0.1", port=port)
                    server.start()
                    self._api_server = server
                return self._api_server

        def done(server: LocalApiServer | None) -> None:
            if change == self._api_change:  # else a newer change is on its way
                self.api, self.api_error = server, ""
                self._show_api_status()

        def failed(exc: BaseException) -> None:
            log.warning("the local API could not start: %s", exc)
            if change == self._api_change:
                self.api, self.api_error = None, str(exc)
                self._show_api_status()

        self.jobs.run(work, done, failed, name="local-api")

    def _show_api_status(self) -> None:
        if self.api is not None:
            self.api_label.setText(f"Local API: {self.api.url}")
        elif self.api_error:
            self.api_label.setText("Local API: not running")
            self.statusBar().showMessage(f"The local API could not start: {self.api_error}", 15000)
        else:
            self.api_label.setText("")

    # ---- window ----
    def bring_to_front(self) -> None:
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            QTimer.singleShot(0, self, self.firstPainted.emit)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._quitting and self.tray is not None and self.tray.visible and self.close_to_tray:
            self.save_geometry()
            event.ignore()
            self.hide()
            if not self._told_about_tray:
                self._told_about_tray = True
                self.tray.notify("wadesk is still running", "Open it from the tray icon; Quit from its menu.")
            return
        event.accept()
        self.shutdown()  # quitRequested follows once the session has stopped

    @property
    def is_shut_down(self) -> bool:
        return self._closed

    @property
    def close_to_tray(self) -> bool:
        return str(self.settings.value("window/close_to_tray", "true")).lower() == "true"

    def quit(self) -> None:
        self._quitting = True
        self.close()

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Stop everything this window started; idempotent, and it returns at once.

        The window hides now; the local API and the session stop on a thread of their own, so
        the GUI thread never waits for them. :attr:`quitRequested` is emitted (GUI thread) when
        they have stopped, or ``timeout`` + 0.5 s from now if they have not.
        """
        if self._closed:
            return
        self._closed = True
        self._stop_deadline = time.monotonic() + timeout + 0.5
        self.hide()
        self.save_geometry()
        self.ticker.stop()
        self.bridge.close()
        self.jobs.close()
        if self.tray is not None:
            self.tray.hide()
        self.api = None
        self._stopper = threading.Thread(
            target=self._stop_all, args=(timeout,), name="wadesk-ui-stop", daemon=True
        )
        self._stopper.start()
        QTimer.singleShot(round((timeout + 0.5) * 1000), self, self._shut_down)

    def _stop_all(self, timeout: float) -> None:
        """Runs on the stopper thread: nothing here touches a widget."""
        started = time.monotonic()
        self.jobs.wait(JOBS_GRACE)  # a message being queued is stored before the session stops
        if self._api_lock.acquire(timeout=1.0):  # a local API being started is stopped too
            try:
                api, self._api_server = self._api_server, None
            finally:
                self._api_lock.release()
            if api is not None:
                api.stop(1.0)
        self.session.stop(max(0.5, timeout - (time.monotonic() - started)))  # it logs an overrun
        log.info("window closed; session stopped in %.2f s", time.monotonic() - started)
        with contextlib.suppress(RuntimeError):  # the window object is gone (tests)
            self._stopped.emit()

    def _shut_down(self) -> None:
        if not self._quit_sent:
            self._quit_sent = True
            self.quitRequested.emit()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the session stopped (after the event loop ended, and in tests); by
        default no longer than shutdown's own time limit. True if it stopped."""
        stopper = self._stopper
        if stopper is None:
            return False
        if timeout is None:
            timeout = self._stop_deadline - time.monotonic()
        stopper.join(max(0.0, timeout))
        return not stopper.is_alive()
