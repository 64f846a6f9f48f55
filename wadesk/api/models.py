"""The API's request and response bodies and its limits, declared once.

The views decode request bodies with :class:`Body` (msgspec: typed, in one pass) and check
query parameters and headers against the constants and types here; :mod:`.openapi` generates
``components.schemas`` from :data:`MODELS` and its parameter schemas from the same types.

A body that does not decode is explained field by field, in the order the fields are
declared, as :class:`FieldError` (``field`` and a problem for a person): "is required",
"must be a string", "unknown field; expected ...", or for the body itself "is not valid
JSON (line 1, column 8)", "is nested too deeply", "must be a JSON object".
"""

from __future__ import annotations

import json
import re
import types
import typing
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from ..config import MEDIA_KINDS, WEBHOOK_EVENTS
from ..core.events import MessageStatus
from ..core.events import Status as _Status
from ..core.session import (
    MAX_TEXT,
    MEDIA_DELETED,
    MEDIA_PENDING,
    MEDIA_SKIPPED,
    MEDIA_STORED,
    MEDIA_UNAVAILABLE,
)

# ---- limits -------------------------------------------------------------------------------

MAX_BODY = 1024 * 1024  # bytes; larger request bodies get 413
MAX_JSON_MEDIA_BODY = 16 * 1024 * 1024  # a JSON /send with a base64 file: larger files go as multipart
MAX_FILENAME = 255
MAX_MENTIONS = 1024
MAX_FORM_MENTIONS = 100  # a multipart /send: one form part each (a form holds at most 1000 parts)
MAX_CHECK = 50  # numbers in one /contacts/check
MAX_EVENT_ID = 64
MAX_EVENT_PAGE = 1000  # events in one GET /events/history page
MAX_SEARCH = 200  # characters of a search (GET /messages?q=, GET /chats?q=)
MAX_GROUP_NAME = 100  # WhatsApp's limit for a group's subject
MAX_GROUP_PEOPLE = 1023  # a group holds 1024, the account included
MAX_MIMETYPE = 255
MAX_RECIPIENT = 100  # characters of "to" and "phone"
MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, no space
MIN_PAGE = 1
MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_CURSOR_DIGITS = 18
CURSOR_PATTERN = f"^[0-9]{{1,{MAX_CURSOR_DIGITS}}}$"

QRFormat = Literal["png", "svg", "text", "json"]
QR_FORMATS: tuple[str, ...] = get_args(QRFormat)
DEFAULT_QR_FORMAT = "png"
Direction = Literal["in", "out"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)
EVENT_NAMES: tuple[str, ...] = WEBHOOK_EVENTS  # the names /events and the webhooks know
StorageKind = Literal["locked", "full", "io", "damaged"]

# built from the core's values, so that the documented enums cannot drift from them (mypy
# cannot follow an Enum made by a call: hence the ignores)
SessionStatus = StrEnum("SessionStatus", [(s.name, s.value) for s in _Status])  # type: ignore[misc]
MediaKind = StrEnum("MediaKind", [(k.upper(), k) for k in MEDIA_KINDS])  # type: ignore[misc]
MediaState = StrEnum(  # type: ignore[misc]
    "MediaState",
    [(s.upper(), s) for s in (MEDIA_STORED, MEDIA_PENDING, MEDIA_UNAVAILABLE, MEDIA_SKIPPED, MEDIA_DELETED)],
)

# ---- field types --------------------------------------------------------------------------
# Meta.extra words the problems of a field: "problem" for any broken constraint, "empty" for
# an empty string, "mismatch" for a string that does not match the pattern.

_NO_NUMBER = "is empty: give a phone number with its country code, e.g. +49 151 23456789"

