"""Media sniffing, kind resolution and metadata (wadesk.core.media).

Every fixture is generated here: Pillow draws the pictures, zipfile packs the Office files;
OGG, MP4, MP3, AAC, AMR, FLAC and PDF files are assembled byte by byte. Each is first read
back by an independent reader (tinytag, the standard library's wave, Pillow, zipfile, a walk
of the boxes or frames against the lengths they declare, or the PDF's own cross-reference
table) so that a broken fixture fails a test instead of passing one. Durations are those the
fixtures are built to last.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import tracemalloc
import wave
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tinytag import TinyTag

from wadesk.core.media import (
    MAX_IMAGE_PIXELS,
    THUMBNAIL_MAX_BYTES,
    THUMBNAIL_SIDE,
    VOICE_MIMETYPE,
    MediaError,
    MediaInfo,
    MediaKind,
    Sniffed,
    resolve,
    sniff,
)

MB = 1024 * 1024

# --- fixture builders ----------------------------------------------------------------------


def picture(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **save) -> bytes:
    image = Image.new(mode, size, "red" if mode != "RGBA" else (255, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def animation(fmt: str, **save) -> bytes:
    frames = [Image.new("RGB", (32, 32), color) for color in ("red", "blue", "green")]
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **save)
    return out.getvalue()


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def ogg_page(packets: list[bytes], *, granule: int, seq: int, flags: int = 0, serial: int = 0x5EED) -> bytes:
    lacing = b""
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = b"OggS" + struct.pack("<BBqIIIB", 0, flags, granule, serial, seq, 0, len(lacing)) + lacing
    page = header + b"".join(packets)
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


PRE_SKIP = 312
OPUS_PACKET = b"\xf8\xff\xfe"  # one 20 ms CELT frame of silence


def opus_headers(channels: int = 1) -> bytes:
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, channels, PRE_SKIP, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 6) + b"wadesk" + struct.pack("<I", 0)
    return ogg_page([head], granule=0, seq=0, flags=0x02) + ogg_page([tags], granule=0, seq=1)


def ogg_opus(seconds: float = 1.5) -> bytes:
    packets = round(seconds / 0.02)
    out, seq, done = opus_headers(), 2, 0
    while done < packets:
        count = min(25, packets - done)
        done += count
        last = done == packets
        out += ogg_page(
            [OPUS_PACKET] * count, granule=PRE_SKIP + done * 960, seq=seq, flags=0x04 if last else 0
        )
        seq += 1
    return out


def ogg_vorbis(seconds: float = 2.0, rate: int = 44100) -> bytes:
    ident = b"\x01vorbis" + struct.pack("<IBIiiiBB", 0, 1, rate, 0, 128000, 0, 0xB8, 1)
    comment = b"\x03vorbis" + struct.pack("<I", 6) + b"wadesk" + struct.pack("<I", 0) + b"\x01"
    setup = b"\x05vorbis" + b"\x00" * 16
    return (
        ogg_page([ident], granule=0, seq=0, flags=0x02)
        + ogg_page([comment, setup], granule=0, seq=1)
        + ogg_page([b"\x00" * 40] * 4, granule=int(seconds * rate), seq=2, flags=0x04)
    )


def wav(seconds: float = 1.5, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


MP3_FRAME = b"\xff\xfb\x90\x00" + b"\x00" * 413  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz: 417 bytes


def mp3(frames: int = 100, id3: bool = False) -> bytes:
    tag = b""
    if id3:
        frame = b"TIT2" + struct.pack(">I", 7) + b"\x00\x00" + b"\x03wadesk"
        tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, len(frame)]) + frame
    return tag + MP3_FRAME * frames


def adts(frames: int = 200, payload: int = 120) -> bytes:
    length = 7 + payload
    header = bytes(
        [
            0xFF,
            0xF1,  # MPEG-4, layer 0, no CRC
            (1 << 6) | (4 << 2),  # AAC LC, 44.1 kHz
            (2 << 6) | (length >> 11),  # 2 channels
            (length >> 3) & 0xFF,
            ((length & 7) << 5) | 0x1F,
            0xFC,
        ]
    )
    return (header + b"\x00" * payload) * frames


def amr(frames: int = 50) -> bytes:
    return b"#!AMR\n" + (b"\x3c" + b"\x00" * 31) * frames  # 12.2 kbit/s frames of 20 ms


def flac(seconds: float = 2.0, rate: int = 44100) -> bytes:
    fields = (rate << 44) | (1 << 41) | (15 << 36) | int(seconds * rate)
    info = struct.pack(">HH", 4096, 4096) + b"\x00" * 6 + fields.to_bytes(8, "big") + b"\x00" * 16
    return b"fLaC" + bytes([0x80, 0, 0, len(info)]) + info


def ogg_flac(seconds: float = 2.0, rate: int = 44100) -> bytes:
    streaminfo = flac(seconds, rate)[8:]
    head = b"\x7fFLAC\x01\x00" + struct.pack(">H", 1) + b"fLaC" + b"\x00\x00\x00\x22" + streaminfo
    comment = b"\x84\x00\x00\x0e" + struct.pack("<I", 6) + b"wadesk" + struct.pack("<I", 0)
    return (
        ogg_page([head], granule=0, seq=0, flags=0x02)
        + ogg_page([comment], granule=0, seq=1)
        + ogg_page([b"\xff\xf8" + b"\x00" * 30] * 4, granule=int(seconds * rate), seq=2, flags=0x04)
    )


def ogg_speex(seconds: float = 3.0, rate: int = 16000) -> bytes:
    head = (
        b"Speex   "
        + b"1.2.0".ljust(20, b"\x00")
        + struct.pack("<13i", 1, 80, rate, 1, 4, 1, 24600, 320, 0, 1, 0, 0, 0)
    )
    comment = struct.pack("<I", 6) + b"wadesk" + struct.pack("<I", 0)
    return (
        ogg_page([head], granule=0, seq=0, flags=0x02)
        + ogg_page([comment], granule=0, seq=1)
        + ogg_page([b"\x00" * 62] * 10, granule=int(seconds * rate), seq=2, flags=0x04)
    )


def ogg_interleaved() -> bytes:
    """An Opus stream of 2 s whose pages alternate with another stream's, which ends the file."""
    other = 0xB0B
    out = opus_headers() + ogg_page(
        [b"\x80theora" + b"\x00" * 34], granule=0, seq=0, flags=0x02, serial=other
    )
    for i in range(4):
        out += ogg_page(
            [OPUS_PACKET] * 25, granule=PRE_SKIP + (i + 1) * 24000, seq=2 + i, flags=4 if i == 3 else 0
        )
        out += ogg_page([b"\x00" * 100], granule=(i + 1) << 6, seq=1 + i, serial=other)
    return out + ogg_page([b"\x00" * 100], granule=5 << 6, seq=5, flags=0x04, serial=other)


