"""The messenger: the chat list on the left, one chat's conversation on the right.

:class:`MessengerPage` owns the chat list (and the search results in its place while
searching), the open chat's conversation and the send form. It never reads the store in
the GUI thread: the chat list, a conversation's pages, search, one chat or message, and
the drafts go through the window's :class:`~.loader.Loader`; marking a chat read (which
may tell WhatsApp) runs on a :class:`~.bridge.Background` thread. Core events (from the
window's bridge) update the models directly; what an event does not carry (a chat not
listed yet, a message not shown) is read off the GUI thread.

Below :data:`NARROW` pixels the page shows one pane at a time: the list, or the chat with
a Back button. The split between them is remembered (``window/splitter``).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.events import IncomingMessage, MessageFailed, MessageQueued
from ..core.store import ChatRecord, MessageRecord, StorageError, phone_of
from . import theme as themes
from .bridge import Background
from .chats import (
    PAGE,
    ChatListModel,
    ChatListView,
    Header,
    Hit,
    JidRole,
    RowRole,
    SearchModel,
    chat_subtitle,
    chat_title,
    pretty_phone,
)
from .compose import ComposeForm
from .conversation import ChatHeader, SearchField
from .loader import Loader
from .media import Attachment
from .messages import Entry, LogView, MessageLog, jid_label

if TYPE_CHECKING:
    from ..core.session import Session

log = logging.getLogger("wadesk.ui")

NARROW = 640  # below this window width: one pane at a time
CONVERSATION_PAGE = 50  # messages read at a time
SEARCH_DELAY_MS = 150
READ_DELAY_MS = 250
HIGHLIGHT_DELAY_MS = 180  # the arrows in the chat list: the chat is shown once they rest
RETRY_MS = 5000  # the chat list or a conversation could not be read: again after this
REVEAL_PAGES = 20  # a search hit further back than this many pages is not paged to
SPLITTER_KEY = "window/splitter"
RECEIPTS_KEY = "chats/send_read_receipts"
NO_CHAT_TEXT = "Choose a chat on the left, or start a new one with New chat (Ctrl+N)."


def storage_text(exc: BaseException) -> str:
    if isinstance(exc, StorageError):
        problem = "the disk is full" if exc.kind == "full" else f"its database is {exc.kind}"
        return f"wadesk cannot read its data right now ({problem})"
    return f"reading failed ({exc})"


class MessengerPage(QWidget):
    chatOpened = Signal(str)  # a chat's JID: its conversation is shown
    problem = Signal(str)  # a sentence for the status bar

    def __init__(
        self,
        session: Session,
        loader: Loader,
        jobs: Background,
        settings: QSettings,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.loader = loader
        self.jobs = jobs
        self.settings = settings
        self.theme = themes.LIGHT
        self.current_chat: str | None = None
        self.not_checked: set[str] = set()  # chats opened while WhatsApp could not be asked
        self._narrow = False
        self._conversation_shown = False  # narrow window: the chat is shown, not the list
        self._conv_token = 0
        self._buffered: list[Any] = []  # message events for the open chat while its page loads
        self._reveal: tuple[str, int, int] | None = None  # message id, seq, pages left
        self._attachments: dict[str, Attachment] = {}  # kept per chat while another is open
        self._rows_wanted: set[str] = set()  # chats being read one by one
        self._chats_loading = False
        self._chats_token = 0
        self._search_token = 0
        self._closed = False
        self._header_shown: tuple[str, str] = ("", "")

        # ---- the chat list (left) ----
        self.chats_pane = QFrame(self)
        self.chats_pane.setObjectName("chatsPane")
        self.chats_pane.setMinimumWidth(240)
        top = QFrame(self.chats_pane)
        top.setObjectName("chatsTop")
        self.search = SearchField(top)
        self.new_chat_button = QPushButton("New chat", top)
        self.new_chat_button.setObjectName("newChat")
        self.new_chat_button.setAccessibleName("New chat")
        self.new_chat_button.setToolTip("Write to a phone number or a group (Ctrl+N)")
        top_row = QHBoxLayout(top)
        top_row.setContentsMargins(10, 10, 10, 10)
        top_row.setSpacing(8)
        top_row.addWidget(self.search, 1)
        top_row.addWidget(self.new_chat_button, 0)
        self.chat_model = ChatListModel(self)
        self.chat_list = ChatListView(self.chats_pane)
        self.chat_list.setObjectName("chats")
        self.chat_list.setAccessibleName("Chats")
        self.chat_list.setAccessibleDescription(
            "Newest activity first. Enter opens a chat; Alt+Up and Alt+Down move between chats."
        )
        self.chat_list.setModel(self.chat_model)
        self.chat_list.set_placeholder("Reading the chats…")
        self.search_model = SearchModel(self)
        self.search_view = ChatListView(self.chats_pane, uniform=False)
        self.search_view.setObjectName("searchResults")
        self.search_view.setAccessibleName("Search results")
        self.search_view.setModel(self.search_model)
        self.list_stack = QStackedWidget(self.chats_pane)
        self.list_stack.addWidget(self.chat_list)
        self.list_stack.addWidget(self.search_view)
        left = QVBoxLayout(self.chats_pane)
        left.setContentsMargins(0, 0, 0, 0)
        left.setSpacing(0)
        left.addWidget(top)
        left.addWidget(self.list_stack, 1)

        # ---- the conversation (right) ----
        self.header = ChatHeader(self)
        self.model = MessageLog(self)
        self.log_view = LogView(self)
        self.log_view.setModel(self.model)
        self.compose = ComposeForm(self)
        self.compose.show_recipient(False)
        chat_page = QWidget(self)
        right = QVBoxLayout(chat_page)
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(0)
        right.addWidget(self.header)
        right.addWidget(self.log_view, 1)
        right.addWidget(self.compose, 0)
        self.no_chat = QLabel(NO_CHAT_TEXT, self)
        self.no_chat.setObjectName("noChat")
        self.no_chat.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_chat.setWordWrap(True)
        self.no_chat.setMargin(40)
        self.no_chat.setAccessibleName("No chat open")
        self.conversation = QStackedWidget(self)
        self.conversation.setMinimumWidth(340)
        self.conversation.addWidget(self.no_chat)
        self.conversation.addWidget(chat_page)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("split")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setHandleWidth(1)
        self.splitter.addWidget(self.chats_pane)
        self.splitter.addWidget(self.conversation)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([330, 700])
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.splitter)
        state = settings.value(SPLITTER_KEY)
        if isinstance(state, QByteArray | bytes):
            self.splitter.restoreState(QByteArray(state))

        # top to bottom: search, New chat, the list, Back, the conversation, the form
        chain = [
            self.search,
            self.new_chat_button,
            self.chat_list,
            self.search_view,
            self.header.back,
            self.log_view,
            self.compose.recipient,
            self.compose.card.remove_button,
            self.compose.message,
            self.compose.attach_button,
            self.compose.send_button,
        ]
        for a, b in itertools.pairwise(chain):
            QWidget.setTabOrder(a, b)

        # ---- plumbing ----
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.run_search)
        self._highlight: str | None = None
        self._highlight_timer = QTimer(self)
        self._highlight_timer.setSingleShot(True)
        self._highlight_timer.setInterval(HIGHLIGHT_DELAY_MS)
        self._highlight_timer.timeout.connect(self._open_highlighted)
        self._read_timer = QTimer(self)
        self._read_timer.setSingleShot(True)
        self._read_timer.setInterval(READ_DELAY_MS)
        self._read_timer.timeout.connect(self._mark_open_chat_read)
        self._retry_chats = QTimer(self)
        self._retry_chats.setSingleShot(True)
        self._retry_chats.setInterval(RETRY_MS)
        self._retry_chats.timeout.connect(self.reload_chats)
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        self.search.leaveRequested.connect(self.leave_search)
        self.search.downRequested.connect(self._into_results)
        self.search.firstRequested.connect(self._choose_first_result)
        self.chat_list.highlighted.connect(self._highlighted)
        self.chat_list.chosen.connect(lambda jid, _row: self.open_chat(jid))
        self.search_view.chosen.connect(self._result_chosen)
        self.search_view.escapePressed.connect(self.leave_search)
        self.chat_model.moreWanted.connect(self._load_more_chats)
        self.chat_model.dataChanged.connect(self._row_changed)
        self.log_view.olderWanted.connect(self.load_older)
        self.header.backRequested.connect(self.show_list)
        self.splitter.splitterMoved.connect(lambda _pos, _index: self.save_splitter())

    # ---- appearance ----
    def apply_theme(self, theme: themes.Theme) -> None:
        self.theme = theme
        self.chat_list.delegate.theme = theme
        self.search_view.delegate.theme = theme
        self.log_view.bubbles.theme = theme
        self.header.avatar.theme = theme
        self.compose.apply_theme(theme)
        for view in (self.chat_list, self.search_view, self.log_view):
            view.viewport().update()
        self.header.avatar.update()

    @property
    def narrow(self) -> bool:
        return self._narrow

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.layout_panes()

    def layout_panes(self) -> None:
        """Both panes side by side, or (narrow) the list or the open chat."""
        narrow = self.width() < NARROW
        was = self._narrow
        self._narrow = narrow
        if narrow:
            chat = self._conversation_shown and self.current_chat is not None
            self.chats_pane.setVisible(not chat)
            self.conversation.setVisible(chat)
        else:
            self.chats_pane.setVisible(True)
            self.conversation.setVisible(True)
            if was:
                state = self.settings.value(SPLITTER_KEY)
                if isinstance(state, QByteArray | bytes):
                    self.splitter.restoreState(QByteArray(state))
        self.header.back.setVisible(narrow)

    def save_splitter(self) -> None:
        if not self._narrow:
            self.settings.setValue(SPLITTER_KEY, self.splitter.saveState())

    def show_list(self) -> None:
        """Back (narrow window): the chat list, with the open chat current in it."""
        self._conversation_shown = False
        self.layout_panes()
        view = self.search_view if self.searching else self.chat_list
        view.setFocus()

    def show_conversation(self) -> None:
        self._conversation_shown = True
        self.layout_panes()

    @property
    def conversation_visible(self) -> bool:
        return self.current_chat is not None and (not self._narrow or self._conversation_shown)

    @property
    def reading(self) -> bool:
        """The open chat is on screen in the active window: what arrives in it is read."""
        window = self.window()
        return (
            self.conversation_visible
            and self.isVisible()
            and window.isVisible()
            and window.isActiveWindow()
            and not window.isMinimized()
        )

    # ---- the chat list ----
    def reload_chats(self) -> None:
        """Read the chat list again (its first pages, as many as are shown)."""
        if self._closed:
            return
        self._chats_token += 1
        token = self._chats_token
        limit = max(PAGE, self.chat_model.rowCount())
        self._chats_loading = True

        def done(chats: list[ChatRecord] | None) -> None:
            if token != self._chats_token or chats is None:
                return
            self._chats_loading = False
            more = len(chats) > limit
            self.chat_model.load(chats[:limit], more)
            self._after_list_change()
            self.chat_list.set_placeholder("No chats yet. Start one with New chat (Ctrl+N).")

        def failed(exc: BaseException) -> None:
            if token != self._chats_token:
                return
            self._chats_loading = False
            log.warning("reading the chat list failed: %s", exc)
            self.chat_list.set_placeholder(f"The chats cannot be shown: {storage_text(exc)}. Trying again…")
            self._retry_chats.start()

        self.loader.run(
            lambda: self.session.chats(limit=limit + 1),
            done,
            failed,
            name="chats",
            wanted=lambda: token == self._chats_token,
        )

    def _load_more_chats(self) -> None:
        offset = self.chat_model.rowCount()
        token = self._chats_token

        def done(chats: list[ChatRecord]) -> None:
            if token != self._chats_token:
                self.chat_model.fetching = False
                return
            self.chat_model.extend(chats[:PAGE], len(chats) > PAGE)

        def failed(exc: BaseException) -> None:
            self.chat_model.fetching = False
            self.problem.emit(f"More chats cannot be shown: {storage_text(exc)}.")

        self.loader.run(lambda: self.session.chats(limit=PAGE + 1, offset=offset), done, failed, name="chats")

    def reload_chat(self, jid: str) -> None:
        """Read one chat's row (not listed yet, or the event did not say enough)."""
        if jid in self._rows_wanted or self._closed:
            return
        self._rows_wanted.add(jid)

        def done(chat: ChatRecord | None) -> None:
            self._rows_wanted.discard(jid)
            if chat is None:
                return
            if jid == self.current_chat:
                self._show_header(chat)
                if self.reading:
                    chat = _read(chat)
            self.chat_model.put(chat)
            self._after_list_change()

        def failed(exc: BaseException) -> None:
            self._rows_wanted.discard(jid)
            log.warning("reading the chat %s failed: %s", jid, exc)

        self.loader.run(lambda: self.session.chat(jid), done, failed, name="chat")

    def _row_changed(self, top: Any, bottom: Any, _roles: Any = None) -> None:
        """The open chat's row changed (a name learnt from a message): so does the header."""
        row = self.chat_model.row_of(self.current_chat)
        if row is not None and top.row() <= row <= bottom.row():
            chat = self.chat_model.chat(self.current_chat)
            if chat is not None and (chat_title(chat), chat_subtitle(chat)) != self._header_shown:
                self._show_header(chat)

    def _after_list_change(self) -> None:
        self.chat_list.select_row(self.chat_model.row_of(self.current_chat))

    def _listed(self, jid: str) -> bool:
        return not self._chats_loading and self.chat_model.chat(jid) is not None

    # ---- core events ----
    def on_incoming(self, event: IncomingMessage) -> None:
        here = event.chat == self.current_chat
        seen = here and self.reading
        if not self._listed(event.chat) or not self.chat_model.apply_incoming(event, count=not seen):
            self.reload_chat(event.chat)
        if here:
            self._conversation_event(event)
            if seen:
                self._read_timer.start()

    def on_message(self, event: Any) -> Entry | None:
        """A sent message's state; returns the log's entry before the change (if shown)."""
        chat = event.to
        here = chat == self.current_chat
        before = self.model.entry(event.id) if here else None
        if isinstance(event, MessageQueued):
            listed = self._listed(chat) and self.chat_model.apply_queued(event, time.time())
        else:
            seen = here and self.reading
            listed = self._listed(chat) and self.chat_model.apply_status(event, count=not seen)
            if isinstance(event, MessageFailed) and seen:
                self._read_timer.start()  # its marker clears: it is on screen
        if not listed:
            self.reload_chat(chat)
        if here:
            self._conversation_event(event)
        return before

    def _conversation_event(self, event: Any) -> None:
        if self.model.loading:
            self._buffered.append(event)
        elif not self.model.apply(event):
            self._read_message(event.id)

    def _read_message(self, message_id: str) -> None:
        """A message of the open chat the conversation does not show (sent through the
        local API before its page was read): read it and put it in."""
        token = self._conv_token

        def done(record: MessageRecord | None) -> None:
            if token == self._conv_token and record is not None and record.chat == self.current_chat:
                self.model.insert_record(record)

        self.loader.run(
            lambda: self.session.message(message_id),
            done,
            lambda exc: log.warning("reading message %s failed: %s", message_id, exc),
            name="message",
        )

    # ---- opening a chat ----
    def _highlighted(self, jid: str, _row: int) -> None:
        """Wide: the chat the arrows stop on is shown (not each one passed on the way, which
        would mark them all read)."""
        if not self._narrow:
            self._highlight = jid
            self._highlight_timer.start()

    def _open_highlighted(self) -> None:
        jid, self._highlight = self._highlight, None
        if jid is not None and not self._narrow and self.chat_list.currentIndex().data(JidRole) == jid:
            self.open_chat(jid, focus=False)

    def open_chat(self, jid: str, *, focus: bool = True, reveal: tuple[str, int] | None = None) -> None:
        """Show ``jid``'s conversation (its first page is read off the GUI thread)."""
        if self._closed:
            return
        if jid == self.current_chat:
            self.show_conversation()
            if reveal is not None:
                self._reveal = (*reveal, REVEAL_PAGES)
                self._try_reveal()
            elif focus:
                self.compose.message.setFocus()
            return
        self.leave_chat()
        self.current_chat = jid
        self.chat_model.open_jid = jid
        self.chat_list.delegate.open_jid = jid
        chat = self.chat_model.chat(jid)
        self._conv_token += 1
        token = self._conv_token
        self._buffered = []
        self._reveal = (*reveal, REVEAL_PAGES) if reveal is not None else None
        self.model.show_chat(jid, chat_title(chat) if chat is not None else None)
        self.log_view.placeholder = "Reading the messages…"
        self._show_header(chat)
        self.loader.run(
            lambda: self.session.conversation(jid, limit=CONVERSATION_PAGE),
            lambda records: self._first_page(token, records),
            lambda exc: self._page_failed(token, exc),
            name="conversation",
            wanted=lambda: token == self._conv_token,
        )
        if chat is None:
            self._list_new_chat(jid)
        self.compose.set_chat(jid, (chat.draft if chat is not None else None) or "")
        attachment = self._attachments.pop(jid, None)
        if attachment is not None:
            self.compose.begin_attachment(attachment.name)
            self.compose.set_attachment(attachment)
        self.conversation.setCurrentIndex(1)
        self.chat_list.select_row(self.chat_model.row_of(jid))
        self.show_conversation()
        self.mark_read(jid)
        if focus:
            self.compose.message.setFocus()
        self.chatOpened.emit(jid)

    def _list_new_chat(self, jid: str) -> None:
        """A chat the list does not show (from a notification, or a group's member): made
        in the store if it is not there yet, and listed."""

        def done(chat: ChatRecord) -> None:
            if jid == self.current_chat:
                self._show_header(chat)
            self.chat_model.put(_read(chat) if jid == self.current_chat else chat)
            self._after_list_change()

        self.loader.run(
            lambda: self.session.open_chat(jid),
            done,
            lambda exc: log.warning("listing the chat %s failed: %s", jid, exc),
            name="open-chat",
            write=True,
        )

    def _show_header(self, chat: ChatRecord | None) -> None:
        jid = self.current_chat or ""
        if chat is None:
            title = pretty_phone(phone_of(jid)) or jid_label(jid)
            subtitle = "Group" if jid.endswith("@g.us") else ""
        else:
            title, subtitle = chat_title(chat), chat_subtitle(chat)
            self.model.chat_name = title
        if jid in self.not_checked:
            subtitle = (
                f"{subtitle} · " if subtitle else ""
            ) + "WhatsApp is asked whether this number has an account when the first message goes out"
        self._header_shown = (title, subtitle)
        self.header.show_chat(jid, title, subtitle)
        self.window().setWindowTitle(f"{title} – wadesk")

    def _first_page(self, token: int, records: list[MessageRecord] | None) -> None:
        if token != self._conv_token or records is None:
            return
        self.model.load(records, has_more=len(records) >= CONVERSATION_PAGE)
        self.log_view.placeholder = "No messages here yet. Write the first one below."
        buffered, self._buffered = self._buffered, []
        for event in buffered:
            self._conversation_event(event)
        self._try_reveal()

    def _page_failed(self, token: int, exc: BaseException) -> None:
        if token != self._conv_token:
            return
        log.warning("reading a conversation failed: %s", exc)
        self.model.loading = False
        self.model.fetching = False
        self.log_view.placeholder = f"The messages cannot be shown: {storage_text(exc)}. Trying again…"
        self.log_view.viewport().update()
        jid = self.current_chat

        def again() -> None:
            if token == self._conv_token and jid is not None and not self.model.rowCount():
                self.current_chat = None
                self.open_chat(jid, focus=False)

        QTimer.singleShot(RETRY_MS, self, again)

    def load_older(self) -> None:
        """The page before the oldest message shown (scrolled near the top)."""
        model = self.model
        jid = self.current_chat
        before = model.oldest_seq
        if jid is None or model.loading or model.fetching or not model.has_more or before is None:
            return
        model.fetching = True
        token = self._conv_token

        def done(records: list[MessageRecord] | None) -> None:
            if token != self._conv_token or records is None:
                return
            model.prepend(records, has_more=len(records) >= CONVERSATION_PAGE)
            self._try_reveal()

        def failed(exc: BaseException) -> None:
            if token == self._conv_token:
                model.fetching = False
                self.problem.emit(f"Older messages cannot be shown: {storage_text(exc)}.")

        self.loader.run(
            lambda: self.session.conversation(jid, before=before, limit=CONVERSATION_PAGE),
            done,
            failed,
            name="older",
            wanted=lambda: token == self._conv_token,
        )

    def _try_reveal(self) -> None:
        """A message chosen in the search results: select it once its page is shown."""
        if self._reveal is None or self.model.loading:
            return
        message_id, seq, pages = self._reveal
        entry = self.model.entry(message_id)
        if entry is not None:
            self._reveal = None
            row = self.model.entries().index(entry)

            def select() -> None:
                if self.model.entry(message_id) is entry:
                    index = self.model.index(row)
                    self.log_view.setCurrentIndex(index)
                    self.log_view.scrollTo(index, LogView.ScrollHint.PositionAtCenter)

            QTimer.singleShot(0, self, select)  # after the view scrolled to the newest
            return
        oldest = self.model.oldest_seq
        if self.model.has_more and pages > 0 and oldest is not None and seq < oldest:
            self._reveal = (message_id, seq, pages - 1)
            self.load_older()
        else:
            self._reveal = None
            self.problem.emit("That message is further back in the chat: scroll up to find it.")

    def leave_chat(self) -> None:
        """Before another chat is shown (or the window closes): its draft is kept (in the
        store) and its attachment (in memory)."""
        jid = self.current_chat
        if jid is None:
            return
        text = self.compose.draft
        chat = self.chat_model.chat(jid)
        stored = (chat.draft if chat is not None else None) or ""
        if text != stored:
            self.save_draft(jid, text)
        attachment = self.compose.take_attachment()
        if attachment is not None:
            self._attachments[jid] = attachment

    def save_draft(self, jid: str, text: str) -> None:
        self.chat_model.change(jid, draft=text or None)
        self.loader.run(
            lambda: self.session.set_draft(jid, text or None),
            None,
            lambda exc: self.problem.emit(f"The draft was not kept: {storage_text(exc)}."),
            name="draft",
            write=True,
        )

    def sent_from(self, jid: str, text: str, attachment: Attachment | None) -> bool:
        """``text`` was queued for ``jid``: its draft is gone. True if that chat is open."""
        chat = self.chat_model.chat(jid)
        if jid == self.current_chat:
            if chat is not None and chat.draft:
                self.save_draft(jid, "")
            return True
        if chat is not None and (chat.draft or "") == text:
            self.save_draft(jid, "")
        if attachment is not None and self._attachments.get(jid) is attachment:
            del self._attachments[jid]
        return False

    # ---- read ----
    @property
    def send_receipts(self) -> bool:
        return str(self.settings.value(RECEIPTS_KEY, "false")).lower() == "true"

    def mark_read(self, jid: str, *, arrived: bool = False) -> None:
        """The chat is shown: its unread count and failure marker clear (and WhatsApp is
        told, if the setting says so). ``arrived``: messages came in while it was on screen
        (the list did not count them; the store did)."""
        chat = self.chat_model.chat(jid)
        if chat is not None and not (chat.unread or chat.failed or arrived):
            return  # nothing unread (the list follows every message as it comes)
        if chat is not None:
            self.chat_model.change(jid, unread=0, failed=0)
        receipts = self.send_receipts
        self.jobs.run(
            lambda: self.session.mark_chat_read(jid, send_receipts=receipts),
            None,
            lambda exc: log.warning("marking %s read failed: %s", jid, exc),
            name="read",
        )

    def _mark_open_chat_read(self) -> None:
        if self.current_chat is not None and self.reading:
            self.mark_read(self.current_chat, arrived=True)

    def window_activated(self) -> None:
        """The window is active again: what arrived in the open chat meanwhile is read."""
        jid = self.current_chat
        chat = self.chat_model.chat(jid)
        if jid is not None and chat is not None and (chat.unread or chat.failed) and self.reading:
            self._read_timer.start()

    # ---- moving between chats ----
    def step_chat(self, delta: int) -> None:
        """Alt+Down / Ctrl+Tab (1), Alt+Up / Ctrl+Shift+Tab (-1): the next or previous chat."""
        count = self.chat_model.rowCount()
        if not count:
            return
        row = self.chat_model.row_of(self.current_chat)
        target = (0 if delta > 0 else count - 1) if row is None else max(0, min(count - 1, row + delta))
        jid = self.chat_model.jid_at(target)
        if jid is not None and jid != self.current_chat:
            focused = QApplication.focusWidget()
            self.open_chat(jid, focus=focused is not None and self.compose.isAncestorOf(focused))

    # ---- search ----
    @property
    def searching(self) -> bool:
        return self.list_stack.currentIndex() == 1

    def focus_search(self) -> None:
        if self._narrow and self._conversation_shown:
            self.show_list()
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def leave_search(self) -> None:
        self.search.clear()
        self._search_timer.stop()
        self.run_search()
        self.chat_list.setFocus()

    def run_search(self) -> None:
        text = self.search.text().strip()
        self._search_token += 1
        token = self._search_token
        if not text:
            self.search_model.clear()
            self.list_stack.setCurrentIndex(0)
            return
        self.list_stack.setCurrentIndex(1)
        self.search_model.searching = True
        self.search_view.set_placeholder("Searching…")
        session = self.session

        def work() -> tuple[list[ChatRecord], list[Hit]]:
            chats = session.chats(limit=30, query=text)
            records = session.search_messages(text, limit=50)
            titles: dict[str, tuple[str, bool]] = {}
            listed = {c.jid: c for c in chats}  # read just now: not read again per hit
            for r in records:
                if r.chat not in titles:
                    chat = listed.get(r.chat) or session.chat(r.chat)
                    titles[r.chat] = (
                        (chat_title(chat), chat.is_group)
                        if chat is not None
                        else (pretty_phone(phone_of(r.chat)) or jid_label(r.chat), r.is_group)
                    )
            return chats, [Hit(r, *titles[r.chat]) for r in records]

        def done(result: tuple[list[ChatRecord], list[Hit]] | None) -> None:
            if token != self._search_token or result is None:
                return
            chats, hits = result
            self.search_model.show(text, chats, hits)
            self.search_view.set_placeholder(f"No chats or messages found for “{text}”.")

        def failed(exc: BaseException) -> None:
            if token == self._search_token:
                self.search_model.show(text, [], [])
                self.search_view.set_placeholder(f"Search is not possible right now: {storage_text(exc)}.")

        self.loader.run(work, done, failed, name="search", wanted=lambda: token == self._search_token)

    def _into_results(self) -> None:
        view = self.search_view if self.searching else self.chat_list
        view.setFocus()
        model = view.model()
        current = view.currentIndex()
        if (not current.isValid() or not current.data(JidRole)) and model.rowCount():
            first = self.search_model.first_result() if self.searching else 0
            if first is not None:
                view.setCurrentIndex(model.index(first, 0))

    def _choose_first_result(self) -> None:
        if not self.searching:
            self._into_results()
            return
        first = self.search_model.first_result()
        if first is not None:
            self._result_chosen(self.search_model.index(first).data(JidRole), first)

    def _result_chosen(self, jid: str, row: int) -> None:
        item = self.search_model.index(row).data(RowRole)
        if isinstance(item, Hit):
            self.open_chat(jid, reveal=(item.record.id, item.record.seq))
        elif not isinstance(item, Header):
            self.open_chat(jid)

    # ---- the end ----
    def finish(self) -> None:
        """The window closes: the open chat's draft is kept; nothing more is read."""
        if not self._closed:
            self.leave_chat()
            self.save_splitter()
            self._closed = True
            for timer in (self._search_timer, self._read_timer, self._retry_chats, self._highlight_timer):
                timer.stop()


def _read(chat: ChatRecord) -> ChatRecord:
    """The open chat as the list shows it while it is read: nothing unread."""
    return replace(chat, unread=0, failed=0) if chat.unread or chat.failed else chat
