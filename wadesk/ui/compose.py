"""The send form: recipient (checked as you type), message, Send; a file to attach.

A file comes by the Attach button (Ctrl+O), by dropping it on the window or a field, or
by pasting (a file copied in a file manager, or an image). The form only says so
(:attr:`ComposeForm.attachRequested`, :attr:`ComposeForm.filesDropped`,
:attr:`ComposeForm.imagePasted`); the window reads and checks the file on a worker thread
and gives the result to :meth:`ComposeForm.set_attachment`. With a file, the message is
its caption (optional), and Escape or × removes the file.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject, QSize, Qt, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QImage,
    QKeyEvent,
    QKeySequence,
    QPixmap,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..core.recipients import Recipient, RecipientError, parse_recipient
from ..core.session import MAX_TEXT, TextError, validate_text
from . import theme as themes
from .media import Attachment
from .status import sentence

RECIPIENT_HINT = "Phone number with country code (e.g. +49 151 23456789), or a group ID ending in @g.us"
OFFLINE_NOTE = "Not connected: messages wait in the outbox and go out when wadesk reconnects."
ATTACH_SHORTCUT = "Ctrl+O"
PREVIEW_SIDE = 56  # logical pixels: the picture in the attachment card


def local_files(mime: QMimeData | None) -> list[Path]:
    """The local files a drag or a paste carries (links to web pages are not files)."""
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def pasted_image(mime: QMimeData | None) -> QImage | None:
    """The image a paste carries, if it carries no text (text from an editor often comes
    with a picture of itself: that is pasted as text)."""
    if mime is None or not mime.hasImage() or mime.hasText():
        return None
    image = mime.imageData()
    return image if isinstance(image, QImage) and not image.isNull() else None


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


def caption_problem(text: str) -> str:
    """A caption may be empty; otherwise it follows the rules for a message's text."""
    if not text.strip():
        return ""
    try:
        validate_text(text)
    except TextError as exc:
        return f"The caption {exc}"
    return ""


class MessageEdit(QPlainTextEdit):
    """The message box: files dropped or pasted on it, and pasted images, become the
    attachment instead of text."""

    filesDropped = Signal(list)  # [Path]
    imagePasted = Signal(QImage)

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        if local_files(source) or pasted_image(source) is not None:
            return True
        return super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        files = local_files(source)
        if files:
            self.filesDropped.emit(files)
            return
        image = pasted_image(source)
        if image is not None:
            self.imagePasted.emit(image)
            return
        super().insertFromMimeData(source)


class AttachmentCard(QFrame):
    """The file about to be sent: its picture or type, name and facts, and × to remove it."""

    removeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attachment")
        self.setAccessibleName("Attachment")
        self.thumb = QLabel(self)
        self.thumb.setObjectName("attachmentThumb")
        self.thumb.setFixedSize(QSize(PREVIEW_SIDE, PREVIEW_SIDE))
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setAccessibleName("Attachment preview")
        self.name = QLabel(self)
        self.name.setObjectName("attachmentName")
        self.name.setAccessibleName("Attachment name")
        self.name.setTextFormat(Qt.TextFormat.PlainText)
        self.name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.detail = QLabel(self)
        self.detail.setObjectName("hint")
        self.detail.setAccessibleName("Attachment details")
        self.detail.setTextFormat(Qt.TextFormat.PlainText)
        self.detail.setWordWrap(True)
        self.remove_button = QPushButton("✕", self)
        self.remove_button.setObjectName("removeAttachment")
        self.remove_button.setAccessibleName("Remove attachment")
        self.remove_button.setToolTip("Remove the attachment (Esc)")
        self.remove_button.setFont(themes.scaled_font(self.remove_button.font(), 1.3, QFont.Weight.Bold))
        self.remove_button.clicked.connect(self.removeRequested)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        texts.addStretch(1)
        texts.addWidget(self.name)
        texts.addWidget(self.detail)
        texts.addStretch(1)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 6, 6, 6)
        row.setSpacing(12)
        row.addWidget(self.thumb, 0)
        row.addLayout(texts, 1)
        row.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignTop)
        self._full_name = ""

    def show_loading(self, name: str) -> None:
        self._set_name(name)
        self._set_badge("…")
        self.detail.setText("Reading the file…")
        self.setAccessibleDescription(f"{name}: reading the file")

    def show_attachment(self, attachment: Attachment) -> None:
        self._set_name(attachment.name)
        if attachment.preview is not None:
            pixmap = QPixmap.fromImage(attachment.preview)
            ratio = self.devicePixelRatioF()
            target = QSize(PREVIEW_SIDE, PREVIEW_SIDE) * ratio
            if pixmap.width() > target.width() or pixmap.height() > target.height():
                pixmap = pixmap.scaled(
                    target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                )
            pixmap.setDevicePixelRatio(ratio)
            self.thumb.setProperty("badge", False)
            self.thumb.setPixmap(pixmap)
            themes.repolish(self.thumb)
        else:
            self._set_badge(attachment.badge)
        detail = attachment.details or "Cannot be sent"
        self.detail.setText(detail)
        self.setAccessibleDescription(f"{attachment.name}, {detail}")

    def _set_badge(self, text: str) -> None:
        self.thumb.clear()
        self.thumb.setText(text)
        self.thumb.setProperty("badge", True)
        themes.repolish(self.thumb)

    def _set_name(self, name: str) -> None:
        self._full_name = name
        self.name.setToolTip(name)
        self._elide()

    def _elide(self) -> None:
        width = max(40, self.name.width())
        self.name.setText(
            self.name.fontMetrics().elidedText(self._full_name, Qt.TextElideMode.ElideMiddle, width)
        )

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._elide()

    @property
    def full_name(self) -> str:
        return self._full_name