def first_mp3_frame(tag: bytes, offset: int = 36) -> bytes:
    """The first frame of :func:`mp3`'s stream, carrying a VBR header at ``offset``."""
    return (MP3_FRAME[:offset] + tag + MP3_FRAME[offset + len(tag) :])[: len(MP3_FRAME)]


def mp3_xing(frames: int = 100, *, delay: int = 576, padding: int = 1000, lame: bool = True) -> bytes:
    xing = b"Info" + struct.pack(">III", 0x0F, frames, frames * len(MP3_FRAME)) + bytes(range(100))
    xing += struct.pack(">I", 60)
    if lame:
        xing += (
            b"LAME3.100" + bytes(12) + bytes([delay >> 4, (delay & 0x0F) << 4 | padding >> 8, padding & 0xFF])
        )
    return first_mp3_frame(xing) + MP3_FRAME * frames


def mp3_vbri(frames: int = 120) -> bytes:
    vbri = b"VBRI" + struct.pack(">HHHII", 1, 1000, 75, frames * len(MP3_FRAME), frames)
    return first_mp3_frame(vbri) + MP3_FRAME * frames


MPEG2_FRAME = b"\xff\xf3\x80\xc0" + b"\x00" * 204  # MPEG-2 layer III, 64 kbit/s, 22.05 kHz, mono


def wav_with_chunks(seconds: float = 2.0, *, streamed: bool = False) -> bytes:
    """A stereo 16-bit WAV with an odd-sized chunk before its data (and its pad byte)."""
    rate, block = 22050, 4
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, rate, rate * block, block, 16)
    extra = b"LIST" + struct.pack("<I", 5) + b"INFO\x00" + b"\x00"
    samples = b"\x00" * int(seconds * rate) * block
    size = 0xFFFFFFFF if streamed else len(samples)
    body = b"WAVE" + fmt + extra + b"data" + struct.pack("<I", size) + samples
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF if streamed else len(body)) + body


def box(kind: bytes, *children: bytes) -> bytes:
    payload = b"".join(children)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, version: int, payload: bytes) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]), payload)


IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
TURNED = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)  # 90 degrees


def mp4_track(
    handler: bytes,
    *,
    seconds: float,
    size: tuple[int, int] = (0, 0),
    entry_size: tuple[int, int] = (0, 0),
    matrix: tuple[int, ...] = IDENTITY,
    version: int = 0,
) -> bytes:
    timescale = 1000
    duration = int(seconds * timescale)
    if version == 1:
        times = struct.pack(">QQIIQ", 0, 0, 1, 0, duration)
    else:
        times = struct.pack(">IIIII", 0, 0, 1, 0, duration)
    tkhd = full_box(
        b"tkhd",
        version,
        times
        + b"\x00" * 8
        + struct.pack(">hhhH", 0, 0, 0x100 if handler == b"soun" else 0, 0)
        + struct.pack(">9i", *matrix)
        + struct.pack(">II", size[0] << 16, size[1] << 16),
    )
    mdhd = full_box(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, b"\x00" * 4 + handler + b"\x00" * 12 + b"wadesk\x00")
    if handler == b"vide":
        entry = box(
            b"avc1",
            b"\x00" * 6 + struct.pack(">H", 1) + b"\x00" * 16,
            struct.pack(">HHIIIH", entry_size[0], entry_size[1], 0x480000, 0x480000, 0, 1),
            b"\x00" * 32 + struct.pack(">Hh", 0x18, -1),
        )
    else:
        entry = box(
            b"mp4a",
            b"\x00" * 6
            + struct.pack(">H", 1)
            + b"\x00" * 8
            + struct.pack(">HHHHI", 2, 16, 0, 0, 44100 << 16),
            box(b"btrt", struct.pack(">III", 0, 128000, 128000)),
        )
    stsd = full_box(b"stsd", 0, struct.pack(">I", 1) + entry)
    return box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, box(b"minf", box(b"stbl", stsd))))


def mp4(
    brand: bytes = b"isom",
    *,
    tracks: tuple[bytes, ...] | None = None,
    seconds: float = 2.5,
    moov_last: bool = False,
    mdat: bytes = b"\x00" * 64,
) -> bytes:
    if tracks is None:
        tracks = (mp4_track(b"vide", seconds=seconds, size=(640, 360)), mp4_track(b"soun", seconds=seconds))
    ftyp = box(b"ftyp", brand + struct.pack(">I", 0x200) + brand + b"mp41")
    mvhd = full_box(
        b"mvhd",
        0,
        struct.pack(">IIIIIh", 0, 0, 1000, int(seconds * 1000), 0x10000, 0x100)
        + b"\x00" * 10
        + struct.pack(">9i", *IDENTITY)
        + b"\x00" * 24
        + struct.pack(">I", 3),
    )
    moov = box(b"moov", mvhd, *tracks)
    media = box(b"mdat", mdat)
    return ftyp + (media + moov if moov_last else moov + media)


def heic(major: bytes = b"heic", compatible: bytes = b"mif1heic") -> bytes:
    return box(b"ftyp", major + b"\x00" * 4 + compatible) + full_box(b"meta", 0, b"")


def pdf(objects: list[bytes]) -> bytes:
    out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n%s\nendstream" % (len(data), extra, data)


PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R >>"


def pdf_pages(count: int = 3) -> bytes:
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(count))
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
            *[PAGE] * count,
            # a content stream whose bytes happen to spell a page dictionary: data, not an object
            stream(b"BT /F1 12 Tf (/Type /Page) Tj ET"),
        ]
    )


def pdf_object_stream(pages: int = 2, *, direct_length: bool = True, compress: bool = True) -> bytes:
    numbers = range(3, 3 + pages)
    bodies = [PAGE] * pages
    offsets, body = [], b""
    for page in bodies:
        offsets.append(len(body))
        body += page + b"\n"
    header = b" ".join(b"%d %d" % (n, off) for n, off in zip(numbers, offsets, strict=True)) + b"\n"
    data = zlib.compress(header + body) if compress else header + body
    kids = b" ".join(b"%d 0 R" % n for n in numbers)
    extra = b"/Type /ObjStm /N %d /First %d /Filter /FlateDecode " % (pages, len(header))
    objstm = stream(data, extra)
    if not direct_length:
        objstm = objstm.replace(b"/Length %d " % len(data), b"/Length 9 0 R ")
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
            b"null",
            b"null",
            b"null",
            b"null",
            objstm,
            b"null",
            b"%d" % len(data),
        ]
    )


