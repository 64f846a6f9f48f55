"""The send form: recipient (checked as you type), message, Send."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from ..core.recipients import Recipient, RecipientError, parse_recipient
from ..core.session import MAX_TEXT, TextError, validate_text
from . import theme as themes
from .status import sentence

RECIPIENT_HINT = "Phone number with country code (e.g. +49 151 23456789), or a group ID ending in @g.us"
OFFLINE_NOTE = "Not connected: messages wait in the outbox and go out when wadesk reconnects."


def recipient_problem(text: str) -> tuple[Recipient | None, str]:
    """(recipient, '') when usable, else (None, the reason for a person)."""
    try:
        return parse_recipient(text), ""
    except RecipientError as exc:
        return None, sentence(str(exc), "Recipient")


def text_problem(text: str) -> str:
    try:
        validate_text(text)
    except TextError as exc:
        if str(exc) == "is empty":
            return "Type a message to send"
        return f"The message {exc}"
    return ""


class ComposeForm(QFrame):
    sendRequested = Signal(str, str)  # recipient as typed, text

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self._busy = False
        self.recipient_ok: Recipient | None = None

        self.to_label = QLabel("&To", self)
        self.to_label.setObjectName("fieldLabel")
        self.recipient = QLineEdit(self)
        self.recipient.setAccessibleName("Recipient")
        self.recipient.setAccessibleDescription(RECIPIENT_HINT)
        self.recipient.setPlaceholderText("+49 151 23456789 or a group ID")
        self.recipient.setClearButtonEnabled(True)
        self.recipient.setMaxLength(100)
        self.to_label.setBuddy(self.recipient)

        self.recipient_status = QLabel(RECIPIENT_HINT, self)
        self.recipient_status.setObjectName("hint")
        self.recipient_status.setWordWrap(True)
        self.recipient_status.setAccessibleName("Recipient check")

        self.message_label = QLabel("&Message", self)
        self.message_label.setObjectName("fieldLabel")
        self.message = QPlainTextEdit(self)
        self.message.setAccessibleName("Message")
        self.message.setAccessibleDescription("The text to send. Ctrl+Enter sends it.")
        self.message.setPlaceholderText("Write a message (Ctrl+Enter sends)")
        self.message.setTabChangesFocus(True)
        self.message.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        line = self.message.fontMetrics().lineSpacing()
        self._line = line
        self.message.setFixedHeight(line * 3 + 22)
        self.message_label.setBuddy(self.message)

        self.send_button = QPushButton("Send", self)
        self.send_button.setProperty("primary", True)
        self.send_button.setAccessibleName("Send message")
        self.send_button.setToolTip("Send (Ctrl+Enter)")
        self.send_button.setMinimumWidth(96)
        self.send_button.setEnabled(False)

        self.text_status = QLabel("", self)
        self.text_status.setObjectName("hint")
        self.text_status.setAccessibleName("Message check")
        self.offline_note = QLabel("◷  " + OFFLINE_NOTE, self)
        self.offline_note.setObjectName("offline")
        self.offline_note.setWordWrap(True)
        self.offline_note.setAccessibleName("Outbox note")

        grid = QGridLayout(self)
        grid.setContentsMargins(20, 14, 20, 14)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(6)
        grid.addWidget(self.offline_note, 0, 0, 1, 3)
        grid.addWidget(self.to_label, 1, 0, Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(self.recipient, 1, 1, 1, 2)
        grid.addWidget(self.recipient_status, 2, 1, 1, 2)
        grid.addWidget(self.message_label, 3, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.message, 3, 1)
        grid.addWidget(self.send_button, 3, 2, Qt.AlignmentFlag.AlignBottom)
        grid.addWidget(self.text_status, 4, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        self.message_label.setContentsMargins(0, 8, 0, 0)

        QWidget.setTabOrder(self.recipient, self.message)
        QWidget.setTabOrder(self.message, self.send_button)

        self.recipient.textChanged.connect(self.validate)
        self.recipient.returnPressed.connect(self.message.setFocus)
        self.message.textChanged.connect(self.validate)
        self.message.textChanged.connect(self._fit_message)
        self.send_button.clicked.connect(self.submit)
        self.recipient.installEventFilter(self)
        self.message.installEventFilter(self)
        self.set_connected(False)
        self.validate()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Ctrl+Enter sends from either field."""
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.submit()
            return True
        return super().eventFilter(watched, event)

    # -- state --
    def set_connected(self, connected: bool) -> None:
        self.offline_note.setVisible(not connected)
        self.send_button.setToolTip(
            "Send (Ctrl+Enter)" if connected else "Queue in the outbox; it goes out on reconnect (Ctrl+Enter)"
        )

    def apply_theme(self, theme: themes.Theme) -> None:
        bg, _accent, fg = theme.tone(themes.Tone.WARN)
        self.offline_note.setStyleSheet(
            f"QLabel {{ color: {fg}; background: {bg}; border-radius: 8px; padding: 7px 12px; }}"
        )

    def _fit_message(self) -> None:
        """Grow the message box with its text, from 3 up to 8 lines."""
        doc = self.message.document()
        lines = max(3, min(8, round(doc.documentLayout().documentSize().height())))
        height = lines * self._line + 22
        if self.message.height() != height:
            self.message.setFixedHeight(height)

    # -- validation --
    def validate(self) -> bool:
        typed = self.recipient.text()
        if not typed.strip():
            self.recipient_ok, reason = None, ""
            self._set_recipient_status(RECIPIENT_HINT, "hint", invalid=False)
        else:
            self.recipient_ok, reason = recipient_problem(typed)
            if self.recipient_ok is None:
                self._set_recipient_status(reason, "error", invalid=True)
            else:
                kind = "group" if self.recipient_ok.is_group else "WhatsApp number"
                self._set_recipient_status(f"✓ Sends to {kind} {self.recipient_ok.display()}", "valid", False)
        text = self.message.toPlainText()
        problem = text_problem(text)
        if problem:
            self.text_status.setText(problem)
            self.text_status.setObjectName("error" if text.strip() else "hint")
        else:
            count = len(text)
            self.text_status.setText(
                f"{count:,} / {MAX_TEXT:,} characters · Ctrl+Enter sends"
                if count > MAX_TEXT * 0.8
                else "Ctrl+Enter sends"
            )
            self.text_status.setObjectName("hint")
        themes.repolish(self.text_status)
        ok = self.recipient_ok is not None and not problem
        self.send_button.setEnabled(ok and not self._busy)
        return ok

    def _set_recipient_status(self, text: str, kind: str, invalid: bool) -> None:
        self.recipient_status.setText(text)
        self.recipient_status.setObjectName(kind)
        themes.repolish(self.recipient_status)
        self.recipient.setProperty("invalid", invalid)
        themes.repolish(self.recipient)

    # -- actions --
    def submit(self) -> None:
        if self.busy:
            return
        if not self.validate():
            (self.recipient if self.recipient_ok is None else self.message).setFocus()
            return
        self.sendRequested.emit(self.recipient.text(), self.message.toPlainText())

    @property
    def busy(self) -> bool:
        """A message is being put in the outbox: the form waits for that."""
        return self._busy

    def set_busy(self, busy: bool) -> None:
        """While busy, Send (button and Ctrl+Enter) does nothing; typing goes on."""
        self._busy = busy
        if busy:
            self.send_button.setEnabled(False)
        else:
            self.validate()

    def sent(self, text: str) -> None:
        """``text`` is in the outbox: clear it (unless it was edited meanwhile), keep the recipient."""
        if self.message.toPlainText() == text:
            self.message.clear()
        self.message.setFocus()

    def show_error(self, reason: str) -> None:
        self.text_status.setText(reason)
        self.text_status.setObjectName("error")
        themes.repolish(self.text_status)

    def set_recipient(self, jid: str) -> None:
        user, _, server = jid.partition("@")
        self.recipient.setText(f"+{user}" if server == "s.whatsapp.net" and user.isdigit() else jid)
        self.message.setFocus()
