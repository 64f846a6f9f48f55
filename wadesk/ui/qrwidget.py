"""The pairing QR code, drawn module by module with QPainter.

Each module is a whole number of *device* pixels, so the code is sharp at any widget
size and on HiDPI screens (no scaled bitmap, no anti-aliased edges), modules stay square,
and the four-module white quiet zone the standard asks for is always there.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from .. import qr as qrmod

QUIET = qrmod.QUIET_ZONE
DARK = QColor("#111B21")
LIGHT = QColor("#FFFFFF")
FRAME = QColor("#D7DCE1")


class QRWidget(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._code: str | None = None
        self._matrix: list[list[bool]] = []
        self._placeholder = "Getting a QR code…"
        self._dimmed = False
        sp = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        sp.setHeightForWidth(True)
        self.setSizePolicy(sp)
        self.setMinimumSize(220, 220)
        self.setMaximumSize(420, 420)
        self.setAccessibleName("WhatsApp pairing QR code")
        self._update_description()

    # -- content --
    @property
    def code(self) -> str | None:
        return self._code

    @property
    def modules(self) -> int:
        """Modules per side, without the quiet zone (0 when no code is shown)."""
        return len(self._matrix)

    def set_code(self, code: str | None) -> None:
        if code == self._code:
            return
        self._code = code
        self._matrix = qrmod.matrix(code) if code else []
        self._dimmed = False
        self._update_description()
        self.update()

    def set_placeholder(self, text: str) -> None:
        """Text shown in place of the code while there is none."""
        if text != self._placeholder:
            self._placeholder = text
            self._update_description()
            self.update()

    def set_dimmed(self, dimmed: bool) -> None:
        """Fade the code (it expired and a new one is on its way)."""
        if dimmed != self._dimmed:
            self._dimmed = dimmed
            self.update()

    def _update_description(self) -> None:
        self.setAccessibleDescription(
            "Scan this code with WhatsApp on your phone" if self._code else self._placeholder
        )

    # -- geometry --
    def sizeHint(self) -> QSize:
        return QSize(300, 300)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return width

    def code_rect(self) -> QRectF:
        """Where the code with its quiet zone is drawn, in logical pixels (on this screen)."""
        if not self._matrix:
            return QRectF()
        scale = self.devicePixelRatioF()
        _module, side, x, y = self._geometry(scale)
        return QRectF(x / scale, y / scale, side / scale, side / scale)

    def _geometry(self, scale: float) -> tuple[int, int, int, int]:
        """(module, side, x, y) in device pixels, relative to the widget's top-left corner."""
        count = len(self._matrix) + 2 * QUIET
        margin = math.ceil(6 * scale)  # inside the card's border and rounded corners
        w = math.floor(self.width() * scale) - 1 - 2 * margin  # 1: spare for aligning to the pixel grid
        h = math.floor(self.height() * scale) - 1 - 2 * margin
        module = max(1, min(w, h) // count)
        side = module * count
        return module, side, margin + (w - side) // 2, margin + (h - side) // 2

    # -- painting --
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            if self._matrix:
                self._paint_code(painter)
            else:
                self._paint_placeholder(painter)
        finally:
            painter.end()

    def card_rect(self) -> QRectF:
        """The white square the code sits on (the whole widget, squared and centred)."""
        side = min(self.width(), self.height()) - 1.0
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def _paint_card(self, painter: QPainter, fill: QColor) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(FRAME)
        painter.setBrush(fill)
        painter.drawRoundedRect(self.card_rect().adjusted(0.5, 0.5, 0, 0), 12, 12)
        painter.restore()

    def _paint_code(self, painter: QPainter) -> None:
        self._paint_card(painter, LIGHT)
        # Work in device pixels: the painter's device transform holds the screen's (or the
        # target image's) scale and the widget's offset in the window, which may be fractional
        # at fractional scales; shift by that fraction so every module edge is on a pixel edge.
        device = painter.deviceTransform()
        scale = device.m11() if device.m11() > 0 else self.devicePixelRatioF()
        module, side, ox, oy = self._geometry(scale)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.scale(1 / scale, 1 / scale)
        painter.translate(
            math.ceil(device.dx() - 1e-6) - device.dx(), math.ceil(device.dy() - 1e-6) - device.dy()
        )
        painter.fillRect(QRectF(ox, oy, side, side), LIGHT)
        start = QUIET * module
        for r, row in enumerate(self._matrix):
            y = oy + start + r * module
            c = 0
            n = len(row)
            while c < n:
                if not row[c]:
                    c += 1
                    continue
                run = c
                while run < n and row[run]:
                    run += 1
                painter.fillRect(QRectF(ox + start + c * module, y, (run - c) * module, module), DARK)
                c = run
        if self._dimmed:
            veil = QColor(LIGHT)
            veil.setAlpha(238)
            painter.fillRect(QRectF(ox, oy, side, side), veil)
        painter.restore()
        if self._dimmed:
            painter.setPen(DARK)
            painter.drawText(self.code_rect(), Qt.AlignmentFlag.AlignCenter, "Refreshing…")

    def _paint_placeholder(self, painter: QPainter) -> None:
        pal = self.palette()
        self._paint_card(painter, pal.alternateBase().color())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        rect = self.card_rect()
        side = rect.width()
        # a faint finder-pattern motif, so the empty square still reads as "a QR code goes here"
        ghost = QColor(pal.windowText().color())
        ghost.setAlpha(28)
        unit = side / 12
        for fx, fy in ((1, 1), (8, 1), (1, 8)):
            outer = QRectF(rect.x() + fx * unit, rect.y() + fy * unit, 3 * unit, 3 * unit)
            painter.setBrush(ghost)
            painter.drawRoundedRect(outer, unit * 0.5, unit * 0.5)
        painter.setPen(pal.windowText().color())
        text_rect = rect.adjusted(side * 0.1, side * 0.36, -side * 0.1, -side * 0.36)
        painter.drawText(
            text_rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder
        )
