"""Media in the window: files to attach, how media messages are described, their pictures.

The functions that read or decode files (:func:`load_file`, :func:`load_image`,
:func:`scaled_image`) are meant for worker threads: they use :class:`QImage` and
:class:`QImageReader`, never a :class:`QPixmap`. :class:`Thumbnails` runs them through the
window's :class:`~.bridge.Background` and keeps the results (pixmaps, GUI thread only).
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import os
import re
import shutil
import stat
from collections import OrderedDict, deque
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QSize, Qt, Signal
from PySide6.QtGui import QImage, QImageReader, QImageWriter, QPixmap

from ..core.media import MediaInfo, resolve
from ..core.session import MediaError, TooLarge
from .status import sentence

if TYPE_CHECKING:
    from ..core.session import Session
    from ..core.store import MediaRecord
    from .bridge import Background

log = logging.getLogger("wadesk.ui")

MIB = 1024 * 1024
KIND_LABELS = {
    "image": "Photo",
    "video": "Video",
    "audio": "Audio",
    "voice": "Voice message",
    "document": "Document",
    "sticker": "Sticker",
}
PICTURE_KINDS = ("image", "sticker")  # shown as a picture in the log
PASTED_NAME = "Pasted image"


# ---- words ---------------------------------------------------------------------------------------


def human_size(size: int) -> str:
    """1536 -> '1.5 KB', 3_400_000 -> '3.2 MB' (binary units, as file managers on Linux say)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def duration_text(seconds: float | None) -> str:
    """7 -> '0:07', 754 -> '12:34', 3725 -> '1:02:05'; '' when unknown."""
    if seconds is None or seconds < 0:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def too_large_text(limit: int) -> str:
    return f"The file is larger than {limit // MIB} MB"


_SUBJECTS = {"file": "The file", "mimetype": "The file type", "filename": "The file name", "kind": "The file"}


def media_problem(exc: MediaError) -> str:
    """A refusal of the core's media check as a sentence: 'is empty' -> 'The file is empty'."""
    subject = _SUBJECTS.get(exc.field, "The file")
    reason = exc.reason
    if reason.startswith(("says ", "contains ", "has ", "looks ")):
        reason = f"{subject} {reason}"
    return sentence(reason, subject)


def os_problem(exc: OSError) -> str:
    return f"The file cannot be read: {exc.strerror or exc}"


def send_problem(exc: BaseException) -> str | None:
    """The form's message for a refused media file, or None if ``exc`` is not about the file."""
    if isinstance(exc, MediaError):
        return media_problem(exc)
    if isinstance(exc, TooLarge):
        return too_large_text(exc.limit)
    if isinstance(exc, OSError):
        return os_problem(exc)
    return None


def _badge(kind: str, filename: str | None, mimetype: str) -> str:
    """The short text on a file's icon: 'PDF', 'DOCX', '▶' for a video, '♪' for sound."""
    if kind == "video":
        return "▶"
    if kind in ("audio", "voice"):
        return "♪"
    suffix = Path(filename).suffix.lstrip(".") if filename else ""
    if not suffix:
        guessed = mimetypes.guess_extension(mimetype.partition(";")[0].strip()) or ""
        suffix = guessed.lstrip(".")
    suffix = suffix.upper()
    return suffix if 0 < len(suffix) <= 4 and suffix.isalnum() else "FILE"


# ---- media messages in the log ---------------------------------------------------------------------


