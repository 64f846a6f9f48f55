"""The chat list: every person and group with messages, and every joined group.

:class:`ChatListModel` holds :class:`~wadesk.core.store.ChatRecord` rows, newest activity
first, as the store listed them, and folds message events in without reading the store
(a chat it does not know yet is read by the window, off the GUI thread, and put in with
:meth:`ChatListModel.put`). :class:`SearchModel` holds the results of a search: the chats
whose name or number matched, then the messages whose text did. :class:`ChatDelegate`
paints both (no widgets per row); every row has a spoken form (who, what, when).
"""

from __future__ import annotations

import datetime as dt
import functools
import zlib
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QDate,
    QLocale,
    QModelIndex,
    QPersistentModelIndex,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QKeyEvent, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from ..core.events import (
    IncomingMessage,
    MessageFailed,
    MessageQueued,
    MessageReceipt,
    MessageSent,
    MessageStatus,
)
from ..core.recipients import format_phone
from ..core.store import ChatRecord, MessageRecord, phone_of, preview_of
from . import theme as themes
from .messages import STATUS_LABELS, STATUS_MARKS, jid_label, local_time

ModelIndex = QModelIndex | QPersistentModelIndex

PAGE = 100  # chats read at a time (more as the list is scrolled)
RowRole = Qt.ItemDataRole.UserRole + 1
JidRole = Qt.ItemDataRole.UserRole + 2


# ---- words ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def pretty_phone(phone: str | None) -> str | None:
    """'+15550002222' -> '+1 555-000-2222'."""
    if not phone:
        return None
    return format_phone(phone.lstrip("+"))


def person_label(jid: str | None, push_name: str | None = None) -> str:
    """A sender as a person reads it: the push name, else the number (or the ID)."""
    if push_name:
        return push_name
    if not jid:
        return "Someone"
    return pretty_phone(phone_of(jid)) or jid_label(jid)


def chat_title(chat: ChatRecord) -> str:
    """The group's name, the person's push name, or the formatted number."""
    if chat.name:
        return chat.name
    if chat.is_group:
        return "Unnamed group"
    return pretty_phone(chat.phone) or jid_label(chat.jid)


def chat_subtitle(chat: ChatRecord) -> str:
    """The line under a conversation's title: the number for a named person, 'Group'."""
    if chat.is_group:
        return "Group" if chat.joined or chat.last_id else "Group (not joined)"
    phone = pretty_phone(chat.phone)
    if phone is None:
        return "Phone number not known"
    return phone if chat.name else "WhatsApp number"


def time_label(ts: float | None, now: dt.datetime | None = None) -> str:
    """'14:05' today, 'Yesterday', the weekday within a week, else the date."""
    if not ts:
        return ""
    when = local_time(ts)
    today = (now or dt.datetime.now()).date()
    day = when.date()
    if day == today:
        return when.strftime("%H:%M")
    if day == today - dt.timedelta(days=1):
        return "Yesterday"
    if today - dt.timedelta(days=6) <= day < today:
        return when.strftime("%A")
    return QLocale().toString(QDate(day.year, day.month, day.day), QLocale.FormatType.ShortFormat)


def spoken_time(ts: float | None, now: dt.datetime | None = None) -> str:
    """'today at 14:05', 'yesterday at 09:30', 'on Monday 3 March 2025 at 10:00'."""
    if not ts:
        return ""
    when = local_time(ts)
    today = (now or dt.datetime.now()).date()
    clock = when.strftime("%H:%M")
    if when.date() == today:
        return f"today at {clock}"
    if when.date() == today - dt.timedelta(days=1):
        return f"yesterday at {clock}"
    return f"on {when.strftime('%A')} {when.day} {when.strftime('%B %Y')} at {clock}"


def one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Preview:
    """The second line of a chat row: a prefix (coloured by ``kind``) and the text."""

    prefix: str
    text: str
    kind: str = ""  # draft | out | read | failed | sender | empty


