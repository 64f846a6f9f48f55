"""The parts around a conversation: its header (who, and Back in a narrow window), the
search field above the chat list, and the dialog that starts a new chat."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeyEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..core.store import ChatRecord
from . import theme as themes
from .chats import ChatListModel, ChatListView, avatar_colour, chat_title, initials
from .compose import recipient_problem

NEW_CHAT_HINT = "A phone number with its country code (e.g. +49 151 23456789), or pick a group below"


class Avatar(QWidget):
    """A chat's round picture: its initials on a colour of its own."""

    def __init__(self, side: int = 36, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(QSize(side, side))
        self.theme = themes.LIGHT
        self.jid = ""
        self.title = ""

    def set_chat(self, jid: str, title: str) -> None:
        self.jid, self.title = jid, title
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.jid:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(avatar_colour(self.theme, self.jid)))
        rect = QRectF(self.rect())
        painter.drawEllipse(rect)
        painter.setPen(QColor(self.theme.avatar_text))
        painter.setFont(themes.scaled_font(self.font(), 1.0, QFont.Weight.DemiBold))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, initials(self.title))
        painter.end()


class ChatHeader(QFrame):
    """Above the conversation: Back (narrow window only), the picture, name and details."""

    backRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatHeader")
        self.setAccessibleName("Chat")
        self.back = QPushButton("‹ Chats", self)
        self.back.setObjectName("back")
        self.back.setAccessibleName("Back to the chats")
        self.back.setToolTip("Back to the chat list (Alt+Left)")
        self.back.clicked.connect(self.backRequested)
        self.back.hide()
        self.avatar = Avatar(36, self)
        self.title = QLabel(self)
        self.title.setObjectName("chatTitle")
        self.title.setAccessibleName("Chat")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.title.setFont(themes.scaled_font(self.title.font(), 1.08, QFont.Weight.DemiBold))
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.subtitle = QLabel(self)
        self.subtitle.setObjectName("chatSubtitle")
        self.subtitle.setAccessibleName("Chat details")
        self.subtitle.setTextFormat(Qt.TextFormat.PlainText)
        self.subtitle.setWordWrap(True)
        self.subtitle.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        texts = QVBoxLayout()
        texts.setSpacing(1)
        texts.addWidget(self.title)
        texts.addWidget(self.subtitle)
        row = QHBoxLayout(self)
        row.setContentsMargins(14, 8, 14, 8)
        row.setSpacing(12)
        row.addWidget(self.back, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.avatar, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addLayout(texts, 1)

    def show_chat(self, jid: str, title: str, subtitle: str) -> None:
        self.avatar.set_chat(jid, title)
        self.title.setText(title)
        self.title.setToolTip(title)
        self.subtitle.setText(subtitle)
        self.subtitle.setVisible(bool(subtitle))
        self.setAccessibleName(f"Chat with {title}")
        self.setAccessibleDescription(subtitle)


class SearchField(QLineEdit):
    """The search above the chat list: Escape leaves it, Down goes to the results, Enter
    opens the first one."""

    leaveRequested = Signal()
    downRequested = Signal()
    firstRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("search")
        self.setAccessibleName("Search chats and messages")
        self.setPlaceholderText("Search chats and messages")
        self.setToolTip("Search by name, number or a word in a message (Ctrl+K or Ctrl+F); Esc leaves")
        self.setClearButtonEnabled(True)
        self.setMaxLength(200)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Escape:
            self.leaveRequested.emit()
            return
        if key == Qt.Key.Key_Down:
            self.downRequested.emit()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.firstRequested.emit()
            return
        super().keyPressEvent(event)


class NewChatDialog(QDialog):
    """A number in any notation (checked as typed), or a group picked from the list.

    :attr:`startRequested` carries a checked recipient (a JID); the window asks WhatsApp
    whether a number has an account and either opens the chat or calls :meth:`refuse`."""

    startRequested = Signal(str)

    def __init__(self, parent: QWidget, groups: list[ChatRecord], theme: themes.Theme) -> None:
        super().__init__(parent)
        self.setObjectName("newChat")
        self.setWindowTitle("New chat")
        self.setAccessibleName("New chat")
        self.setMinimumWidth(420)
        self.busy = False
        label = QLabel("&Phone number or group ID", self)
        label.setObjectName("fieldLabel")
        self.number = QLineEdit(self)
        self.number.setAccessibleName("Phone number or group")
        self.number.setAccessibleDescription(NEW_CHAT_HINT)
        self.number.setPlaceholderText("+49 151 23456789")
        self.number.setClearButtonEnabled(True)
        self.number.setMaxLength(100)
        label.setBuddy(self.number)
        self.status = QLabel(NEW_CHAT_HINT, self)
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Recipient check")
        groups_label = QLabel("&Groups", self)
        groups_label.setObjectName("fieldLabel")
        self.groups_model = ChatListModel(self)
        self._all_groups = groups
        self.groups_model.load(groups, more=False)
        self.groups = ChatListView(self)
        self.groups.setObjectName("groups")
        self.groups.setAccessibleName("Groups")
        self.groups.delegate.theme = theme
        self.groups.setModel(self.groups_model)
        self.groups.set_placeholder("No groups yet")
        self.groups.setMinimumHeight(180)
        groups_label.setBuddy(self.groups)
        self.buttons = QDialogButtonBox(self)
        self.start = self.buttons.addButton("Start chat", QDialogButtonBox.ButtonRole.AcceptRole)
        self.start.setProperty("primary", True)
        self.start.setObjectName("startChat")
        self.start.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self.reject)
        self.start.clicked.connect(self.submit)
        box = QVBoxLayout(self)
        box.setContentsMargins(20, 18, 20, 16)
        box.setSpacing(8)
        box.addWidget(label)
        box.addWidget(self.number)
        box.addWidget(self.status)
        box.addSpacing(6)
        box.addWidget(groups_label)
        box.addWidget(self.groups, 1)
        box.addWidget(self.buttons)
        self.number.textChanged.connect(self.validate)
        self.number.returnPressed.connect(self.submit)
        self.groups.chosen.connect(lambda jid, _row: self.startRequested.emit(jid))
        self.validate()

    def validate(self) -> bool:
        typed = self.number.text().strip()
        needle = typed.lower()
        digits = "".join(ch for ch in typed if ch.isdigit())
        shown = [
            g
            for g in self._all_groups
            if not needle or needle in chat_title(g).lower() or (digits and digits in g.jid)
        ]
        self.groups_model.load(shown, more=False)
        if not typed:
            self._say(NEW_CHAT_HINT, "hint")
            self.start.setEnabled(False)
            return False
        recipient, reason = recipient_problem(typed)
        if recipient is None:
            if shown:
                self._say(f"{reason}. Or pick a group below.", "hint")
            else:
                self._say(reason, "error")
            self.start.setEnabled(False)
            return False
        kind = "Group" if recipient.is_group else "WhatsApp number"
        self._say(f"✓ {kind} {recipient.display()}", "valid")
        self.start.setEnabled(not self.busy)
        return True

    def _say(self, text: str, kind: str) -> None:
        self.status.setText(text)
        self.status.setObjectName(kind)
        themes.repolish(self.status)

    def submit(self) -> None:
        if self.busy or not self.validate():
            return
        recipient, _reason = recipient_problem(self.number.text())
        if recipient is not None:
            self.startRequested.emit(recipient.jid)

    def checking(self, shown: str) -> None:
        self.busy = True
        self.start.setEnabled(False)
        self._say(f"Asking WhatsApp whether {shown} has an account…", "hint")

    def refuse(self, reason: str) -> None:
        """The number cannot be written to: say why; nothing was opened or queued."""
        self.busy = False
        self._say(reason, "error")
        self.start.setEnabled(False)
        self.number.setFocus()
        self.number.selectAll()
