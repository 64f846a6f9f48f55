"""The connection-state strip at the top of the window: a coloured dot, words, and an action."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from . import theme as themes
from .status import Action, StatusView, Tone


class Dot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour = QColor("#888888")
        self.setFixedSize(QSize(12, 12))

    def set_colour(self, colour: str) -> None:
        self.colour = QColor(colour)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        halo = QColor(self.colour)
        halo.setAlpha(60)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(halo)
        p.drawEllipse(self.rect())
        p.setBrush(self.colour)
        p.drawEllipse(self.rect().adjusted(2, 2, -2, -2))
        p.end()


class StatusBanner(QFrame):
    actionTriggered = Signal(str)  # an Action value

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setAccessibleName("Connection status")
        self.theme = themes.LIGHT
        self.view = StatusView(Tone.NEUTRAL, "Starting")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(20, 10, 14, 10)
        layout.setSpacing(10)
        self.dot = Dot(self)
        self.title = QLabel(self)
        self.title.setObjectName("statusTitle")
        bold = QFont(self.title.font())
        bold.setWeight(QFont.Weight.DemiBold)
        self.title.setFont(bold)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail = QLabel(self)
        self.detail.setObjectName("statusDetail")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.action = QPushButton(self)
        self.action.setObjectName("statusAction")
        self.action.setAccessibleName("Connection action")
        self.action.clicked.connect(lambda: self.actionTriggered.emit(self.action.property("action")))
        self.action.hide()
        layout.addWidget(self.dot, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.title, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.detail, 1, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.action, 0, Qt.AlignmentFlag.AlignVCenter)
        self.show_view(self.view)

    @property
    def text(self) -> str:
        """What the banner says, title and detail (what a person reads)."""
        return self.view.text

    def show_view(self, view: StatusView) -> None:
        self.view = view
        bg, accent, fg = self.theme.tone(view.tone)
        self.setProperty("tone", view.tone.value)
        self.setStyleSheet(
            f"QFrame#banner {{ background: {bg}; border: none; border-bottom: 1px solid {accent}; }}"
            f"QLabel {{ color: {fg}; background: transparent; }}"
            f"QPushButton#statusAction {{ background: {self.theme.surface}; color: {fg};"
            f" border: 1px solid {accent}; border-radius: 7px; padding: 4px 14px; font-weight: 600; }}"
            f"QPushButton#statusAction:hover {{ background: {bg}; }}"
            f"QPushButton#statusAction:focus {{ border: 2px solid {accent}; padding: 3px 13px; }}"
        )
        self.dot.set_colour(accent)
        self.title.setText(view.title)
        self.detail.setText(view.detail)
        self.detail.setVisible(bool(view.detail))
        self.setAccessibleDescription(view.text)
        self.setToolTip(view.text)
        if view.action is Action.NONE:
            self.action.hide()
        else:
            self.action.setText(view.action.value)
            self.action.setProperty("action", view.action.value)
            self.action.show()
