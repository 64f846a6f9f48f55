"""QR code rendering for pairing: PNG, SVG, terminal text art and the raw module matrix.

No Qt here: the window draws :func:`matrix` itself so the code stays sharp at any size.
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import lru_cache

import segno

QUIET_ZONE = 4  # modules of white border the QR standard asks for


@lru_cache(maxsize=8)
def _make(data: str) -> segno.QRCode:
    return segno.make_qr(data, error="m")


def matrix(data: str) -> list[list[bool]]:
    """Rows of modules, True for dark, without the quiet zone."""
    return [[bool(v) for v in row] for row in _make(data).matrix]


def png(data: str, *, scale: int = 8, border: int = QUIET_ZONE) -> bytes:
    """Black on white, 1 bit per pixel. Written here rather than by segno, whose pure-Python
    PNG writer took longer than encoding the code (the same pixels, a third of the time)."""
    rows = _make(data).matrix
    size = (len(rows[0]) + 2 * border) * scale
    pad = (-size) % 8  # each PNG row fills whole bytes
    nbytes = (size + pad) // 8
    light = (1 << scale) - 1  # a light module: `scale` one-bits (white); dark stays zero
    quiet = [0] * border
    blank = b"\x00" + (((1 << size) - 1) << pad).to_bytes(nbytes, "big")  # filter byte, white row
    lines = [blank * (border * scale)]
    for row in rows:
        bits = 0
        for dark in (*quiet, *row, *quiet):
            bits = (bits << scale) | (0 if dark else light)
        lines.append((b"\x00" + (bits << pad).to_bytes(nbytes, "big")) * scale)
    lines.append(blank * (border * scale))
    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)  # 1-bit grayscale, no interlace
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(b"".join(lines), 6)),  # 9 is ten times slower, no smaller
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def svg(data: str, *, scale: int = 8, border: int = QUIET_ZONE) -> str:
    buf = io.BytesIO()
    _make(data).save(
        buf, kind="svg", scale=scale, border=border, xmldecl=True, svgns=True, title="WhatsApp QR"
    )
    return buf.getvalue().decode("utf-8")


def text_art(data: str, *, border: int = 2) -> str:
    """Half-block art (two rows per line) that a phone can scan from a terminal or a log."""
    rows = matrix(data)
    width = len(rows[0]) + 2 * border
    blank = [False] * width
    padded = [blank] * border + [[False] * border + r + [False] * border for r in rows] + [blank] * border
    if len(padded) % 2:
        padded.append(blank)
    # dark modules are drawn as spaces on a light background would need colour; use inverse:
    # light = full block, dark = space, so it reads right on dark terminals and log viewers.
    chars = {(False, False): "\u2588", (False, True): "\u2580", (True, False): "\u2584", (True, True): " "}
    lines = []
    for top, bottom in zip(padded[0::2], padded[1::2], strict=True):
        lines.append("".join(chars[(t, b)] for t, b in zip(top, bottom, strict=True)))
    return "\n".join(lines)