def chat_preview(chat: ChatRecord, open_jid: str | None = None) -> Preview:
    if chat.draft and chat.draft.strip() and chat.jid != open_jid:
        return Preview("Draft: ", one_line(chat.draft), "draft")
    if chat.last_id is None:
        return Preview("", "No messages yet", "empty")
    text = chat.preview
    if chat.last_direction == "out":
        status = chat.last_status.value if chat.last_status is not None else "queued"
        kind = "failed" if status == "failed" else "read" if status in ("read", "played") else "out"
        return Preview(f"{STATUS_MARKS.get(status, '')} ", text, kind)
    if chat.is_group:
        return Preview(f"{person_label(chat.last_sender, chat.last_push_name)}: ", text, "sender")
    return Preview("", text)


def describe_chat(chat: ChatRecord, open_jid: str | None = None) -> str:
    """What a screen reader says for a chat row: who, unread and failed counts, and the
    last message (who wrote it, what, when)."""
    parts = [chat_title(chat)]
    if chat.is_group:
        parts[0] += ", group"
    else:
        phone = pretty_phone(chat.phone)
        if phone and chat.name:
            parts[0] += f", {phone}"
    if chat.unread:
        parts.append("1 unread message" if chat.unread == 1 else f"{chat.unread} unread messages")
    if chat.failed:
        parts.append("1 message not sent" if chat.failed == 1 else f"{chat.failed} messages not sent")
    if chat.draft and chat.draft.strip() and chat.jid != open_jid:
        parts.append(f"Draft: {one_line(chat.draft)}")
    if chat.last_id is None:
        parts.append("No messages yet")
    else:
        when = spoken_time(chat.last_at)
        if chat.last_direction == "out":
            status = chat.last_status.value if chat.last_status is not None else "queued"
            parts.append(f"You {when}: {chat.preview} ({STATUS_LABELS.get(status, status)})")
        else:
            who = person_label(chat.last_sender, chat.last_push_name) if chat.is_group else ""
            parts.append(f"{who + ' ' if who else ''}{when}: {chat.preview}".strip())
    return ". ".join(parts)


@dataclass(frozen=True)
class Header:
    """A section title in the search results ('Chats', 'Messages')."""

    text: str


@dataclass(frozen=True)
class Hit:
    """A message that matched a search, with the title of its chat."""

    record: MessageRecord
    title: str
    is_group: bool = False

    @property
    def at(self) -> float:
        r = self.record
        return r.created_at if r.direction == "out" else (r.wa_timestamp or r.created_at)

    @property
    def preview(self) -> Preview:
        r = self.record
        media = r.media
        text = preview_of(r.text, media.kind if media else None, media.filename if media else None)
        if r.direction == "out":
            return Preview("You: ", text, "out")
        if self.is_group:
            return Preview(f"{person_label(r.sender, r.push_name)}: ", text, "sender")
        return Preview("", text)

    def describe(self) -> str:
        r = self.record
        who = "you" if r.direction == "out" else person_label(r.sender, r.push_name)
        return f"Message in {self.title}, from {who} {spoken_time(self.at)}: {self.preview.text}"


def activity(chat: ChatRecord) -> float:
    return chat.last_at or 0.0


# ---- models -----------------------------------------------------------------------------------