class ComposeForm(QFrame):
    sendRequested = Signal(str, str)  # recipient as typed, text (the caption when a file is attached)
    attachRequested = Signal()  # the Attach button: choose a file
    filesDropped = Signal(list)  # [Path] dropped or pasted on a field
    imagePasted = Signal(QImage)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self._busy = False
        self.recipient_ok: Recipient | None = None
        self._attachment: Attachment | None = None
        self._loading: str | None = None  # the name of a file being read
        self._token = 0  # the attachment asked for last

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

        self.card = AttachmentCard(self)
        self.card.hide()

        self.message_label = QLabel("&Message", self)
        self.message_label.setObjectName("fieldLabel")
        self.message = MessageEdit(self)
        self.message.setAccessibleName("Message")
        self.message.setTabChangesFocus(True)
        self.message.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        line = self.message.fontMetrics().lineSpacing()
        self._line = line
        self.message.setFixedHeight(line * 3 + 22)
        self.message_label.setBuddy(self.message)

        self.attach_button = QPushButton("Attach…", self)
        self.attach_button.setAccessibleName("Attach a file")
        self.attach_button.setToolTip(
            f"Attach a file ({ATTACH_SHORTCUT}); you can also drop a file on the window or paste an image"
        )
        self.attach_button.setMinimumWidth(96)

        self.send_button = QPushButton("Send", self)
        self.send_button.setProperty("primary", True)
        self.send_button.setAccessibleName("Send message")
        self.send_button.setToolTip("Send (Ctrl+Enter)")
        self.send_button.setMinimumWidth(96)
        self.send_button.setEnabled(False)

        self.text_status = QLabel("", self)
        self.text_status.setObjectName("hint")
        self.text_status.setAccessibleName("Message check")
        self.text_status.setWordWrap(True)
        self.offline_note = QLabel("◷  " + OFFLINE_NOTE, self)
        self.offline_note.setObjectName("offline")
        self.offline_note.setWordWrap(True)
        self.offline_note.setAccessibleName("Outbox note")

        buttons = QVBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.attach_button)
        buttons.addStretch(1)
        buttons.addWidget(self.send_button)
        grid = QGridLayout(self)
        grid.setContentsMargins(20, 14, 20, 14)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(6)
        grid.addWidget(self.offline_note, 0, 0, 1, 3)
        grid.addWidget(self.to_label, 1, 0, Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(self.recipient, 1, 1, 1, 2)
        grid.addWidget(self.recipient_status, 2, 1, 1, 2)
        grid.addWidget(self.card, 3, 1, 1, 2)
        grid.addWidget(self.message_label, 4, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.message, 4, 1)
        grid.addLayout(buttons, 4, 2)
        grid.addWidget(self.text_status, 5, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        self.message_label.setContentsMargins(0, 8, 0, 0)

        QWidget.setTabOrder(self.recipient, self.card.remove_button)
        QWidget.setTabOrder(self.card.remove_button, self.message)
        QWidget.setTabOrder(self.message, self.attach_button)
        QWidget.setTabOrder(self.attach_button, self.send_button)

        self.escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.escape.setEnabled(False)
        self.escape.activated.connect(self.clear_attachment)

        self.recipient.textChanged.connect(self.validate)
        self.recipient.returnPressed.connect(self.message.setFocus)
        self.message.textChanged.connect(self.validate)
        self.message.textChanged.connect(self._fit_message)
        self.message.filesDropped.connect(self.filesDropped)
        self.message.imagePasted.connect(self.imagePasted)
        self.send_button.clicked.connect(self.submit)
        self.attach_button.clicked.connect(self.attachRequested)
        self.card.removeRequested.connect(self.clear_attachment)
        self.recipient.installEventFilter(self)
        self.message.installEventFilter(self)
        self._show_mode()
        self.set_connected(False)
        self.validate()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Ctrl+Enter sends from either field; a file dropped on the recipient is attached."""
        kind = event.type()
        if (
            kind == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.submit()
            return True
        if watched is self.recipient and kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            assert isinstance(event, QDragEnterEvent | QDropEvent)
            if local_files(event.mimeData()):
                event.acceptProposedAction()
                return True
        if watched is self.recipient and kind == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)
            files = local_files(event.mimeData())
            if files:
                event.acceptProposedAction()
                self.filesDropped.emit(files)
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

    # -- the attachment --
    @property
    def attachment(self) -> Attachment | None:
        """The file to send (checked; it may carry an ``error``), None while none or reading."""
        return self._attachment

    @property
    def has_attachment(self) -> bool:
        return self._attachment is not None or self._loading is not None

    def begin_attachment(self, name: str) -> int:
        """A file is being read (it replaces any attachment); returns the token to pass to
        :meth:`set_attachment` with the result."""
        self._token += 1
        self._attachment = None
        self._loading = name
        self.card.show_loading(name)
        self._show_mode()
        return self._token

    def set_attachment(self, attachment: Attachment, token: int | None = None) -> bool:
        """Show the checked file; False (and nothing changes) if it was removed or replaced
        since it was asked for."""
        if token is not None and (token != self._token or self._loading is None):
            return False
        self._token += 1
        self._loading = None
        self._attachment = attachment
        self.card.show_attachment(attachment)
        self._show_mode()
        return True

    def take_attachment(self) -> Attachment | None:
        """Remove the file from the form and return it (None while none or being read);
        the window keeps it with its chat while another chat is open."""
        attachment = self._attachment
        if self.has_attachment:
            self._token += 1
            self._attachment = None
            self._loading = None
            self._show_mode()
        return attachment

    def clear_attachment(self) -> None:
        if not self.has_attachment:
            return
        had_focus = self.card.isAncestorOf(self.focusWidget()) if self.focusWidget() else False
        self._token += 1
        self._attachment = None
        self._loading = None
        self._show_mode()
        if had_focus or self.isActiveWindow():
            self.message.setFocus()

    def _show_mode(self) -> None:
        with_file = self.has_attachment
        self.card.setVisible(with_file)
        self.escape.setEnabled(with_file)
        if with_file:
            self.message_label.setText("&Caption")
            self.message.setAccessibleName("Caption")
            self.message.setAccessibleDescription("A caption for the file (optional). Ctrl+Enter sends.")
            self.message.setPlaceholderText(
                "Add a caption (optional; Ctrl+Enter sends, Esc removes the file)"
            )
            self.send_button.setAccessibleName("Send file")
        else:
            self.message_label.setText("&Message")
            self.message.setAccessibleName("Message")
            self.message.setAccessibleDescription("The text to send. Ctrl+Enter sends it.")
            self.message.setPlaceholderText("Write a message (Ctrl+Enter sends)")
            self.send_button.setAccessibleName("Send message")
        self.validate()

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
        attachment = self._attachment
        if self._loading is not None:
            problem, status, style = "reading", "Reading the file…", "hint"
        elif attachment is not None and attachment.error:
            problem, status, style = attachment.error, attachment.error, "error"
        else:
            problem = caption_problem(text) if attachment is not None else text_problem(text)
            if problem:
                status, style = problem, ("error" if attachment is not None or text.strip() else "hint")
            else:
                hint = "Ctrl+Enter sends the file" if attachment is not None else "Ctrl+Enter sends"
                count = len(text)
                status = f"{count:,} / {MAX_TEXT:,} characters · {hint}" if count > MAX_TEXT * 0.8 else hint
                style = "hint"
        self.text_status.setText(status)
        self.text_status.setObjectName(style)
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
            if self.recipient_ok is None:
                self.recipient.setFocus()
            elif self._attachment is not None and self._attachment.error:
                self.card.remove_button.setFocus()
            else:
                self.message.setFocus()
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

    def sent(self, text: str, attachment: Attachment | None = None) -> None:
        """``text`` (with ``attachment``) is in the outbox: clear what was sent unless it was
        edited or replaced meanwhile; keep the recipient."""
        if attachment is not None and attachment is self._attachment:
            self._attachment = None
            self._show_mode()
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

    # -- in a chat --
    def show_recipient(self, visible: bool) -> None:
        """In the window the form sends to the open chat: no recipient field."""
        for widget in (self.to_label, self.recipient, self.recipient_status):
            widget.setVisible(visible)

    def set_chat(self, jid: str | None, draft: str = "") -> None:
        """Send to ``jid`` from now on; the message box holds that chat's draft."""
        self.recipient.setText(jid or "")
        self.message.setPlainText(draft)
        cursor = self.message.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        self.message.setTextCursor(cursor)
        self.validate()

    @property
    def draft(self) -> str:
        return self.message.toPlainText()