Recipient = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_RECIPIENT,
        description="international phone number (+49 151 2345 6789, 004915123456789, "
        "4915123456789), user JID (…@s.whatsapp.net) or group JID (…@g.us)",
        extra={"empty": _NO_NUMBER},
    ),
]
Mentions = Annotated[
    list[Recipient],
    Meta(max_length=MAX_MENTIONS, description="people to mention (in a group): numbers or JIDs"),
]
MentionAll = Annotated[bool, Meta(description="mention every participant of the group")]
Phone = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_RECIPIENT,
        description="the phone's number, international format",
        extra={"empty": _NO_NUMBER},
    ),
]
Text = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_TEXT,
        pattern=r"\S",
        description=f"1 to {MAX_TEXT:,} characters, not only white space",
        extra={"mismatch": "is only white space"},
    ),
]
IdempotencyKey = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        extra={"problem": f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"},
    ),
]
PageLimit = Annotated[int, Meta(ge=MIN_PAGE, le=MAX_PAGE)]
Cursor = Annotated[str, Meta(pattern=CURSOR_PATTERN, description="next_cursor of the previous page")]
UnixTime = Annotated[float, Meta(description="unix time")]
Count = Annotated[int, Meta(ge=0)]

# ---- request bodies -----------------------------------------------------------------------


class SendRequest(Struct, forbid_unknown_fields=True):
    """A text message to queue."""

    to: Recipient
    text: Text
    idempotency_key: (
        Annotated[
            IdempotencyKey,
            Meta(
                description="same as the Idempotency-Key header (they must agree if both are given); "
                "null is the same as leaving it out"
            ),
        ]
        | None
    ) = None
    mentions: Mentions | None = None
    mention_all: MentionAll | None = None


Caption = Annotated[
    str,
    Meta(max_length=MAX_TEXT, description=f"shown under the file, up to {MAX_TEXT:,} characters"),
]
Filename = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_FILENAME,
        description="the file name the recipient sees (documents); path parts are dropped",
    ),
]
Mimetype = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=MAX_MIMETYPE,
        description="the declared type; the content decides, and a contradiction is refused",
    ),
]


class MediaUpload(Struct, forbid_unknown_fields=True):
    """A file sent inline in a JSON /send (small files; larger ones as multipart/form-data)."""

    data: Annotated[str, Meta(min_length=1, description="the file's bytes, base64")]
    mimetype: Mimetype | None = None
    filename: Filename | None = None
    caption: Caption | None = None
    kind: Annotated[MediaKind, Meta(description="inferred from the content when left out")] | None = None


class SendMediaRequest(Struct, forbid_unknown_fields=True):
    """A media message to queue, the file inline."""

    to: Recipient
    media: MediaUpload
    idempotency_key: IdempotencyKey | None = None
    mentions: Mentions | None = None  # in the caption: an image, video or document
    mention_all: MentionAll | None = None


class SendMediaForm(Struct, kw_only=True, forbid_unknown_fields=True):
    """A media message to queue as multipart/form-data, the file streamed to disk. (Form
    fields are text: a field left out is not sent at all.)"""

    to: Recipient
    file: Annotated[bytes, Meta(description="the file (a form part with a file name)")]
    caption: Caption | UnsetType = UNSET
    filename: Filename | UnsetType = UNSET
    kind: Annotated[MediaKind, Meta(description="inferred from the content when left out")] | UnsetType = (
        UNSET
    )
    idempotency_key: IdempotencyKey | UnsetType = UNSET
    mentions: (
        Annotated[
            list[Recipient],
            Meta(
                max_length=MAX_FORM_MENTIONS,
                description="people to mention in the caption: one form field per person "
                "(mention_all mentions everyone)",
            ),
        ]
        | UnsetType
    ) = UNSET
    mention_all: (
        Annotated[Literal["true", "false"], Meta(description="mention every participant of the group")]
        | UnsetType
    ) = UNSET


GroupAction = Literal["add", "remove", "promote", "demote"]
People = Annotated[
    list[Recipient],
    Meta(
        max_length=MAX_GROUP_PEOPLE,
        description="phone numbers (any notation), user JIDs or LIDs",
    ),
]


class CreateGroupRequest(Struct, forbid_unknown_fields=True):
    """A group to create, with this account as its admin."""

    name: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_GROUP_NAME,
            pattern=r"\S",
            description=f"the group's name, 1 to {MAX_GROUP_NAME} characters",
            extra={"mismatch": "is only white space"},
        ),
    ]
    participants: People


class ParticipantsRequest(Struct, forbid_unknown_fields=True):
    """People to add to, remove from, promote in or demote in a group (this account must be
    an admin)."""

    action: GroupAction
    participants: Annotated[People, Meta(min_length=1)]