class ChatListModel(QAbstractListModel):
    """Chats, newest activity first. ``more``: the store may hold more than are loaded
    (the view asks for them by :meth:`fetchMore`, which emits :attr:`moreWanted`)."""

    moreWanted = Signal()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[ChatRecord] = []
        self._index: dict[str, int] = {}
        self.open_jid: str | None = None  # its draft is in the form, not shown in its row
        self.more = False
        self.fetching = False
        self.loaded = False

    # -- Qt model --
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        chat = self._rows[index.row()]
        if role == RowRole:
            return chat
        if role == JidRole:
            return chat.jid
        if role == Qt.ItemDataRole.DisplayRole:
            return chat_title(chat)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return describe_chat(chat, self.open_jid)
        if role == Qt.ItemDataRole.ToolTipRole and chat.failed:
            return "A message in this chat was not sent: open the chat to see why."
        return None

    def canFetchMore(self, parent: ModelIndex) -> bool:
        return not parent.isValid() and self.loaded and self.more and not self.fetching

    def fetchMore(self, parent: ModelIndex) -> None:
        if self.canFetchMore(parent):
            self.fetching = True
            self.moreWanted.emit()

    # -- content --
    def chats(self) -> list[ChatRecord]:
        return list(self._rows)

    def chat(self, jid: str | None) -> ChatRecord | None:
        row = self._index.get(jid or "")
        return None if row is None else self._rows[row]

    def row_of(self, jid: str | None) -> int | None:
        return self._index.get(jid or "")

    def jid_at(self, row: int) -> str | None:
        return self._rows[row].jid if 0 <= row < len(self._rows) else None

    def _reindex(self) -> None:
        self._index = {c.jid: i for i, c in enumerate(self._rows)}

    def load(self, chats: list[ChatRecord], more: bool) -> None:
        """Replace the content with the store's first page(s)."""
        self.beginResetModel()
        self._rows = list({c.jid: c for c in chats}.values())
        self._reindex()
        self.more = more
        self.fetching = False
        self.loaded = True
        self.endResetModel()

    def extend(self, chats: list[ChatRecord], more: bool) -> None:
        """The next page: chats not listed yet go at the end."""
        self.fetching = False
        self.more = more
        new = [c for c in {c.jid: c for c in chats}.values() if c.jid not in self._index]
        if not new:
            return
        at = len(self._rows)
        self.beginInsertRows(QModelIndex(), at, at + len(new) - 1)
        self._rows.extend(new)
        self._reindex()
        self.endInsertRows()

    def put(self, chat: ChatRecord) -> None:
        """A chat as the store has it now: replaced, or put in where its activity says (a
        chat without messages yet, just made, goes first)."""
        row = self._index.get(chat.jid)
        if row is None:
            key = activity(chat)
            at = (
                0
                if chat.last_at is None
                else next((i for i, c in enumerate(self._rows) if activity(c) <= key), len(self._rows))
            )
            self.beginInsertRows(QModelIndex(), at, at)
            self._rows.insert(at, chat)
            self._reindex()
            self.endInsertRows()
            return
        old = self._rows[row]
        self._replace(row, chat, move=activity(chat) != activity(old))

    def change(self, jid: str, **changes: Any) -> bool:
        """Change some fields of a chat in place (not its position); False if not listed."""
        row = self._index.get(jid)
        if row is None:
            return False
        self._replace(row, replace(self._rows[row], **changes), move=False)
        return True

    def _replace(self, row: int, chat: ChatRecord, *, move: bool) -> None:
        if move:
            key = activity(chat)
            others = self._rows[:row] + self._rows[row + 1 :]
            # the newest activity first; of chats active in the same second, the latest news
            target = next((i for i, c in enumerate(others) if activity(c) <= key), len(others))
            if target != row:
                dest = target if target < row else target + 1
                self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), dest)
                del self._rows[row]
                self._rows.insert(target, chat)
                self._reindex()
                self.endMoveRows()
                idx = self.index(target)
                self.dataChanged.emit(idx, idx)
                return
        self._rows[row] = chat
        idx = self.index(row)
        self.dataChanged.emit(idx, idx)

    # -- core events --
    def apply_incoming(self, event: IncomingMessage, *, count: bool) -> bool:
        """A received message: the chat moves up, its preview and (if ``count``) its unread
        count change. False if the chat is not listed (the window reads it)."""
        row = self._index.get(event.chat)
        if row is None:
            return False
        old = self._rows[row]
        media = event.media or {}
        changes: dict[str, Any] = {
            "last_id": event.id,
            "last_direction": "in",
            "last_status": MessageStatus.RECEIVED,
            "last_text": event.text,
            "last_media_kind": media.get("kind"),
            "last_filename": media.get("filename"),
            "last_sender": event.sender or None,
            "last_push_name": event.push_name or None,
            "last_at": max(activity(old), event.timestamp or 0.0) or None,
        }
        if count and event.id != old.last_id:  # a row read after it was stored counted it already
            changes["unread"] = old.unread + 1
        if not old.is_group and not old.name and event.push_name:
            changes["name"] = event.push_name
        self._replace(row, replace(old, **changes), move=True)
        return True

    def apply_queued(self, event: MessageQueued, now: float) -> bool:
        row = self._index.get(event.to)
        if row is None:
            return False
        old = self._rows[row]
        media = event.media or {}
        new = replace(
            old,
            last_id=event.id,
            last_direction="out",
            last_status=MessageStatus.QUEUED,
            last_text=event.text,
            last_media_kind=media.get("kind"),
            last_filename=media.get("filename"),
            last_sender=None,
            last_push_name=None,
            last_at=max(activity(old), now),
        )
        self._replace(row, new, move=True)
        return True

    def apply_status(self, event: MessageSent | MessageFailed | MessageReceipt, *, count: bool) -> bool:
        """A sent message's status changed: the preview's tick, and the failure marker."""
        row = self._index.get(event.to)
        if row is None:
            return False
        old = self._rows[row]
        changes: dict[str, Any] = {}
        if old.last_id == event.id:
            changes["last_status"] = MessageStatus(event.status)
        if isinstance(event, MessageFailed) and count:
            changes["failed"] = old.failed + 1
        if changes:
            self._replace(row, replace(old, **changes), move=False)
        return True


