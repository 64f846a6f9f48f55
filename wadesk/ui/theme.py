"""Colours, fonts and the style sheet of the window (a light and a dark variant)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from .status import Tone


@dataclass(frozen=True)
class Theme:
    dark: bool
    window: str
    surface: str  # cards, inputs
    surface_alt: str  # the message log background
    border: str
    text: str
    muted: str
    accent: str
    accent_hover: str
    accent_pressed: str
    accent_text: str
    disabled_bg: str
    disabled_text: str
    bubble_out: str
    bubble_in: str
    bubble_border: str
    link: str
    error: str
    tones: dict[Tone, tuple[str, str, str]]  # tone -> (background, dot/border, text)
    selected: str  # the open chat in the chat list
    avatars: tuple[str, ...]  # a chat's round picture (its initials on it, in avatar_text)
    avatar_text: str

    def tone(self, tone: Tone) -> tuple[str, str, str]:
        return self.tones[tone]


# white initials on each of these read at 4.5:1 or more (tests/ui/test_theme.py)
AVATARS = ("#0F7B6C", "#1D4ED8", "#7C3AED", "#B45309", "#BE185D", "#0E7490", "#4D7C0F", "#475569")

LIGHT = Theme(
    dark=False,
    window="#F3F4F6",
    surface="#FFFFFF",
    surface_alt="#EEF1F4",
    border="#D7DCE1",
    text="#111B21",
    muted="#5F6B74",
    accent="#0F7B6C",
    accent_hover="#0C6A5D",
    accent_pressed="#095A4F",
    accent_text="#FFFFFF",
    disabled_bg="#DDE3E7",
    disabled_text="#8A969E",
    bubble_out="#D9FDD3",
    bubble_in="#FFFFFF",
    bubble_border="#D3DAD6",
    link="#0B6E61",
    error="#B42318",
    tones={
        Tone.NEUTRAL: ("#E9ECEF", "#6B7780", "#2F3A42"),
        Tone.INFO: ("#E3EEFD", "#2563EB", "#1E3A8A"),
        Tone.OK: ("#DDF5E6", "#15954B", "#0F5132"),
        Tone.WARN: ("#FDF0D5", "#C27803", "#7A4A00"),
        Tone.ERROR: ("#FCE4E2", "#C8281C", "#7F1D1D"),
    },
    selected="#E8ECEF",
    avatars=AVATARS,
    avatar_text="#FFFFFF",
)

DARK = Theme(
    dark=True,
    window="#111B21",
    surface="#1F2C33",
    surface_alt="#0B141A",
    border="#2F3E46",
    text="#E9EDEF",
    muted="#9AA7AF",
    accent="#21A68D",
    accent_hover="#26B89C",
    accent_pressed="#1C907A",
    accent_text="#06120F",
    disabled_bg="#2A3942",
    disabled_text="#6F7E86",
    bubble_out="#0A3F35",
    bubble_in="#202C33",
    bubble_border="#2A3942",
    link="#53BDAA",
    error="#FF8A80",
    tones={
        Tone.NEUTRAL: ("#26343C", "#8696A0", "#D1D7DB"),
        Tone.INFO: ("#1B2E4D", "#60A5FA", "#BFDBFE"),
        Tone.OK: ("#123B2A", "#34C77B", "#BBF7D0"),
        Tone.WARN: ("#3D2E0F", "#F5B041", "#FDE68A"),
        Tone.ERROR: ("#431D1B", "#F87171", "#FECACA"),
    },
    selected="#263740",
    avatars=AVATARS,
    avatar_text="#FFFFFF",
)


def system_prefers_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    return scheme is not None and scheme() == Qt.ColorScheme.Dark


def current() -> Theme:
    return DARK if system_prefers_dark() else LIGHT


def for_scheme(scheme: Qt.ColorScheme) -> Theme:
    """The theme for a colour scheme the system announced (Unknown: light)."""
    return DARK if scheme == Qt.ColorScheme.Dark else LIGHT


def scaled_font(base: QFont, factor: float, weight: QFont.Weight | None = None) -> QFont:
    font = QFont(base)
    size = base.pointSizeF()
    if size > 0:
        font.setPointSizeF(size * factor)
    else:
        font.setPixelSize(max(1, round(base.pixelSize() * factor)))
    if weight is not None:
        font.setWeight(weight)
    return font


def palette(theme: Theme) -> QPalette:
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: theme.window,
        QPalette.ColorRole.WindowText: theme.text,
        QPalette.ColorRole.Base: theme.surface,
        QPalette.ColorRole.AlternateBase: theme.surface_alt,
        QPalette.ColorRole.Text: theme.text,
        QPalette.ColorRole.Button: theme.surface,
        QPalette.ColorRole.ButtonText: theme.text,
        QPalette.ColorRole.Highlight: theme.accent,
        QPalette.ColorRole.HighlightedText: theme.accent_text,
        QPalette.ColorRole.ToolTipBase: theme.surface,
        QPalette.ColorRole.ToolTipText: theme.text,
        QPalette.ColorRole.PlaceholderText: theme.muted,
        QPalette.ColorRole.Link: theme.link,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(theme.disabled_text))
    return pal


def style_sheet(t: Theme) -> str:
    return f"""
