"""One chat's conversation: what was sent (with its status) and received, newest last.

:class:`MessageLog` is a list model of :class:`Entry` rows, filled a page at a time from the
store (older pages are put in front as one scrolls up); :class:`BubbleDelegate` paints
them as chat bubbles (sent on the right, received on the left, the sender's name on a
group's messages, a date chip where the day changes). Every row also has a plain-text form
(display and accessibility roles: who, what, when), so screen readers and copy get the
same facts the bubble shows, and no status is shown by colour alone.

Media messages show their picture (photos, stickers) or a card with the file's name, size
and duration. The model holds no pictures: the delegate asks :class:`~.media.Thumbnails`,
which decodes them on worker threads, and paints a placeholder until they are there.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QGuiApplication,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPixmap,
    QTextLayout,
    QTextOption,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from ..core.events import IncomingMessage, MessageFailed, MessageQueued, MessageReceipt, MessageSent
from ..core.recipients import USER_SERVER, format_phone
from ..core.session import MessageRecord
from . import theme as themes
from .media import LOADING, MediaItem, Thumbnails

ModelIndex = QModelIndex | QPersistentModelIndex
log = logging.getLogger("wadesk.ui")

STATUS_LABELS = {
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "played": "played",
    "failed": "failed",
}
STATUS_MARKS = {
    "queued": "◷",
    "sending": "◷",
    "sent": "✓",
    "delivered": "✓✓",
    "read": "✓✓",
    "played": "✓✓",
    "failed": "⚠",
}


def local_time(ts: float) -> dt.datetime:
    """A timestamp as local time; a value that is not a plausible time becomes now."""
    try:
        return dt.datetime.fromtimestamp(ts)
    except (OverflowError, OSError, ValueError):
        return dt.datetime.now()


def jid_label(jid: str) -> str:
    """'15550002222@s.whatsapp.net' -> '+1 555-000-2222'; groups and others unchanged."""
    user, _, server = jid.partition("@")
    if server == USER_SERVER and user.isdigit():
        return format_phone(user)
    if server == "g.us":
        return f"group {user}"
    return jid


@dataclass(frozen=True)
class Entry:
    id: str
    outgoing: bool
    chat: str
    text: str
    status: str  # queued | sending | sent | delivered | read | played | failed | received
    at: float
    sender: str = ""
    push_name: str = ""
    error: str = ""
    is_group: bool = False
    media: MediaItem | None = None
    seq: int = 0  # the store's order (0: from an event, newer than every stored one shown)

    @classmethod
    def from_record(cls, r: MessageRecord) -> Entry:
        outgoing = r.direction == "out"
        at = r.created_at if outgoing else (r.wa_timestamp or r.created_at)
        return cls(
            id=r.id,
            outgoing=outgoing,
            chat=r.chat,
            text=r.text,
            status=r.status,
            at=at,
            sender=r.sender or "",
            push_name=r.push_name or "",
            error=r.error or "",
            is_group=bool(r.is_group),
            media=MediaItem.from_record(r.media) if r.media is not None else None,
            seq=r.seq,
        )

    # -- text forms --
    @property
    def peer(self) -> str:
        """Who the message went to (sent) or came from (received), for people."""
        if self.outgoing:
            return jid_label(self.chat)
        who = jid_label(self.sender) if self.sender else jid_label(self.chat)
        if self.push_name:
            who = f"{self.push_name} ({who})"
        if self.is_group:
            who += f" in {jid_label(self.chat)}"
        return who

    @property
    def heading(self) -> str:
        return f"To {self.peer}" if self.outgoing else self.peer

    @property
    def sender_label(self) -> str:
        """Who wrote a received message: 'Ben (+1 555-000-2222)', or the number."""
        who = jid_label(self.sender) if self.sender else jid_label(self.chat)
        return f"{self.push_name} ({who})" if self.push_name else who

    @property
    def bubble_heading(self) -> str:
        """The line above the text in a conversation: the sender, in a group only."""
        return self.sender_label if self.is_group and not self.outgoing else ""

    @property
    def status_text(self) -> str:
        """'sent', 'failed: reason', ...; empty for received messages."""
        if not self.outgoing:
            return ""
        label = STATUS_LABELS.get(self.status, self.status)
        if self.status == "failed" and self.error:
            return f"{label}: {self.error}"
        if self.status == "queued" and self.error:  # waiting for a retry
            return f"queued, will retry ({self.error})"
        return label

    @property
    def time_text(self) -> str:
        return local_time(self.at).strftime("%H:%M")

    @property
    def content(self) -> str:
        """The text, after a description of the file for a media message."""
        if self.media is None:
            return self.text
        return f"{self.media.describe()}. {self.text}" if self.text else self.media.describe()

    @property
    def summary(self) -> str:
        """One line for a notification: the text, or what the file is."""
        if self.media is None:
            return self.text
        if not self.text:
            return self.media.describe()
        label = self.media.kind_label if self.media.picture else self.media.title
        return f"{label}: {self.text}"

    def describe(self, chat_name: str | None = None) -> str:
        """Who, when and what, for screen readers (``chat_name``: the group's name)."""
        when = local_time(self.at).strftime("%Y-%m-%d %H:%M")
        if self.outgoing:
            to = chat_name or self.peer
            return f"Sent to {to} at {when}, status {self.status_text}: {self.content}"
        who = self.peer
        if self.is_group and chat_name:
            who = f"{self.sender_label} in {chat_name}"
        return f"Received from {who} at {when}: {self.content}"

    @property
    def reply_to(self) -> str:
        """The recipient to answer this message (the group for group messages)."""
        if self.outgoing or self.is_group:
            return self.chat
        return self.sender or self.chat


class MessageLog(QAbstractListModel):
    """The open chat's messages, oldest first: the newest page from the store, older pages
    put in front (:meth:`prepend`), new messages appended from events."""

    EntryRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Entry] = []
        self._index: dict[str, int] = {}
        self.chat: str | None = None  # the chat shown
        self.chat_name: str | None = None
        self.has_more = False  # the store holds older messages of this chat
        self.loading = False  # the first page is being read
        self.fetching = False  # an older page is being read

    # -- Qt model --
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        entry = self._rows[index.row()]
        if role == self.EntryRole:
            return entry
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return entry.describe(self.chat_name if entry.is_group else None)
        if role == Qt.ItemDataRole.ToolTipRole and entry.status == "failed":
            return entry.status_text
        return None

    # -- content --
    def entries(self) -> list[Entry]:
        return list(self._rows)

    def entry(self, message_id: str) -> Entry | None:
        row = self._index.get(message_id)
        return None if row is None else self._rows[row]

    def show_chat(self, chat: str | None, name: str | None = None) -> None:
        """Empty, for ``chat`` (its first page is on its way)."""
        self.beginResetModel()
        self._rows, self._index = [], {}
        self.chat, self.chat_name = chat, name
        self.has_more = False
        self.loading = chat is not None
        self.fetching = False
        self.endResetModel()

    def load(self, records: list[MessageRecord], has_more: bool = False) -> None:
        """Replace the content with these records (any order; shown oldest first)."""
        self.beginResetModel()
        rows = [Entry.from_record(r) for r in sorted(records, key=lambda r: r.seq)]
        self._rows = rows
        self._index = {e.id: i for i, e in enumerate(rows)}
        self.has_more = has_more
        self.loading = False
        self.endResetModel()

    def prepend(self, records: list[MessageRecord], has_more: bool) -> int:
        """An older page: the messages not shown yet go in front. Returns how many."""
        self.fetching = False
        self.has_more = has_more
        oldest = self.oldest_seq
        rows = [
            Entry.from_record(r)
            for r in sorted(records, key=lambda r: r.seq)
            if r.id not in self._index and (oldest is None or r.seq < oldest)
        ]
        if not rows:
            return 0
        self.beginInsertRows(QModelIndex(), 0, len(rows) - 1)
        self._rows[:0] = rows
        self._index = {e.id: i for i, e in enumerate(self._rows)}
        self.endInsertRows()
        return len(rows)

    @property
    def oldest_seq(self) -> int | None:
        """The seq of the oldest message shown (the cursor for the next older page)."""
        seqs = [e.seq for e in self._rows[:1] if e.seq]
        return seqs[0] if seqs else None

    def insert_record(self, record: MessageRecord) -> bool:
        """A stored message this log had not seen (sent through the local API while the
        page was read): put in by its seq if it is newer than the oldest shown."""
        if record.id in self._index:
            self.upsert(Entry.from_record(record))
            return True
        oldest = self.oldest_seq
        if oldest is not None and record.seq < oldest and self.has_more:
            return False  # it belongs to a page not read yet
        entry = Entry.from_record(record)
        at = next((i for i, e in enumerate(self._rows) if e.seq and e.seq > record.seq), len(self._rows))
        self.beginInsertRows(QModelIndex(), at, at)
        self._rows.insert(at, entry)
        self._index = {e.id: i for i, e in enumerate(self._rows)}
        self.endInsertRows()
        return True

    def upsert(self, entry: Entry) -> None:
        row = self._index.get(entry.id)
        if row is None:
            at = len(self._rows)
            self.beginInsertRows(QModelIndex(), at, at)
            self._rows.append(entry)
            self._index[entry.id] = at
            self.endInsertRows()
            return
        self._rows[row] = entry
        idx = self.index(row)
        self.dataChanged.emit(idx, idx)

    def update(self, message_id: str, **changes: Any) -> bool:
        entry = self.entry(message_id)
        if entry is None:
            return False
        self.upsert(replace(entry, **changes))
        return True

    def rows_with_media(self, media_id: str) -> list[int]:
        return [i for i, e in enumerate(self._rows) if e.media is not None and e.media.id == media_id]

    def update_media(self, item: MediaItem) -> bool:
        """Put a file's newer record in the messages that carry it; True if one changed."""
        changed = False
        for row in self.rows_with_media(item.id):
            entry = self._rows[row]
            if entry.media != item:
                self._rows[row] = replace(entry, media=item)
                changed = True
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)
        return changed

    # -- core events --
    def apply(self, event: Any) -> bool:
        """Fold a message event in; False if it is about a message this log does not show
        (the window reads it, off the GUI thread, and passes it to :meth:`insert_record`)."""
        if isinstance(event, IncomingMessage):
            self.upsert(
                Entry(
                    id=event.id,
                    outgoing=False,
                    chat=event.chat,
                    text=event.text,
                    status="received",
                    at=event.timestamp or time.time(),
                    sender=event.sender,
                    push_name=event.push_name,
                    is_group=event.is_group,
                    media=MediaItem.from_dict(event.media) if event.media else None,
                )
            )
            return True
        if isinstance(event, MessageQueued):
            if self.entry(event.id) is None:
                self.upsert(
                    Entry(
                        id=event.id,
                        outgoing=True,
                        chat=event.to,
                        text=event.text,
                        status="queued",
                        at=time.time(),
                        is_group=event.to.endswith("@g.us"),
                        media=MediaItem.from_dict(event.media) if event.media else None,
                    )
                )
            return True
        if self.entry(event.id) is None:
            return False
        changes: dict[str, Any] = {}
        if isinstance(event, MessageSent | MessageFailed) and event.media:
            changes["media"] = MediaItem.from_dict(event.media)
        if isinstance(event, MessageSent):
            self.update(event.id, status="sent", error="", **changes)
        elif isinstance(event, MessageFailed):
            self.update(event.id, status="failed", error=event.reason, **changes)
        elif isinstance(event, MessageReceipt):
            self.update(event.id, status=event.status)
        return True