def office(kind: str, *, content_types: bool = True, marker: bool = True, main: str | None = None) -> bytes:
    folders = {"docx": "word", "xlsx": "xl", "pptx": "ppt"}
    mains = {
        "docx": "wordprocessingml.document.main+xml",
        "xlsx": "spreadsheetml.sheet.main+xml",
        "pptx": "presentationml.presentation.main+xml",
    }
    if main is None:
        main = f"application/vnd.openxmlformats-officedocument.{mains[kind]}" if marker else "application/xml"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        if content_types:
            z.writestr(
                "[Content_Types].xml",
                f'<?xml version="1.0"?><Types><Override PartName="/main.xml" ContentType="{main}"/></Types>',
            )
        z.writestr("_rels/.rels", "<Relationships/>")
        z.writestr(f"{folders[kind]}/main.xml", "<x/>")
    return out.getvalue()


def zip_with_mimetype(mimetype: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        z.writestr("content.xml", "<x/>", compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("notes.txt", "hello")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


# --- the fixtures, each checked by an independent reader -----------------------------------


def ogg_pages(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(flags, granule position, serial, payload) of each page, each one's checksum verified."""
    pages, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 5] == b"OggS\x00"
        flags, granule, serial, _, crc, segments = struct.unpack_from("<BqIIIB", data, pos + 5)
        lacing = data[pos + 27 : pos + 27 + segments]
        end = pos + 27 + segments + sum(lacing)
        assert end <= len(data)
        page = data[pos:end]
        assert ogg_crc(page[:22] + b"\x00" * 4 + page[26:]) == crc
        pages.append((flags, granule, serial, page[27 + segments :]))
        pos = end
    return pages


def tinytag_seconds(data: bytes) -> float:
    tag = TinyTag.get(file_obj=io.BytesIO(data))
    assert tag.duration is not None
    return tag.duration


def test_the_ogg_pages_are_valid():
    # the Ogg checksum: CRC-32, polynomial 0x04C11DB7, not reflected, no initial or final XOR
    assert ogg_crc(b"123456789") == 0x89A1897F
    for make in (ogg_opus, ogg_vorbis, ogg_flac, ogg_speex, ogg_interleaved):
        pages = ogg_pages(make())
        assert pages[0][0] == 0x02 and pages[-1][0] & 0x04
    assert {serial for _, _, serial, _ in ogg_pages(ogg_interleaved())} == {0x5EED, 0xB0B}
    assert tinytag_seconds(ogg_opus()) == pytest.approx(1.5)
    assert tinytag_seconds(ogg_vorbis()) == pytest.approx(2.0)
    assert tinytag_seconds(ogg_flac()) == pytest.approx(2.0)
    assert tinytag_seconds(ogg_speex()) == pytest.approx(3.0)


def adts_frames(data: bytes) -> int:
    """The number of ADTS frames, each starting with a sync word where the previous one ends."""
    pos = count = 0
    while pos < len(data):
        assert data[pos] == 0xFF and data[pos + 1] & 0xF6 == 0xF0
        pos += (data[pos + 3] & 0x03) << 11 | data[pos + 4] << 3 | data[pos + 5] >> 5
        count += 1
    assert pos == len(data)
    return count


MP4_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl"})


def box_tree(data: bytes) -> dict[bytes, list[Any]]:
    """{type: [payload or subtree]}, each box's size checked to end where its parent does."""
    tree: dict[bytes, list[Any]] = {}
    pos = 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert 8 <= size <= len(data) - pos
        payload = data[pos + 8 : pos + size]
        tree.setdefault(kind, []).append(box_tree(payload) if kind in MP4_CONTAINERS else payload)
        pos += size
    return tree


def test_the_other_fixtures_read_back():
    with wave.open(io.BytesIO(wav())) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(1.5)
    with wave.open(io.BytesIO(wav_with_chunks())) as w:
        assert (w.getnchannels(), w.getnframes() / w.getframerate()) == (2, pytest.approx(2.0))
    assert tinytag_seconds(wav()) == pytest.approx(1.5)
    assert tinytag_seconds(mp3()) == pytest.approx(2.6, abs=0.05)
    assert tinytag_seconds(mp3(id3=True)) == pytest.approx(2.6, abs=0.05)
    assert TinyTag.get(file_obj=io.BytesIO(mp3(id3=True))).title == "wadesk"
    assert tinytag_seconds(mp3_xing(lame=False)) == pytest.approx(100 * 1152 / 44100)
    assert tinytag_seconds(MPEG2_FRAME * 100) == pytest.approx(2.6, abs=0.05)
    assert adts_frames(adts()) == 200
    assert tinytag_seconds(flac()) == pytest.approx(2.0)
    for data in (mp4(), mp4(moov_last=True)):
        tree = box_tree(data)
        assert set(tree) == {b"ftyp", b"moov", b"mdat"}
        (moov,) = tree[b"moov"]
        assert len(moov[b"trak"]) == 2
        mvhd = moov[b"mvhd"][0]
        assert struct.unpack_from(">II", mvhd, 12) == (1000, 2500)
        for trak in moov[b"trak"]:
            mdhd = trak[b"mdia"][0][b"mdhd"][0]
            assert struct.unpack_from(">II", mdhd, 12) == (1000, 2500)
    for fmt in ("JPEG", "PNG", "GIF", "WEBP"):
        assert Image.open(io.BytesIO(picture(fmt))).size == (64, 48)
    assert Image.open(io.BytesIO(animation("WEBP"))).n_frames == 3
    assert zipfile.ZipFile(io.BytesIO(office("docx"))).testzip() is None


@pytest.mark.parametrize("document", [pdf_pages(3), pdf_object_stream(2)], ids=["plain", "object-stream"])
def test_the_pdf_cross_reference_points_at_each_object(document):
    xref = int(document.rsplit(b"startxref\n", 1)[1].split()[0])
    table = document[xref:].split(b"trailer")[0].splitlines()[3:]
    for number, entry in enumerate(table, 1):
        offset = int(entry.split()[0])
        assert document[offset:].startswith(b"%d 0 obj\n" % number)


# --- sniffing ------------------------------------------------------------------------------

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

FIXTURES: dict[str, tuple[Callable[[], bytes], str, MediaKind, str]] = {
    "jpeg": (lambda: picture("JPEG"), "image/jpeg", MediaKind.IMAGE, "jpg"),
    "png": (lambda: picture("PNG"), "image/png", MediaKind.IMAGE, "png"),
    "gif": (lambda: picture("GIF"), "image/gif", MediaKind.IMAGE, "gif"),
    "webp": (lambda: picture("WEBP"), "image/webp", MediaKind.IMAGE, "webp"),
    "webp-lossless": (lambda: picture("WEBP", lossless=True), "image/webp", MediaKind.IMAGE, "webp"),
    "webp-animated": (lambda: animation("WEBP"), "image/webp", MediaKind.IMAGE, "webp"),
    "bmp": (lambda: picture("BMP"), "image/bmp", MediaKind.DOCUMENT, "bmp"),
    "tiff": (lambda: picture("TIFF"), "image/tiff", MediaKind.DOCUMENT, "tif"),
    "heic": (heic, "image/heic", MediaKind.DOCUMENT, "heic"),
    "heif": (lambda: heic(b"mif1", b"mif1miaf"), "image/heif", MediaKind.DOCUMENT, "heif"),
    "avif": (lambda: heic(b"avif", b"mif1avif"), "image/avif", MediaKind.DOCUMENT, "avif"),
    "mp4": (mp4, "video/mp4", MediaKind.VIDEO, "mp4"),
    "mp4-moov-last": (lambda: mp4(moov_last=True), "video/mp4", MediaKind.VIDEO, "mp4"),
    "mov": (lambda: mp4(b"qt  "), "video/quicktime", MediaKind.VIDEO, "mov"),
    "3gp": (lambda: mp4(b"3gp4"), "video/3gpp", MediaKind.VIDEO, "3gp"),
    "m4a": (
        lambda: mp4(b"M4A ", tracks=(mp4_track(b"soun", seconds=2.5),)),
        "audio/mp4",
        MediaKind.AUDIO,
        "m4a",
    ),
    # a generic brand, but only a sound track: audio all the same
    "mp4-audio-only": (
        lambda: mp4(b"isom", tracks=(mp4_track(b"soun", seconds=2.5),)),
        "audio/mp4",
        MediaKind.AUDIO,
        "m4a",
    ),
    "opus": (ogg_opus, VOICE_MIMETYPE, MediaKind.VOICE, "ogg"),
    "vorbis": (ogg_vorbis, "audio/ogg", MediaKind.AUDIO, "ogg"),
    "mp3": (mp3, "audio/mpeg", MediaKind.AUDIO, "mp3"),
    "mp3-id3": (lambda: mp3(id3=True), "audio/mpeg", MediaKind.AUDIO, "mp3"),
    "aac": (adts, "audio/aac", MediaKind.AUDIO, "aac"),
    "wav": (wav, "audio/wav", MediaKind.AUDIO, "wav"),
    "amr": (amr, "audio/amr", MediaKind.AUDIO, "amr"),
    "flac": (flac, "audio/flac", MediaKind.AUDIO, "flac"),
    "pdf": (pdf_pages, "application/pdf", MediaKind.DOCUMENT, "pdf"),
    "docx": (lambda: office("docx"), DOCX, MediaKind.DOCUMENT, "docx"),
    "xlsx": (
        lambda: office("xlsx"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        MediaKind.DOCUMENT,
        "xlsx",
    ),
    "pptx": (
        lambda: office("pptx"),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        MediaKind.DOCUMENT,
        "pptx",
    ),
    "docx-by-folder": (lambda: office("docx", marker=False), DOCX, MediaKind.DOCUMENT, "docx"),
    "odt": (
        lambda: zip_with_mimetype("application/vnd.oasis.opendocument.text"),
        "application/vnd.oasis.opendocument.text",
        MediaKind.DOCUMENT,
        "odt",
    ),
    "epub": (
        lambda: zip_with_mimetype("application/epub+zip"),
        "application/epub+zip",
        MediaKind.DOCUMENT,
        "epub",
    ),
    "docm": (
        lambda: office("docx", main="application/vnd.ms-word.document.macroEnabled.main+xml"),
        "application/vnd.ms-word.document.macroenabled.12",
        MediaKind.DOCUMENT,
        "docm",
    ),
    "zip": (plain_zip, "application/zip", MediaKind.DOCUMENT, "zip"),
    "zip-without-content-types": (
        lambda: office("docx", content_types=False),
        "application/zip",
        MediaKind.DOCUMENT,
        "zip",
    ),
    "text": ("Grüße, voilà: plain text\n".encode, "text/plain", MediaKind.DOCUMENT, "txt"),
    "binary": (lambda: bytes(range(256)) * 4, "application/octet-stream", MediaKind.DOCUMENT, "bin"),
    # not UTF-8, so not taken for text
    "latin-1": (lambda: "Grüße".encode("latin-1"), "application/octet-stream", MediaKind.DOCUMENT, "bin"),
}


@pytest.fixture(params=["bytes", "path"])
def given(request, tmp_path) -> Callable[[bytes], bytes | Path]:
    """The content as bytes, or as a file on disk: both must behave the same."""

    def make(data: bytes) -> bytes | Path:
        if request.param == "bytes":
            return data
        path = tmp_path / f"upload-{len(list(tmp_path.iterdir()))}"
        path.write_bytes(data)
        return path

    return make


@pytest.mark.parametrize("name", list(FIXTURES))
def test_sniff_recognises_content_by_its_bytes(name, given):
    make, mimetype, kind, extension = FIXTURES[name]
    assert sniff(given(make())) == Sniffed(mimetype, kind, extension)


@pytest.mark.parametrize("name", list(FIXTURES))
def test_resolve_infers_the_kind_from_the_content(name, given):
    make, mimetype, kind, extension = FIXTURES[name]
    data = make()
    info = resolve(given(data))
    assert (info.kind, info.mimetype, info.extension, info.size) == (kind, mimetype, extension, len(data))


def test_names_do_not_decide(tmp_path):
    path = tmp_path / "holiday.jpg"
    path.write_bytes(pdf_pages())
    assert sniff(path).mimetype == "application/pdf"
    assert resolve(path, filename="holiday.jpg").kind is MediaKind.DOCUMENT


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfb\x90\x00" + b"\x00" * 100,  # one MPEG frame header, but the file is too short for it
        b"\xff\xfb\x90\x00" + b"\x00" * 413 + b"\xff\x00\x00\x00" * 100,  # no second frame
        adts(frames=1) + b"\x00" * 200,  # an ADTS frame not followed by another
        b"BM" + b"\x00" * 100,  # "BM" without a bitmap header
        b"OggS" + b"\x00" * 60,  # an OGG page of no known codec
        b"ID3 tags are metadata in MP3 files",  # text, not an ID3 header
        b"ID3\x04\x00\x00\x00\x00\x80\x00\x00",  # an ID3 size byte with its high bit set
    ],
)
def test_near_misses_are_not_media(data):
    assert sniff(data).kind_guess is MediaKind.DOCUMENT


def test_ogg_of_no_known_codec_is_a_document():
    assert sniff(b"OggS" + b"\x00" * 60) == Sniffed("application/ogg", MediaKind.DOCUMENT, "ogx")


def test_text_cut_inside_a_character_at_the_sniffed_length_is_still_text(tmp_path):
    path = tmp_path / "notes"
    path.write_bytes("€".encode() * 30_000)  # 90 kB: 64 KiB ends inside a three-byte character
    assert sniff(path).mimetype == "text/plain"
    assert sniff("€".encode() * 10 + b"\xe2\x82").mimetype == "application/octet-stream"


def test_text_with_nul_bytes_is_binary():
    assert sniff(b"plain\x00text").mimetype == "application/octet-stream"


def test_id3_followed_by_aac_frames_is_aac():
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x00"
    assert sniff(tag + adts()).mimetype == "audio/aac"


@pytest.mark.parametrize("brand", [b"M4A ", b"isom"])
def test_an_mp4_with_a_video_track_is_a_video_whatever_its_brand(brand):
    assert sniff(mp4(brand)).kind_guess is MediaKind.VIDEO


def test_a_quicktime_movie_without_ftyp_is_found_by_its_boxes():
    data = mp4()
    without_ftyp = data[_u32(data, 0) :]
    assert without_ftyp[4:8] == b"moov"
    assert sniff(without_ftyp) == Sniffed("video/quicktime", MediaKind.VIDEO, "mov")


def _u32(data: bytes, offset: int) -> int:
    return struct.unpack(">I", data[offset : offset + 4])[0]


def test_sniff_refuses_what_is_neither_bytes_nor_a_path():
    with pytest.raises(TypeError):
        sniff(1234)  # type: ignore[arg-type]


def test_a_missing_path_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        resolve(tmp_path / "gone")


# --- refusals ------------------------------------------------------------------------------


def refusal(data, **request) -> MediaError:
    with pytest.raises(MediaError) as caught:
        resolve(data, **request)
    err = caught.value
    assert isinstance(err, ValueError)
    assert str(err) == err.reason and "\n" not in err.reason
    return err


def test_empty_content_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.touch()
    for data in (b"", empty):
        err = refusal(data)
        assert (err.field, err.reason) == ("file", "is empty")


@pytest.mark.parametrize("kind", ["gif", "", "photo", 3, MediaKind])
def test_an_unknown_kind_is_refused(kind):
    err = refusal(picture("PNG"), kind=kind)
    assert err.field == "kind"
    assert err.reason == "must be one of image, video, audio, voice, document, sticker"


def test_kinds_are_read_case_insensitively():
    assert resolve(picture("PNG"), kind=" Image ").kind is MediaKind.IMAGE
    assert resolve(picture("PNG"), kind=MediaKind.DOCUMENT).kind is MediaKind.DOCUMENT


@pytest.mark.parametrize(
    ("make", "kind", "rule"),
    [
        (lambda: picture("PNG"), "sticker", "a sticker must be a WebP image (this is a PNG image)"),
        (pdf_pages, "sticker", "a sticker must be a WebP image (this is a PDF document)"),
        (mp3, "voice", "a voice note must be OGG/Opus audio (this is MP3 audio)"),
        (ogg_vorbis, "voice", "a voice note must be OGG/Opus audio (this is OGG/Vorbis audio)"),
        (pdf_pages, "image", "an image must be a JPEG, PNG, GIF or WebP picture (this is a PDF document)"),
        (mp4, "image", "an image must be a JPEG, PNG, GIF or WebP picture (this is an MP4 video)"),
        (mp4, "audio", "audio must be MP3, M4A, AAC, OGG, WAV, AMR or FLAC (this is an MP4 video)"),
        (
            lambda: picture("JPEG"),
            "audio",
            "audio must be MP3, M4A, AAC, OGG, WAV, AMR or FLAC (this is a JPEG image)",
        ),
        (
            lambda: mp4(b"M4A ", tracks=(mp4_track(b"soun", seconds=1),)),
            "video",
            "a video must be an MP4, 3GP or QuickTime file with a video track (this is M4A audio)",
        ),
        (
            lambda: b"\x1a\x45\xdf\xa3" + b"\x00" * 20 + b"webm",
            "video",
            "a video must be an MP4, 3GP or QuickTime file with a video track (this is a WebM video)",
        ),
        (
            lambda: b"text",
            "video",
            "a video must be an MP4, 3GP or QuickTime file with a video track (this is plain text)",
        ),
    ],
)
def test_a_kind_the_content_cannot_be_is_refused(make, kind, rule):
    err = refusal(make(), kind=kind)
    assert (err.field, err.reason) == ("kind", rule)


def test_heic_is_not_sent_as_an_image():
    err = refusal(heic(), kind="image")
    assert err.field == "kind"
    assert err.reason.startswith("HEIC images are not shown by every WhatsApp client")
    assert resolve(heic(), kind="document").mimetype == "image/heic"


@pytest.mark.parametrize("name", list(FIXTURES))
def test_anything_goes_as_a_document(name):
    make, mimetype, _, _ = FIXTURES[name]
    info = resolve(make(), kind="document")
    assert (info.kind, info.mimetype) == (MediaKind.DOCUMENT, mimetype)
    assert info.thumbnail is None and info.duration is None


@pytest.mark.parametrize(
    ("make", "declared", "reason"),
    [
        (pdf_pages, "image/png", "says image/png but the file is a PDF document (application/pdf)"),
        (lambda: picture("PNG"), "image/jpeg", "says image/jpeg but the file is a PNG image (image/png)"),
        (
            lambda: picture("PNG"),
            "image/jpg; q=1",
            "says image/jpg but the file is a PNG image (image/png)",
        ),
        (mp3, "audio/ogg", "says audio/ogg but the file is MP3 audio (audio/mpeg)"),
        (ogg_opus, "audio/mpeg", "says audio/mpeg but the file is OGG/Opus audio (audio/ogg)"),
        (lambda: office("docx"), DOCX.replace("wordprocessingml.document", "spreadsheetml.sheet"), None),
        (plain_zip, "application/pdf", None),
        (lambda: b"plain text", "image/png", "says image/png but the file is plain text (text/plain)"),
        (lambda: b"plain text", "application/zip", None),
        (lambda: b"plain text", "video/x-unheard-of", None),
        (lambda: bytes(range(256)), "application/pdf", None),
        (lambda: bytes(range(256)), "audio/x-m4a", None),
    ],
)
def test_a_mimetype_the_content_contradicts_is_refused(make, declared, reason):
    err = refusal(make(), mimetype=declared)
    assert err.field == "mimetype"
    if reason:
        assert err.reason == reason
    else:
        assert err.reason.startswith(f"says {declared} but the file is ")


@pytest.mark.parametrize("declared", ["png", "image/", "image png", "", "image/png/extra", 42])
def test_a_malformed_mimetype_is_refused(declared):
    err = refusal(picture("PNG"), mimetype=declared)
    assert err.field == "mimetype"


@pytest.mark.parametrize(
    ("make", "declared", "mimetype", "extension"),
    [
        # the same type under another name: the content's name is sent
        (lambda: picture("JPEG"), "image/jpg", "image/jpeg", "jpg"),
        (lambda: picture("JPEG"), "IMAGE/JPEG; charset=binary", "image/jpeg", "jpg"),
        (mp3, "audio/mp3", "audio/mpeg", "mp3"),
        (wav, "audio/x-wav", "audio/wav", "wav"),
        (ogg_opus, "audio/ogg", VOICE_MIMETYPE, "ogg"),
        (ogg_opus, "audio/opus", VOICE_MIMETYPE, "ogg"),
        # one container family: an MP4's brand is only a hint
        (mp4, "video/quicktime", "video/mp4", "mp4"),
        (lambda: mp4(b"M4A ", tracks=(mp4_track(b"soun", seconds=1),)), "video/mp4", "audio/mp4", "m4a"),
        (lambda: picture("PNG"), "application/octet-stream", "image/png", "png"),
        (lambda: office("docx"), "application/zip", DOCX, "docx"),
        # generic content refined by the declaration
        (plain_zip, DOCX, DOCX, "docx"),
        (
            plain_zip,
            "application/vnd.android.package-archive",
            "application/vnd.android.package-archive",
            "apk",
        ),
        (lambda: b"a,b\n1,2\n", "text/csv", "text/csv", "csv"),
        (lambda: b'{"a": 1}', "application/json", "application/json", "json"),
        (lambda: b"<svg/>", "image/svg+xml", "image/svg+xml", "txt"),
        (lambda: bytes(range(256)), "application/msword", "application/msword", "doc"),
        (lambda: bytes(range(256)), "application/x-custom", "application/x-custom", "bin"),
    ],
)
def test_a_mimetype_that_fits_the_content_is_accepted(make, declared, mimetype, extension):
    info = resolve(make(), mimetype=declared)
    assert (info.mimetype, info.extension) == (mimetype, extension)


@pytest.mark.parametrize(
    ("given_name", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("  spaced name.pdf  ", "spaced name.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("Übersicht – 2024.pdf", "Übersicht – 2024.pdf"),
        (None, None),
    ],
)
def test_a_filename_is_reduced_to_its_last_component(given_name, kept):
    assert resolve(pdf_pages(), filename=given_name).filename == kept


@pytest.mark.parametrize(
    ("given_name", "reason"),
    [
        ("", "is not a file name"),
        ("   ", "is not a file name"),
        ("folder/", "is not a file name"),
        ("..", "is not a file name"),
        ("a\x00b.pdf", "contains control characters"),
        ("line\nbreak.pdf", "contains control characters"),
        ("x" * 252 + ".pdf", "is longer than 255 bytes"),
        ("ü" * 128, "is longer than 255 bytes"),
        (b"report.pdf", "must be text"),
    ],
)
def test_a_bad_filename_is_refused(given_name, reason):
    err = refusal(pdf_pages(), filename=given_name)
    assert (err.field, err.reason) == ("filename", reason)


def test_the_request_is_checked_before_the_content():
    # an unknown kind is reported even for empty content, which is reported before a mimetype
    assert refusal(b"", kind="nope").field == "kind"
    assert refusal(b"", mimetype="image/png").field == "file"
    assert refusal(pdf_pages(), kind="sticker", mimetype="image/webp").field == "mimetype"


# --- voice, audio, video -------------------------------------------------------------------


def test_ogg_opus_is_a_voice_note_unless_asked_to_be_audio(given):
    voice = resolve(given(ogg_opus(1.5)))
    assert voice.kind is MediaKind.VOICE and voice.ptt
    assert voice.mimetype == "audio/ogg; codecs=opus"
    assert voice.duration == pytest.approx(1.5)
    assert voice.seconds == 2
    assert voice.waveform is None  # not computable without decoding Opus
    audio = resolve(given(ogg_opus(1.5)), kind="audio")
    assert audio.kind is MediaKind.AUDIO and not audio.ptt
    assert audio.mimetype == VOICE_MIMETYPE and audio.duration == pytest.approx(1.5)


def test_a_stereo_opus_file_is_a_voice_note_too():
    data = opus_headers(channels=2) + ogg_page([OPUS_PACKET] * 50, granule=PRE_SKIP + 48000, seq=2, flags=4)
    info = resolve(data, kind="voice")
    assert info.kind is MediaKind.VOICE and info.duration == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (ogg_opus, 1.5),
        (ogg_vorbis, 2.0),
        (ogg_flac, 2.0),
        (ogg_speex, 3.0),
        (ogg_interleaved, 2.0),  # its last page is another stream's: the pages are walked
        (wav, 1.5),
        (wav_with_chunks, 2.0),
        (lambda: wav_with_chunks(streamed=True), 2.0),  # sizes unknown to the writer: to the end
        # constant bitrate: the stream's size over its first frame's bitrate
        (mp3, 2.60625),
        (lambda: mp3(id3=True), 2.60625),
        (lambda: mp3() + b"TAG" + b"\x00" * 125, 2.60625),  # an ID3v1 tag is not audio
        (lambda: MPEG2_FRAME * 100, 2.6),
        # a Xing/Info header counts the frames, less the encoder's delay and padding in LAME's
        (mp3_xing, (100 * 1152 - 576 - 1000) / 44100),
        (lambda: mp3_xing(lame=False), 100 * 1152 / 44100),
        (mp3_vbri, 120 * 1152 / 44100),
        (adts, 200 * 1024 / 44100),
        (flac, 2.0),
        (lambda: mp3(id3=True)[: -len(MP3_FRAME) * 100] + flac(), 2.0),  # FLAC after an ID3 tag
        (lambda: mp4(b"M4A ", tracks=(mp4_track(b"soun", seconds=3.25),)), 3.25),
        (mp4, 2.5),
    ],
    ids=[
        "opus",
        "vorbis",
        "ogg-flac",
        "speex",
        "ogg-interleaved",
        "wav",
        "wav-chunks",
        "wav-streamed",
        "mp3",
        "mp3-id3",
        "mp3-id3v1",
        "mpeg2",
        "mp3-lame",
        "mp3-xing",
        "mp3-vbri",
        "adts",
        "flac",
        "flac-id3",
        "m4a",
        "mp4",
    ],
)
def test_durations(make, expected, given):
    assert resolve(given(make())).duration == pytest.approx(expected, abs=0.001)