class SearchModel(QAbstractListModel):
    """What a search found: 'Chats' and the chats, 'Messages' and the messages."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Header | ChatRecord | Hit] = []
        self.query = ""
        self.searching = False

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == RowRole:
            return row
        if isinstance(row, Header):
            if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
                return row.text
            return None
        if role == JidRole:
            return row.jid if isinstance(row, ChatRecord) else row.record.chat
        if role == Qt.ItemDataRole.DisplayRole:
            return chat_title(row) if isinstance(row, ChatRecord) else row.title
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return describe_chat(row) if isinstance(row, ChatRecord) else row.describe()
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if index.isValid() and isinstance(self._rows[index.row()], Header):
            return Qt.ItemFlag.NoItemFlags  # the arrows pass over it
        return super().flags(index)

    def rows(self) -> list[Header | ChatRecord | Hit]:
        return list(self._rows)

    def chats(self) -> list[ChatRecord]:
        return [r for r in self._rows if isinstance(r, ChatRecord)]

    def hits(self) -> list[Hit]:
        return [r for r in self._rows if isinstance(r, Hit)]

    def show(self, query: str, chats: list[ChatRecord], hits: list[Hit]) -> None:
        self.beginResetModel()
        rows: list[Header | ChatRecord | Hit] = []
        if chats:
            rows.append(Header("Chats"))
            rows.extend(chats)
        if hits:
            rows.append(Header("Messages"))
            rows.extend(hits)
        self._rows = rows
        self.query = query
        self.searching = False
        self.endResetModel()

    def clear(self) -> None:
        self.show("", [], [])

    def first_result(self) -> int | None:
        return next((i for i, r in enumerate(self._rows) if not isinstance(r, Header)), None)


# ---- painting -----------------------------------------------------------------------------------

AVATAR = 44.0
ROW_PAD_X, ROW_PAD_Y = 12.0, 9.0
BADGE_H = 20.0
HEADER_H = 30.0
LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def avatar_colour(theme: themes.Theme, jid: str) -> str:
    return theme.avatars[zlib.crc32(jid.encode()) % len(theme.avatars)]


def initials(title: str) -> str:
    """'Sam Carter' -> 'SC', 'Shop' -> 'S', '+1 555-000-2222' -> '#'."""
    if title.startswith("+"):
        return "#"
    words = [w for w in title.replace("-", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


class ChatDelegate(QStyledItemDelegate):
    """Paints chat rows (a round picture, name and time, the last message, the unread
    count and a marker for a failed message), message hits and section headers."""

    def __init__(self, view: QListView) -> None:
        super().__init__(view)
        self._view = view
        self.theme = themes.LIGHT
        self.open_jid: str | None = None

    def _fonts(self) -> tuple[QFont, QFont, QFont]:
        base = self._view.font()
        title = themes.scaled_font(base, 1.0, QFont.Weight.DemiBold)
        small = themes.scaled_font(base, 0.85)
        return base, title, small

    def row_height(self) -> int:
        base, title, _small = self._fonts()
        text = QFontMetricsF(title).height() + 4 + QFontMetricsF(base).height()
        return int(max(AVATAR, text) + 2 * ROW_PAD_Y + 0.999)

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        row = index.data(RowRole)
        width = self._view.viewport().width()
        if isinstance(row, Header):
            return QSize(width, int(HEADER_H))
        return QSize(width, self.row_height())

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        painter.save()
        try:
            row = index.data(RowRole)
            if isinstance(row, Header):
                self._paint_header(painter, option, row)
            elif isinstance(row, ChatRecord | Hit):
                self._paint_row(painter, option, row)
        finally:
            painter.restore()

    def _paint_header(self, painter: QPainter, option: QStyleOptionViewItem, row: Header) -> None:
        _base, _title, small = self._fonts()
        font = themes.scaled_font(small, 1.0, QFont.Weight.Bold)
        painter.setFont(font)
        painter.setPen(QColor(self.theme.muted))
        rect = QRectF(option.rect).adjusted(ROW_PAD_X + 4, 0, -ROW_PAD_X, 0)
        painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, row.text.upper())

    def _paint_row(self, painter: QPainter, option: QStyleOptionViewItem, row: ChatRecord | Hit) -> None:
        t = self.theme
        base, title_font, small = self._fonts()
        rect = QRectF(option.rect)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        if selected:
            painter.fillRect(rect, QColor(t.selected))
        if option.state & QStyle.StateFlag.State_HasFocus and self._view.hasFocus():
            pen = painter.pen()
            pen.setColor(QColor(t.accent))
            pen.setWidthF(2.0)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(2, 2, -2, -2), 6, 6)

        if isinstance(row, ChatRecord):
            jid, title, when = row.jid, chat_title(row), row.last_at
            preview = chat_preview(row, self.open_jid)
            unread, failed = row.unread, row.failed
        else:
            jid, title, when = row.record.chat, row.title, row.at
            preview = row.preview
            unread, failed = 0, 0

        # the round picture with initials
        avatar = QRectF(rect.left() + ROW_PAD_X, rect.center().y() - AVATAR / 2, AVATAR, AVATAR)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(avatar_colour(t, jid)))
        painter.drawEllipse(avatar)
        painter.setPen(QColor(t.avatar_text))
        painter.setFont(themes.scaled_font(base, 1.05, QFont.Weight.DemiBold))
        painter.drawText(avatar, Qt.AlignmentFlag.AlignCenter, initials(title))

        left = avatar.right() + 12
        right = rect.right() - ROW_PAD_X
        title_fm = QFontMetricsF(title_font)
        small_fm = QFontMetricsF(small)
        base_fm = QFontMetricsF(base)
        block = title_fm.height() + 4 + base_fm.height()
        top = rect.center().y() - block / 2

        # first line: the name, and the time on the right
        stamp = time_label(when)
        stamp_w = small_fm.horizontalAdvance(stamp)
        painter.setFont(small)
        painter.setPen(QColor(t.link if unread else t.muted))
        painter.drawText(
            QRectF(right - stamp_w, top, stamp_w + 1, title_fm.height()),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            stamp,
        )
        painter.setFont(title_font)
        painter.setPen(QColor(t.text))
        title_w = max(10.0, right - stamp_w - 8 - left)
        painter.drawText(
            QRectF(left, top, title_w, title_fm.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            title_fm.elidedText(title, Qt.TextElideMode.ElideRight, title_w),
        )

        # second line: the last message, a failure marker and the unread count on the right
        y = top + title_fm.height() + 4
        line_h = base_fm.height()
        end = right
        if unread:
            label = str(unread) if unread < 1000 else "999+"
            painter.setFont(themes.scaled_font(small, 1.0, QFont.Weight.Bold))
            w = max(BADGE_H, QFontMetricsF(painter.font()).horizontalAdvance(label) + 12)
            badge = QRectF(end - w, y + (line_h - BADGE_H) / 2, w, BADGE_H)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(t.accent))
            painter.drawRoundedRect(badge, BADGE_H / 2, BADGE_H / 2)
            painter.setPen(QColor(t.accent_text))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, label)
            end = badge.left() - 6
        if failed:
            painter.setFont(themes.scaled_font(base, 1.0, QFont.Weight.Bold))
            mark = "⚠"
            w = QFontMetricsF(painter.font()).horizontalAdvance(mark) + 2
            painter.setPen(QColor(t.error))
            painter.drawText(
                QRectF(end - w, y, w, line_h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                mark,
            )
            end -= w + 6
        width = max(10.0, end - left)
        painter.setFont(base)
        x = left
        if preview.prefix:
            colours = {
                "draft": t.link,
                "failed": t.error,
                "read": t.tones[themes.Tone.INFO][1] if not t.dark else t.link,
                "out": t.muted,
                "sender": t.text,
            }
            prefix = base_fm.elidedText(preview.prefix, Qt.TextElideMode.ElideRight, width)
            prefix_w = base_fm.horizontalAdvance(prefix)
            painter.setPen(QColor(colours.get(preview.kind, t.muted)))
            painter.drawText(
                QRectF(x, y, prefix_w + 1, line_h),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                prefix,
            )
            x += prefix_w
            width -= prefix_w
        if width > 8:
            painter.setPen(QColor(t.muted))
            if preview.kind == "empty":
                italic = QFont(base)
                italic.setItalic(True)
                painter.setFont(italic)
            painter.drawText(
                QRectF(x, y, width, line_h),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                QFontMetricsF(painter.font()).elidedText(preview.text, Qt.TextElideMode.ElideRight, width),
            )


class ChatListView(QListView):
    """A list of chats (or search results). A click or Enter *chooses* a chat
    (:attr:`chosen`); moving the current row *highlights* one (:attr:`highlighted`)."""

    chosen = Signal(str, int)  # jid, row
    highlighted = Signal(str, int)
    escapePressed = Signal()

    def __init__(self, parent: QWidget | None = None, *, uniform: bool = True) -> None:
        super().__init__(parent)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(uniform)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.delegate = ChatDelegate(self)
        self.setItemDelegate(self.delegate)
        self.verticalScrollBar().setSingleStep(24)
        self.placeholder = ""
        self._quiet = False

    def setModel(self, model: Any) -> None:
        super().setModel(model)
        self.selectionModel().currentChanged.connect(self._current_changed)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._quiet or not current.isValid():
            return
        jid = current.data(JidRole)
        if jid:
            self.highlighted.emit(jid, current.row())

    def select_row(self, row: int | None) -> None:
        """Make a row current and selected without announcing it (the window opened it)."""
        self._quiet = True
        try:
            if row is None:
                self.clearSelection()
                self.setCurrentIndex(QModelIndex())
            else:
                index = self.model().index(row, 0)
                self.setCurrentIndex(index)
                self.scrollTo(index)
        finally:
            self._quiet = False

    def set_placeholder(self, text: str) -> None:
        if text != self.placeholder:
            self.placeholder = text
            self.viewport().update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            index = self.indexAt(event.position().toPoint())
            jid = index.data(JidRole) if index.isValid() else None
            if jid:
                self.chosen.emit(jid, index.row())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and not event.modifiers():
            self.escapePressed.emit()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            index = self.currentIndex()
            jid = index.data(JidRole) if index.isValid() else None
            if jid:
                self.chosen.emit(jid, index.row())
                return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0 and self.placeholder:
            painter = QPainter(self.viewport())
            painter.setPen(QColor(self.delegate.theme.muted))
            rect = self.viewport().rect().adjusted(24, 24, -24, -24)
            painter.drawText(
                rect,
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
            painter.end()
