"""Media for WhatsApp messages: what a file is, which kind of message it makes, and its metadata.

Pure and cheap: no ffmpeg, no libmagic, no network. The content decides, never a name:
:func:`sniff` reads magic bytes (and, for MP4 and ZIP files, a few structural headers) and
:func:`resolve` checks a request's ``kind``/``mimetype``/``filename`` against the content and
gathers what a WhatsApp message needs (dimensions, duration, a JPEG thumbnail, page count).
Anything wrong raises :class:`MediaError` naming the request field at fault.

Both take ``bytes`` or a file path. On a path only the headers needed are read, so a
multi-gigabyte file streamed to disk is sniffed with a handful of small reads; only
images are decoded (for their thumbnail), and only when small enough to decode cheaply.

Decisions:

* OGG/Opus is inferred as a **voice** note: WhatsApp clients record voice notes as OGG/Opus
  and send them with ``ptt``; music rarely comes as OGG/Opus. Ask for ``kind="audio"`` to
  send one as a plain audio file. MP3, M4A, AAC, WAV, AMR, FLAC and OGG/Vorbis are audio.
  A voice note's mimetype is exactly :data:`VOICE_MIMETYPE`.
* A sticker is never inferred (most WebP files are pictures): WebP is an image unless
  ``kind="sticker"`` is asked for.
* HEIC/HEIF/AVIF are documents: not every WhatsApp client shows them inline (phones convert
  them to JPEG before sending), so ``kind="image"`` refuses them.
* Thumbnails are JPEG, at most :data:`THUMBNAIL_SIDE` pixels on the longer side, quality 70
  (less if needed to stay under :data:`THUMBNAIL_MAX_BYTES`). neonize makes 200 px ones; a
  thumbnail only stands in, blurred, until the picture is downloaded, and it travels inside
  the message. Images are made only for the image kind, and not for non-JPEG pictures over
  40 megapixels (Pillow shrinks a JPEG while decoding it, anything else decodes whole).
* Images over :data:`MAX_IMAGE_PIXELS` are refused from their header, before any decoding.
  Pillow's own DecompressionBombWarning (from about 89 megapixels) is left as it is: this
  module changes no global state.
* PDF pages are distinct ``/Type /Page`` objects, those in compressed object streams
  included, in files up to 32 MiB; otherwise, or when nothing is found, ``pages`` is None.
* Durations come from the files' own headers, never from decoding: an Ogg stream's last
  granule position, an MP3's Xing/Info or VBRI header (else its size over its bitrate, as for
  any constant bitrate stream), the ADTS frames of the first megabytes, WAV's data chunk,
  FLAC's STREAMINFO, an MP4's sound track (else its movie header), AMR's frames.
* ``waveform`` stays None: WhatsApp's voice-note waveform is 64 loudness samples (0..100) of
  the decoded audio, and Opus packets carry no loudness one can read without decoding them.
"""

from __future__ import annotations

import codecs
import math
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from io import BytesIO
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
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
]


DataOrPath = bytes | bytearray | memoryview | str | os.PathLike[str]
"""The content itself, or the path of a file holding it."""