def test_amr_duration_counts_its_frames(given):
    assert resolve(given(amr(frames=150))).duration == pytest.approx(3.0)
    wideband = b"#!AMR-WB\n" + (b"\x44" + b"\x00" * 60) * 100  # 23.85 kbit/s frames
    info = resolve(given(wideband))
    assert (info.mimetype, info.kind, info.duration) == ("audio/amr-wb", MediaKind.AUDIO, pytest.approx(2.0))


def test_video_metadata_comes_from_the_boxes(given):
    info = resolve(given(mp4(seconds=2.5, moov_last=True)))
    assert (info.kind, info.width, info.height) == (MediaKind.VIDEO, 640, 360)
    assert info.duration == pytest.approx(2.5) and info.seconds == 3
    assert info.thumbnail is None


def test_a_turned_video_reports_its_displayed_size():
    track = mp4_track(b"vide", seconds=1, size=(1920, 1080), matrix=TURNED)
    info = resolve(mp4(tracks=(track,), seconds=1))
    assert (info.width, info.height) == (1080, 1920)


def test_video_size_falls_back_to_the_sample_entry_and_reads_version_1_headers():
    track = mp4_track(b"vide", seconds=4, size=(0, 0), entry_size=(320, 240), version=1)
    info = resolve(mp4(b"mp42", tracks=(track,), seconds=4))
    assert (info.mimetype, info.width, info.height, info.duration) == (
        "video/mp4",
        320,
        240,
        pytest.approx(4.0),
    )


