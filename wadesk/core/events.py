"""Session states and the typed events the core publishes to its front ends.

Everything here is immutable and plain data: safe to hand across threads, to Qt
signals and to JSON.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, ClassVar


class Status(StrEnum):
    STARTING = "starting"
    WAITING_FOR_SCAN = "waiting_for_scan"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    LOGGED_OUT = "logged_out"
    FAILED = "failed"


class MessageStatus(StrEnum):
    """Where a message is. Outgoing: queued -> sending -> sent -> delivered -> read (or
    played, for voice notes), or failed. Incoming: received."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    RECEIVED = "received"


@dataclass(frozen=True, kw_only=True)
class MediaFacts:
    """What a recipient's phone shows of a file besides its bytes (all optional)."""

    filename: str | None = None
    caption: str | None = None
    seconds: float | None = None  # audio, voice, video
    width: int | None = None  # image, video, sticker
    height: int | None = None
    pages: int | None = None  # document
    thumbnail: bytes | None = None  # a small JPEG


def facts_of(media: MediaFacts) -> dict[str, Any]:
    """The :class:`MediaFacts` fields of ``media``, to build another kind of record."""
    return {f.name: getattr(media, f.name) for f in fields(MediaFacts)}


@dataclass(frozen=True)
class Account:
    jid: str
    phone: str  # E.164, e.g. "+4915123456789"
    push_name: str = ""
    lid: str | None = None  # the account's LID (…@lid): how LID groups name and mention it


@dataclass(frozen=True)
class SessionState:
    """One state of the session state machine, with what that state carries.

    * WAITING_FOR_SCAN: ``qr`` (None while a fresh code is being requested) and ``qr_expires_at``
    * CONNECTED: ``account``
    * RECONNECTING: ``attempt``, ``next_try_at`` and ``reason``
    * LOGGED_OUT and FAILED: ``reason``
    """

    status: Status
    since: float = field(default_factory=time.time)
    qr: str | None = None
    qr_expires_at: float | None = None
    account: Account | None = None
    attempt: int = 0
    next_try_at: float | None = None
    reason: str | None = None
    paired: bool = False  # a device is linked (so no QR code can be asked for)
    qr_expired: bool = False  # waiting for a scan, but the codes ran out: ask for a new one

    def evolve(self, **changes: Any) -> SessionState:
        return replace(self, **changes)

    def same_phase(self, other: SessionState | None) -> bool:
        """True if only the QR code differs (a QR rotation is not a state change)."""
        if other is None:
            return False
        return (self.status, self.account, self.attempt, self.reason, self.qr_expired) == (
            other.status,
            other.account,
            other.attempt,
            other.reason,
            other.qr_expired,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.status.value, "since": self.since, "paired": self.paired}
        if self.status is Status.WAITING_FOR_SCAN:
            out["qr_available"] = self.qr is not None
            out["qr_expires_at"] = self.qr_expires_at
            out["qr_expired"] = self.qr_expired
        if self.account is not None:
            out["account"] = asdict(self.account)
        if self.status is Status.RECONNECTING:
            out["attempt"] = self.attempt
            out["next_try_at"] = self.next_try_at
        if self.reason:
            out["reason"] = self.reason
        return out

    def describe(self) -> str:
        """One line for logs and tooltips."""
        if self.status is Status.CONNECTED and self.account:
            name = f" ({self.account.push_name})" if self.account.push_name else ""
            return f"connected as {self.account.phone}{name}"
        if self.status is Status.RECONNECTING:
            wait = max(0.0, (self.next_try_at or time.time()) - time.time())
            return f"reconnecting (attempt {self.attempt}, next try in {wait:.0f} s): {self.reason}"
        if self.status is Status.WAITING_FOR_SCAN:
            return "waiting for the QR code to be scanned" if self.qr else "requesting a QR code"
        if self.reason:
            return f"{self.status.value.replace('_', ' ')}: {self.reason}"
        return self.status.value.replace("_", " ")


# ---- events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base class. ``kind`` is the public name (also the webhook event name)."""

    kind: ClassVar[str] = "event"
    public: ClassVar[bool] = True  # False: for the front ends only (not on webhooks or /events)

    def payload(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StateChanged(Event):
    kind: ClassVar[str] = "session.status"
    state: SessionState
    previous: Status | None = None

    def payload(self) -> dict[str, Any]:
        out = self.state.to_dict()
        out["previous"] = self.previous.value if self.previous else None
        return out


@dataclass(frozen=True)
class QRCodeUpdated(Event):
    kind: ClassVar[str] = "qr"
    qr: str
    expires_at: float


@dataclass(frozen=True)
class MessageQueued(Event):
    kind: ClassVar[str] = "message.status"
    id: str
    to: str
    text: str
    status: MessageStatus = MessageStatus.QUEUED
    media: dict[str, Any] | None = None  # a media message: kind, mimetype, size, sha256, ...


@dataclass(frozen=True)
class MessageSent(Event):
    kind: ClassVar[str] = "message.status"
    id: str
    to: str
    wa_id: str
    sent_at: float
    status: MessageStatus = MessageStatus.SENT
    possible_duplicate: bool = False  # an earlier attempt may have reached WhatsApp too
    media: dict[str, Any] | None = None
    to_lid: str | None = None  # to a person: the LID WhatsApp names them by, when known


@dataclass(frozen=True)
class MessageFailed(Event):
    kind: ClassVar[str] = "message.status"
    id: str
    to: str
    reason: str
    status: MessageStatus = MessageStatus.FAILED
    possible_duplicate: bool = False  # the message may have reached WhatsApp all the same
    media: dict[str, Any] | None = None


@dataclass(frozen=True)
class MessageReceipt(Event):
    """WhatsApp reported that a message we sent was delivered, read or played."""

    kind: ClassVar[str] = "message.status"
    id: str
    to: str
    wa_id: str
    status: MessageStatus  # DELIVERED, READ or PLAYED
    at: float


@dataclass(frozen=True)
class IncomingMessage(Event):
    kind: ClassVar[str] = "message.received"
    id: str  # our id for the stored copy
    wa_id: str
    chat: str
    sender: str
    push_name: str
    text: str
    timestamp: float
    is_group: bool
    # a media message: kind, mimetype, size, sha256, filename, caption, seconds, width,
    # height, state (stored, unavailable, skipped, pending) and url (GET /media/<id>)
    media: dict[str, Any] | None = None
    sender_phone: str | None = None  # E.164, when WhatsApp revealed the number
    sender_lid: str | None = None  # …@lid, when known
    mentions: tuple[str, ...] = ()  # the JIDs mentioned
    mentioned_me: bool = False  # this account is among them


@dataclass(frozen=True)
class GroupParticipants(Event):
    """People joined (were added), left (were removed), were promoted to admin or demoted
    in a group. Each person is ``{"jid", "lid", "phone", "push_name"}`` as far as known."""

    kind: ClassVar[str] = "group.participants"
    group: str
    action: str  # join | leave | promote | demote
    participants: tuple[dict[str, Any], ...]
    by: dict[str, Any] | None  # who made the change, when WhatsApp said
    timestamp: float


@dataclass(frozen=True)
class ChatsChanged(Event):
    """The chat list changed other than by a message (e.g. the joined groups were listed):
    a front end showing chats reads them again. Not a public event."""

    kind: ClassVar[str] = "chats.changed"
    public: ClassVar[bool] = False
    jids: tuple[str, ...] = ()  # the chats concerned; empty: any