class MediaKind(StrEnum):
    """The kind of WhatsApp message a file is sent as."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    VOICE = "voice"
    DOCUMENT = "document"
    STICKER = "sticker"


VOICE_MIMETYPE = "audio/ogg; codecs=opus"
"""The mimetype WhatsApp clients give voice notes (OGG/Opus, sent with ``ptt``)."""

MAX_IMAGE_PIXELS = 100_000_000
"""Larger images are refused: decoding one could take gigabytes (a decompression bomb)."""

THUMBNAIL_SIDE = 100
THUMBNAIL_MAX_BYTES = 10_000
_THUMBNAIL_QUALITIES = (70, 50, 35)
# Pillow decodes JPEG at 1/2..1/8 scale for a thumbnail ("draft"); other formats decode whole.
_THUMBNAIL_DECODE_PIXELS = 40_000_000

_HEAD = 64 * 1024
_PDF_SCAN_LIMIT = 32 * 1024 * 1024
_PDF_OBJSTM_LIMIT = 8 * 1024 * 1024
_ZIP_DIRECTORY_LIMIT = 4 * 1024 * 1024
_ZIP_MEMBER_LIMIT = 1024 * 1024
_AMR_SCAN_LIMIT = 8 * 1024 * 1024


class MediaError(ValueError):
    """The media cannot be sent as asked. ``field`` names the request field at fault
    ("file", "kind", "mimetype" or "filename"); ``str(err)`` is the one-line reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What the content is: its mimetype, the message kind it makes by default, an extension."""

    mimetype: str
    kind_guess: MediaKind
    extension: str


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """A file checked and described for sending as a WhatsApp message of ``kind``.

    ``duration`` is in seconds; ``width``/``height`` are as displayed (after EXIF or track
    rotation); ``thumbnail`` is a small JPEG (images only); ``pages`` is a PDF's page count
    when it could be counted cheaply; ``animated`` is set for GIF, PNG and WebP.
    """

    kind: MediaKind
    mimetype: str
    extension: str
    size: int
    filename: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    pages: int | None = None
    animated: bool | None = None
    thumbnail: bytes | None = field(default=None, repr=False)
    waveform: bytes | None = field(default=None, repr=False)

    @property
    def seconds(self) -> int | None:
        """The duration in whole seconds, as WhatsApp messages carry it (at least 1)."""
        if self.duration is None:
            return None
        return max(1, math.floor(self.duration + 0.5))

    @property
    def ptt(self) -> bool:
        """Whether the message is a voice note ("push to talk")."""
        return self.kind is MediaKind.VOICE


# --- content types -------------------------------------------------------------------------

_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
_DOCM = "application/vnd.ms-word.document.macroenabled.12"
_XLSM = "application/vnd.ms-excel.sheet.macroenabled.12"
_PPTM = "application/vnd.ms-powerpoint.presentation.macroenabled.12"
_ODT = "application/vnd.oasis.opendocument.text"
_ODS = "application/vnd.oasis.opendocument.spreadsheet"
_ODP = "application/vnd.oasis.opendocument.presentation"
_ODG = "application/vnd.oasis.opendocument.graphics"
_EPUB = "application/epub+zip"
_ZIP = "application/zip"
_TEXT = "text/plain"
_BINARY = "application/octet-stream"

_K = MediaKind
# mimetype -> (default kind, extension, description)
_TYPES: dict[str, tuple[MediaKind, str, str]] = {
    "image/jpeg": (_K.IMAGE, "jpg", "a JPEG image"),
    "image/png": (_K.IMAGE, "png", "a PNG image"),
    "image/gif": (_K.IMAGE, "gif", "a GIF image"),
    "image/webp": (_K.IMAGE, "webp", "a WebP image"),
    "image/heic": (_K.DOCUMENT, "heic", "a HEIC image"),
    "image/heif": (_K.DOCUMENT, "heif", "a HEIF image"),
    "image/avif": (_K.DOCUMENT, "avif", "an AVIF image"),
    "image/bmp": (_K.DOCUMENT, "bmp", "a BMP image"),
    "image/tiff": (_K.DOCUMENT, "tif", "a TIFF image"),
    "video/mp4": (_K.VIDEO, "mp4", "an MP4 video"),
    "video/quicktime": (_K.VIDEO, "mov", "a QuickTime video"),
    "video/3gpp": (_K.VIDEO, "3gp", "a 3GP video"),
    "video/3gpp2": (_K.VIDEO, "3g2", "a 3GP2 video"),
    "audio/mp4": (_K.AUDIO, "m4a", "M4A audio"),
    "video/webm": (_K.DOCUMENT, "webm", "a WebM video"),
    "video/x-matroska": (_K.DOCUMENT, "mkv", "a Matroska video"),
    "video/x-msvideo": (_K.DOCUMENT, "avi", "an AVI video"),
    "video/ogg": (_K.DOCUMENT, "ogv", "an OGG/Theora video"),
    VOICE_MIMETYPE: (_K.VOICE, "ogg", "OGG/Opus audio"),
    "audio/ogg": (_K.AUDIO, "ogg", "OGG audio"),
    "application/ogg": (_K.DOCUMENT, "ogx", "an OGG file of an unknown codec"),
    "audio/mpeg": (_K.AUDIO, "mp3", "MP3 audio"),
    "audio/aac": (_K.AUDIO, "aac", "AAC audio"),
    "audio/wav": (_K.AUDIO, "wav", "WAV audio"),
    "audio/amr": (_K.AUDIO, "amr", "AMR audio"),
    "audio/amr-wb": (_K.AUDIO, "awb", "AMR-WB audio"),
    "audio/flac": (_K.AUDIO, "flac", "FLAC audio"),
    "application/pdf": (_K.DOCUMENT, "pdf", "a PDF document"),
    _ZIP: (_K.DOCUMENT, "zip", "a ZIP archive"),
    _DOCX: (_K.DOCUMENT, "docx", "a Word document"),
    _XLSX: (_K.DOCUMENT, "xlsx", "an Excel workbook"),
    _PPTX: (_K.DOCUMENT, "pptx", "a PowerPoint presentation"),
    _DOCM: (_K.DOCUMENT, "docm", "a macro-enabled Word document"),
    _XLSM: (_K.DOCUMENT, "xlsm", "a macro-enabled Excel workbook"),
    _PPTM: (_K.DOCUMENT, "pptm", "a macro-enabled PowerPoint presentation"),
    _ODT: (_K.DOCUMENT, "odt", "an OpenDocument text"),
    _ODS: (_K.DOCUMENT, "ods", "an OpenDocument spreadsheet"),
    _ODP: (_K.DOCUMENT, "odp", "an OpenDocument presentation"),
    _ODG: (_K.DOCUMENT, "odg", "an OpenDocument drawing"),
    _EPUB: (_K.DOCUMENT, "epub", "an EPUB book"),
    _TEXT: (_K.DOCUMENT, "txt", "plain text"),
    _BINARY: (_K.DOCUMENT, "bin", "a file of no recognised type"),
}

# Other names clients give the types above.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/jfif": "image/jpeg",
    "image/x-png": "image/png",
    "image/apng": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "image/x-bmp": "image/bmp",
    "video/x-m4v": "video/mp4",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/x-mp4": "audio/mp4",
    "audio/opus": "audio/ogg",
    "audio/vorbis": "audio/ogg",
    "audio/x-ogg": "audio/ogg",
    "audio/mp3": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "audio/x-mpeg-3": "audio/mpeg",
    "audio/mpg": "audio/mpeg",
    "audio/x-aac": "audio/aac",
    "audio/aacp": "audio/aac",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-pn-wav": "audio/wav",
    "audio/x-flac": "audio/flac",
    "audio/amr-nb": "audio/amr",
    "application/x-pdf": "application/pdf",
    "application/acrobat": "application/pdf",
    "application/x-zip-compressed": _ZIP,
    "application/x-zip": _ZIP,
}

# Types that are one container, whatever the name says: an MP4's brand is a loose hint.
_GROUPS = [
    frozenset(
        {
            "video/mp4",
            "video/quicktime",
            "video/3gpp",
            "video/3gpp2",
            "audio/mp4",
            "audio/3gpp",
            "audio/3gpp2",
        }
    ),
    frozenset({"image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence"}),
    frozenset({"audio/ogg", "video/ogg", "application/ogg"}),
    frozenset({"video/webm", "video/x-matroska", "audio/webm", "audio/x-matroska"}),
]
_ZIP_BASED = frozenset(
    {_DOCX, _XLSX, _PPTX, _DOCM, _XLSM, _PPTM, _ODT, _ODS, _ODP, _ODG, _EPUB}
    | {"application/java-archive", "application/vnd.android.package-archive"}
)
# Types sniff recognises by signature: content that is none of them cannot be any of them.
_SIGNED = (frozenset(_TYPES) - {_TEXT, _BINARY, VOICE_MIMETYPE}).union(*_GROUPS, _ZIP_BASED)

# Extensions for types a declaration refines generic content to (text, ZIP, unknown binary).
_DECLARED_EXTENSIONS = {
    "text/csv": "csv",
    "text/html": "html",
    "text/markdown": "md",
    "text/xml": "xml",
    "text/calendar": "ics",
    "text/vcard": "vcf",
    "text/x-vcard": "vcf",
    "application/json": "json",
    "application/xml": "xml",
    "application/rtf": "rtf",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt",
    "application/gzip": "gz",
    "application/x-tar": "tar",
    "application/x-7z-compressed": "7z",
    "application/vnd.rar": "rar",
    "application/x-rar-compressed": "rar",
    "application/java-archive": "jar",
    "application/vnd.android.package-archive": "apk",
}

_MIMETYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


@dataclass(slots=True)
class _Track:
    handler: bytes
    width: int = 0
    height: int = 0
    rotated: bool = False
    timescale: int = 0  # of the media header
    duration: int = 0


@dataclass(slots=True)
class _Mp4:
    major: bytes = b""
    brands: frozenset[bytes] = frozenset()
    moov: bool = False
    timescale: int = 0
    duration: int = 0
    tracks: list[_Track] = field(default_factory=list)

    def track(self, handler: bytes) -> _Track | None:
        return next((t for t in self.tracks if t.handler == handler), None)


@dataclass(frozen=True, slots=True)
class _Found:
    mimetype: str
    kind: MediaKind
    extension: str
    description: str
    mp4: _Mp4 | None = None
    codec: str = ""  # of an OGG stream


def _found(mimetype: str, description: str | None = None, mp4: _Mp4 | None = None, codec: str = "") -> _Found:
    kind, extension, default = _TYPES[mimetype]
    return _Found(mimetype, kind, extension, description or default, mp4, codec)


# --- reading bytes or a file ---------------------------------------------------------------


class _Source:
    """Random access to bytes or to a file on disk, reading only what is asked for."""

    def __init__(self, data_or_path: DataOrPath) -> None:
        self._file: BinaryIO | None = None
        if isinstance(data_or_path, bytes | bytearray | memoryview):
            self._data = bytes(data_or_path)
            self.size = len(self._data)
        elif isinstance(data_or_path, str | os.PathLike):
            self._data = b""
            self._file = open(os.fspath(data_or_path), "rb")  # noqa: SIM115
        else:
            raise TypeError(f"expected bytes or a file path, not {type(data_or_path).__name__}")
        try:
            if self._file is not None:
                self.size = os.fstat(self._file.fileno()).st_size
            self.head = self.read_at(0, _HEAD)
        except BaseException:
            self.close()
            raise

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        if self._file is None:
            return self._data[offset : offset + length]
        self._file.seek(offset)
        return self._file.read(length)

    def fileobj(self) -> BinaryIO:
        """A file object at offset 0, for libraries that read files themselves."""
        if self._file is None:
            return BytesIO(self._data)
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> _Source:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _u16le(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 2], "little")


def _u32le(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 4], "little")


def _u16be(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 2], "big")


def _u32be(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 4], "big")


# --- sniffing ------------------------------------------------------------------------------


def sniff(data_or_path: DataOrPath) -> Sniffed:
    """What the content is, from its magic bytes alone (a file name is never trusted).

    Unrecognised content is ``text/plain`` when its start is valid UTF-8 without NULs, else
    ``application/octet-stream``; both are documents. A path is read only as far as needed.
    """
    with _Source(data_or_path) as src:
        found = _sniff(src)
    return Sniffed(found.mimetype, found.kind, found.extension)


def _sniff(src: _Source) -> _Found:
    head = src.head
    if head.startswith(b"\xff\xd8\xff"):
        return _found("image/jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _found("image/png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _found("image/gif")
    if head.startswith(b"RIFF") and len(head) >= 12:
        riff = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(head[8:12])
        if riff:
            return _found(riff)
    if head[4:8] == b"ftyp" or head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        found = _sniff_iso(src)
        if found:
            return found
    if head.startswith(b"OggS"):
        return _sniff_ogg(head)
    if head.startswith(b"fLaC"):
        return _found("audio/flac")
    if head.startswith(b"#!AMR-WB\n"):
        return _found("audio/amr-wb")
    if head.startswith(b"#!AMR\n"):
        return _found("audio/amr")
    if head.startswith(b"%PDF-"):
        return _found("application/pdf")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(src)
    if _id3_header(head):
        return _sniff_after_id3(src)
    if _mpeg_frames(head, src.size):
        return _found("audio/mpeg")
    if _adts_frames(head, src.size):
        return _found("audio/aac")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _found("video/webm" if b"webm" in head[:64] else "video/x-matroska")
    if head.startswith(b"BM") and len(head) >= 18 and _u32le(head, 14) in (12, 40, 52, 56, 64, 108, 124):
        return _found("image/bmp")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return _found("image/tiff")
    if _is_text(head, complete=len(head) == src.size):
        return _found(_TEXT)
    return _found(_BINARY)


def _is_text(head: bytes, *, complete: bool) -> bool:
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def _sniff_ogg(head: bytes) -> _Found:
    segments = head[26] if len(head) > 26 else 0
    packet = head[27 + segments : 27 + segments + 8]
    if packet.startswith(b"OpusHead"):
        return _found(VOICE_MIMETYPE, codec="opus")
    if packet.startswith(b"\x01vorbis"):
        return _found("audio/ogg", "OGG/Vorbis audio", codec="vorbis")
    if packet.startswith(b"\x7fFLAC"):
        return _found("audio/ogg", "OGG/FLAC audio", codec="flac")
    if packet.startswith(b"Speex   "):
        return _found("audio/ogg", "OGG/Speex audio", codec="speex")
    if packet.startswith(b"\x80theora"):
        return _found("video/ogg")
    return _found("application/ogg")


def _id3_header(head: bytes) -> bool:
    """An ID3v2 tag: "ID3", version 2 to 4, and a size of four 7-bit bytes."""
    return (
        len(head) >= 10
        and head.startswith(b"ID3")
        and head[3] in (2, 3, 4)
        and head[4] != 0xFF
        and all(b < 0x80 for b in head[6:10])
    )


def _sniff_after_id3(src: _Source) -> _Found:
    """An ID3v2 tag is mostly followed by MP3 frames, sometimes by FLAC or AAC."""
    head = src.head
    size = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F)
    if head[5] & 0x10:  # a footer follows the tag
        size += 10
    after = src.read_at(size, 8)
    if after.startswith(b"fLaC"):
        return _found("audio/flac")
    if _adts_header(after):
        return _found("audio/aac")
    return _found("audio/mpeg")


_MPEG_BITRATES = {
    (3, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 1): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame(h: bytes) -> tuple[int, bytes] | None:
    """(frame length, the header bits that stay the same in a stream) of an MPEG audio frame."""
    if len(h) < 4 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return None
    version, layer = (h[1] >> 3) & 3, (h[1] >> 1) & 3
    index, rate_index, padding = h[2] >> 4, (h[2] >> 2) & 3, (h[2] >> 1) & 1
    if version == 1 or layer == 0 or index in (0, 15) or rate_index == 3:
        return None
    bitrate = _MPEG_BITRATES[(3 if version == 3 else 2, layer)][index] * 1000
    rate = _MPEG_RATES[version][rate_index]
    if layer == 3:
        length = (12 * bitrate // rate + padding) * 4
    elif layer == 1 and version != 3:
        length = 72 * bitrate // rate + padding
    else:
        length = 144 * bitrate // rate + padding
    return length, bytes((h[1] & 0xFE, h[2] & 0x0C))


def _mpeg_frames(head: bytes, size: int) -> bool:
    """Two consecutive MPEG audio frames of one stream (or one that fills the whole file)."""
    first = _mpeg_frame(head)
    if not first:
        return False
    length, key = first
    if size <= length + 4:
        return size >= length
    second = _mpeg_frame(head[length : length + 4])
    return second is not None and second[1] == key


def _adts_header(h: bytes) -> int | None:
    """The frame length of an AAC ADTS frame header."""
    if len(h) < 7 or h[0] != 0xFF or h[1] & 0xF6 != 0xF0 or (h[2] >> 2) & 0x0F > 12:
        return None
    length = (h[3] & 0x03) << 11 | h[4] << 3 | h[5] >> 5
    return length if length >= 7 else None


def _adts_frames(head: bytes, size: int) -> bool:
    length = _adts_header(head)
    if length is None:
        return False
    if size <= length + 7:
        return size >= length
    return _adts_header(head[length : length + 7]) is not None


# ISO base media (MP4, MOV, 3GP, M4A, HEIF) ---------------------------------------------------

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
_MP4_BOX_LIMIT = 256


def _boxes(src: _Source, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload offset, end offset) of each box between ``start`` and ``end``."""
    pos, count = start, 0
    while pos + 8 <= end and count < _MP4_BOX_LIMIT:
        header = src.read_at(pos, 16)
        if len(header) < 8:
            return
        size, kind = _u32be(header, 0), header[4:8]
        payload = pos + 8
        if size == 1:
            if len(header) < 16:
                return
            size, payload = int.from_bytes(header[8:16], "big"), pos + 16
        elif size == 0:
            size = end - pos
        if size < payload - pos:
            return
        yield kind, payload, min(pos + size, end)
        pos += size
        count += 1