def test_the_movie_header_times_an_mp4_without_a_sound_track():
    track = mp4_track(b"vide", seconds=1, size=(64, 64))
    assert resolve(mp4(tracks=(track,), seconds=7.5)).duration == pytest.approx(7.5)


def test_the_sound_track_times_an_mp4_that_has_one():
    tracks = (mp4_track(b"vide", seconds=4, size=(64, 64)), mp4_track(b"soun", seconds=3.75))
    assert resolve(mp4(tracks=tracks, seconds=4)).duration == pytest.approx(3.75)


def test_a_video_without_a_size_or_duration_is_still_a_video():
    data = box(b"ftyp", b"isom\x00\x00\x00\x00isom") + box(b"mdat", b"\x00" * 32)
    info = resolve(data)
    assert (info.kind, info.width, info.height, info.duration) == (MediaKind.VIDEO, None, None, None)


def test_a_damaged_audio_file_has_no_duration_rather_than_a_wrong_one():
    info = resolve(b"OggS" + ogg_opus()[4:200])  # headers, but no final page
    assert info.kind is MediaKind.VOICE
    assert info.duration is None and info.seconds is None
    assert resolve(wav()[:36]).duration is None  # no data chunk
    assert resolve(mp3_xing(frames=0)).duration is None
    assert resolve(flac(seconds=0)).duration is None  # a sample count the encoder did not know


