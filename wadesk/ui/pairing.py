"""Linking a phone: the live QR code with its countdown, or an 8-character code by phone number."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.events import SessionState, Status
from ..core.recipients import RecipientError, parse_recipient
from . import theme as themes
from .qrwidget import QRWidget
from .status import qr_expired, seconds_left, sentence

INSTRUCTION = "On your phone: WhatsApp → Settings → Linked devices → Link a device"
CODE_INSTRUCTION = (
    "On your phone: WhatsApp → Settings → Linked devices → Link a device → "
    "Link with phone number instead, then type this code."
)


def _link_button(text: str, parent: QWidget) -> QPushButton:
    button = QPushButton(text, parent)
    button.setProperty("link", True)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
    return button


def _wrap(text: str, parent: QWidget, name: str = "") -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    if name:
        label.setObjectName(name)
    return label


class PairingPage(QWidget):
    refreshRequested = Signal()
    pairCodeRequested = Signal(str)  # phone number as typed (validated)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = SessionState(Status.STARTING)
        self._qr_ttl = 60.0
        self._busy = False

        base = self.font()
        title_font = themes.scaled_font(base, 1.55, QFont.Weight.DemiBold)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono = themes.scaled_font(mono, 2.3, QFont.Weight.Bold)
        mono.setPointSizeF(max(mono.pointSizeF(), 22.0))
        mono.setLetterSpacing(QFont.SpacingType.AbsoluteSpacing, 3)

        self.card = QFrame(self)
        self.card.setObjectName("card")
        self.card.setMaximumWidth(860)

        # ---- left: the QR code, or the pairing code ----
        self.left = QStackedWidget(self.card)
        qr_panel = QWidget()
        self.qr = QRWidget(qr_panel)
        self.countdown = QProgressBar(qr_panel)
        self.countdown.setObjectName("countdown")
        self.countdown.setTextVisible(False)
        self.countdown.setFixedHeight(4)
        self.countdown.setFixedWidth(self.qr.sizeHint().width())
        self.countdown.setRange(0, 1000)
        self.countdown.setAccessibleName("Time left for this QR code")
        self.countdown_label = QLabel("", qr_panel)
        self.countdown_label.setObjectName("muted")
        self.countdown_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.countdown_label.setAccessibleName("QR code countdown")
        self.new_code_button = QPushButton("Get a new code", qr_panel)
        self.new_code_button.setProperty("primary", True)
        self.new_code_button.setAccessibleName("Get a new QR code")
        self.new_code_button.hide()
        self.new_code_button.clicked.connect(self.refreshRequested)
        qr_box = QVBoxLayout(qr_panel)
        qr_box.setContentsMargins(0, 0, 0, 0)
        qr_box.setSpacing(10)
        qr_box.addStretch(1)
        qr_box.addWidget(self.qr, 0, Qt.AlignmentFlag.AlignHCenter)
        qr_box.addWidget(self.countdown, 0, Qt.AlignmentFlag.AlignHCenter)
        qr_box.addWidget(self.countdown_label)
        qr_box.addWidget(self.new_code_button, 0, Qt.AlignmentFlag.AlignHCenter)
        qr_box.addStretch(1)

        code_panel = QWidget()
        self.code_caption = QLabel("Your linking code", code_panel)
        self.code_caption.setObjectName("muted")
        self.code_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.code_label = QLabel("····-····", code_panel)
        self.code_label.setObjectName("pairCode")
        self.code_label.setFont(mono)
        self.code_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.code_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.code_label.setAccessibleName("Linking code")
        self.copy_code_button = QPushButton("Copy code", code_panel)
        self.copy_code_button.setAccessibleName("Copy linking code")
        self.copy_code_button.setEnabled(False)
        self.copy_code_button.clicked.connect(self.copy_code)
        self.code_note = _wrap("", code_panel, "muted")
        self.code_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        code_box = QVBoxLayout(code_panel)
        code_box.setContentsMargins(0, 0, 0, 0)
        code_box.setSpacing(12)
        code_box.addStretch(1)
        code_box.addWidget(self.code_caption)
        code_box.addWidget(self.code_label)
        code_box.addWidget(self.copy_code_button, 0, Qt.AlignmentFlag.AlignHCenter)
        code_box.addWidget(self.code_note)
        code_box.addStretch(1)
        self.left.addWidget(qr_panel)
        self.left.addWidget(code_panel)
        self.left.setMinimumWidth(300)

        # ---- right: instructions, or the phone-number form ----
        self.right = QStackedWidget(self.card)
        guide = QWidget()
        title = QLabel("Link wadesk to WhatsApp", guide)
        title.setFont(title_font)
        title.setWordWrap(True)
        lead = _wrap("Scan the code with the phone that has your WhatsApp account.", guide, "muted")
        steps = QGridLayout()
        steps.setHorizontalSpacing(12)
        steps.setVerticalSpacing(14)
        self.instruction = _wrap(INSTRUCTION, guide)
        self.instruction.setAccessibleName("Instructions")
        for row, text in enumerate(
            (
                None,
                "Point your phone's camera at the code on the left.",
                "Keep this window open until it says Connected.",
            )
        ):
            number = QLabel(str(row + 1), guide)
            number.setObjectName("stepNumber")
            number.setAlignment(Qt.AlignmentFlag.AlignCenter)
            steps.addWidget(number, row, 0, Qt.AlignmentFlag.AlignTop)
            steps.addWidget(self.instruction if text is None else _wrap(text, guide), row, 1)
        steps.setColumnStretch(1, 1)
        self.phone_link = _link_button("Link with phone number instead", guide)
        self.phone_link.setAccessibleName("Link with phone number instead")
        self.phone_link.clicked.connect(self.show_phone_form)
        guide_box = QVBoxLayout(guide)
        guide_box.setContentsMargins(0, 0, 0, 0)
        guide_box.setSpacing(14)
        guide_box.addWidget(title)
        guide_box.addWidget(lead)
        guide_box.addSpacing(6)
        guide_box.addLayout(steps)
        guide_box.addStretch(1)
        guide_box.addWidget(self.phone_link)

        form = QWidget()
        form_title = QLabel("Link with phone number", form)
        form_title.setFont(title_font)
        form_lead = _wrap(
            "Enter the phone number of your WhatsApp account, with its country code. "
            "WhatsApp gives an 8-character code to type on that phone.",
            form,
            "muted",
        )
        phone_label = QLabel("&Phone number", form)
        phone_label.setObjectName("fieldLabel")
        self.phone = QLineEdit(form)
        self.phone.setPlaceholderText("+49 151 23456789")
        self.phone.setAccessibleName("Phone number to link")
        self.phone.setMaxLength(40)
        phone_label.setBuddy(self.phone)
        self.phone_status = _wrap("", form, "hint")
        self.phone_status.setAccessibleName("Phone number check")
        self.get_code_button = QPushButton("Get code", form)
        self.get_code_button.setProperty("primary", True)
        self.get_code_button.setAccessibleName("Get linking code")
        self.get_code_button.setEnabled(False)
        self.qr_link = _link_button("Scan a QR code instead", form)
        self.qr_link.setAccessibleName("Scan a QR code instead")
        self.qr_link.clicked.connect(self.show_qr)
        code_row = QHBoxLayout()
        code_row.setSpacing(10)
        code_row.addWidget(self.phone, 1)
        code_row.addWidget(self.get_code_button)
        form_box = QVBoxLayout(form)
        form_box.setContentsMargins(0, 0, 0, 0)
        form_box.setSpacing(10)
        form_box.addWidget(form_title)
        form_box.addWidget(form_lead)
        form_box.addSpacing(6)
        form_box.addWidget(phone_label)
        form_box.addLayout(code_row)
        form_box.addWidget(self.phone_status)
        form_box.addStretch(1)
        form_box.addWidget(self.qr_link)
        self.right.addWidget(guide)
        self.right.addWidget(form)

        self.phone.textChanged.connect(self._validate_phone)
        self.phone.returnPressed.connect(self._request_code)
        self.get_code_button.clicked.connect(self._request_code)

        card_box = QHBoxLayout(self.card)
        card_box.setContentsMargins(32, 32, 36, 32)
        card_box.setSpacing(40)
        card_box.addWidget(self.left, 5)
        card_box.addWidget(self.right, 6)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(28, 24, 28, 28)
        outer.addStretch(1)
        centre = QHBoxLayout()
        centre.addStretch(1)
        centre.addWidget(self.card, 20)
        centre.addStretch(1)
        outer.addLayout(centre, 0)
        outer.addStretch(1)

        QWidget.setTabOrder(self.new_code_button, self.phone_link)
        QWidget.setTabOrder(self.phone, self.get_code_button)
        QWidget.setTabOrder(self.get_code_button, self.copy_code_button)
        QWidget.setTabOrder(self.copy_code_button, self.qr_link)
        self._validate_phone()

    # ---- modes ----
    @property
    def phone_mode(self) -> bool:
        return self.right.currentIndex() == 1

    def show_phone_form(self) -> None:
        self.left.setCurrentIndex(1)
        self.right.setCurrentIndex(1)
        self.phone.setFocus()
        self._validate_phone()

    def show_qr(self) -> None:
        self.left.setCurrentIndex(0)
        self.right.setCurrentIndex(0)
        self.phone_link.setFocus()

    # ---- state ----
    def set_state(self, state: SessionState, now: float | None = None) -> None:
        now = time.time() if now is None else now
        previous = self._state
        self._state = state
        if state.qr and state.qr != previous.qr:
            self._qr_ttl = max(1.0, (state.qr_expires_at or now) - now)
        self.qr.set_code(state.qr)
        expired = qr_expired(state)
        if state.qr is None:
            if expired:
                self.qr.set_placeholder("The QR code expired")
            elif state.status is Status.WAITING_FOR_SCAN:
                self.qr.set_placeholder("Getting a QR code…")
            elif state.status is Status.FAILED:
                self.qr.set_placeholder("Cannot get a QR code right now")
            else:
                self.qr.set_placeholder("Connecting to WhatsApp…")
        self.new_code_button.setVisible(expired)
        if previous.status is not Status.WAITING_FOR_SCAN and state.status is Status.WAITING_FOR_SCAN:
            self.code_label.setText("····-····")
            self.copy_code_button.setEnabled(False)
            self.code_note.setText("")
        self.tick(now)
        self._validate_phone()

    def tick(self, now: float | None = None) -> None:
        state = self._state
        if state.qr and state.qr_expires_at:
            left = seconds_left(state.qr_expires_at, now)
            fraction = max(0.0, min(1.0, ((state.qr_expires_at - (now or time.time())) / self._qr_ttl)))
            self.countdown.setValue(round(fraction * 1000))
            self.countdown.show()
            if left > 0:
                self.countdown_label.setText(f"This code changes in {left} s")
                self.qr.set_dimmed(False)
            else:
                self.countdown_label.setText("Getting the next code…")
                self.qr.set_dimmed(True)
        else:
            self.countdown.hide()
            self.countdown_label.setText(
                "Ask for a new code when you are ready to scan" if qr_expired(state) else ""
            )

    # ---- linking by phone number ----
    def _validate_phone(self) -> bool:
        typed = self.phone.text().strip()
        ok = False
        if self._busy:
            message, kind = "Asking WhatsApp for a code…", "hint"
        elif not typed:
            message, kind = "Include the country code, e.g. +49 for Germany.", "hint"
        else:
            try:
                target = parse_recipient(typed)
                if target.is_group:
                    raise RecipientError("must be a phone number, not a group")
            except RecipientError as exc:
                message, kind = sentence(str(exc), "The number"), "error"
            else:
                ok = True
                message, kind = f"✓ {target.display()}", "valid"
        ready = self._state.status is Status.WAITING_FOR_SCAN and self._state.qr is not None
        if ok and not ready and not self._busy:
            message, kind = "Wait until a QR code is shown, then ask for a code.", "hint"
        self.phone_status.setText(message)
        self.phone_status.setObjectName(kind)
        themes.repolish(self.phone_status)
        self.get_code_button.setEnabled(ok and ready and not self._busy)
        return ok and ready

    def _request_code(self) -> None:
        if self._busy or not self._validate_phone():
            return
        self._busy = True
        self.code_label.setText("····-····")
        self.copy_code_button.setEnabled(False)
        self.code_note.setText("Asking WhatsApp…")
        self._validate_phone()
        self.pairCodeRequested.emit(self.phone.text().strip())

    def show_pair_code(self, code: str) -> None:
        self._busy = False
        self.code_label.setText(code)
        self.copy_code_button.setEnabled(True)
        self.code_note.setText(CODE_INSTRUCTION)
        self._validate_phone()
        self.copy_code_button.setFocus()

    def show_pair_error(self, reason: str) -> None:
        self._busy = False
        self.code_note.setText("")
        self._validate_phone()
        self.phone_status.setText(reason)
        self.phone_status.setObjectName("error")
        themes.repolish(self.phone_status)

    def copy_code(self) -> None:
        code = self.code_label.text()
        if "·" not in code:
            QGuiApplication.clipboard().setText(code)
            self.code_note.setText("Copied. " + CODE_INSTRUCTION)