def _probe_mp4(src: _Source) -> _Mp4:
    """The brands, movie header and tracks of an ISO base media file, read box by box."""
    info = _Mp4()
    for kind, start, end in _boxes(src, 0, src.size):
        if kind == b"ftyp":
            payload = src.read_at(start, min(end - start, 256))
            info.major = payload[:4]
            info.brands = frozenset(payload[i : i + 4] for i in range(8, len(payload) - 3, 4)) | {info.major}
        elif kind == b"moov":
            info.moov = True
            _read_moov(src, start, end, info)
            break
    return info


def _read_moov(src: _Source, start: int, end: int, info: _Mp4) -> None:
    for kind, p, e in _boxes(src, start, end):
        if kind == b"mvhd":
            info.timescale, info.duration = _times(src.read_at(p, 32))
        elif kind == b"trak":
            track = _Track(b"")
            _read_trak(src, p, e, track)
            info.tracks.append(track)


def _times(data: bytes) -> tuple[int, int]:
    """(timescale, duration) of a movie or media header, version 0 or 1."""
    if data[:1] == b"\x01" and len(data) >= 32:
        return _u32be(data, 20), int.from_bytes(data[24:32], "big")
    if len(data) >= 20:
        return _u32be(data, 12), _u32be(data, 16)
    return 0, 0


