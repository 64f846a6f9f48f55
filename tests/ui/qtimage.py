"""Turn Qt pixels into PIL images and decode QR codes in them (zxing-cpp)."""

from __future__ import annotations

import zxingcpp
from PIL import Image
from PySide6.QtGui import QImage, QPixmap


def to_pil(image: QImage | QPixmap) -> Image.Image:
    if isinstance(image, QPixmap):
        image = image.toImage()
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height = rgba.width(), rgba.height()
    raw = bytes(rgba.constBits())[: rgba.bytesPerLine() * height]
    return Image.frombuffer("RGBA", (width, height), raw, "raw", "RGBA", rgba.bytesPerLine(), 1).convert(
        "RGB"
    )


def decode_qr(image: QImage | QPixmap | Image.Image) -> list[str]:
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    return [r.text for r in zxingcpp.read_barcodes(pil) if r.format == zxingcpp.BarcodeFormat.QRCode]