QMainWindow, QDialog {{ background: {t.window}; }}
QMenuBar {{ background: {t.surface}; border-bottom: 1px solid {t.border}; padding: 2px 6px; }}
QMenuBar::item {{ padding: 4px 10px; border-radius: 6px; }}
QMenuBar::item:selected {{ background: {t.surface_alt}; }}
QMenu {{ background: {t.surface}; border: 1px solid {t.border}; padding: 6px; }}
QMenu::item {{ padding: 6px 22px 6px 14px; border-radius: 6px; }}
QMenu::item:selected {{ background: {t.surface_alt}; color: {t.text}; }}
QMenu::item:disabled {{ color: {t.disabled_text}; }}
QMenu::separator {{ height: 1px; background: {t.border}; margin: 5px 8px; }}
QStatusBar {{ background: {t.surface}; border-top: 1px solid {t.border}; color: {t.muted}; }}
QStatusBar::item {{ border: none; }}
QStatusBar QLabel {{ color: {t.muted}; padding: 0 6px; }}

QFrame#card {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: 14px; }}
QFrame#composer {{ background: {t.surface}; border-top: 1px solid {t.border}; }}
QLabel#muted, QLabel#hint {{ color: {t.muted}; }}
QLabel#fieldLabel {{ color: {t.muted}; font-weight: 600; }}
QLabel#error {{ color: {t.error}; }}
QLabel#warning {{ color: {t.tones[Tone.WARN][2]}; }}
QLabel#valid {{ color: {t.tones[Tone.OK][2]}; }}
QLabel#stepNumber {{
    background: {t.surface_alt}; color: {t.accent}; border-radius: 13px; font-weight: 700;
    min-width: 26px; max-width: 26px; min-height: 26px; max-height: 26px;
}}
QLabel#pairCode {{
    background: {t.surface_alt}; color: {t.text}; border: 1px dashed {t.border}; border-radius: 12px;
    padding: 14px 18px;
}}

QLineEdit, QPlainTextEdit {{
    background: {t.surface}; color: {t.text}; border: 1px solid {t.border}; border-radius: 8px;
    padding: 7px 10px; selection-background-color: {t.accent}; selection-color: {t.accent_text};
}}
QLineEdit:focus, QPlainTextEdit:focus {{ border: 2px solid {t.accent}; padding: 6px 9px; }}
QLineEdit[invalid="true"] {{ border: 1px solid {t.error}; }}
QLineEdit[invalid="true"]:focus {{ border: 2px solid {t.error}; }}
QLineEdit:read-only {{ background: {t.surface_alt}; }}
QLineEdit:disabled, QPlainTextEdit:disabled {{ background: {t.surface_alt}; color: {t.disabled_text}; }}