def _read_trak(src: _Source, start: int, end: int, track: _Track) -> None:
    for kind, p, e in _boxes(src, start, end):
        if kind == b"tkhd":
            data = src.read_at(p, 96)
            matrix = 52 if data[:1] == b"\x01" else 40  # past the times, ids, layer and volume
            if len(data) >= matrix + 44:
                a, b = struct.unpack(">ii", data[matrix : matrix + 8])
                track.rotated = a == 0 and b != 0  # a 90 or 270 degree turn
                track.width = _u32be(data, matrix + 36) >> 16  # 16.16 fixed point
                track.height = _u32be(data, matrix + 40) >> 16
        elif kind == b"mdhd":
            track.timescale, track.duration = _times(src.read_at(p, 32))
        elif kind in (b"mdia", b"minf", b"stbl"):
            _read_trak(src, p, e, track)
        elif kind == b"hdlr":
            track.handler = src.read_at(p + 8, 4)
        elif kind == b"stsd" and not (track.width and track.height):
            entry = src.read_at(p, 44)
            if track.handler == b"vide" and len(entry) >= 44:
                track.width, track.height = _u16be(entry, 40), _u16be(entry, 42)


def _sniff_iso(src: _Source) -> _Found | None:
    info = _probe_mp4(src)
    if not info.major and not info.moov:
        return None
    if info.major in _AVIF_BRANDS:
        return _found("image/avif")
    if info.major in _HEIF_BRANDS or (info.major in (b"mif1", b"msf1") and not info.tracks):
        if info.brands & _AVIF_BRANDS:
            return _found("image/avif")
        return _found("image/heic" if info.brands & _HEIF_BRANDS else "image/heif")
    video, audio = info.track(b"vide"), info.track(b"soun")
    if not video and (audio or info.major in _AUDIO_BRANDS):
        return _found("audio/mp4", mp4=info)
    if info.major == b"qt  " or not info.major:
        return _found("video/quicktime", mp4=info)
    if info.major.startswith(b"3g2"):
        return _found("video/3gpp2", mp4=info)
    if info.major.startswith((b"3gp", b"3ge", b"3gg", b"3gs")):
        return _found("video/3gpp", mp4=info)
    return _found("video/mp4", mp4=info)


# ZIP-based documents -----------------------------------------------------------------------

_ODF_TYPES = {
    b"application/vnd.oasis.opendocument.text": _ODT,
    b"application/vnd.oasis.opendocument.spreadsheet": _ODS,
    b"application/vnd.oasis.opendocument.presentation": _ODP,
    b"application/vnd.oasis.opendocument.graphics": _ODG,
    b"application/epub+zip": _EPUB,
}
# The main part's content type in [Content_Types].xml, lowercased.
_OOXML_TYPES = (
    (b"wordprocessingml.document.main+xml", _DOCX),
    (b"spreadsheetml.sheet.main+xml", _XLSX),
    (b"presentationml.presentation.main+xml", _PPTX),
    (b"ms-word.document.macroenabled.main+xml", _DOCM),
    (b"ms-excel.sheet.macroenabled.main+xml", _XLSM),
    (b"ms-powerpoint.presentation.macroenabled.main+xml", _PPTM),
)
_OOXML_FOLDERS = ((b"word/", _DOCX), (b"xl/", _XLSX), (b"ppt/", _PPTX))


def _sniff_zip(src: _Source) -> _Found:
    """ODF and EPUB name themselves in a first stored "mimetype" member; Office Open XML
    files in [Content_Types].xml, found through the central directory at the end."""
    head = src.head
    if len(head) >= 30 and head.startswith(b"PK\x03\x04"):
        name_length, extra_length = _u16le(head, 26), _u16le(head, 28)
        if head[30 : 30 + name_length] == b"mimetype" and _u16le(head, 8) == 0:
            start = 30 + name_length + extra_length
            declared = head[start : start + _u32le(head, 18)].strip()
            if declared in _ODF_TYPES:
                return _found(_ODF_TYPES[declared])
    members = _zip_directory(src)
    content_types = members.get(b"[Content_Types].xml")
    if content_types is not None:
        xml = _zip_member(src, *content_types).lower()
        for marker, mimetype in _OOXML_TYPES:
            if marker in xml:
                return _found(mimetype)
        for folder, mimetype in _OOXML_FOLDERS:
            if any(name.startswith(folder) for name in members):
                return _found(mimetype)
    return _found(_ZIP)