class PairCodeRequest(Struct, forbid_unknown_fields=True):
    """The phone to link by a code typed on it instead of a QR code."""

    phone: Phone


# ---- response bodies ----------------------------------------------------------------------


class Error(Struct, kw_only=True):
    """Every error: `error` for programs, `message` for people."""

    error: Annotated[str, Meta(description="machine-readable code, e.g. invalid_request")]
    message: Annotated[str, Meta(description="what went wrong, for a person")]
    field: Annotated[str, Meta(description="the request field at fault (400, 409)")] | UnsetType = UNSET
    state: Annotated[SessionStatus, Meta(description="the session state (409, 503)")] | UnsetType = UNSET
    reason: Annotated[str, Meta(description="why the session is in that state")] | UnsetType = UNSET
    id: Annotated[str, Meta(description="the message an idempotency key belongs to (409)")] | UnsetType = (
        UNSET
    )
    storage: (
        Annotated[
            StorageKind,
            Meta(description="503/507 storage_unavailable, storage_full: what is wrong with the store"),
        ]
        | UnsetType
    ) = UNSET


class Account(Struct):
    """The linked WhatsApp account."""

    jid: Annotated[str, Meta(examples=["4915123456789@s.whatsapp.net"])]
    phone: Annotated[str, Meta(examples=["+4915123456789"])]
    push_name: str
    lid: Annotated[
        str | None,
        Meta(
            description="the account's LID (…@lid), when WhatsApp gave one: LID groups name "
            "and mention the account by it",
            examples=["123456789012345@lid"],
        ),
    ] = None


class State(Struct, kw_only=True):
    """The session's state and what that state carries."""

    state: SessionStatus
    since: Annotated[float, Meta(description="unix time the state began")]
    paired: Annotated[bool, Meta(description="a device is linked (so no QR code can be asked for)")]
    description: str
    qr_available: (
        Annotated[bool, Meta(description="waiting_for_scan: a QR code can be fetched")] | UnsetType
    ) = UNSET
    qr_expires_at: Annotated[float | None, Meta(description="waiting_for_scan")] | UnsetType = UNSET
    qr_expired: (
        Annotated[bool, Meta(description="waiting_for_scan: the codes ran out; GET /qr asks for new ones")]
        | UnsetType
    ) = UNSET
    account: Account | UnsetType = UNSET
    attempt: Annotated[int, Meta(description="reconnecting: attempt number")] | UnsetType = UNSET
    next_try_at: Annotated[float | None, Meta(description="reconnecting: unix time")] | UnsetType = UNSET
    reason: str | UnsetType = UNSET


class Storage(Struct):
    """Whether the message store takes writes."""

    available: Annotated[bool, Meta(description="the last write to the store worked")]
    kind: StorageKind | None
    reason: str | None
    since: Annotated[float | None, Meta(description="unix time it became unavailable")]
    failures: Annotated[int, Meta(ge=0, description="failed store operations since start")]


class Status(State, kw_only=True):
    """The session's state and the gateway's counters."""

    outbox_depth: Count
    storage: Storage
    healthy: Annotated[bool, Meta(description="false once a core thread has died")]
    webhook_backlog: Count
    reconnects: Count
    version: str
    uptime: Annotated[float, Meta(ge=0, description="seconds since start")]


class Health(Struct, kw_only=True):
    """Liveness."""

    status: Literal["ok", "failed"]
    state: SessionStatus
    reason: Annotated[str, Meta(description="failed: which core thread died and why")] | UnsetType = UNSET


class Ready(Struct, kw_only=True):
    """Readiness."""

    ready: bool
    state: SessionStatus
    description: str
    reason: Annotated[str, Meta(description="503: why not ready (storage_unavailable: …)")] | UnsetType = (
        UNSET
    )
    storage: StorageKind | UnsetType = UNSET


class SendAccepted(Struct):
    """The message is stored in the outbox."""

    id: str
    status: Literal["queued"]