# ---- painting ---------------------------------------------------------------------------------

BUBBLE_MAX = 0.72  # of the view width
PAD_X, PAD_Y = 12.0, 8.0
MARGIN_X, MARGIN_Y = 18.0, 5.0
RADIUS = 10.0
DAY_CHIP_H = 34.0
PICTURE_SIDE = 240.0  # the largest side of a photo in the log (logical pixels)
STICKER_SIDE = 160.0
PICTURE_MIN = 64.0  # tiny pictures are enlarged to this
PICTURE_UNKNOWN = (200.0, 150.0)  # the placeholder while a picture of unknown size loads
PICTURE_RADIUS = 6.0
CARD_ICON = 40.0
CARD_PAD = 10.0
CARD_MIN_W, CARD_MAX_W = 220.0, 360.0


class BubbleDelegate(QStyledItemDelegate):
    def __init__(self, view: LogView) -> None:
        super().__init__(view)
        self._view = view
        self.theme = themes.LIGHT
        self.thumbnails: Thumbnails | None = None
        # the layout of each text message, for its entry at a width and font (a message is
        # measured once for the view's layout, not again for every paint)
        self._measured: dict[str, tuple[Entry, tuple[int, str], dict[str, Any]]] = {}

    def forget(self) -> None:
        """Another chat is shown: the measured messages are dropped."""
        self._measured.clear()

    # -- fonts --
    def _fonts(self) -> tuple[QFont, QFont, QFont]:
        base = self._view.font()
        head = themes.scaled_font(base, 0.9, QFont.Weight.DemiBold)
        small = themes.scaled_font(base, 0.82)
        return base, head, small

    def _day_label(self, index: ModelIndex) -> str | None:
        entry: Entry = index.data(MessageLog.EntryRole)
        day = local_time(entry.at).date()
        if index.row() > 0:
            prev: Entry = index.model().index(index.row() - 1, 0).data(MessageLog.EntryRole)
            if local_time(prev.at).date() == day:
                return None
        today = dt.date.today()
        if day == today:
            return "Today"
        if day == today - dt.timedelta(days=1):
            return "Yesterday"
        return day.strftime("%A, %d %B %Y") if day.year != today.year else day.strftime("%A, %d %B")

    def _bubble_width(self) -> float:
        return max(160.0, (self._view.viewport().width() - 2 * MARGIN_X) * BUBBLE_MAX)

    @staticmethod
    def _layout(text: str, font: QFont, width: float) -> tuple[QTextLayout, float, float]:
        layout = QTextLayout(text.replace("\n", "\u2028"), font)
        opt = QTextOption()
        opt.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(opt)
        layout.beginLayout()
        height = 0.0
        used = 0.0
        leading = QFontMetricsF(font).leading()
        while True:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            height += leading
            line.setPosition(QPointF(0, height))
            height += line.height()
            used = max(used, line.naturalTextWidth())
        layout.endLayout()
        return layout, used, height

    # -- media --
    def _picture(self, item: MediaItem) -> Any:
        """The cached picture of a photo or sticker (LOADING if not there yet)."""
        if self.thumbnails is None:
            return None
        return self.thumbnails.peek(item.id)

    def _measure_media(self, item: MediaItem, inner: float) -> dict[str, Any]:
        _base, head, small = self._fonts()
        found = self._picture(item) if item.picture else None
        if item.picture and found is not None:
            if item.width and item.height:
                w, h = float(item.width), float(item.height)
            elif isinstance(found, QPixmap):
                size = found.deviceIndependentSize()
                w, h = max(1.0, size.width()), max(1.0, size.height())
            else:
                w, h = PICTURE_UNKNOWN
            box = min(STICKER_SIDE if item.kind == "sticker" else PICTURE_SIDE, inner)
            scale = min(box / w, box / h)
            if scale > 1:
                scale = min(scale, max(1.0, PICTURE_MIN / max(w, h)))
            pw, ph = max(1.0, round(w * scale)), max(1.0, round(h * scale))
            state, state_w, state_h = self._layout(item.state_text, small, inner)
            width = max(pw, state_w)
            height = ph + (4 + state_h if item.state_text else 0)
            return {"type": "picture", "w": width, "h": height, "pw": pw, "ph": ph, "state": state}
        text_max = min(inner, CARD_MAX_W) - CARD_ICON - 3 * CARD_PAD
        title_fm = QFontMetricsF(head)
        title = title_fm.elidedText(item.title, Qt.TextElideMode.ElideMiddle, text_max)
        details = item.details or item.kind_label
        detail, detail_w, detail_h = self._layout(details, small, text_max)
        state, state_w, state_h = self._layout(item.state_text, small, text_max)
        text_w = max(title_fm.horizontalAdvance(title), detail_w, state_w if item.state_text else 0.0)
        width = min(inner, max(CARD_MIN_W, CARD_ICON + 3 * CARD_PAD + text_w))
        text_h = title_fm.height() + 2 + detail_h + (2 + state_h if item.state_text else 0)
        height = max(CARD_ICON, text_h) + 2 * CARD_PAD
        return {
            "type": "card",
            "w": width,
            "h": height,
            "title": title,
            "title_h": title_fm.height(),
            "detail": detail,
            "detail_h": detail_h,
            "state": state,
            "text_h": text_h,
        }

    def _measure(self, index: ModelIndex) -> dict[str, Any]:
        entry: Entry = index.data(MessageLog.EntryRole)
        if entry.media is not None:  # its picture may arrive or go: measured each time
            return self._measure_entry(index, entry)
        key = (self._view.viewport().width(), self._view.font().key())
        known = self._measured.get(entry.id)
        if known is not None and known[0] is entry and known[1] == key:
            m = known[2]
        else:
            m = self._measure_entry(index, entry)
            self._measured[entry.id] = (entry, key, m)
        day = self._day_label(index)  # depends on the message before, which may be new
        return m if m["day"] == day else {**m, "day": day}

    def _measure_entry(self, index: ModelIndex, entry: Entry) -> dict[str, Any]:
        base, head, small = self._fonts()
        inner = self._bubble_width() - 2 * PAD_X
        body, body_w, body_h = self._layout(entry.text, base, inner)
        if entry.media is not None and not entry.text:
            body_w = body_h = 0.0
        media = self._measure_media(entry.media, inner) if entry.media is not None else None
        heading_fm = QFontMetricsF(head)
        heading = heading_fm.elidedText(entry.bubble_heading, Qt.TextElideMode.ElideRight, inner)
        meta = entry.time_text
        if entry.outgoing:
            meta = f"{entry.time_text}  {STATUS_MARKS.get(entry.status, '')} {entry.status_text}".rstrip()
        meta_layout, meta_w, meta_h = self._layout(meta, small, inner)
        width = max(body_w, heading_fm.horizontalAdvance(heading), meta_w, media["w"] if media else 0.0)
        width = min(max(width + 2 * PAD_X, 120.0), self._bubble_width())
        head_h = heading_fm.height() + 3 if heading else 0.0  # the sender's name, in groups
        # a text message: its text; a media message: the picture or card, then any caption
        content_h = body_h + 4 if media is None else media["h"] + 6 + (body_h + 4 if body_h else 0.0)
        height = PAD_Y + head_h + content_h + meta_h + PAD_Y
        day = self._day_label(index)
        return {
            "entry": entry,
            "body": body,
            "heading": heading,
            "meta": meta_layout,
            "media": media,
            "width": width,
            "height": height,
            "head_h": head_h,
            "body_h": body_h,
            "day": day,
            "fonts": (base, head, small),
        }

    # Qt calls these two from C++: an exception escaping them would take the process down,
    # so a row that cannot be measured or painted is logged and drawn as an empty line.
    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        try:
            return self._size_hint(index)
        except Exception:
            log.exception("measuring log row %d failed", index.row())
            return QSize(self._view.viewport().width(), 24)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        painter.save()
        try:
            self._paint(painter, option, index)
        except Exception:
            log.exception("painting log row %d failed", index.row())
        finally:
            painter.restore()

    def _size_hint(self, index: ModelIndex) -> QSize:
        m = self._measure(index)
        extra = DAY_CHIP_H if m["day"] else 0.0
        return QSize(self._view.viewport().width(), int(m["height"] + 2 * MARGIN_Y + extra + 0.999))

    def _frames(self, rect: Any, m: dict[str, Any]) -> tuple[QRectF, QRectF | None]:
        """The bubble, and the picture or card inside it, for a row drawn in ``rect``."""
        top = float(rect.top()) + MARGIN_Y + (DAY_CHIP_H if m["day"] else 0.0)
        width, height = m["width"], m["height"]
        left = rect.right() - MARGIN_X - width if m["entry"].outgoing else rect.left() + MARGIN_X
        bubble = QRectF(left, top, width, height)
        media = m["media"]
        if media is None:
            return bubble, None
        y = bubble.top() + PAD_Y + m["head_h"]
        if media["type"] == "picture":
            return bubble, QRectF(bubble.left() + PAD_X, y, media["pw"], media["ph"])
        return bubble, QRectF(bubble.left() + PAD_X, y, media["w"], media["h"])

    def media_rect(self, index: ModelIndex) -> QRectF | None:
        """Where the row's picture or file card is, in viewport coordinates (None: no media)."""
        if not index.isValid():
            return None
        m = self._measure(index)
        return self._frames(self._view.visualRect(index), m)[1]

    def _paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        m = self._measure(index)
        t = self.theme
        entry: Entry = m["entry"]
        _base, head, small = m["fonts"]
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        top = float(option.rect.top()) + MARGIN_Y
        if m["day"]:
            painter.setFont(small)
            fm = QFontMetricsF(small)
            w = fm.horizontalAdvance(m["day"]) + 24
            chip = QRectF(option.rect.center().x() - w / 2, top + 4, w, fm.height() + 10)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(t.surface))
            painter.drawRoundedRect(chip, chip.height() / 2, chip.height() / 2)
            painter.setPen(QColor(t.muted))
            painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, m["day"])
        bubble, media_frame = self._frames(option.rect, m)
        width = m["width"]
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        fill = QColor(t.bubble_out if entry.outgoing else t.bubble_in)
        painter.setBrush(fill)
        border = QColor(t.accent) if selected else QColor(t.bubble_border)
        painter.setPen(border)
        painter.drawRoundedRect(bubble.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)
        if option.state & QStyle.StateFlag.State_HasFocus and selected:
            pen = painter.pen()
            pen.setWidthF(2.0)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(bubble.adjusted(1, 1, -1, -1), RADIUS, RADIUS)
        x = bubble.left() + PAD_X
        y = bubble.top() + PAD_Y
        if m["heading"]:
            painter.setFont(head)
            painter.setPen(QColor(t.link if not entry.outgoing else t.muted))
            painter.drawText(
                QRectF(x, y, width - 2 * PAD_X, m["head_h"] - 3),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                m["heading"],
            )
        y += m["head_h"]
        if m["media"] is not None and media_frame is not None and entry.media is not None:
            self._paint_media(painter, entry.media, m["media"], media_frame, small, head)
            y += m["media"]["h"] + 6
        if m["body_h"]:
            painter.setPen(QColor(t.text))
            m["body"].draw(painter, QPointF(x, y))
            y += m["body_h"] + 4
        elif m["media"] is None:
            y += 4
        meta_colour = t.muted
        if entry.status == "failed":
            meta_colour = t.error
        elif entry.status in ("read", "played"):
            meta_colour = t.tones[themes.Tone.INFO][1]
        painter.setPen(QColor(meta_colour))
        meta: QTextLayout = m["meta"]
        if meta.lineCount() == 1:  # one line: right-aligned, like a chat app
            line_w = meta.lineAt(0).naturalTextWidth()
            meta.draw(painter, QPointF(bubble.right() - PAD_X - line_w, y))
        else:
            meta.draw(painter, QPointF(x, y))

    def _state_colour(self, item: MediaItem) -> QColor:
        return QColor(self.theme.error if item.state == "unavailable" else self.theme.muted)

    def _paint_media(
        self,
        painter: QPainter,
        item: MediaItem,
        media: dict[str, Any],
        frame: QRectF,
        small: QFont,
        head: QFont,
    ) -> None:
        t = self.theme
        if media["type"] == "picture":
            found = self.thumbnails.get(item.id) if self.thumbnails is not None else None
            path = QPainterPath()
            path.addRoundedRect(frame, PICTURE_RADIUS, PICTURE_RADIUS)
            painter.save()
            painter.setClipPath(path)
            if isinstance(found, QPixmap):
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                painter.drawPixmap(frame, found, QRectF(found.rect()))
            else:
                painter.fillRect(frame, QColor(t.surface_alt))
                painter.setPen(QColor(t.muted))
                painter.setFont(small)
                label = "Loading…" if found is LOADING else item.kind_label
                painter.drawText(frame, Qt.AlignmentFlag.AlignCenter, label)
            painter.restore()
            if item.state_text:
                painter.setPen(self._state_colour(item))
                media["state"].draw(painter, QPointF(frame.left(), frame.bottom() + 4))
            return
        # a file card: an icon with the type, the name, size and duration, and the state
        card = QRectF(frame.left(), frame.top(), media["w"], media["h"])
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255, 22) if t.dark else QColor(0, 0, 0, 14))
        painter.drawRoundedRect(card, 8, 8)
        icon = QRectF(card.left() + CARD_PAD, card.top() + CARD_PAD, CARD_ICON, CARD_ICON)
        found = self.thumbnails.get(item.id) if self.thumbnails is not None and item.kind == "video" else None
        painter.setBrush(QColor(t.accent))
        painter.drawRoundedRect(icon, 6, 6)
        if isinstance(found, QPixmap):
            clip = QPainterPath()
            clip.addRoundedRect(icon, 6, 6)
            painter.save()
            painter.setClipPath(clip)
            painter.drawPixmap(icon, found, QRectF(found.rect()))
            painter.restore()
        badge = themes.scaled_font(small, 0.95 if len(item.badge) > 1 else 1.5, QFont.Weight.Bold)
        painter.setFont(badge)
        painter.setPen(QColor(t.accent_text))
        painter.drawText(icon, Qt.AlignmentFlag.AlignCenter, item.badge)
        tx = icon.right() + CARD_PAD
        ty = card.top() + (card.height() - media["text_h"]) / 2
        tw = card.right() - CARD_PAD - tx
        painter.setFont(head)
        painter.setPen(QColor(t.text))
        painter.drawText(
            QRectF(tx, ty, tw, media["title_h"]),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            media["title"],
        )
        ty += media["title_h"] + 2
        painter.setPen(QColor(t.muted))
        media["detail"].draw(painter, QPointF(tx, ty))
        ty += media["detail_h"] + 2
        if item.state_text:
            painter.setPen(self._state_colour(item))
            media["state"].draw(painter, QPointF(tx, ty))


