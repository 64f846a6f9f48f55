"""The conversation log: what was sent (with its status) and received, newest last.

:class:`MessageLog` is a list model of :class:`Entry` rows; :class:`BubbleDelegate` paints
them as chat bubbles (sent on the right, received on the left, a date chip where the day
changes). Every row also has a plain-text form (display and accessibility roles), so
screen readers and copy get the same facts the bubble shows, and no status is shown by
colour alone.
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
    QPaintEvent,
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

    def describe(self) -> str:
        when = local_time(self.at).strftime("%Y-%m-%d %H:%M")
        if self.outgoing:
            return f"Sent to {self.peer} at {when}, status {self.status_text}: {self.text}"
        return f"Received from {self.peer} at {when}: {self.text}"

    @property
    def reply_to(self) -> str:
        """The recipient to answer this message (the group for group messages)."""
        if self.outgoing or self.is_group:
            return self.chat
        return self.sender or self.chat


class MessageLog(QAbstractListModel):
    EntryRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Entry] = []
        self._index: dict[str, int] = {}

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
            return entry.describe()
        if role == Qt.ItemDataRole.ToolTipRole and entry.status == "failed":
            return entry.status_text
        return None

    # -- content --
    def entries(self) -> list[Entry]:
        return list(self._rows)

    def entry(self, message_id: str) -> Entry | None:
        row = self._index.get(message_id)
        return None if row is None else self._rows[row]

    def load(self, records: list[MessageRecord]) -> None:
        """Replace the content with these records (any order; shown oldest first)."""
        self.beginResetModel()
        rows = [Entry.from_record(r) for r in sorted(records, key=lambda r: r.seq)]
        self._rows = rows
        self._index = {e.id: i for i, e in enumerate(rows)}
        self.endResetModel()

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

    # -- core events --
    def apply(self, event: Any, lookup: Any = None) -> None:
        """Fold a message event in. ``lookup(id) -> MessageRecord | None`` fills in messages
        this log has not seen (sent through the local API, or before the log was loaded)."""
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
                )
            )
            return
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
                    )
                )
            return
        if self.entry(event.id) is None and lookup is not None:
            record = lookup(event.id)
            if record is not None:
                self.upsert(Entry.from_record(record))
                return
        if isinstance(event, MessageSent):
            self.update(event.id, status="sent", error="")
        elif isinstance(event, MessageFailed):
            self.update(event.id, status="failed", error=event.reason)
        elif isinstance(event, MessageReceipt):
            self.update(event.id, status=event.status)


# ---- painting ---------------------------------------------------------------------------------

BUBBLE_MAX = 0.72  # of the view width
PAD_X, PAD_Y = 12.0, 8.0
MARGIN_X, MARGIN_Y = 18.0, 5.0
RADIUS = 10.0
DAY_CHIP_H = 34.0


class BubbleDelegate(QStyledItemDelegate):
    def __init__(self, view: LogView) -> None:
        super().__init__(view)
        self._view = view
        self.theme = themes.LIGHT

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

    def _measure(self, index: ModelIndex) -> dict[str, Any]:
        entry: Entry = index.data(MessageLog.EntryRole)
        base, head, small = self._fonts()
        inner = self._bubble_width() - 2 * PAD_X
        body, body_w, body_h = self._layout(entry.text, base, inner)
        heading_fm = QFontMetricsF(head)
        heading = heading_fm.elidedText(entry.heading, Qt.TextElideMode.ElideRight, inner)
        meta = entry.time_text
        if entry.outgoing:
            meta = f"{entry.time_text}  {STATUS_MARKS.get(entry.status, '')} {entry.status_text}".rstrip()
        meta_layout, meta_w, meta_h = self._layout(meta, small, inner)
        width = max(body_w, heading_fm.horizontalAdvance(heading), meta_w) + 2 * PAD_X
        width = min(max(width, 120.0), self._bubble_width())
        head_h = heading_fm.height()
        height = PAD_Y + head_h + 3 + body_h + 4 + meta_h + PAD_Y
        day = self._day_label(index)
        return {
            "entry": entry,
            "body": body,
            "heading": heading,
            "meta": meta_layout,
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
            top += DAY_CHIP_H
        width, height = m["width"], m["height"]
        left = option.rect.right() - MARGIN_X - width if entry.outgoing else option.rect.left() + MARGIN_X
        bubble = QRectF(left, top, width, height)
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
        painter.setFont(head)
        painter.setPen(QColor(t.link if not entry.outgoing else t.muted))
        painter.drawText(
            QRectF(x, y, width - 2 * PAD_X, m["head_h"]),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            m["heading"],
        )
        y += m["head_h"] + 3
        painter.setPen(QColor(t.text))
        m["body"].draw(painter, QPointF(x, y))
        y += m["body_h"] + 4
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


class LogView(QListView):
    """The message list: keyboard navigable, copyable, with an empty-state hint."""

    replyRequested = Signal(str)  # a recipient (JID) to answer

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("log")
        self.setAccessibleName("Conversation log")
        self.setAccessibleDescription("Messages sent and received, newest last")
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
        self.verticalScrollBar().valueChanged.connect(self._remember_position)

    def setModel(self, model: Any) -> None:
        super().setModel(model)
        model.rowsInserted.connect(self._follow)
        model.modelReset.connect(lambda: self._follow(force=True))

    def _remember_position(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._stick_to_bottom = value >= bar.maximum() - 4

    def _follow(self, *args: Any, force: bool = False) -> None:
        # after the view has laid out the new rows (never from inside the model's signal)
        if force or self._stick_to_bottom:
            QTimer.singleShot(0, self, self.scrollToBottom)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.scheduleDelayedItemsLayout()
        if self._stick_to_bottom:
            self.scrollToBottom()

    def current_entry(self) -> Entry | None:
        index = self.currentIndex()
        return index.data(MessageLog.EntryRole) if index.isValid() else None

    def copy_current(self) -> None:
        entry = self.current_entry()
        if entry is not None:
            QGuiApplication.clipboard().setText(entry.text)

    def keyPressEvent(self, event: Any) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_current()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            entry = self.current_entry()
            if entry is not None:
                self.replyRequested.emit(entry.reply_to)
                return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event: Any) -> None:
        index = self.indexAt(event.pos())
        if not index.isValid():
            return
        self.setCurrentIndex(index)
        entry: Entry = index.data(MessageLog.EntryRole)
        menu = QMenu(self)
        menu.addAction("Copy text", self.copy_current)
        label = "Write to this contact" if entry.outgoing else "Reply"
        menu.addAction(label, lambda: self.replyRequested.emit(entry.reply_to))
        menu.exec(event.globalPos())

    def mouseDoubleClickEvent(self, event: Any) -> None:
        index = self.indexAt(event.position().toPoint())
        if index.isValid():
            entry: Entry = index.data(MessageLog.EntryRole)
            self.replyRequested.emit(entry.reply_to)
            return
        super().mouseDoubleClickEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(QColor(self.bubbles.theme.muted))
            rect = self.viewport().rect().adjusted(40, 0, -40, 0)
            painter.drawText(
                rect,
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "No messages yet.\nMessages you send and receive appear here.",
            )
            painter.end()