class Media(Struct, kw_only=True):
    """The file a message carries."""

    id: str
    kind: MediaKind
    mimetype: str
    size: Annotated[int, Meta(ge=0, description="bytes")]
    sha256: Annotated[str, Meta(description="of the file, hex")]
    filename: str | None
    caption: str | None
    seconds: Annotated[float | None, Meta(description="audio and video: the duration")]
    width: Annotated[int | None, Meta(description="image, video, sticker: pixels")]
    height: Annotated[int | None, Meta(description="image, video, sticker: pixels")]
    pages: Annotated[int | None, Meta(description="document: pages")]
    state: Annotated[
        MediaState,
        Meta(
            description="stored: the file is in the data folder; pending: received, not downloaded "
            "yet; unavailable: received, cannot be downloaded; skipped: received, not downloaded "
            "by configuration; deleted: sent, removed after the retention time"
        ),
    ]
    reason: Annotated[str | None, Meta(description="unavailable, skipped: why")]
    url: Annotated[str, Meta(description="where the file is served")]


class Message(Struct, kw_only=True):
    """A message sent or received."""

    id: str
    direction: Direction
    to: Annotated[str, Meta(description="out: the recipient's JID")] | UnsetType = UNSET
    to_lid: (
        Annotated[
            str | None,
            Meta(
                description="out, to a person: the recipient's LID (…@lid) once sent, when WhatsApp "
                "named one for them (the recipient itself when it is a LID); null for a group"
            ),
        ]
        | UnsetType
    ) = UNSET
    chat: Annotated[str, Meta(description="in: the chat's JID")] | UnsetType = UNSET
    sender: Annotated[str | None, Meta(description="in: the sender's JID")] | UnsetType = UNSET
    push_name: Annotated[str | None, Meta(description="in: the sender's name")] | UnsetType = UNSET
    sender_phone: (
        Annotated[str | None, Meta(description="in: the sender's number (E.164), when WhatsApp revealed it")]
        | UnsetType
    ) = UNSET
    sender_lid: (
        Annotated[str | None, Meta(description="in: the sender's LID (…@lid), when known")] | UnsetType
    ) = UNSET
    mentions: Annotated[list[str], Meta(description="the JIDs the message mentions")]
    text: str
    status: MessageStatus
    wa_id: Annotated[str | None, Meta(description="WhatsApp's message id (sent, received)")]
    wa_timestamp: Annotated[float | None, Meta(description="WhatsApp's time (unix)")]
    error: Annotated[str | None, Meta(description="failed: why")]
    attempts: Count
    is_group: bool
    source: str | None
    possible_duplicate: Annotated[
        bool,
        Meta(
            description="an earlier attempt may have reached WhatsApp too (a crash or a lost "
            "connection cut it short after the write): the recipient may have it twice"
        ),
    ]
    media: Annotated[Media | None, Meta(description="a media message's file; null for text")]
    created_at: float
    updated_at: float


class Participant(Struct):
    jid: str
    lid: str | None
    phone: Annotated[str | None, Meta(description="E.164, when WhatsApp revealed the number")]
    admin: bool
    superadmin: bool


class Group(Struct, kw_only=True):
    jid: str
    name: str
    topic: str
    participant_count: Count
    only_admins_send: bool
    we_are_admin: bool
    participants: list[Participant] | UnsetType = UNSET


ParticipantReason = Literal[
    "privacy", "not_on_whatsapp", "not_participant", "already_participant", "group_full", "no_answer"
]


class ParticipantResult(Struct, kw_only=True):
    """What WhatsApp answered for one person asked for."""

    participant: Annotated[str, Meta(description="as given in the request")]
    jid: str
    lid: str | None
    phone: Annotated[str | None, Meta(description="E.164, when known")]
    ok: bool
    reason: (
        Annotated[
            ParticipantReason | str,
            Meta(
                description="why not (null when done): privacy (WhatsApp refused to add them "
                "because of their privacy settings; an invite link can be sent instead), "
                "not_on_whatsapp, not_participant, already_participant, "
                "group_full, no_answer, or refused_<code> for a code WhatsApp did not explain"
            ),
        ]
        | None
    )
    code: Annotated[int, Meta(description="WhatsApp's code for this person (0 or 200 when done)")]