def _zip_directory(src: _Source) -> dict[bytes, tuple[int, int, int]]:
    """Member name -> (local header offset, compression method, compressed size)."""
    tail_start = max(0, src.size - 65_557)
    tail = src.read_at(tail_start, src.size - tail_start)
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        return {}
    size, offset = _u32le(tail, end + 12), _u32le(tail, end + 16)
    if size > _ZIP_DIRECTORY_LIMIT or offset == 0xFFFFFFFF:
        return {}
    directory = src.read_at(offset, size)
    members: dict[bytes, tuple[int, int, int]] = {}
    pos = 0
    while pos + 46 <= len(directory) and directory[pos : pos + 4] == b"PK\x01\x02":
        name_length = _u16le(directory, pos + 28)
        skip = name_length + _u16le(directory, pos + 30) + _u16le(directory, pos + 32)
        name = directory[pos + 46 : pos + 46 + name_length]
        members[name] = (
            _u32le(directory, pos + 42),
            _u16le(directory, pos + 10),
            _u32le(directory, pos + 20),
        )
        pos += 46 + skip
    return members


def _zip_member(src: _Source, offset: int, method: int, size: int) -> bytes:
    """A small member's content (empty if it is large, damaged or compressed unusually)."""
    header = src.read_at(offset, 30)
    if len(header) < 30 or not header.startswith(b"PK\x03\x04") or size > _ZIP_MEMBER_LIMIT:
        return b""
    data = src.read_at(offset + 30 + _u16le(header, 26) + _u16le(header, 28), size)
    if method == 0:
        return data
    if method != 8:
        return b""
    try:
        return zlib.decompressobj(-15).decompress(data, _ZIP_MEMBER_LIMIT)
    except zlib.error:
        return b""


# --- resolving a request -------------------------------------------------------------------


def resolve(
    data_or_path: DataOrPath,
    *,
    kind: MediaKind | str | None = None,
    mimetype: str | None = None,
    filename: str | None = None,
) -> MediaInfo:
    """Check a file against what a request says of it and describe it for sending.

    ``kind`` is inferred from the content when not given (see the module's decisions).
    A declared ``mimetype`` may refine generic content (plain text, a ZIP archive, unknown
    binary) but must not contradict recognised content. ``filename`` is reduced to its last
    path component. Raises :class:`MediaError`; a path that cannot be opened raises OSError.
    """
    wanted = _parse_kind(kind)
    name = _clean_filename(filename)
    declared = _parse_mimetype(mimetype)
    with _Source(data_or_path) as src:
        if src.size == 0:
            raise MediaError("file", "is empty")
        found = _sniff(src)
        final_mimetype = _reconcile(declared, found)
        chosen = _decide_kind(wanted, found)
        extension = found.extension
        if final_mimetype in _TYPES:
            extension = _TYPES[final_mimetype][1]
        elif final_mimetype in _DECLARED_EXTENSIONS:
            extension = _DECLARED_EXTENSIONS[final_mimetype]
        info = MediaInfo(
            kind=chosen,
            mimetype=VOICE_MIMETYPE if chosen is MediaKind.VOICE else final_mimetype,
            extension=extension,
            size=src.size,
            filename=name,
        )
        return _describe(src, found, info)


def _parse_kind(kind: object) -> MediaKind | None:
    if kind is None:
        return None
    if isinstance(kind, str):
        try:
            return MediaKind(kind.strip().lower())
        except ValueError:
            pass
    raise MediaError("kind", "must be one of " + ", ".join(k.value for k in MediaKind))