@dataclass(frozen=True)
class MediaItem:
    """What the log knows of a message's file (from an event's ``media`` or a stored record)."""

    id: str
    kind: str
    mimetype: str = ""
    size: int = 0
    filename: str | None = None
    seconds: float | None = None
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    state: str = "stored"
    reason: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MediaItem:
        return cls(
            id=str(d.get("id") or ""),
            kind=str(d.get("kind") or "document"),
            mimetype=str(d.get("mimetype") or ""),
            size=int(d.get("size") or 0),
            filename=d.get("filename") or None,
            seconds=d.get("seconds"),
            width=d.get("width") or None,
            height=d.get("height") or None,
            pages=d.get("pages") or None,
            state=str(d.get("state") or "stored"),
            reason=d.get("reason") or None,
        )

    @classmethod
    def from_record(cls, r: MediaRecord) -> MediaItem:
        return cls(
            id=r.id,
            kind=r.kind,
            mimetype=r.mimetype,
            size=r.size,
            filename=r.filename,
            seconds=r.seconds,
            width=r.width,
            height=r.height,
            pages=r.pages,
            state=r.state,
            reason=r.reason,
        )

    @property
    def stored(self) -> bool:
        return self.state == "stored"

    @property
    def picture(self) -> bool:
        return self.kind in PICTURE_KINDS

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind.capitalize())

    @property
    def title(self) -> str:
        """The file's name, or its kind when it has none (photos, voice messages)."""
        return self.filename or self.kind_label

    @property
    def badge(self) -> str:
        return _badge(self.kind, self.filename, self.mimetype)

    @property
    def details(self) -> str:
        """'48 KB · 0:07', '1.2 MB · 3 pages'."""
        parts = [human_size(self.size)] if self.size else []
        if self.kind in ("audio", "voice", "video") and self.seconds:
            parts.append(duration_text(self.seconds))
        if self.pages:
            parts.append("1 page" if self.pages == 1 else f"{self.pages} pages")
        return " · ".join(parts)

    @property
    def state_text(self) -> str:
        """'' for a stored file, else why it is not here: 'not downloaded: reason', ..."""
        reason = self.reason or ""
        if self.state == "stored":
            return ""
        if self.state == "pending":
            return f"not downloaded yet: {reason}" if reason else "downloading…"
        if self.state in ("unavailable", "skipped"):
            if reason.startswith("not downloaded"):
                return reason
            return f"not downloaded: {reason}" if reason else "not downloaded"
        if self.state == "deleted":
            if reason.startswith("removed"):
                return f"file {reason}"
            return f"file removed: {reason}" if reason else "file removed"
        return f"{self.state}: {reason}" if reason else self.state

    def describe(self) -> str:
        """For screen readers and the notification: 'Photo photo.png, 12 KB'."""
        text = self.kind_label
        if self.filename:
            text += f" {self.filename}"
        if self.details:
            text += f", {self.details}"
        if self.state_text:
            text += f" ({self.state_text})"
        return text

    def save_name(self) -> str:
        """A file name to save or open it under: its own, or its kind with an extension."""
        name = _safe_name(self.filename) if self.filename else ""
        ext = mimetypes.guess_extension(self.mimetype.partition(";")[0].strip()) or ""
        if self.kind == "voice" or ext == ".oga":
            ext = ".ogg"
        if not name:
            name = f"{self.kind_label.lower().replace(' ', '-')}-{self.id.removeprefix('med_')}{ext}"
        elif not Path(name).suffix and ext:
            name += ext
        return name


_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def _safe_name(name: str) -> str:
    """A file name that every desktop system accepts (a phone may send any)."""
    cleaned = _UNSAFE.sub("_", name).strip(" .")
    return cleaned[:200]


def open_copy(item: MediaItem, path: Path, folder: Path) -> Path:
    """A copy of the stored file under its own name (stored files are named by their hash,
    which no viewer can open by type), in ``folder``/<media id>/. A copy, not a link: a
    viewer that saves in place must not change the stored file (it may still be waiting to
    be sent). Read-only, as edits to it would be lost. Runs on a worker thread."""
    target_dir = folder / item.id.replace(os.sep, "_")
    target = target_dir / item.save_name()
    if target.is_file() and target.stat().st_size == path.stat().st_size:
        return target
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target_dir.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.chmod(target, 0o600)
        target.unlink()
    partial_copy = target.with_name(f".{target.name}.part")
    shutil.copyfile(path, partial_copy)
    os.chmod(partial_copy, 0o400 if os.name == "posix" else 0o600)
    os.replace(partial_copy, target)
    return target


# ---- files to attach ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Attachment:
    """A file in the send form, checked by the core's media check (on a worker thread).

    ``path`` (a file, read again when sent) or ``data`` (a pasted image, PNG) holds the
    content. ``kind`` and ``mimetype`` are sent as checked, so that the message is what the
    preview showed; ``error`` says why it cannot be sent (then ``kind`` is None)."""

    name: str
    size: int = 0
    path: Path | None = None
    data: bytes | None = None
    filename: str | None = None
    kind: str | None = None
    mimetype: str | None = None  # declared when sending; None: the content's own
    content_type: str = ""  # what the check found
    extension: str = ""
    width: int | None = None
    height: int | None = None
    seconds: float | None = None
    pages: int | None = None
    preview: QImage | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.kind is not None

    @property
    def badge(self) -> str:
        return _badge(self.kind or "document", self.filename or self.name, self.content_type)

    @property
    def details(self) -> str:
        """'Photo · PNG · 320 × 200 · 12 KB'."""
        parts: list[str] = []
        if self.kind:
            parts.append(KIND_LABELS.get(self.kind, self.kind))
            if self.extension:
                parts.append(self.extension.upper())
        if self.width and self.height and self.kind in ("image", "sticker", "video"):
            parts.append(f"{self.width} × {self.height}")
        if self.seconds and self.kind in ("audio", "voice", "video"):
            parts.append(duration_text(self.seconds))
        if self.pages:
            parts.append("1 page" if self.pages == 1 else f"{self.pages} pages")
        if self.size:
            parts.append(human_size(self.size))
        return " · ".join(parts)

    @classmethod
    def refused(cls, name: str, error: str, **more: Any) -> Attachment:
        return cls(name=name, error=error, **more)