class GroupCreated(Group, kw_only=True):
    """The new group and, for each person asked for, whether WhatsApp added them."""

    results: list[ParticipantResult]


class ParticipantResults(Struct, kw_only=True):
    """One result per person asked for (200 when at least one change was made)."""

    group: str
    action: GroupAction
    results: list[ParticipantResult]


class ParticipantsRefused(Error, kw_only=True):
    """No change was made: every person was refused (409 group_full or already_participant,
    422 for the others)."""

    results: list[ParticipantResult]


class InviteLink(Struct):
    group: str
    link: Annotated[str, Meta(examples=["https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv"])]


class LeftGroup(Struct):
    group: str
    status: Literal["left"]


class GroupList(Struct):
    groups: list[Group]


class NumberCheck(Struct):
    phone: str
    on_whatsapp: bool
    jid: str | None
    lid: str | None


class NumberChecks(Struct):
    results: list[NumberCheck]


class Contact(Struct):
    phone: Annotated[str | None, Meta(description="E.164, when WhatsApp revealed the number")]
    jid: Annotated[str | None, Meta(description="…@s.whatsapp.net")]
    lid: Annotated[str | None, Meta(description="…@lid")]
    push_name: str | None
    on_whatsapp: bool | None
    last_seen: float | None


class LastMessage(Struct):
    id: str
    direction: Direction
    status: str
    preview: Annotated[str, Meta(description='the text, or what the file is ("📷 Photo", "📄 report.pdf")')]
    sender: str | None


class Chat(Struct, kw_only=True):
    """A person or a group wadesk has exchanged messages with, or a joined group."""

    jid: str
    is_group: bool
    name: Annotated[str | None, Meta(description="the group's name or the person's push name")]
    phone: Annotated[str | None, Meta(description="a person's number (E.164), when known")]
    lid: str | None
    last_activity: Annotated[float | None, Meta(description="unix time of the newest message")]
    unread: Count
    failed: Annotated[int, Meta(ge=0, description="messages that failed since the chat was last read")]
    last_message: LastMessage | None


class ChatList(Struct):
    chats: list[Chat]
    next_cursor: str | None


class ChatRead(Struct):
    chat: str
    marked_read: Count


# ---- event payloads: webhooks, /events, /events/history ------------------------------------


class SessionStatusPayload(Struct, kw_only=True):
    """session.status: the session's new state (what GET /status says of it, without the
    counters and the description)."""

    state: SessionStatus
    since: Annotated[float, Meta(description="unix time the state began")]
    paired: bool
    previous: Annotated[SessionStatus | None, Meta(description="the state before; null in the first event")]
    qr_available: Annotated[bool, Meta(description="waiting_for_scan")] | UnsetType = UNSET
    qr_expires_at: Annotated[float | None, Meta(description="waiting_for_scan")] | UnsetType = UNSET
    qr_expired: Annotated[bool, Meta(description="waiting_for_scan: the codes ran out")] | UnsetType = UNSET
    account: Account | UnsetType = UNSET
    attempt: Annotated[int, Meta(description="reconnecting: attempt number")] | UnsetType = UNSET
    next_try_at: Annotated[float | None, Meta(description="reconnecting: unix time")] | UnsetType = UNSET
    reason: str | UnsetType = UNSET


class QRPayload(Struct, kw_only=True):
    """qr: a new pairing QR code (WhatsApp rotates it every 20 to 60 seconds)."""

    qr: Annotated[str, Meta(description="the string to encode in a QR code")]
    expires_at: UnixTime


