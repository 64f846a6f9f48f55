"""Dialogs: log-out confirmation, local API settings, about."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QIntValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from . import theme as themes
from .localapi import TokenInfo


def logout_box(parent: QWidget, account: str) -> QMessageBox:
    """A window-modal question; the caller connects ``accepted`` and calls ``open()``."""
    box = QMessageBox(parent)
    box.setObjectName("logoutConfirm")
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Log out")
    box.setText(f"Log out {account} from wadesk?" if account else "Log out from wadesk?")
    box.setInformativeText(
        "This computer is removed from the phone's linked devices. Messages waiting in the "
        "outbox stay there and go out after you link a phone again."
    )
    logout = box.addButton("Log out", QMessageBox.ButtonRole.AcceptRole)
    logout.setObjectName("confirmLogout")
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    return box


def about_box(parent: QWidget) -> QMessageBox:
    box = QMessageBox(parent)
    box.setWindowTitle("About wadesk")
    box.setIconPixmap(parent.windowIcon().pixmap(64, 64))
    box.setText(f"<b>wadesk {__version__}</b>")
    box.setInformativeText(
        "Send WhatsApp messages from your desktop, or from code through a local HTTP API.<br>"
        "Not affiliated with WhatsApp. Use it with your own account and within WhatsApp's terms."
    )
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    return box


class PortEdit(QLineEdit):
    """A port number field (1024 to 65535)."""

    LOW, HIGH = 1024, 65535

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setValidator(QIntValidator(self.LOW, self.HIGH, self))
        self.setMaxLength(5)

    def value(self) -> int:
        try:
            port = int(self.text())
        except ValueError:
            return 8080
        return port if self.LOW <= port <= self.HIGH else 8080

    def setValue(self, port: int) -> None:
        self.setText(str(port))


class LocalApiDialog(QDialog):
    """Turn the local API on or off, pick its port, see and copy its token."""

    def __init__(self, parent: QWidget, *, enabled: bool, port: int, host: str = "127.0.0.1") -> None:
        super().__init__(parent)
        self.setObjectName("localApiDialog")
        self.setWindowTitle("Local API")
        self.setMinimumWidth(520)
        self.host = host
        self.token: TokenInfo | None = None

        intro = QLabel(
            "Programs on this computer can send messages through wadesk's HTTP API while this window "
            "is open. It listens on this computer only and needs the token below.",
            self,
        )
        intro.setWordWrap(True)
        intro.setMinimumWidth(470)
        intro.setObjectName("muted")
        self.enabled = QCheckBox("&Run the local API while wadesk is open", self)
        self.enabled.setChecked(enabled)
        self.port = PortEdit(self)
        self.port.setValue(port if PortEdit.LOW <= port <= PortEdit.HIGH else 8080)
        self.port.setAccessibleName("Port")
        self.port.setMaximumWidth(120)
        self.address = QLabel(self)
        self.address.setObjectName("muted")
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.token_edit = QLineEdit(self)
        self.token_edit.setReadOnly(True)
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("Loading…")
        self.token_edit.setAccessibleName("API token")
        self.show_button = QPushButton("Show", self)
        self.show_button.setCheckable(True)
        self.show_button.setAccessibleName("Show the token")
        self.show_button.toggled.connect(self._toggle_echo)
        self.copy_button = QPushButton("Copy", self)
        self.copy_button.setAccessibleName("Copy the token")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy_token)
        token_row = QHBoxLayout()
        token_row.setSpacing(8)
        token_row.addWidget(self.token_edit, 1)
        token_row.addWidget(self.show_button)
        token_row.addWidget(self.copy_button)
        self.storage = QLabel("", self)
        self.storage.setWordWrap(True)
        self.storage.setMinimumWidth(470)
        self.storage.setObjectName("muted")
        self.storage.setAccessibleName("Where the token is kept")
        self.storage.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(10)
        form.addRow("", self.enabled)
        form.addRow("&Port", self.port)
        form.addRow("", self.address)
        form.addRow("Token", token_row)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        save = buttons.button(QDialogButtonBox.StandardButton.Save)
        save.setProperty("primary", True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        box = QVBoxLayout(self)
        box.setContentsMargins(24, 22, 24, 18)
        box.setSpacing(16)
        box.addWidget(intro)
        box.addLayout(form)
        box.addWidget(self.storage)
        box.addStretch(1)
        box.addWidget(buttons)
        self.port.textChanged.connect(self._update_address)
        self.enabled.toggled.connect(self._update_address)
        self._update_address()

    def _update_address(self) -> None:
        url = f"http://{self.host}:{self.port.value()}"
        self.address.setText(
            f"Address: {url}" if self.enabled.isChecked() else f"Address when running: {url}"
        )
        self.port.setEnabled(self.enabled.isChecked())

    def _toggle_echo(self, shown: bool) -> None:
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_button.setText("Hide" if shown else "Show")

    def set_token(self, info: TokenInfo) -> None:
        self.token = info
        self.token_edit.setText(info.value)
        self.token_edit.setPlaceholderText("")
        self.copy_button.setEnabled(True)
        if info.warning:
            self.storage.setText("⚠ " + info.warning)
            self.storage.setObjectName("warning")
        else:
            self.storage.setText(f"Kept in {info.where}.")
            self.storage.setObjectName("muted")
        themes.repolish(self.storage)
        self.adjustSize()

    def set_token_error(self, reason: str) -> None:
        self.token_edit.setPlaceholderText("Unavailable")
        self.storage.setText(f"The token could not be loaded: {reason}")
        self.storage.setObjectName("error")
        themes.repolish(self.storage)
        self.adjustSize()

    def copy_token(self) -> None:
        if self.token is not None:
            QGuiApplication.clipboard().setText(self.token.value)
            self.copy_button.setText("Copied")