GENERIC_CONTENT = ("text/plain", "application/zip", "application/octet-stream")


def _check(source: Path | bytes, filename: str | None) -> tuple[MediaInfo, str | None]:
    """The core's check, and the type to declare when sending: the one the name suggests
    where the content alone is generic (a CSV is plain text by content), else none (the
    content decides: a misnamed file goes as what it is)."""
    info = resolve(source, filename=filename)
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    if guessed and guessed != info.mimetype and info.mimetype in GENERIC_CONTENT:
        with contextlib.suppress(MediaError):
            return resolve(source, mimetype=guessed, filename=filename), guessed
    return info, None


def _described(base: Attachment, info: MediaInfo, declared: str | None, preview: QImage | None) -> Attachment:
    return Attachment(
        name=base.name,
        size=info.size,
        path=base.path,
        data=base.data,
        filename=base.filename,
        kind=str(info.kind),
        mimetype=declared,
        content_type=info.mimetype,
        extension=info.extension,
        width=info.width,
        height=info.height,
        seconds=info.duration,
        pages=info.pages,
        preview=preview,
    )


def load_file(path: Path, limit: int, side: int) -> Attachment:
    """Check a file to attach (worker thread): never raises; a file that cannot be sent
    comes back with ``error`` set."""
    path = Path(path)
    name = path.name or str(path)
    try:
        st = path.stat()
    except OSError as exc:
        return Attachment.refused(name, os_problem(exc), path=path)
    if stat.S_ISDIR(st.st_mode):
        return Attachment.refused(name, "A folder cannot be sent: choose a file", path=path)
    if not stat.S_ISREG(st.st_mode):
        return Attachment.refused(name, "This is not a file that can be sent", path=path)
    base = Attachment(name=name, size=st.st_size, path=path, filename=name)
    if st.st_size == 0:
        return Attachment.refused(name, "The file is empty", path=path, size=0, filename=name)
    if st.st_size > limit:
        return Attachment.refused(name, too_large_text(limit), path=path, size=st.st_size, filename=name)
    try:
        info, declared = _check(path, name)
    except MediaError as exc:
        return Attachment.refused(name, media_problem(exc), path=path, size=st.st_size, filename=name)
    except OSError as exc:
        return Attachment.refused(name, os_problem(exc), path=path, size=st.st_size, filename=name)
    preview = None
    if str(info.kind) in PICTURE_KINDS:
        preview = scaled_image(path, side)
    if preview is None and info.thumbnail:
        preview = image_from_bytes(info.thumbnail)
    return _described(base, info, declared, preview)


def png_bytes(image: QImage) -> bytes:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, QByteArray(b"png"))
    if not writer.write(image):
        raise ValueError(f"the image could not be encoded as PNG ({writer.errorString()})")
    return bytes(buffer.data().data())