class MessageStatusPayload(Struct, kw_only=True):
    """message.status: a message sent through wadesk was queued, sent, delivered, read,
    played or failed. Which fields come depends on the status."""

    id: Annotated[str, Meta(description="wadesk's id of the message (GET /messages/{id})")]
    to: Annotated[str, Meta(description="the recipient's JID")]
    status: MessageStatus
    text: Annotated[str, Meta(description="queued: the text (the caption for media)")] | UnsetType = UNSET
    wa_id: Annotated[str, Meta(description="sent, delivered, read, played: WhatsApp's id")] | UnsetType = (
        UNSET
    )
    sent_at: Annotated[float, Meta(description="sent: unix time")] | UnsetType = UNSET
    at: Annotated[float, Meta(description="delivered, read, played: unix time")] | UnsetType = UNSET
    reason: Annotated[str, Meta(description="failed: why")] | UnsetType = UNSET
    possible_duplicate: (
        Annotated[bool, Meta(description="sent, failed: an earlier attempt may have reached WhatsApp too")]
        | UnsetType
    ) = UNSET
    media: (
        Annotated[Media | None, Meta(description="queued, sent, failed: the file; null for text")] | UnsetType
    ) = UNSET
    to_lid: (
        Annotated[
            str | None,
            Meta(
                description="sent, to a person: the recipient's LID (…@lid) when WhatsApp named one "
                "(the recipient itself when it is a LID); null for a group"
            ),
        ]
        | UnsetType
    ) = UNSET


class MessageReceivedPayload(Struct, kw_only=True):
    """message.received: a message came in (text or media)."""

    id: Annotated[str, Meta(description="wadesk's id of the stored copy (GET /messages/{id})")]
    wa_id: Annotated[str, Meta(description="WhatsApp's message id")]
    chat: Annotated[str, Meta(description="the chat's JID (a group's for a group message)")]
    sender: Annotated[str, Meta(description="the sender's JID")]
    push_name: Annotated[str, Meta(description="the sender's name as they set it")]
    text: Annotated[str, Meta(description="the text, or a media message's caption")]
    timestamp: UnixTime
    is_group: bool
    media: Annotated[Media | None, Meta(description="a media message's file; null for text")]
    sender_phone: Annotated[str | None, Meta(description="E.164, when WhatsApp revealed the number")]
    sender_lid: Annotated[str | None, Meta(description="…@lid, when known")]
    mentions: Annotated[list[str], Meta(description="the JIDs mentioned")]
    mentioned_me: Annotated[bool, Meta(description="this account is among them")]


class Person(Struct, kw_only=True):
    """Someone in a group event, as far as wadesk knows them."""

    jid: Annotated[str | None, Meta(description="phone-number JID (…@s.whatsapp.net)")]
    lid: Annotated[str | None, Meta(description="…@lid")]
    phone: Annotated[str | None, Meta(description="E.164")]
    push_name: str | None


class GroupParticipantsPayload(Struct, kw_only=True):
    """group.participants: people joined (or were added), left (or were removed), were
    promoted to admin or demoted, in a group this account is in."""

    group: Annotated[str, Meta(description="the group's JID")]
    action: Literal["join", "leave", "promote", "demote"]
    participants: list[Person]
    by: Annotated[Person | None, Meta(description="who made the change, when WhatsApp said")]
    timestamp: UnixTime


EventId = Annotated[str, Meta(description="unique, sortable; the webhook-id of its deliveries")]


class _Event(Struct, tag_field="event"):
    """The envelope every event shares: its name (the tag), id and time; each event adds its payload."""

    id: EventId
    timestamp: UnixTime


class SessionStatusEvent(_Event, kw_only=True, tag="session.status"):
    payload: SessionStatusPayload


class QREvent(_Event, kw_only=True, tag="qr"):
    payload: QRPayload


class MessageStatusEvent(_Event, kw_only=True, tag="message.status"):
    payload: MessageStatusPayload


class MessageReceivedEvent(_Event, kw_only=True, tag="message.received"):
    payload: MessageReceivedPayload


class GroupParticipantsEvent(_Event, kw_only=True, tag="group.participants"):
    payload: GroupParticipantsPayload


EVENTS: dict[str, type[Struct]] = {  # the envelope of each event, by its name
    "message.received": MessageReceivedEvent,
    "message.status": MessageStatusEvent,
    "session.status": SessionStatusEvent,
    "qr": QREvent,
    "group.participants": GroupParticipantsEvent,
}
assert set(EVENTS) == set(EVENT_NAMES)


class StreamNote(Struct, kw_only=True):
    """The data of /events' own events: replay.gap (error replay_incomplete, with after)
    and error (too_slow: events were dropped, reconnect)."""

    error: Literal["replay_incomplete", "too_slow"]
    message: str
    after: Annotated[str, Meta(description="replay_incomplete: the Last-Event-ID asked for")] | UnsetType = (
        UNSET
    )


