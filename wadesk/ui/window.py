"""The main window: connection state, pairing, and the messenger (chats and a conversation).

Threading: core events arrive through :class:`~.bridge.SessionBridge` signals (GUI thread).
Every read of the store (the chat list, a conversation's pages, search, one chat or
message, the outbox count) and the small writes of drafts and new chats run on the
:class:`~.loader.Loader` thread, in order. ``Session.send`` and ``send_media`` (durable
writes), marking a chat read (it may tell WhatsApp), asking WhatsApp whether a number has
an account, ``logout``, ``request_pairing_code``, the keyring, starting the local API,
reading and checking a file to attach, decoding the pictures, and copying a file to open
or save it run through :class:`~.bridge.Background`; at quit, the local API and the
session stop on a thread of their own. ``refresh_qr`` and ``reconnect`` only post a
command to the session worker and return at once.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QSettings, QStandardPaths, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPaintEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
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
from ..core.recipients import RecipientError, parse_recipient
from ..core.session import SessionError, StorageError, TextError
from ..core.store import ChatRecord, phone_of
from . import theme as themes
from .banner import StatusBanner
from .bridge import Background, SessionBridge
from .chats import chat_title, person_label, pretty_phone
from .compose import ATTACH_SHORTCUT, PREVIEW_SIDE, local_files
from .conversation import NewChatDialog
from .dialogs import LocalApiDialog, about_box, logout_box
from .icons import app_icon
from .loader import Loader
from .localapi import LocalApiServer, TokenInfo, TokenStore
from .media import (
    PASTED_NAME,
    Attachment,
    MediaItem,
    Thumbnails,
    load_file,
    load_image,
    open_copy,
    send_problem,
)
from .messages import Entry, jid_label
from .messenger import RECEIPTS_KEY, MessengerPage
from .pairing import PairingPage
from .status import Action, account_text, describe, needs_ticking
from .tray import Tray
from .tray import available as tray_available

if TYPE_CHECKING:
    from ..core.session import Session

log = logging.getLogger("wadesk.ui")

SHUTDOWN_TIMEOUT = 4.0  # the session and the local API stop within this; the process ends within 5 s
JOBS_GRACE = 1.0  # at quit, background calls (a message being queued) may finish for this long
PAGE_PAIRING, PAGE_MESSAGES = 0, 1
OPENED_FOLDER = "opened"  # in the data folder: received and sent files under their own names, to open
NEW_CHAT_SHORTCUT = "Ctrl+N"
SEARCH_SHORTCUTS = ("Ctrl+K", "Ctrl+F")
NEXT_CHAT_SHORTCUTS = ("Alt+Down", "Ctrl+Tab")
PREVIOUS_CHAT_SHORTCUTS = ("Alt+Up", "Ctrl+Shift+Tab")


class FileGone(Exception):
    """A media file the log shows is not in the data folder (any more)."""


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
        self.setMinimumSize(360, 480)
        self.resize(1040, 720)
        self._outbox: int | None = None  # the last count read
        self._outbox_asked = False
        self._outbox_again = False
        self._notified_chat: str | None = None  # the chat of the last notification
        self.new_chat_dialog: NewChatDialog | None = None

        # ---- plumbing the pages need ----
        self.jobs = Background(self)
        self.loader = Loader(self)

        # ---- widgets ----
        self.banner = StatusBanner(self)
        self.banner.theme = self.theme
        self.pairing = PairingPage(self)
        self.messenger = MessengerPage(session, self.loader, self.jobs, self.settings, self)
        self.messenger.apply_theme(self.theme)
        # the conversation's parts, by their old names (the media code and tests use them)
        self.model = self.messenger.model
        self.log_view = self.messenger.log_view
        self.compose = self.messenger.compose
        self.chat_model = self.messenger.chat_model
        self.chat_list = self.messenger.chat_list
        self.search = self.messenger.search
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.pairing)
        self.pages.addWidget(self.messenger)
        central = QWidget(self)
        cbox = QVBoxLayout(central)
        cbox.setContentsMargins(0, 0, 0, 0)
        cbox.setSpacing(0)
        cbox.addWidget(self.banner)
        cbox.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        QWidget.setTabOrder(self.banner.action, self.messenger.search)

        self.outbox_label = QLabel("", self)
        self.outbox_label.setAccessibleName("Outbox")
        self.api_label = QLabel("", self)
        self.api_label.setAccessibleName("Local API")
        self.statusBar().addPermanentWidget(self.outbox_label)
        self.statusBar().addPermanentWidget(self.api_label)
        self.statusBar().setSizeGripEnabled(False)

        self._build_menus()

        # ---- plumbing ----
        self.thumbnails = Thumbnails(session, self.jobs, self)
        self.thumbnails.scale = self.devicePixelRatioF()
        self.thumbnails.ready.connect(self.on_picture)
        self.log_view.bubbles.thumbnails = self.thumbnails
        self.setAcceptDrops(True)
        self._stopped.connect(self._shut_down)
        self.bridge = SessionBridge(session, self)
        self.bridge.stateChanged.connect(self.on_state)
        self.bridge.qrChanged.connect(self.on_qr)
        self.bridge.messageChanged.connect(self.on_message)
        self.bridge.incoming.connect(self.on_incoming)
        self.bridge.chatsChanged.connect(lambda _jids: self.messenger.reload_chats())
        self.banner.actionTriggered.connect(self.on_banner_action)
        self.compose.sendRequested.connect(self.send)
        self.compose.attachRequested.connect(self.choose_file)
        self.compose.filesDropped.connect(self.attach_files)
        self.compose.imagePasted.connect(self.attach_image)
        self.log_view.openRequested.connect(self.open_media)
        self.log_view.saveRequested.connect(self.save_media)
        self.log_view.replyRequested.connect(self.write_to)
        self.messenger.new_chat_button.clicked.connect(self.new_chat)
        self.messenger.chatOpened.connect(self._chat_opened)
        self.messenger.problem.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.pairing.refreshRequested.connect(self.refresh_qr)
        self.pairing.pairCodeRequested.connect(self.request_pairing_code)
        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self.tick)
        hints = QGuiApplication.styleHints()
        hints.colorSchemeChanged.connect(self.on_color_scheme)

        self.tray: Tray | None = None
        if use_tray is None:
            use_tray = tray_available()
        if use_tray:
            self.tray = Tray(self)
            self.tray.showRequested.connect(self.bring_to_front)
            self.tray.messageClicked.connect(self.open_notified_chat)
            self.tray.quitRequested.connect(self.quit)
            self.tray.show()

        self._restore_geometry()
        self.messenger.reload_chats()
        self.on_state(session.state)
        self._remove_opened_copies()

    # ---- menus ----
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.attach_action = QAction("&Attach file…", self)
        self.attach_action.setShortcut(QKeySequence(ATTACH_SHORTCUT))
        self.attach_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.attach_action.triggered.connect(self.choose_file)
        file_menu.addAction(self.attach_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.quit_action.triggered.connect(self.quit)
        file_menu.addAction(self.quit_action)

        chats = bar.addMenu("&Chats")
        self.chats_menu = chats

        def action(text: str, keys: tuple[str, ...], slot: Any) -> QAction:
            act = QAction(text, self)
            act.setShortcuts([QKeySequence(k) for k in keys])
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.triggered.connect(slot)
            chats.addAction(act)
            self.addAction(act)  # works while the menu bar is hidden too
            return act

        self.new_chat_action = action("&New chat…", (NEW_CHAT_SHORTCUT,), self.new_chat)
        self.search_action = action("&Search", SEARCH_SHORTCUTS, self.focus_search)
        self.next_chat_action = action("Ne&xt chat", NEXT_CHAT_SHORTCUTS, lambda: self.step_chat(1))
        self.previous_chat_action = action(
            "&Previous chat", PREVIOUS_CHAT_SHORTCUTS, lambda: self.step_chat(-1)
        )
        self.back_action = action("&Back to the chats", ("Alt+Left",), self.messenger.show_list)
        chats.addSeparator()
        self.read_receipts_action = QAction("Send &read receipts", self)
        self.read_receipts_action.setCheckable(True)
        self.read_receipts_action.setChecked(self.messenger.send_receipts)
        self.read_receipts_action.setToolTip(
            "Tell WhatsApp when you have read a chat's messages (the sender sees blue ticks)"
        )
        self.read_receipts_action.toggled.connect(self.set_read_receipts)
        chats.addAction(self.read_receipts_action)

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

    def set_read_receipts(self, on: bool) -> None:
        self.settings.setValue(RECEIPTS_KEY, "true" if on else "false")
        self.settings.sync()

    # ---- geometry ----
    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def save_geometry(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.messenger.save_splitter()
        self.settings.sync()

    # ---- content ----
    @property
    def messages_shown(self) -> bool:
        return self.pages.currentIndex() == PAGE_MESSAGES

    def update_outbox(self) -> None:
        """Read the outbox count (off the GUI thread; one read at a time, again if asked
        meanwhile) and show it."""
        if self._outbox_asked:
            self._outbox_again = True
            return
        self._outbox_asked = True

        def done(waiting: int | None) -> None:
            self._outbox_asked = False
            if waiting is not None:
                self._outbox = waiting
            if self._outbox_again:
                self._outbox_again = False
                self.update_outbox()
            self._show_outbox()

        self.loader.run(self.session.outbox_depth, done, lambda _exc: done(None), name="outbox")

    @property
    def outbox_waiting(self) -> int | None:
        """Messages waiting in the outbox, as last read (None: not read yet)."""
        return self._outbox

    def _show_outbox(self) -> None:
        waiting = self._outbox or 0
        if self._outbox is None:
            self.outbox_label.setText("")
        elif waiting:
            self.outbox_label.setText(f"Outbox: {waiting} waiting")
        else:
            self.outbox_label.setText("Outbox empty")
        # on the pairing page only when something waits (sent through the local API, or earlier)
        self.outbox_label.setVisible(bool(waiting) or (self.messages_shown and self._outbox is not None))

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
                if self.messenger.current_chat is not None:
                    self.compose.message.setFocus()
                else:
                    self.messenger.chat_list.setFocus()
            if page == PAGE_PAIRING and not self.pairing.phone_mode:
                self.pairing.show_qr()
        if self.tray is not None:
            self.tray.set_status(view.text)
        if needs_ticking(state):
            if not self.ticker.isActive():
                self.ticker.start()
        else:
            self.ticker.stop()
        self._update_actions()
        self._show_outbox()
        self.update_outbox()

    def _update_actions(self) -> None:
        shown = self.messages_shown
        self.attach_action.setEnabled(shown and self.messenger.current_chat is not None)
        for act in (
            self.new_chat_action,
            self.search_action,
            self.next_chat_action,
            self.previous_chat_action,
        ):
            act.setEnabled(shown)
        self.back_action.setEnabled(shown and self.messenger.narrow)

    def on_qr(self, code: str, expires_at: float) -> None:
        # a rotation is not a state change: only this event carries the new code
        if self._state.status is Status.WAITING_FOR_SCAN:
            self.on_state(self._state.evolve(qr=code, qr_expires_at=expires_at))

    def on_message(self, event: Any) -> None:
        before = self.messenger.on_message(event)
        if before is not None:
            self._media_may_have_changed(before, self.model.entry(event.id))
        self.update_outbox()

    def on_incoming(self, event: IncomingMessage) -> None:
        self.messenger.on_incoming(event)
        if not self.is_reading:
            self.notify(event)

    @property
    def is_reading(self) -> bool:
        """The person looks at this window (it is shown and active)."""
        return self.isVisible() and self.isActiveWindow() and not self.isMinimized()

    def notify(self, event: IncomingMessage) -> None:
        """A message arrived while the window is not active: a notification naming the
        chat (the tray's, where there is a tray; else the window asks for attention)."""
        chat = self.chat_model.chat(event.chat)
        entry = self.model.entry(event.id)
        summary = entry.summary if entry is not None else _summary(event)
        if event.is_group:
            title = chat_title(chat) if chat is not None else "Group"
            who = person_label(event.sender, event.push_name)
            text = f"{who}: {summary}"
        else:
            number = pretty_phone(phone_of(event.sender or event.chat))
            named = chat is not None and chat.name
            title = chat_title(chat) if named and chat else event.push_name or number or jid_label(event.chat)
            text = summary
        self._notified_chat = event.chat
        if self.tray is not None and self.tray.visible:
            self.tray.notify(title, text)
        else:
            QApplication.alert(self)

    def open_notified_chat(self) -> None:
        """A notification was clicked: the window comes to the front with that chat."""
        self.bring_to_front()
        jid = self._notified_chat
        if jid is not None and self.messages_shown:
            self.messenger.open_chat(jid)

    def _media_may_have_changed(self, before: Entry | None, after: Entry | None) -> None:
        """A file's state changed (stored, removed): its picture is loaded again."""
        old = before.media if before is not None else None
        new = after.media if after is not None else None
        if old is not None and new is not None and (old.state, old.id) != (new.state, new.id):
            self.thumbnails.forget(old.id)
            self.log_view.relayout()

    def on_picture(self, media_id: str, item: MediaItem | None) -> None:
        """A picture for the log was decoded (or found missing); ``item`` is the file's
        record as stored now."""
        if item is not None:
            self.model.update_media(item)
        else:
            for row in self.model.rows_with_media(media_id):
                index = self.model.index(row)
                self.model.dataChanged.emit(index, index)
        self.log_view.relayout()

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
        """Queue a message to the open chat in the durable outbox, off the GUI thread (a
        database write)."""
        if self.compose.busy:
            return
        if self.compose.has_attachment:
            attachment = self.compose.attachment
            if attachment is not None and attachment.ok:  # not while it is read, nor refused
                self.send_file(recipient, text, attachment)
            return
        self.compose.set_busy(True)

        def done(record: Any) -> None:
            log.info("message %s queued from the window", record.id, extra={"message_id": record.id})
            self._queued(record.chat, text, None)

        self.jobs.run(
            lambda: self.session.send(recipient, text, source="desktop")[0],
            done,
            self._send_failed,
            name="send",
        )

    def send_file(self, recipient: str, caption: str, attachment: Attachment) -> None:
        """Queue a media message: the file is copied into the data folder and checked by
        the core on a worker thread, as it is now (it is read again, not taken from memory)."""
        self.compose.set_busy(True)
        session = self.session

        def work() -> Any:
            file: Any = attachment.data
            if file is None:
                assert attachment.path is not None
                file = session.begin_media()
                try:
                    with open(attachment.path, "rb") as f:
                        file.copy_from(f)
                except BaseException:
                    file.discard()
                    raise
            record, _created = session.send_media(
                recipient,
                file,
                kind=attachment.kind,
                mimetype=attachment.mimetype,
                filename=attachment.filename,
                caption=caption if caption.strip() else None,
                source="desktop",
            )
            return record

        def done(record: Any) -> None:
            log.info(
                "media message %s (%s) queued from the window",
                record.id,
                attachment.kind,
                extra={"message_id": record.id},
            )
            self._queued(record.chat, caption, attachment)

        self.jobs.run(work, done, self._send_failed, name="send-media")

    def _queued(self, chat: str, text: str, attachment: Attachment | None) -> None:
        self.compose.set_busy(False)
        if self.messenger.sent_from(chat, text, attachment):
            self.compose.sent(text, attachment)
        if self._state.status is not Status.CONNECTED:
            self.statusBar().showMessage("Queued: it goes out when wadesk is connected again.", 6000)
        self.update_outbox()

    def _send_failed(self, exc: BaseException) -> None:
        self.compose.set_busy(False)
        file_problem = send_problem(exc)
        if isinstance(exc, RecipientError):
            self.compose.show_error(f"Recipient: {exc}")
        elif isinstance(exc, TextError):
            subject = "Caption" if self.compose.has_attachment else "Message"
            self.compose.show_error(f"{subject}: {exc}")
        elif isinstance(exc, StorageError):
            log.warning("queueing a message failed: %s", exc)
            problem = "the disk is full" if exc.kind == "full" else f"its database is {exc.kind}"
            self.compose.show_error(
                f"Not queued: wadesk cannot store messages right now ({problem}). "
                "Nothing was lost; try again in a moment."
            )
        elif file_problem is not None:
            log.info("a file was not sent: %s", exc)
            self.compose.show_error(file_problem)
        else:
            log.error("queueing a message failed: %s", exc)
            self.compose.show_error(f"Could not queue the message: {exc}")

    # ---- attachments ----
    @property
    def can_attach(self) -> bool:
        return self.messages_shown and self.messenger.current_chat is not None

    def choose_file(self) -> None:
        """The Attach button and Ctrl+O: a file dialog, then the file is attached."""
        if not self.can_attach:
            return
        start = str(self.settings.value("media/attach_folder", "") or "") or QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.HomeLocation
        )
        path, _filter = QFileDialog.getOpenFileName(self, "Attach a file", start, "All files (*)")
        if path:
            self.settings.setValue("media/attach_folder", str(Path(path).parent))
            self.attach_file(Path(path))

    def attach_files(self, files: list[Path]) -> None:
        """Files dropped or pasted: the first is attached (one file per message)."""
        if not files or not self.can_attach:
            return
        if len(files) > 1:
            self.statusBar().showMessage(f"One file per message: {files[0].name} is attached.", 8000)
        self.attach_file(files[0])

    def attach_file(self, path: Path) -> None:
        """Read and check a file on a worker thread, then show it in the form."""
        path = Path(path)
        token = self.compose.begin_attachment(path.name or str(path))
        limit = self.session.max_media_bytes
        side = max(1, round(PREVIEW_SIDE * self.devicePixelRatioF()))
        self.jobs.run(
            lambda: load_file(path, limit, side),
            lambda attachment: self._attached(attachment, token),
            lambda exc: self._attached(
                Attachment.refused(path.name, f"The file cannot be read: {exc}"), token
            ),
            name="attach",
        )

    def attach_image(self, image: QImage) -> None:
        """A pasted image: encoded as PNG and checked on a worker thread."""
        token = self.compose.begin_attachment(PASTED_NAME)
        limit = self.session.max_media_bytes
        side = max(1, round(PREVIEW_SIDE * self.devicePixelRatioF()))
        picture = QImage(image)
        self.jobs.run(
            lambda: load_image(picture, limit, side),
            lambda attachment: self._attached(attachment, token),
            lambda exc: self._attached(
                Attachment.refused(PASTED_NAME, f"The image cannot be sent: {exc}"), token
            ),
            name="attach",
        )

    def _attached(self, attachment: Attachment, token: int) -> None:
        if not self.compose.set_attachment(attachment, token):
            return  # removed or replaced meanwhile
        if attachment.error:
            log.info("a file to attach was refused: %s", attachment.error)
        if self.isActiveWindow():
            self.compose.message.setFocus()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.can_attach and local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self.can_attach and local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event.mimeData())
        if not self.can_attach or not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.attach_files(files)

    # ---- chats ----
    def _chat_opened(self, jid: str) -> None:
        self._update_actions()

    def focus_search(self) -> None:
        if self.messages_shown:
            self.messenger.focus_search()

    def step_chat(self, delta: int) -> None:
        if self.messages_shown:
            self.messenger.step_chat(delta)

    def write_to(self, jid: str) -> None:
        """Reply (Enter on a message, its menu): this chat's message field; a group
        member's own chat."""
        if jid == self.messenger.current_chat:
            self.compose.message.setFocus()
        else:
            self.messenger.open_chat(jid)

    def new_chat(self) -> NewChatDialog | None:
        """Ctrl+N: a number in any notation, checked as typed and then with WhatsApp, or a
        group from the list."""
        if not self.messages_shown:
            return None
        if self.new_chat_dialog is not None and self.new_chat_dialog.isVisible():
            self.new_chat_dialog.raise_()
            self.new_chat_dialog.number.setFocus()
            return self.new_chat_dialog
        groups = [c for c in self.chat_model.chats() if c.is_group]
        dialog = NewChatDialog(self, groups, self.theme)
        dialog.startRequested.connect(lambda jid: self._start_chat(dialog, jid))
        dialog.finished.connect(lambda _result: self._new_chat_closed(dialog))
        self.new_chat_dialog = dialog
        dialog.open()
        dialog.number.setFocus()
        return dialog

    def _new_chat_closed(self, dialog: NewChatDialog) -> None:
        if self.new_chat_dialog is dialog:
            self.new_chat_dialog = None
        dialog.deleteLater()

    def _start_chat(self, dialog: NewChatDialog, jid: str) -> None:
        try:
            target = parse_recipient(jid)
        except RecipientError as exc:
            dialog.refuse(str(exc))
            return
        if target.is_group or target.is_lid or not self.session.check_recipients:
            self._open_new_chat(dialog, target.jid, checked=True)
            return
        shown = target.display()
        dialog.checking(shown)

        def done(answers: list[dict[str, Any]]) -> None:
            if self.new_chat_dialog is not dialog:
                return  # closed meanwhile
            if answers and answers[0].get("on_whatsapp") is False:
                dialog.refuse(
                    f"{shown} is not on WhatsApp: a message to it cannot be delivered, so none is sent."
                )
                return
            self._open_new_chat(dialog, target.jid, checked=True)

        def failed(exc: BaseException) -> None:
            if self.new_chat_dialog is not dialog:
                return
            if isinstance(exc, SessionError):  # not connected: checked when the first message goes
                self._open_new_chat(dialog, target.jid, checked=False)
            elif isinstance(exc, RecipientError):
                dialog.refuse(str(exc))
            else:
                dialog.refuse(f"WhatsApp could not be asked about {shown}: {exc}")

        self.jobs.run(lambda: self.session.check_numbers([target.jid]), done, failed, name="check-number")

    def _open_new_chat(self, dialog: NewChatDialog, jid: str, *, checked: bool) -> None:
        if not checked:
            self.messenger.not_checked.add(jid)
        else:
            self.messenger.not_checked.discard(jid)

        def done(chat: ChatRecord) -> None:
            if self.new_chat_dialog is not dialog:
                return
            dialog.accept()
            self.chat_model.put(chat)
            self.messenger.open_chat(chat.jid)
            self.activateWindow()  # back from the dialog (not every platform does it by itself)
            self.compose.message.setFocus()

        def failed(exc: BaseException) -> None:
            if self.new_chat_dialog is dialog:
                dialog.refuse(f"The chat cannot be opened: {exc}")

        self.loader.run(lambda: self.session.open_chat(jid), done, failed, name="open-chat", write=True)

    # ---- files in the log ----
    def _stored_file(self, item: MediaItem) -> tuple[MediaItem, Path | None]:
        """Worker thread: the file's record as stored now, and where the file is (None: not here)."""
        record = self.session.media(item.id)
        if record is None:
            raise FileGone("it is no longer in the data folder")
        return MediaItem.from_record(record), self.session.media_path(record)

    def _refresh_media(self, old: MediaItem, fresh: MediaItem) -> None:
        if fresh != old:
            if (fresh.state, fresh.reason) != (old.state, old.reason):
                self.thumbnails.forget(fresh.id)
            self.model.update_media(fresh)
            self.log_view.relayout()

    def _not_here(self, item: MediaItem) -> None:
        why = item.state_text or "the file is missing from the data folder"
        self.statusBar().showMessage(f"{item.title} is not on this computer: {why}.", 10000)

    def open_media(self, entry: Entry) -> None:
        """Open a message's file with the system's viewer (a double click, or Space)."""
        item = entry.media
        if item is None:
            return
        folder = self.data.path / OPENED_FOLDER

        def work() -> tuple[MediaItem, Path | None]:
            fresh, path = self._stored_file(item)
            return fresh, (open_copy(fresh, path, folder) if path is not None else None)

        def done(result: tuple[MediaItem, Path | None]) -> None:
            fresh, path = result
            self._refresh_media(item, fresh)
            if path is None:
                self._not_here(fresh)
            elif QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
                self.statusBar().showMessage(f"Opened {fresh.title}", 4000)
            else:
                self.statusBar().showMessage(
                    f"No program could open {fresh.title}; Save as… keeps a copy elsewhere.", 10000
                )

        def failed(exc: BaseException) -> None:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.statusBar().showMessage(f"{item.title} cannot be opened: {reason}", 10000)

        self.jobs.run(work, done, failed, name="open-media")

    def save_media(self, entry: Entry) -> None:
        """Save a copy of a message's file where the user chooses."""
        item = entry.media
        if item is None:
            return

        def chosen(result: tuple[MediaItem, Path | None]) -> None:
            fresh, path = result
            self._refresh_media(item, fresh)
            if path is None:
                self._not_here(fresh)
                return
            folder = str(
                self.settings.value("media/save_folder", "") or ""
            ) or QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DownloadLocation)
            target, _filter = QFileDialog.getSaveFileName(
                self, "Save as", str(Path(folder) / fresh.save_name())
            )
            if not target:
                return
            self.settings.setValue("media/save_folder", str(Path(target).parent))
            self.jobs.run(
                lambda: shutil.copyfile(path, target),
                lambda _: self.statusBar().showMessage(f"Saved {fresh.title} as {target}", 8000),
                lambda exc: failed(exc, "saved"),
                name="save-media",
            )

        def failed(exc: BaseException, what: str = "saved") -> None:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.statusBar().showMessage(f"{item.title} cannot be {what}: {reason}", 10000)

        self.jobs.run(lambda: self._stored_file(item), chosen, failed, name="save-media")

    def _remove_opened_copies(self) -> None:
        """The copies made to open files last time go (their viewers have closed by now);
        the folder is renamed first, so that a file opened meanwhile is not touched."""
        folder = self.data.path / OPENED_FOLDER
        if folder.exists():
            try:
                folder.rename(folder.with_name(f"{OPENED_FOLDER}.old-{time.time_ns()}"))
            except OSError as exc:
                log.warning("cannot remove the copies of opened files in %s: %s", folder, exc)
        old = list(self.data.path.glob(f"{OPENED_FOLDER}.old-*"))

        def remove() -> None:
            for path in old:
                shutil.rmtree(path, ignore_errors=True)

        if old:
            self.jobs.run(remove, name="cleanup")

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

    # ---- appearance ----
    def on_color_scheme(self, scheme: Qt.ColorScheme) -> None:
        """The system switched between light and dark: so does the window."""
        self.apply_theme(themes.for_scheme(scheme))

    def apply_theme(self, theme: themes.Theme) -> None:
        self.theme = theme
        app = QApplication.instance()
        if isinstance(app, QApplication):
            themes.apply(app, theme)
        self.banner.theme = theme
        self.banner.show_view(self.banner.view)
        self.messenger.apply_theme(theme)
        self.update()

    # ---- window ----
    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            self.messenger.window_activated()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._update_actions()

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
            self.thumbnails.scale = self.devicePixelRatioF()  # on its screen now (HiDPI)
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
        self.messenger.finish()  # the open chat's draft is written before the loader stops
        self.save_geometry()
        self.ticker.stop()
        self.bridge.close()
        self.thumbnails.close()
        self.loader.close()
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
        self.loader.wait(JOBS_GRACE)  # and a draft
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


def _summary(event: IncomingMessage) -> str:
    if not event.media:
        return event.text
    return Entry(
        id=event.id,
        outgoing=False,
        chat=event.chat,
        text=event.text,
        status="received",
        at=event.timestamp,
        media=MediaItem.from_dict(event.media),
    ).summary