def _clean_filename(filename: object) -> str | None:
    if filename is None:
        return None
    if not isinstance(filename, str):
        raise MediaError("filename", "must be text")
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name in (".", ".."):
        raise MediaError("filename", "is not a file name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise MediaError("filename", "contains control characters")
    if len(name.encode("utf-8", "surrogatepass")) > 255:
        raise MediaError("filename", "is longer than 255 bytes")
    return name


def _parse_mimetype(mimetype: object) -> str | None:
    """The declared type without parameters, lowercased."""
    if mimetype is None:
        return None
    if not isinstance(mimetype, str):
        raise MediaError("mimetype", "must be text such as image/png")
    base = mimetype.partition(";")[0].strip().lower()
    if not _MIMETYPE_RE.fullmatch(base):
        raise MediaError("mimetype", "is not a media type such as image/png")
    return base


def _reconcile(given: str | None, found: _Found) -> str:
    """The mimetype to send: the content's, or a declared refinement of generic content."""
    if given is None:
        return found.mimetype
    declared = _ALIASES.get(given, given)  # under its usual name
    if declared == _BINARY:
        return found.mimetype
    content = found.mimetype.partition(";")[0]
    if declared == content or any(declared in g and content in g for g in _GROUPS):
        return found.mimetype
    if content == _ZIP and (declared in _ZIP_BASED or _unsigned(declared, "application/")):
        return declared
    if found.mimetype in _ZIP_BASED and declared == _ZIP:
        return found.mimetype
    if content == _TEXT and declared not in _SIGNED and _textual(declared):
        return declared
    if content == _BINARY and declared not in _SIGNED:
        return declared
    raise MediaError("mimetype", f"says {given} but the file is {found.description} ({content})")


def _unsigned(mimetype: str, prefix: str) -> bool:
    return mimetype.startswith(prefix) and mimetype not in _SIGNED


def _textual(mimetype: str) -> bool:
    return mimetype.startswith(("text/", "application/")) or mimetype.endswith(("+xml", "+json"))


_KIND_RULES = {
    MediaKind.IMAGE: "an image must be a JPEG, PNG, GIF or WebP picture",
    MediaKind.STICKER: "a sticker must be a WebP image",
    MediaKind.VOICE: "a voice note must be OGG/Opus audio",
    MediaKind.AUDIO: "audio must be MP3, M4A, AAC, OGG, WAV, AMR or FLAC",
    MediaKind.VIDEO: "a video must be an MP4, 3GP or QuickTime file with a video track",
}


def _decide_kind(wanted: MediaKind | None, found: _Found) -> MediaKind:
    if wanted is None:
        return found.kind
    if wanted is MediaKind.DOCUMENT:
        return wanted
    fits = {
        MediaKind.IMAGE: found.kind is MediaKind.IMAGE,
        MediaKind.STICKER: found.mimetype == "image/webp",
        MediaKind.VOICE: found.mimetype == VOICE_MIMETYPE,
        MediaKind.AUDIO: found.kind in (MediaKind.AUDIO, MediaKind.VOICE),
        MediaKind.VIDEO: found.kind is MediaKind.VIDEO,
    }[wanted]
    if fits:
        return wanted
    if wanted is MediaKind.IMAGE and found.mimetype in ("image/heic", "image/heif", "image/avif"):
        raise MediaError(
            "kind",
            f"{_bare(found.description)}s are not shown by every WhatsApp client: "
            "send a JPEG or PNG, or send it as a document",
        )
    raise MediaError("kind", f"{_KIND_RULES[wanted]} (this is {found.description})")


def _bare(description: str) -> str:
    """Drops the article: 'a HEIC image' -> 'HEIC image'."""
    return re.sub(r"^(a|an) ", "", description)


def _describe(src: _Source, found: _Found, info: MediaInfo) -> MediaInfo:
    kind = info.kind
    extra: dict[str, Any] = {}
    if kind is MediaKind.IMAGE:
        extra = _image_metadata(src, found)
    elif kind is MediaKind.STICKER:
        webp = _webp_header(src.head)
        if webp is None:
            raise MediaError("file", "is a damaged WebP image")
        extra = {"width": webp[0], "height": webp[1], "animated": webp[2]}
    elif kind in (MediaKind.AUDIO, MediaKind.VOICE, MediaKind.VIDEO):
        extra["duration"] = _duration(src, found)
        if kind is MediaKind.VIDEO and found.mp4 is not None:
            track = found.mp4.track(b"vide")
            if track and track.width and track.height:
                w, h = (track.height, track.width) if track.rotated else (track.width, track.height)
                extra.update(width=w, height=h)
    elif found.mimetype == "application/pdf":
        extra["pages"] = _pdf_pages(src)
    return replace(info, **extra)


# --- images --------------------------------------------------------------------------------

_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _image_size(src: _Source, mimetype: str) -> tuple[int, int] | None:
    """Width and height from the header, before anything decodes the picture."""
    head = src.head
    if mimetype == "image/png" and len(head) >= 24 and head[12:16] == b"IHDR":
        return _u32be(head, 16), _u32be(head, 20)
    if mimetype == "image/gif" and len(head) >= 10:
        return _u16le(head, 6), _u16le(head, 8)
    if mimetype == "image/webp":
        webp = _webp_header(head)
        return webp[:2] if webp else None
    if mimetype == "image/jpeg":
        return _jpeg_size(src)
    return None


def _jpeg_size(src: _Source) -> tuple[int, int] | None:
    pos = 2
    for _ in range(512):
        header = src.read_at(pos, 9)
        if len(header) < 4 or header[0] != 0xFF:
            return None
        marker = header[1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length
            pos += 2
            continue
        if marker in _JPEG_SOF:
            return (_u16be(header, 7), _u16be(header, 5)) if len(header) >= 9 else None
        if marker == 0xDA:  # scan data without a frame header first
            return None
        pos += 2 + _u16be(header, 2)
    return None


def _webp_header(head: bytes) -> tuple[int, int, bool] | None:
    """(width, height, animated) from a WebP file's first chunk."""
    chunk, data = head[12:16], head[20:40]
    if chunk == b"VP8X" and len(data) >= 10:
        width = 1 + int.from_bytes(data[4:7], "little")
        height = 1 + int.from_bytes(data[7:10], "little")
        return width, height, bool(data[0] & 0x02)
    if chunk == b"VP8 " and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":
        return _u16le(data, 6) & 0x3FFF, _u16le(data, 8) & 0x3FFF, False
    if chunk == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
        bits = _u32le(data, 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, False
    return None


def _png_animated(head: bytes) -> bool:
    """An APNG has an acTL chunk before its first IDAT."""
    pos = 8
    while pos + 8 <= len(head):
        kind = head[pos + 4 : pos + 8]
        if kind == b"acTL":
            return True
        if kind == b"IDAT":
            return False
        pos += 12 + _u32be(head, pos)
    return False


def _image_metadata(src: _Source, found: _Found) -> dict[str, Any]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    size = _image_size(src, found.mimetype)
    if size is not None:
        _check_pixels(*size)
    animated: bool | None = None
    if found.mimetype == "image/png":
        animated = _png_animated(src.head)
    elif found.mimetype == "image/webp":
        webp = _webp_header(src.head)
        animated = webp[2] if webp else None
    try:
        with Image.open(src.fileobj()) as image:
            width, height = image.size
            _check_pixels(width, height)
            if found.mimetype == "image/gif":
                animated = bool(getattr(image, "is_animated", False))
            orientation = image.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            thumbnail = None
            if found.mimetype == "image/jpeg" or image.width * image.height <= _THUMBNAIL_DECODE_PIXELS:
                image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                thumbnail = _jpeg_thumbnail(ImageOps.exif_transpose(image))
    except MediaError:
        raise
    except Image.DecompressionBombError:
        raise MediaError("file", "is too large an image to decode safely") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError("file", f"is a damaged {_bare(found.description)} ({exc})") from None
    return {"width": width, "height": height, "thumbnail": thumbnail, "animated": animated}


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            "file",
            f"is too large an image: {width}x{height} pixels is more than "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels",
        )


def _jpeg_thumbnail(image: PILImage) -> bytes:
    """A JPEG of the already shrunken picture, on white where it was transparent."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    elif image.mode != "RGB":
        image = image.convert("RGB")
    data = b""
    for quality in _THUMBNAIL_QUALITIES:
        out = BytesIO()
        image.save(out, format="JPEG", quality=quality, optimize=True)
        data = out.getvalue()
        if len(data) <= THUMBNAIL_MAX_BYTES:
            break
    return data


# --- durations -----------------------------------------------------------------------------


def _duration(src: _Source, found: _Found) -> float | None:
    """Seconds of audio or video, read from the container's or the stream's own headers."""
    length: float | None
    if found.mimetype in ("audio/amr", "audio/amr-wb"):
        return _amr_duration(src, wideband=found.mimetype == "audio/amr-wb")
    if found.codec:
        length = _ogg_duration(src, found.codec)
    elif found.mimetype == "audio/mpeg":
        length = _mpeg_duration(src)
    elif found.mimetype == "audio/aac":
        length = _adts_duration(src)
    elif found.mimetype == "audio/wav":
        length = _wav_duration(src)
    elif found.mimetype == "audio/flac":
        length = _flac_duration(src)
    elif found.mp4 is not None:
        length = _mp4_duration(found.mp4)
    else:
        length = None
    if length is None or not math.isfinite(length) or length <= 0:
        return None
    return round(length, 3)


def _after_id3(src: _Source) -> int:
    """The offset past the ID3v2 tags at the start (some writers stack several)."""
    pos = 0
    for _ in range(16):
        h = src.read_at(pos, 10)
        if not _id3_header(h):
            break
        pos += 10 + ((h[6] & 0x7F) << 21 | (h[7] & 0x7F) << 14 | (h[8] & 0x7F) << 7 | h[9] & 0x7F)
        if h[5] & 0x10:  # a footer follows the tag
            pos += 10
    return pos


# Ogg: the granule position of a stream's last page counts its samples (for Opus, at 48 kHz
# and including the pre-skip).

_OGG_TAIL = 64 * 1024
_OGG_PAGE_LIMIT = 1_000_000
_OGG_CRC: list[int] = []


def _ogg_crc(data: bytes) -> int:
    if not _OGG_CRC:
        for i in range(256):
            crc = i << 24
            for _ in range(8):
                crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            _OGG_CRC.append(crc & 0xFFFFFFFF)
    crc, table = 0, _OGG_CRC
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def _ogg_page(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(granule position, serial, page length) of a whole, intact page at ``pos`` in ``data``."""
    if len(data) < pos + 27 or data[pos : pos + 5] != b"OggS\x00":
        return None
    segments = data[pos + 26]
    end = pos + 27 + segments + sum(data[pos + 27 : pos + 27 + segments])
    if len(data) < pos + 27 + segments or len(data) < end:
        return None
    page = bytearray(data[pos:end])
    page[22:26] = b"\x00\x00\x00\x00"
    if _ogg_crc(bytes(page)) != _u32le(data, pos + 22):
        return None
    granule, serial = struct.unpack_from("<qI", data, pos + 6)
    return granule, serial, end - pos


def _ogg_last_granule(src: _Source, serial: int) -> int | None:
    """The granule position of the stream's last page: from the file's tail, else page by page."""
    start = max(0, src.size - _OGG_TAIL)
    tail = src.read_at(start, _OGG_TAIL)
    pos = tail.rfind(b"OggS")
    while pos >= 0:
        page = _ogg_page(tail, pos)
        if page and page[1] == serial and page[0] >= 0:
            return page[0]
        if page and page[1] != serial:
            break  # another stream ends the file: they are interleaved
        pos = tail.rfind(b"OggS", 0, pos)
    if start == 0 and pos < 0:
        return None
    # interleaved streams: walk the pages' headers from the start
    granule, offset = None, 0
    for _ in range(_OGG_PAGE_LIMIT):
        header = src.read_at(offset, 27 + 255)
        if len(header) < 27 or header[:5] != b"OggS\x00" or len(header) < 27 + header[26]:
            break
        segments = header[26]
        page_granule, page_serial = struct.unpack_from("<qI", header, 6)
        if page_serial == serial and page_granule >= 0:
            granule = page_granule
        offset += 27 + segments + sum(header[27 : 27 + segments])
    return granule


def _ogg_duration(src: _Source, codec: str) -> float | None:
    head = src.head
    if len(head) < 28:
        return None
    serial = _u32le(head, 14)
    segments = head[26]
    packet = head[27 + segments : 27 + segments + 64]
    pre_skip, rate = 0, 0
    if codec == "opus" and len(packet) >= 12:
        pre_skip, rate = _u16le(packet, 10), 48000
    elif codec == "vorbis" and len(packet) >= 16:
        rate = _u32le(packet, 12)
    elif codec == "flac" and len(packet) >= 30 and packet[9:13] == b"fLaC":
        rate = int.from_bytes(packet[27:30], "big") >> 4  # STREAMINFO, past its block header
    elif codec == "speex" and len(packet) >= 40:
        rate = _u32le(packet, 36)
    if not rate:
        return None
    granule = _ogg_last_granule(src, serial)
    if granule is None:
        return None
    return (granule - pre_skip) / rate


# MPEG audio (MP3): a Xing/Info or VBRI header counts the frames; otherwise the stream is
# taken as constant bitrate and timed from its size and its first frame's bitrate.

_MPEG_SYNC_LIMIT = 1024 * 1024
_MPEG_SYNC_TRIES = 1500
_MPEG_CHAIN = 4
_LAME_VERSION = re.compile(rb"L(?:AME)?(\d)\.(\d+)")


def _mpeg_samples(h: bytes) -> int:
    version, layer = (h[1] >> 3) & 3, (h[1] >> 1) & 3
    if layer == 3:  # layer I
        return 384
    if layer == 1 and version != 3:  # layer III of MPEG-2 and 2.5
        return 576
    return 1152


def _mpeg_bitrate(h: bytes) -> int:
    version, layer = (h[1] >> 3) & 3, (h[1] >> 1) & 3
    return _MPEG_BITRATES[(3 if version == 3 else 2, layer)][h[2] >> 4] * 1000


def _mpeg_rate(h: bytes) -> int:
    return _MPEG_RATES[(h[1] >> 3) & 3][(h[2] >> 2) & 3]


def _mpeg_vbr_length(frame: bytes) -> float | None:
    """Seconds from a Xing/Info or VBRI header in the first frame of a layer III stream."""
    h = frame[:4]
    if (h[1] >> 1) & 3 != 1:
        return None
    samples, rate = _mpeg_samples(h), _mpeg_rate(h)
    mono = h[3] >> 6 == 3
    xing = (21 if mono else 36) if (h[1] >> 3) & 3 == 3 else (13 if mono else 21)
    tag = frame[xing : xing + 120 + 24]
    if tag[:4] in (b"Xing", b"Info") and len(tag) >= 8:
        flags, pos = _u32be(tag, 4), 8
        if not flags & 1 or len(tag) < 12:
            return None
        frames = _u32be(tag, 8)
        pos += 4 + (4 if flags & 2 else 0) + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
        total = samples * frames
        lame = tag[pos : pos + 24]
        version = _LAME_VERSION.match(lame[:9])
        if len(lame) == 24 and version and lame.startswith((b"LAME", b"L3.99")):
            number = (int(version[1]), int(version[2]))
            if number > (3, 90) or (number == (3, 90) and b"(" not in lame[:20]):
                delay = lame[21] << 4 | lame[22] >> 4
                padding = (lame[22] & 0x0F) << 8 | lame[23]
                total = max(0, total - delay - padding)
        return total / rate
    vbri = frame[36 : 36 + 18]
    if vbri[:4] == b"VBRI" and len(vbri) >= 18:
        return samples * _u32be(vbri, 14) / rate
    return None


def _mpeg_duration(src: _Source) -> float | None:
    start = _after_id3(src)
    data = src.read_at(start, _MPEG_SYNC_LIMIT)
    pos, tries = data.find(b"\xff"), 0
    while pos >= 0 and tries < _MPEG_SYNC_TRIES:
        tries += 1
        first = _mpeg_frame(data[pos : pos + 4])
        if first:
            frame = src.read_at(start + pos, max(first[0], 192))
            length = _mpeg_vbr_length(frame)
            if length is not None:
                return length
            if _mpeg_chain(src, start + pos, first[1]):
                end = src.size - (128 if src.read_at(src.size - 128, 3) == b"TAG" else 0)
                return 8 * (end - start - pos) / _mpeg_bitrate(data[pos : pos + 4])
        pos = data.find(b"\xff", pos + 1)
    return None


def _mpeg_chain(src: _Source, pos: int, key: bytes) -> bool:
    """Frames of one stream follow each other from ``pos`` (or fill the file up to its end)."""
    for _ in range(_MPEG_CHAIN):
        if pos >= src.size:
            return True
        frame = _mpeg_frame(src.read_at(pos, 4))
        if frame is None or frame[1] != key:
            return False
        pos += frame[0]
    return True


# AAC in ADTS frames: each frame holds 1024 samples per raw data block; the frames of the
# first megabytes are counted and their rate extrapolated over the rest.

_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_ADTS_SCAN_LIMIT = 8 * 1024 * 1024


def _adts_duration(src: _Source) -> float | None:
    start = _after_id3(src)
    end = min(src.size, start + _ADTS_SCAN_LIMIT)
    data = src.read_at(start, end - start)
    first = _adts_header(data)
    if first is None:
        return None
    rate = _ADTS_RATES[(data[2] >> 2) & 0x0F]
    pos = samples = 0
    while True:
        length = _adts_header(data[pos : pos + 7])
        if length is None or pos + length > len(data):
            break
        samples += 1024 * ((data[pos + 6] & 0x03) + 1)
        pos += length
    if not pos:
        return None
    seconds = samples / rate
    if end < src.size:
        seconds *= (src.size - start) / pos
    return seconds


# WAV: the data chunk's size over the format's block size and sample rate.

_RIFF_CHUNK_LIMIT = 64


def _wav_duration(src: _Source) -> float | None:
    pos, rate, block = 12, 0, 0
    for _ in range(_RIFF_CHUNK_LIMIT):
        header = src.read_at(pos, 8)
        if len(header) < 8:
            break
        kind, size = header[:4], _u32le(header, 4)
        if kind == b"fmt ":
            fmt = src.read_at(pos + 8, 16)
            if len(fmt) >= 14:
                rate, block = _u32le(fmt, 4), _u16le(fmt, 12)
        elif kind == b"data":
            size = min(size, src.size - pos - 8)  # a stream's writer may not know its size
            if rate and block:
                return size // block / rate
            break
        pos += 8 + size + (size & 1)
    return None


# FLAC: the STREAMINFO block, always the first, gives the sample rate and the sample count.


def _flac_duration(src: _Source) -> float | None:
    start = _after_id3(src)
    header = src.read_at(start, 4 + 4 + 34)
    if header[:4] != b"fLaC" or len(header) < 42 or header[4] & 0x7F != 0:
        return None
    fields = int.from_bytes(header[18:26], "big")
    rate, samples = fields >> 44, fields & 0xFFFFFFFFF
    return samples / rate if rate else None


def _mp4_duration(info: _Mp4) -> float | None:
    """The first sound track's media header, else (a video alone) the movie header."""
    track = info.track(b"soun")
    if track is not None and track.timescale and track.duration:
        return track.duration / track.timescale
    if info.timescale:
        return info.duration / info.timescale
    return None


# Bytes per frame (with its header byte) by frame type; every frame is 20 ms.
_AMR_NB_FRAMES = (13, 14, 16, 18, 20, 21, 27, 32, 6, 1, 1, 1, 1, 1, 1, 1)
_AMR_WB_FRAMES = (18, 24, 33, 37, 41, 47, 51, 59, 61, 6, 1, 1, 1, 1, 1, 1)


def _amr_duration(src: _Source, *, wideband: bool) -> float | None:
    """Counts the frames of the first few megabytes, extrapolating over the rest."""
    sizes = _AMR_WB_FRAMES if wideband else _AMR_NB_FRAMES
    start = 9 if wideband else 6
    end = min(src.size, start + _AMR_SCAN_LIMIT)
    data = src.read_at(start, end - start)
    pos = frames = 0
    while pos < len(data):
        pos += sizes[(data[pos] >> 3) & 0x0F]
        frames += 1
    if not frames:
        return None
    seconds = frames * 0.02
    if end < src.size:
        seconds *= (src.size - start) / pos
    return round(seconds, 3)


# --- PDF pages -----------------------------------------------------------------------------

_PDF_TOKENS = re.compile(
    rb"(?<![0-9])(?P<obj>[0-9]{1,10})\s+[0-9]{1,5}\s+obj(?![A-Za-z])"
    rb"|/Type\s*/(?P<type>Page|ObjStm)(?![A-Za-z0-9])"
    rb"|/(?P<key>N|First|Length)\s+(?P<value>[0-9]{1,12})(?![0-9])(?!\s+[0-9]+\s+R)"
    rb"|(?<![A-Za-z])(?P<stream>stream)(?:\r\n|\n|\r)"
)
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z0-9])")
_PDF_CHUNK = 1024 * 1024
_PDF_OVERLAP = 256
_PDF_BACKUP = 32