AnyEvent = MessageReceivedEvent | MessageStatusEvent | SessionStatusEvent | QREvent | GroupParticipantsEvent


class EventPage(Struct, kw_only=True):
    events: list[AnyEvent]
    gap: Annotated[bool, Meta(description="the event `after` named is no longer logged (or unknown)")]
    next_after: Annotated[str | None, Meta(description="pass as after for the next page")]


class EventTicket(Struct, kw_only=True):
    """A single-use credential for ``GET /events?ticket=…`` (a browser's EventSource cannot
    send the token in a header)."""

    ticket: Annotated[str, Meta(description="pass as ?ticket= to GET /events, once")]
    expires_in: Annotated[float, Meta(description="seconds it stays valid")]
    expires_at: UnixTime


class ContactList(Struct):
    contacts: list[Contact]
    next_cursor: str | None


class MessageList(Struct):
    """One page of messages, newest first."""

    messages: list[Message]
    next_cursor: Annotated[str | None, Meta(description="pass as ?cursor= for the next page")]


class PairCode(Struct):
    """The code to type on the phone."""

    code: Annotated[str, Meta(examples=["ABCD-EFGH"])]


class QR(Struct):
    """The current pairing QR code."""

    qr: Annotated[str, Meta(description="the string encoded in the QR code")]
    expires_at: float | None
    image: Annotated[str, Meta(description="data:image/png;base64,…")]


class LoggedOut(Struct):
    """The device is unlinked."""

    status: Literal["logged_out"]
    state: SessionStatus


MODELS: tuple[type[Struct], ...] = (  # the components of the OpenAPI document
    Error,
    Status,
    Health,
    Ready,
    SendRequest,
    SendMediaRequest,
    SendMediaForm,
    SendAccepted,
    Message,
    MessageList,
    PairCodeRequest,
    PairCode,
    GroupList,
    Group,
    CreateGroupRequest,
    GroupCreated,
    ParticipantsRequest,
    ParticipantResults,
    ParticipantsRefused,
    InviteLink,
    LeftGroup,
    NumberChecks,
    ContactList,
    ChatList,
    ChatRead,
    EventPage,
    EventTicket,
    *EVENTS.values(),
    StreamNote,
    QR,
    LoggedOut,
)

# ---- decoding -----------------------------------------------------------------------------

T = TypeVar("T", bound=Struct)
_EXPECTED = re.compile(r"^Expected `([^`]+)`, got `[^`]+`")
_TYPE_NAMES = {
    "str": "a string",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "object": "a JSON object",
    "array": "a JSON array",
}


class FieldError(ValueError):
    """A request field (or the body itself: ``body``) is not acceptable."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Field:
    """One value of a declared type: ``check`` raises :class:`FieldError` naming it."""

    __slots__ = ("meta", "name", "required", "type")

    def __init__(self, name: str, hint: Any, *, required: bool = True) -> None:
        self.name = name
        self.type = hint
        self.required = required
        self.meta = _meta(hint)

    def check(self, value: Any) -> Any:
        if isinstance(value, str) and not _encodable(value):
            raise FieldError(self.name, "is not valid Unicode text")
        try:
            return msgspec.convert(value, self.type)
        except msgspec.ValidationError as exc:
            raise FieldError(self.name, self.problem(value, str(exc))) from None

    def problem(self, value: Any, error: str) -> str:
        """A sentence for msgspec's ``error`` about ``value``."""
        expected = _EXPECTED.match(error)
        if expected is not None:
            names = [_TYPE_NAMES.get(t, t) for t in expected.group(1).split(" | ") if t != "null"]
            return "must be " + " or ".join(names)
        meta = self.meta
        if meta is None:
            return _without_path(error)
        words: dict[str, str] = meta.extra or {}
        if "problem" in words:
            return words["problem"]
        if isinstance(value, str):
            if meta.min_length is not None and len(value) < meta.min_length:
                if not value:
                    return words.get("empty", "is empty")
                return f"must be at least {meta.min_length} characters long"
            if meta.max_length is not None and len(value) > meta.max_length:
                return f"is {len(value)} characters long; the limit is {meta.max_length}"
            if meta.pattern is not None and re.search(meta.pattern, value) is None:
                return words.get("mismatch", f"must match {meta.pattern}")
        return _without_path(error)