def test_an_ogg_page_that_fails_its_checksum_is_not_believed():
    data = bytearray(ogg_opus(1.5))
    data[-1] ^= 0xFF  # in the last page, which ends the stream at 1.5 s
    assert resolve(bytes(data)).duration == pytest.approx(1.0)  # the page before it


def test_seconds_round_and_never_say_zero():
    assert MediaInfo(MediaKind.AUDIO, "audio/mpeg", "mp3", 1, duration=0.2).seconds == 1
    assert MediaInfo(MediaKind.AUDIO, "audio/mpeg", "mp3", 1, duration=2.49).seconds == 2
    assert MediaInfo(MediaKind.AUDIO, "audio/mpeg", "mp3", 1, duration=2.5).seconds == 3


# --- images and stickers -------------------------------------------------------------------


def thumbnail_of(info: MediaInfo) -> Image.Image:
    assert info.thumbnail is not None
    assert len(info.thumbnail) <= THUMBNAIL_MAX_BYTES
    thumb = Image.open(io.BytesIO(info.thumbnail))
    assert thumb.format == "JPEG"
    assert max(thumb.size) == THUMBNAIL_SIDE
    return thumb


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_an_image_has_its_size_and_a_small_jpeg_thumbnail(fmt, given):
    info = resolve(given(picture(fmt, size=(640, 480))))
    assert (info.kind, info.width, info.height, info.animated) == (
        MediaKind.IMAGE,
        640,
        480,
        None if fmt == "JPEG" else False,
    )
    assert thumbnail_of(info).size == (100, 75)


