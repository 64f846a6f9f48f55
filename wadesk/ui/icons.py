"""The application icon (resources/wadesk.svg), with a drawn fallback if the file is missing."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

ICON_NAME = "wadesk.svg"


def icon_path() -> Path | None:
    """Where wadesk.svg is: next to the package (installed data), the checkout, or a bundle."""
    here = Path(__file__).resolve().parent
    candidates = [
        here.parent / "resources" / ICON_NAME,  # wadesk/resources/ (package data)
        here.parent.parent / "resources" / ICON_NAME,  # the source checkout
    ]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / "resources" / ICON_NAME)
    return next((p for p in candidates if p.is_file()), None)


def _drawn(size: int = 64) -> QPixmap:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#0F8F76"))
    p.drawRoundedRect(QRectF(2, 2, size - 4, size - 4), size * 0.22, size * 0.22)
    p.setBrush(QColor("#FFFFFF"))
    p.drawEllipse(QRectF(size * 0.18, size * 0.2, size * 0.64, size * 0.56))
    p.end()
    return pix


@cache
def app_icon() -> QIcon:
    path = icon_path()
    icon = QIcon(str(path)) if path else QIcon()
    if icon.isNull() or (not icon.availableSizes() and icon.pixmap(32, 32).isNull()):
        icon = QIcon(_drawn())
    return icon