QPushButton {{
    background: {t.surface}; color: {t.text}; border: 1px solid {t.border}; border-radius: 8px;
    padding: 7px 16px;
}}
QPushButton:hover {{ background: {t.surface_alt}; }}
QPushButton:focus {{ border: 2px solid {t.accent}; padding: 6px 15px; }}
QPushButton:disabled {{ color: {t.disabled_text}; }}
QPushButton[primary="true"] {{
    background: {t.accent}; color: {t.accent_text}; border: 1px solid {t.accent}; font-weight: 600;
}}
QPushButton[primary="true"]:hover {{ background: {t.accent_hover}; }}
QPushButton[primary="true"]:pressed {{ background: {t.accent_pressed}; }}
QPushButton[primary="true"]:focus {{ border: 2px solid {t.text}; padding: 6px 15px; }}
QPushButton[primary="true"]:disabled {{
    background: {t.disabled_bg}; border-color: {t.disabled_bg}; color: {t.disabled_text};
}}
QPushButton[link="true"] {{
    background: transparent; border: none; color: {t.link}; padding: 4px 0; text-align: left;
    font-weight: 600;
}}
QPushButton[link="true"]:hover {{ text-decoration: underline; }}
QPushButton[link="true"]:focus {{ border: none; text-decoration: underline; padding: 4px 0; }}

QFrame#attachment {{ background: {t.surface_alt}; border: 1px solid {t.border}; border-radius: 10px; }}
QLabel#attachmentName {{ color: {t.text}; font-weight: 600; }}
QLabel#attachmentThumb {{ background: transparent; border-radius: 6px; }}
QLabel#attachmentThumb[badge="true"] {{
    background: {t.accent}; color: {t.accent_text}; font-weight: 700;
}}
QPushButton#removeAttachment {{
    background: transparent; border: 1px solid transparent; border-radius: 14px; padding: 0;
    min-width: 28px; max-width: 28px; min-height: 28px; max-height: 28px;
    color: {t.muted};
}}
QPushButton#removeAttachment:hover {{ background: {t.border}; color: {t.text}; }}
QPushButton#removeAttachment:focus {{ border: 2px solid {t.accent}; padding: 0; }}

QListView#log {{ background: {t.surface_alt}; border: none; }}
QListView#chats, QListView#searchResults {{ background: {t.surface}; border: none; }}
QFrame#chatsPane {{ background: {t.surface}; border-right: 1px solid {t.border}; }}
QFrame#chatsTop {{ background: {t.surface}; border-bottom: 1px solid {t.border}; }}
QFrame#chatHeader {{ background: {t.surface}; border-bottom: 1px solid {t.border}; }}
QLabel#chatTitle {{ color: {t.text}; font-weight: 600; }}
QLabel#chatSubtitle {{ color: {t.muted}; }}
QLabel#noChat {{ color: {t.muted}; background: {t.surface_alt}; }}
QSplitter::handle {{ background: {t.border}; }}
QPushButton#newChat {{ padding: 6px 12px; }}
QPushButton#back {{ padding: 5px 12px; }}
QListView#groups {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: 8px; }}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 2px; }}
QScrollBar::handle:vertical {{ background: {t.border}; border-radius: 4px; min-height: 32px; }}
QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical {{ height: 0; }}
QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical {{ background: transparent; }}
QProgressBar#countdown {{ background: {t.surface_alt}; border: none; border-radius: 2px; }}
QProgressBar#countdown::chunk {{ background: {t.accent}; border-radius: 2px; }}
QCheckBox {{ spacing: 8px; }}
"""


def apply(app: QApplication, theme: Theme | None = None) -> Theme:
    """Fusion style with our palette and style sheet (by default the system's light or
    dark variant); returns the theme in use."""
    theme = theme or current()
    app.setStyle("Fusion")
    app.setPalette(palette(theme))
    app.setStyleSheet(style_sheet(theme))
    return theme


def repolish(widget: QWidget) -> None:
    """Re-apply the style sheet after a dynamic property changed."""
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()