def _pdf_pages(src: _Source) -> int | None:
    """Counts distinct page objects (``/Type /Page``, not ``/Pages``), those in compressed
    object streams included. None when unsure: too large to scan, or nothing found."""
    if src.size > _PDF_SCAN_LIMIT:
        return None
    pages: set[int] = set()
    streams: list[tuple[int, int | None, int | None, int | None]] = []
    current: int | None = None
    is_objstm = False
    values: dict[bytes, int] = {}
    pos = handled = 0
    while pos < src.size:
        buf = src.read_at(pos, _PDF_CHUNK + _PDF_OVERLAP)
        last = pos + len(buf) >= src.size
        limit = pos + (len(buf) if last else len(buf) - _PDF_OVERLAP)
        for m in _PDF_TOKENS.finditer(buf):
            at = pos + m.start()
            if at < handled:
                continue
            if at >= limit:
                break
            handled = pos + m.end()
            if m["obj"]:
                current, is_objstm, values = int(m["obj"]), False, {}
            elif m["type"] == b"Page":
                pages.add(current if current is not None else -at)
            elif m["type"]:
                is_objstm = True
            elif m["key"]:
                values[m["key"]] = int(m["value"])
            else:
                length = values.get(b"Length")
                if is_objstm:
                    streams.append((handled, length, values.get(b"N"), values.get(b"First")))
                if length is not None:
                    handled += length  # the stream's bytes are data, not objects
        if last:
            break
        pos = max(limit, handled) - _PDF_BACKUP
    for stream in streams:
        inside = _objstm_pages(src, *stream)
        if inside is None:
            return None
        pages |= inside
    return len(pages) or None


def _objstm_pages(
    src: _Source, start: int, length: int | None, n: int | None, first: int | None
) -> set[int] | None:
    """Page objects inside a Flate-compressed object stream, by object number."""
    if n is None or first is None:
        return None
    raw = src.read_at(start, length if length is not None else _PDF_OBJSTM_LIMIT)
    try:
        data = zlib.decompressobj().decompress(raw, _PDF_OBJSTM_LIMIT)
        numbers = [int(x) for x in data[:first].split()[: 2 * n]]
    except (zlib.error, ValueError):
        return None
    if len(numbers) != 2 * n:
        return None
    body = data[first:]
    offsets = [*numbers[1::2], len(body)]
    return {
        numbers[2 * i]
        for i in range(n)
        if _PDF_PAGE.search(body, offsets[i], max(offsets[i], offsets[i + 1]))
    }
