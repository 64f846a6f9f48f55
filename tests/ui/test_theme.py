"""Both palettes read well (WCAG contrast), and the window follows the system's light or dark
colour scheme while it runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from wadesk.ui import theme as themes
from wadesk.ui.status import Tone

from .rig import Rig

TEXT = 4.5  # WCAG AA, normal text
GRAPHICS = 3.0  # WCAG AA, large text and the parts of controls


def luminance(colour: str) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    c = colour.lstrip("#")
    r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def pairs(t: themes.Theme) -> list[tuple[str, str, str, float]]:
    """(what, foreground, background, least ratio) for every text the window draws."""
    out: list[tuple[str, str, str, float]] = []
    backgrounds = {
        "window": t.window,
        "surface": t.surface,
        "surface_alt": t.surface_alt,
        "selected chat": t.selected,
        "sent bubble": t.bubble_out,
        "received bubble": t.bubble_in,
    }
    for fg_name in ("text", "muted", "link", "error"):
        for bg_name, bg in backgrounds.items():
            out.append((f"{fg_name} on {bg_name}", getattr(t, fg_name), bg, TEXT))
    info = t.tones[Tone.INFO][1]  # the read ticks
    out.append(("read ticks on sent bubble", info, t.bubble_out, TEXT))
    out.append(("read ticks in the chat list", t.link if t.dark else info, t.surface, TEXT))
    for name in ("accent", "accent_hover", "accent_pressed"):
        out.append((f"button text on {name}", t.accent_text, getattr(t, name), TEXT))
    out.append(("unread badge", t.accent_text, t.accent, TEXT))
    out.append(("the focus ring on a chat", t.accent, t.surface, GRAPHICS))
    out.append(("the focus ring on the selected chat", t.accent, t.selected, GRAPHICS))
    for colour in t.avatars:
        out.append((f"initials on {colour}", t.avatar_text, colour, TEXT))
    for tone, (bg, dot, fg) in t.tones.items():
        out.append((f"{tone} banner text", fg, bg, TEXT))
        out.append((f"{tone} banner dot", dot, bg, GRAPHICS))
    out.append(("placeholder text", t.muted, t.surface, TEXT))
    out.append(("day chip", t.muted, t.surface, TEXT))
    return out


@pytest.mark.parametrize("theme", [themes.LIGHT, themes.DARK], ids=["light", "dark"])
def test_every_colour_has_enough_contrast(theme: themes.Theme) -> None:
    low = [
        f"{what}: {contrast(fg, bg):.2f} < {least}"
        for what, fg, bg, least in pairs(theme)
        if contrast(fg, bg) < least
    ]
    assert low == []


def test_the_window_follows_the_system_colour_scheme(qtbot: Any, make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.connect()
    window = rig.window
    hints = QGuiApplication.styleHints()
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    start = window.theme
    try:
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        assert window.theme is themes.DARK
        assert app.palette().color(QPalette.ColorRole.Window).name().upper() == themes.DARK.window
        assert window.chat_list.delegate.theme is themes.DARK
        assert window.log_view.bubbles.theme is themes.DARK
        assert window.banner.theme is themes.DARK
        pixels = window.log_view.viewport().grab().toImage()
        assert pixels.pixelColor(5, pixels.height() - 5).name().upper() == themes.DARK.surface_alt
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
        assert window.theme is themes.LIGHT
        assert app.palette().color(QPalette.ColorRole.Window).name().upper() == themes.LIGHT.window
    finally:
        window.apply_theme(start)