def test_a_portrait_photo_is_measured_as_it_is_shown():
    image = Image.new("RGB", (400, 200), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90 degrees
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    info = resolve(out.getvalue())
    assert (info.width, info.height) == (200, 400)
    assert thumbnail_of(info).size == (50, 100)


def test_a_detailed_photo_still_makes_a_thumbnail_under_the_limit():
    noise = Image.effect_noise((1600, 1200), 120).convert("RGB")
    out = io.BytesIO()
    noise.save(out, format="JPEG", quality=95)
    thumbnail_of(resolve(out.getvalue()))


def test_transparency_becomes_white_in_the_thumbnail():
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 100, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    thumb = thumbnail_of(resolve(out.getvalue())).convert("RGB")
    red, white = thumb.getpixel((10, 50)), thumb.getpixel((90, 50))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    assert min(white) > 240


@pytest.mark.parametrize(("fmt", "extra"), [("GIF", {}), ("WEBP", {}), ("PNG", {})])
def test_animation_is_reported(fmt, extra):
    assert resolve(animation(fmt, **extra)).animated is True
    assert resolve(picture(fmt)).animated is False


def test_a_webp_is_a_sticker_only_when_asked(given):
    data = picture("WEBP", size=(512, 512), mode="RGBA")
    assert resolve(given(data)).kind is MediaKind.IMAGE
    sticker = resolve(given(data), kind="sticker")
    assert (sticker.kind, sticker.mimetype, sticker.width, sticker.height) == (
        MediaKind.STICKER,
        "image/webp",
        512,
        512,
    )
    assert sticker.animated is False and sticker.thumbnail is None
    moving = resolve(given(animation("WEBP")), kind="sticker")
    assert (moving.width, moving.height, moving.animated) == (32, 32, True)


@pytest.mark.parametrize("lossless", [False, True])
def test_sticker_sizes_come_from_every_webp_flavour(lossless):
    info = resolve(picture("WEBP", size=(300, 200), lossless=lossless), kind="sticker")
    assert (info.width, info.height) == (300, 200)


def test_a_damaged_sticker_is_refused():
    err = refusal(b"RIFF\x20\x00\x00\x00WEBPVP8 " + b"\x00" * 30, kind="sticker")
    assert (err.field, err.reason) == ("file", "is a damaged WebP image")


def test_a_decompression_bomb_is_refused_before_decoding(monkeypatch):
    import PIL.Image

    def no_decoding(*args, **kwargs):
        raise AssertionError("Pillow was asked to open the bomb")

    monkeypatch.setattr(PIL.Image, "open", no_decoding)
    err = refusal(png_header_only(20_000, 20_000))
    assert err.field == "file"
    assert err.reason == "is too large an image: 20000x20000 pixels is more than 100 megapixels"


def test_the_pixel_limit_is_the_documented_one():
    side = int(MAX_IMAGE_PIXELS**0.5)
    assert refusal(png_header_only(side + 1, side + 1)).field == "file"
    assert resolve(png_header_only(side + 1, side + 1), kind="document").kind is MediaKind.DOCUMENT


def test_only_cheaply_decoded_pictures_get_a_thumbnail(monkeypatch):
    import wadesk.core.media as media

    # Pillow shrinks a JPEG while decoding it; other formats decode whole, so big ones get none
    monkeypatch.setattr(media, "_THUMBNAIL_DECODE_PIXELS", 100 * 100)
    big_png = resolve(picture("PNG", size=(200, 200)))
    assert (big_png.width, big_png.thumbnail) == (200, None)
    thumbnail_of(resolve(picture("JPEG", size=(200, 200))))
    thumbnail_of(resolve(picture("PNG", size=(100, 100))))


def test_a_damaged_image_is_refused():
    err = refusal(b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x00" * 40)
    assert err.field == "file"
    assert err.reason.startswith("is a damaged JPEG image")
    truncated = picture("PNG", size=(300, 300))[:120]
    assert refusal(truncated).reason.startswith("is a damaged PNG image")


# --- PDF pages -----------------------------------------------------------------------------


def test_pdf_pages_are_counted(given):
    info = resolve(given(pdf_pages(3)))
    assert (info.kind, info.pages) == (MediaKind.DOCUMENT, 3)
    assert resolve(pdf_pages(1)).pages == 1


def test_a_page_rewritten_by_an_incremental_update_counts_once():
    data = pdf_pages(3)
    update = b"4 0 obj\n<< /Type /Page /Parent 2 0 R /Rotate 90 >>\nendobj\n"
    assert resolve(data + update).pages == 3


def test_page_objects_across_read_chunks_are_each_counted_once(monkeypatch):
    import wadesk.core.media as media

    monkeypatch.setattr(media, "_PDF_CHUNK", 1000)  # many chunk boundaries in a small file
    count = 40
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Count %d >>" % count]
    for i in range(count):
        objects.append(b"<< /Type /Page /Parent 2 0 R /Contents %d 0 R >>" % (4 + 2 * i))
        objects.append(stream(b"BT (page %d) Tj ET " % i + b"0 0 m 10 10 l S " * 12))
    document = pdf(objects)
    header_end = document.index(b"\n", 10) + 1
    for shift in range(350):  # moves every token across a boundary ("end|stream" too)
        padded = document[:header_end] + b"%" + b"x" * shift + b"\n" + document[header_end:]
        assert resolve(padded).pages == count, shift


def test_pages_inside_compressed_object_streams_are_counted():
    assert resolve(pdf_object_stream(2)).pages == 2
    assert resolve(pdf_object_stream(4, direct_length=False)).pages == 4


def test_pdf_pages_are_none_when_unsure(tmp_path):
    assert resolve(pdf([b"<< /Type /Catalog >>"])).pages is None
    assert resolve(pdf_object_stream(2, compress=False)).pages is None
    big = tmp_path / "big.pdf"
    with big.open("wb") as f:
        f.write(pdf_pages(3))
        f.truncate(40 * MB)
    assert resolve(big).pages is None


# --- large files on disk -------------------------------------------------------------------


@contextmanager
def reading_budget() -> Iterator[dict[str, int]]:
    """Bytes this process reads (from /proc/self/io) and the peak of Python allocations."""
    io_stats = Path("/proc/self/io")
    if not io_stats.exists():
        pytest.skip("needs /proc/self/io")

    def rchar() -> int:
        for line in io_stats.read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
        raise AssertionError("no rchar in /proc/self/io")

    usage: dict[str, int] = {}
    tracemalloc.start()
    before = rchar()
    try:
        yield usage
    finally:
        usage["read"] = rchar() - before
        usage["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def sparse(path: Path, head: bytes, size: int, tail: bytes = b"") -> Path:
    with path.open("wb") as f:
        f.write(head)
        f.seek(size - len(tail))
        f.write(tail)
    assert path.stat().st_size == size
    return path


def test_a_200_mb_file_is_sniffed_from_its_head(tmp_path):
    path = sparse(tmp_path / "zeros", b"", 200 * MB, b"\x00")
    with reading_budget() as usage:
        assert sniff(path) == Sniffed("application/octet-stream", MediaKind.DOCUMENT, "bin")
        assert resolve(path).pages is None
    assert usage["read"] < 1 * MB
    assert usage["peak"] < 2 * MB


def test_a_200_mb_video_with_its_index_at_the_end_is_read_in_a_few_headers(tmp_path):
    moov_last = mp4(seconds=600, moov_last=True)
    ftyp_size = _u32(moov_last, 0)
    moov = moov_last[ftyp_size + 8 + 64 :]
    assert moov[4:8] == b"moov"
    size = 200 * MB
    mdat = struct.pack(">I", size - ftyp_size - len(moov)) + b"mdat"
    path = sparse(tmp_path / "movie", moov_last[:ftyp_size] + mdat, size, moov)
    with reading_budget() as usage:
        assert sniff(path).mimetype == "video/mp4"
        info = resolve(path)
    assert (info.kind, info.width, info.height, info.duration) == (MediaKind.VIDEO, 640, 360, 600.0)
    assert usage["read"] < 2 * MB
    assert usage["peak"] < 4 * MB


def test_a_200_mb_voice_note_is_timed_from_its_last_page(tmp_path):
    last = ogg_page([OPUS_PACKET], granule=PRE_SKIP + 48000 * 3600, seq=99, flags=0x04)
    path = sparse(tmp_path / "voice", opus_headers(), 200 * MB, last)
    with reading_budget() as usage:
        info = resolve(path)
    assert (info.kind, info.duration) == (MediaKind.VOICE, 3600.0)
    assert usage["read"] < 2 * MB
    assert usage["peak"] < 4 * MB


def test_a_big_adts_stream_is_timed_by_extrapolation(tmp_path):
    frames = 9 * MB // 127
    path = sparse(tmp_path / "long.aac", adts(frames), frames * 127 * 4, adts(1))
    with reading_budget() as usage:
        info = resolve(path)
    assert info.duration == pytest.approx(4 * frames * 1024 / 44100, rel=0.001)
    assert usage["read"] < 10 * MB


def test_a_big_amr_recording_is_timed_by_extrapolation(tmp_path):
    frames = 40 * MB // 32
    path = tmp_path / "long.amr"
    path.write_bytes(amr(frames))
    with reading_budget() as usage:
        info = resolve(path)
    assert info.duration == pytest.approx(frames * 0.02, rel=0.001)
    assert usage["read"] < 10 * MB


# --- the module stays light ----------------------------------------------------------------


def test_importing_the_module_pulls_in_no_gui_web_or_decoders():
    code = (
        "import sys, wadesk.core.media;"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('PIL', 'tinytag', 'magic', 'PySide6', 'flask', 'neonize')];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_public_api():
    import wadesk.core.media as media

    assert set(media.__all__) == {
        "MAX_IMAGE_PIXELS",
        "THUMBNAIL_MAX_BYTES",
        "THUMBNAIL_SIDE",
        "VOICE_MIMETYPE",
        "DataOrPath",
        "MediaError",
        "MediaInfo",
        "MediaKind",
        "Sniffed",
        "resolve",
        "sniff",
    }
    assert [k.value for k in MediaKind] == ["image", "video", "audio", "voice", "document", "sticker"]
    assert MediaKind("voice") == "voice"
    err = MediaError("kind", "a sticker must be a WebP image")
    assert (err.field, str(err)) == ("kind", "a sticker must be a WebP image")
