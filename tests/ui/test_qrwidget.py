"""The QR code is drawn sharp: whole device pixels per module, square modules, quiet zone."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QImage

from wadesk import qr as qrmod
from wadesk.ui.qrwidget import DARK, LIGHT, QUIET, QRWidget

from .qtimage import decode_qr, to_pil

CODE = (
    "2@Jq3nE1bV0m6cFq9mZl5c0XyQwOe3C0G4m1qk1Zx5q7cVfQ0zB3oA1Qp8YH7eK1Nw,"
    "nR1x8h4qvQJvYw7m0h7cTn0T8q2a3sC1ZQ7bXcVd0Aw=,Wq8N2m3cV1b7K0x9Zl4j5H6g7F8d9S0a1Q2w3E4r5T=,"
    "q1W2e3R4t5Y6u7I8o9P0aSdFgHjKlZxCvBnM1234567="
)


def render(widget: QRWidget, size: QSize, dpr: float) -> QImage:
    widget.resize(size)
    image = QImage(round(size.width() * dpr), round(size.height() * dpr), QImage.Format.Format_RGB32)
    image.setDevicePixelRatio(dpr)
    image.fill(QColor("#EEEEEE"))
    widget.render(image)
    return image


@pytest.mark.parametrize("dpr", [1.0, 1.25, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("size", [QSize(221, 221), QSize(288, 288), QSize(301, 257), QSize(380, 380)])
def test_modules_are_whole_device_pixels_and_square(qtbot: Any, size: QSize, dpr: float) -> None:
    widget = QRWidget()
    qtbot.addWidget(widget)
    widget.set_code(CODE)
    image = render(widget, size, dpr)
    modules = widget.modules
    assert modules == len(qrmod.matrix(CODE))

    # read the pixels back (device pixels)
    pil = to_pil(image)
    light = LIGHT.rgb() & 0xFFFFFF
    dark = DARK.rgb() & 0xFFFFFF
    pixels = pil.load()
    w, h = pil.size

    def rgb(x: int, y: int) -> int:
        r, g, b = pixels[x, y]
        return r << 16 | g << 8 | b

    # the code itself: from the first to the last dark pixel (finder patterns sit in three corners)
    dark_xs = [x for x in range(w) if any(rgb(x, y) == dark for y in range(0, h, 2))]
    dark_ys = [y for y in range(h) if any(rgb(x, y) == dark for x in range(0, w, 2))]
    code_w = dark_xs[-1] - dark_xs[0] + 1
    code_h = dark_ys[-1] - dark_ys[0] + 1
    assert code_w == code_h, "the code is square"
    assert code_w % modules == 0, "every module is a whole number of device pixels"
    module = code_w // modules
    assert module >= 1
    quiet = QUIET * module
    left, top = dark_xs[0] - quiet, dark_ys[0] - quiet
    side = code_w + 2 * quiet
    assert left >= 0 and top >= 0 and left + side <= w and top + side <= h
    # no anti-aliased edge: the code and its quiet zone hold only the two colours
    colours = {rgb(x, y) for y in range(top, top + side) for x in range(left, left + side)}
    assert colours == {light, dark}
    # the quiet zone (4 modules all round) is light
    for i in range(side):
        for x, y in (
            (left + i, top + quiet - 1),
            (left + quiet - 1, top + i),
            (left + i, top + side - quiet),
        ):
            assert rgb(x, y) == light
    # square modules that match the matrix, module by module
    matrix = qrmod.matrix(CODE)
    for row in range(modules):
        for col in range(modules):
            cx = left + quiet + col * module + module // 2
            cy = top + quiet + row * module + module // 2
            assert (rgb(cx, cy) == dark) == matrix[row][col]
            # the whole module is one colour: square, and exactly module x module pixels
            x0, y0 = cx - module // 2, cy - module // 2
            assert rgb(x0, y0) == rgb(x0 + module - 1, y0 + module - 1) == rgb(cx, cy)
    assert decode_qr(pil) == [CODE]


def test_grab_decodes_and_a_new_code_replaces_the_old(qtbot: Any) -> None:
    widget = QRWidget()
    qtbot.addWidget(widget)
    widget.resize(300, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_code(CODE)
    assert decode_qr(widget.grab()) == [CODE]
    rotated = CODE.replace("2@Jq3", "2@Zz9")
    widget.set_code(rotated)
    assert decode_qr(widget.grab()) == [rotated]


def test_placeholder_without_a_code(qtbot: Any) -> None:
    widget = QRWidget()
    qtbot.addWidget(widget)
    widget.resize(260, 260)
    widget.set_placeholder("The QR code expired")
    assert widget.code is None
    assert widget.accessibleDescription() == "The QR code expired"
    assert decode_qr(widget.grab()) == []
    assert widget.code_rect().isEmpty()


def test_dimmed_code_is_not_scannable(qtbot: Any) -> None:
    widget = QRWidget()
    qtbot.addWidget(widget)
    widget.resize(300, 300)
    widget.set_code(CODE)
    widget.set_dimmed(True)
    assert decode_qr(widget.grab()) == []
    assert widget.accessibleName() == "WhatsApp pairing QR code"
    assert widget.heightForWidth(250) == 250
    assert widget.hasHeightForWidth()


HIDPI_CHECK = """
import sys
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget
from wadesk.ui.qrwidget import DARK, LIGHT, QRWidget
from ui.qtimage import decode_qr, to_pil

app = QApplication([])
outer = QWidget()
layout = QVBoxLayout(outer)
layout.setContentsMargins(13, 7, 13, 7)  # odd offsets: fractional device pixels at 1.25x
widget = QRWidget()
layout.addWidget(widget)
outer.resize(333, 317)
outer.show()
widget.set_code(sys.argv[1])
for _ in range(5):
    app.processEvents()
pixmap = outer.grab()
image = to_pil(pixmap)
px = image.load()
w, h = image.size
dark = DARK.rgb() & 0xFFFFFF
rgb = lambda x, y: px[x, y][0] << 16 | px[x, y][1] << 8 | px[x, y][2]
xs = [x for x in range(w) if any(rgb(x, y) == dark for y in range(h))]
ys = [y for y in range(h) if any(rgb(x, y) == dark for x in range(w))]
colours = {rgb(x, y) for x in range(xs[0], xs[-1] + 1) for y in range(ys[0], ys[-1] + 1)}
decoded = decode_qr(image) == [sys.argv[1]]
width, height = xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1
print(pixmap.devicePixelRatio(), width, height, widget.modules, len(colours), decoded)
"""


@pytest.mark.parametrize("scale", ["1.25", "1.5", "2"])
def test_sharp_on_hidpi_screens(scale: str, tmp_path: Any) -> None:
    """A real window at a fractional or double scale factor (Qt's own HiDPI scaling)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests_dir = Path(__file__).resolve().parent.parent
    env = dict(os.environ, QT_SCALE_FACTOR=scale, QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tests_dir), env.get("PYTHONPATH")) if p)
    tmp_path.chmod(0o700)
    out = subprocess.run(
        [sys.executable, "-c", HIDPI_CHECK, CODE], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    dpr, width, height, modules, colours, decoded = out.stdout.split()
    assert float(dpr) == float(scale)
    assert width == height
    assert int(width) % int(modules) == 0  # whole device pixels per module
    assert colours == "2"  # no blended edge
    assert decoded == "True"