class Body(Generic[T]):
    """Decodes request bodies of one :class:`msgspec.Struct` type.

    The well-formed body goes through msgspec in one pass. Anything else is read again with
    the standard library's parser (which also takes UTF-16 and UTF-32) to say what is wrong:
    first the body, then unknown fields, then each declared field in order. A JSON null
    counts as leaving the field out.
    """

    def __init__(self, model: type[T]) -> None:
        self.type = model
        self._decoder = msgspec.json.Decoder(model)
        self.fields = tuple(
            Field(f.encode_name, f.type, required=f.required) for f in msgspec.structs.fields(model)
        )
        self.names = tuple(f.name for f in self.fields)

    def decode(self, raw: bytes) -> T:
        try:
            return self._decoder.decode(raw)
        except msgspec.DecodeError:  # ValidationError too
            return self._explain(raw)

    def _explain(self, raw: bytes) -> T:
        if not raw.strip():
            raise FieldError("body", "is empty; send a JSON object")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FieldError("body", f"is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
        except ValueError:  # not UTF-8, -16 or -32
            raise FieldError("body", "is not valid JSON") from None
        except RecursionError:
            raise FieldError("body", "is nested too deeply") from None
        if not isinstance(data, dict):
            raise FieldError("body", "must be a JSON object")
        for name in data:
            if name not in self.names:
                raise FieldError(name, "unknown field; expected " + ", ".join(self.names))
        values = {}
        for f in self.fields:
            value = data.get(f.name)
            if value is None:
                if f.required:
                    raise FieldError(f.name, "is required")
                continue
            values[f.name] = f.check(value)
        try:
            return msgspec.convert(values, self.type)
        except msgspec.ValidationError as exc:  # not expected: every field passed on its own
            raise FieldError(_field_of(str(exc)), _without_path(str(exc))) from None


def _meta(hint: Any) -> Meta | None:
    """The constraints of a field type: ``Annotated[str, Meta(...)]``, optionally ``| None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [t for t in get_args(hint) if t is not types.NoneType]
        if len(inner) != 1:
            return None
        hint = inner[0]
    if typing.get_origin(hint) is not Annotated:
        return None
    merged: dict[str, Any] = {}
    for m in get_args(hint)[1:]:  # nested Annotated: the inner constraints come first
        if isinstance(m, Meta):
            for key in ("min_length", "max_length", "pattern", "extra"):
                if getattr(m, key) is not None:
                    merged.setdefault(key, getattr(m, key))
    return Meta(**merged) if merged else None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _without_path(error: str) -> str:
    text = error.split(" - at `$", 1)[0]
    return text[:1].lower() + text[1:]


def _field_of(error: str) -> str:
    """The top-level field a msgspec error names, by its path (``... - at `$.to```) or, for
    the object itself, by its text (``Object missing required field `to```); else ``body``."""
    match = re.search(r" - at `\$\.([^.`\[]+)", error) or re.match(r"Object .* field `([^`]+)`$", error)
    return match.group(1) if match else "body"


SEND = Body(SendRequest)
SEND_MEDIA = Body(SendMediaRequest)
MEDIA_UPLOAD = Body(MediaUpload)
FORM_FIELDS = {  # the text fields of a multipart /send, checked one by one
    "to": Field("to", Recipient),
    "caption": Field("caption", Caption, required=False),
    "filename": Field("filename", Filename, required=False),
    "kind": Field("kind", MediaKind, required=False),
    "idempotency_key": Field("idempotency_key", IdempotencyKey, required=False),
    "mentions": Field("mentions", Recipient, required=False),  # repeated: checked one by one
    "mention_all": Field("mention_all", Literal["true", "false"], required=False),
}
PAIR_CODE = Body(PairCodeRequest)
CREATE_GROUP = Body(CreateGroupRequest)
PARTICIPANTS = Body(ParticipantsRequest)
IDEMPOTENCY_KEY_HEADER = Field("Idempotency-Key", IdempotencyKey)