def load_image(image: QImage, limit: int, side: int) -> Attachment:
    """A pasted image as a PNG attachment (worker thread); never raises."""
    if image.isNull():
        return Attachment.refused(PASTED_NAME, "The clipboard holds no image that can be read")
    try:
        data = png_bytes(image)
    except ValueError as exc:
        return Attachment.refused(PASTED_NAME, f"The pasted image cannot be sent: {exc}")
    if len(data) > limit:
        return Attachment.refused(PASTED_NAME, too_large_text(limit), size=len(data))
    try:
        info = resolve(data)
    except MediaError as exc:
        return Attachment.refused(PASTED_NAME, media_problem(exc), size=len(data))
    preview = image.scaled(
        QSize(side, side).boundedTo(image.size()),
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    return _described(Attachment(name=PASTED_NAME, data=data), info, None, preview)


def image_from_bytes(data: bytes) -> QImage | None:
    image = QImage.fromData(QByteArray(data))
    return None if image.isNull() else image


def scaled_image(source: Path | bytes, side: int) -> QImage | None:
    """The picture scaled to fit ``side`` x ``side`` pixels, decoded at that size where the
    format allows (JPEG); None if it cannot be decoded. Worker threads."""
    buffer: QBuffer | None = None
    if isinstance(source, bytes | bytearray):
        buffer = QBuffer()
        buffer.setData(QByteArray(bytes(source)))
        buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        reader = QImageReader(buffer)
    else:
        reader = QImageReader(str(source))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and (size.width() > side or size.height() > side):
        reader.setScaledSize(size.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        return None
    if image.width() > side or image.height() > side:  # a format that ignores the scaled size
        image = image.scaled(
            side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    return image


# ---- pictures in the log ------------------------------------------------------------------------------

LOADING = object()  # Thumbnails.peek: not loaded (yet)
THUMB_SIDE = 240  # logical pixels: the largest side of a picture in the log
CACHE_BYTES = 48 * MIB
CONCURRENT_LOADS = 2


class Thumbnails(QObject):
    """The log's pictures: decoded off the GUI thread (a scaled decode of the stored file,
    else the small thumbnail that came with the message), cached in the GUI thread.

    :meth:`get` returns a pixmap, None (nothing to show), or :data:`LOADING` after asking
    for it; :attr:`ready` follows with the media id and the media's record as it is now
    in the store (its state may have changed since the log was filled)."""

    ready = Signal(str, object)  # media id, MediaItem | None

    def __init__(self, session: Session, jobs: Background, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.jobs = jobs
        self.scale = 1.0  # device pixels per logical pixel
        self._cache: OrderedDict[str, QPixmap | None] = OrderedDict()
        self._bytes = 0
        self._queue: deque[str] = deque()
        self._running: set[str] = set()
        self._closed = False

    def peek(self, media_id: str) -> Any:
        if media_id in self._cache:
            self._cache.move_to_end(media_id)
            return self._cache[media_id]
        return LOADING

    def get(self, media_id: str) -> Any:
        found = self.peek(media_id)
        if found is LOADING:
            self.request(media_id)
        return found

    def request(self, media_id: str) -> None:
        if self._closed or media_id in self._running or media_id in self._queue:
            return
        self._queue.append(media_id)
        self._pump()

    def forget(self, media_id: str) -> None:
        """Load it again when next asked (its state changed)."""
        pixmap = self._cache.pop(media_id, None)
        if pixmap is not None:
            self._bytes -= self._cost(pixmap)

    @property
    def loading(self) -> int:
        return len(self._running) + len(self._queue)

    def close(self) -> None:
        self._closed = True
        self._queue.clear()

    @staticmethod
    def _cost(pixmap: QPixmap) -> int:
        return pixmap.width() * pixmap.height() * 4

    def _pump(self) -> None:
        while self._queue and len(self._running) < CONCURRENT_LOADS and not self._closed:
            media_id = self._queue.popleft()
            self._running.add(media_id)
            side = max(1, round(THUMB_SIDE * self.scale))
            self.jobs.run(
                partial(self._load, media_id, side),
                partial(self._loaded, media_id),
                partial(self._failed, media_id),
                name="thumbnail",
            )

    def _load(self, media_id: str, side: int) -> tuple[MediaItem | None, QImage | None]:
        """Worker thread: the record as stored now, and its picture."""
        record = self.session.media(media_id)
        if record is None:
            return None, None
        image = None
        if record.kind in PICTURE_KINDS:
            path = self.session.media_path(record)
            if path is not None:
                image = scaled_image(path, side)
        if image is None and record.has_thumbnail:
            blob = self.session.media_thumbnail(media_id)
            if blob:
                image = image_from_bytes(blob)
        return MediaItem.from_record(record), image

    def _loaded(self, media_id: str, result: tuple[MediaItem | None, QImage | None]) -> None:
        self._running.discard(media_id)
        item, image = result
        pixmap = None
        if image is not None:
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(self.scale)
        self._store(media_id, pixmap)
        self.ready.emit(media_id, item)
        self._pump()

    def _failed(self, media_id: str, exc: BaseException) -> None:
        self._running.discard(media_id)
        log.warning("the picture of %s could not be loaded: %s", media_id, exc)
        self._store(media_id, None)
        self.ready.emit(media_id, None)
        self._pump()

    def _store(self, media_id: str, pixmap: QPixmap | None) -> None:
        self.forget(media_id)
        self._cache[media_id] = pixmap
        if pixmap is not None:
            self._bytes += self._cost(pixmap)
        while self._bytes > CACHE_BYTES and len(self._cache) > 1:
            _old, dropped = self._cache.popitem(last=False)
            if dropped is not None:
                self._bytes -= self._cost(dropped)