class LogView(QListView):
    """The conversation: keyboard navigable, copyable, with an empty-state hint.

    On a message with a file, a double click or Space opens it, Ctrl+S saves it elsewhere
    (the window does both); Enter answers (the message field of this chat takes the focus).
    Scrolling near the top asks for the previous page (:attr:`olderWanted`); when it is put
    in front, the messages on screen stay where they are."""

    replyRequested = Signal(str)  # a chat (JID) to write to
    openRequested = Signal(object)  # an Entry with media
    saveRequested = Signal(object)  # an Entry with media
    olderWanted = Signal()  # near the top: the page before the oldest message shown
    menuRequested = Signal(object, object)  # QMenu, Entry: before a message's menu is shown

    NEAR_TOP = 240  # pixels from the top at which the previous page is asked for

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("log")
        self.setAccessibleName("Conversation")
        self.setAccessibleDescription(
            "Messages sent and received, newest last. Enter answers; on a file, Space opens it "
            "and Ctrl+S saves it; the Menu key shows what can be done with a message."
        )
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(False)
        self.setWordWrap(True)
        self.setMouseTracking(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.DefaultContextMenu)
        self.bubbles = BubbleDelegate(self)
        self.setItemDelegate(self.bubbles)
        self.verticalScrollBar().setSingleStep(24)
        self._stick_to_bottom = True
        self._settling = False  # a new chat was put in: scrolling to its end, not the reader
        self._anchor: tuple[QPersistentModelIndex, int] | None = None
        self.verticalScrollBar().valueChanged.connect(self._scrolled)
        self.menu: QMenu | None = None  # the last context menu (tests look at it)
        self.placeholder = "No messages yet.\nMessages you send and receive appear here."

    @property
    def settling(self) -> bool:
        """A chat was just put in: the view is about to show its newest messages."""
        return self._settling

    def setModel(self, model: Any) -> None:
        super().setModel(model)
        model.rowsAboutToBeInserted.connect(self._before_insert)
        model.rowsInserted.connect(self._inserted)
        model.modelReset.connect(self._reset)

    # -- where the reader is --
    def _scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        if self._settling:
            return
        self._stick_to_bottom = value >= bar.maximum() - 4
        if value <= self.NEAR_TOP and bar.maximum() > 0:
            self.olderWanted.emit()

    def _reset(self) -> None:
        self.bubbles.forget()
        self._anchor = None
        self._stick_to_bottom = True
        self._settling = True
        QTimer.singleShot(0, self, self._settle)

    def _settle(self) -> None:
        """After a chat's page was laid out: show its newest messages; if they do not fill
        the view, the previous page is wanted too."""
        self.scrollToBottom()
        self._settling = False
        self._stick_to_bottom = True
        bar = self.verticalScrollBar()
        model = self.model()
        if model is not None and model.rowCount() and bar.maximum() <= self.NEAR_TOP:
            self.olderWanted.emit()

    def _before_insert(self, parent: QModelIndex, first: int, _last: int) -> None:
        model = self.model()
        if first == 0 and model is not None and model.rowCount() > 0 and not self._settling:
            top = model.index(0, 0)
            self._anchor = (QPersistentModelIndex(top), self.visualRect(top).top())

    def _inserted(self, _parent: QModelIndex, first: int, _last: int) -> None:
        anchor, self._anchor = self._anchor, None
        if first == 0 and anchor is not None and anchor[0].isValid():
            # an older page in front: keep the messages on screen where they were
            self.doItemsLayout()
            moved = self.visualRect(self.model().index(anchor[0].row(), 0)).top() - anchor[1]
            bar = self.verticalScrollBar()
            self._settling = True
            bar.setValue(bar.value() + moved)
            self._settling = False
            self._stick_to_bottom = bar.value() >= bar.maximum() - 4
            return
        self._follow()

    def _follow(self, *args: Any, force: bool = False) -> None:
        # after the view has laid out the new rows (never from inside the model's signal)
        if force or self._stick_to_bottom:
            QTimer.singleShot(0, self, self.scrollToBottom)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.scheduleDelayedItemsLayout()
        if self._stick_to_bottom:
            self.scrollToBottom()

    def relayout(self) -> None:
        """Measure the rows again (a picture arrived, or a file's state changed)."""
        self.scheduleDelayedItemsLayout()
        if self._stick_to_bottom:
            QTimer.singleShot(0, self, self.scrollToBottom)

    def wheelEvent(self, event: Any) -> None:
        bar = self.verticalScrollBar()
        at_top = bar.value() <= bar.minimum()
        super().wheelEvent(event)
        if at_top and event.angleDelta().y() > 0:
            self.olderWanted.emit()  # already at the top: the scroll bar does not move

    # -- the current message --
    def current_entry(self) -> Entry | None:
        index = self.currentIndex()
        return index.data(MessageLog.EntryRole) if index.isValid() else None

    def copy_current(self) -> None:
        entry = self.current_entry()
        if entry is not None:
            QGuiApplication.clipboard().setText(entry.text)

    def open_current(self) -> bool:
        entry = self.current_entry()
        if entry is None or entry.media is None:
            return False
        self.openRequested.emit(entry)
        return True

    def save_current(self) -> bool:
        entry = self.current_entry()
        if entry is None or entry.media is None:
            return False
        self.saveRequested.emit(entry)
        return True

    def keyPressEvent(self, event: Any) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_current()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            entry = self.current_entry()
            if entry is not None:
                self.replyRequested.emit(entry.chat)
                return
        if event.key() == Qt.Key.Key_Space and not event.modifiers() and self.open_current():
            return
        if event.matches(QKeySequence.StandardKey.Save) and self.save_current():
            return
        bar = self.verticalScrollBar()
        if (
            event.key() in (Qt.Key.Key_Home, Qt.Key.Key_PageUp, Qt.Key.Key_Up)
            and bar.value() <= bar.minimum()
        ):
            self.olderWanted.emit()
        super().keyPressEvent(event)

    def contextMenuEvent(self, event: Any) -> None:
        if event.reason() == event.Reason.Keyboard:  # the Menu key: the current message
            index = self.currentIndex()
            pos = self.visualRect(index).center() if index.isValid() else None
        else:
            index = self.indexAt(event.pos())
            pos = event.pos()
        if not index.isValid() or pos is None:
            return
        self.setCurrentIndex(index)
        entry: Entry = index.data(MessageLog.EntryRole)
        menu = QMenu(self)
        menu.setAccessibleName("Message actions")
        if entry.media is not None:
            open_action = menu.addAction("&Open", self.open_current)
            open_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
            save_action = menu.addAction("&Save as…", self.save_current)
            save_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Save))
            menu.setDefaultAction(open_action)
            menu.addSeparator()
        if entry.text:
            menu.addAction("&Copy text", self.copy_current)
        menu.addAction("&Reply", lambda: self.replyRequested.emit(entry.chat))
        if entry.is_group and not entry.outgoing and entry.sender:
            who = entry.push_name or jid_label(entry.sender)
            menu.addAction(f"Message {who} &privately", lambda: self.replyRequested.emit(entry.sender))
        self.menuRequested.emit(menu, entry)  # room for more actions on a message
        self.menu = menu
        keyboard = event.reason() == event.Reason.Keyboard
        self.popup(menu, self.viewport().mapToGlobal(pos) if keyboard else event.globalPos())

    def popup(self, menu: QMenu, at: Any) -> None:
        """Show a context menu (modal) at a global position."""
        menu.exec(at)

    def mouseDoubleClickEvent(self, event: Any) -> None:
        index = self.indexAt(event.position().toPoint())
        if index.isValid():
            entry: Entry = index.data(MessageLog.EntryRole)
            if entry.media is not None:
                self.setCurrentIndex(index)
                self.openRequested.emit(entry)
            else:
                self.replyRequested.emit(entry.chat)
            return
        super().mouseDoubleClickEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0 and self.placeholder:
            painter = QPainter(self.viewport())
            painter.setPen(QColor(self.bubbles.theme.muted))
            rect = self.viewport().rect().adjusted(40, 0, -40, 0)
            painter.drawText(
                rect,
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
            painter.end()
