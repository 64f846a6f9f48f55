"""neonize's events and commands, translated for the session.

A :class:`NeonizeDriver` wraps one neonize client for one connection attempt. Its
``connect()`` blocks, and its callbacks arrive on threads the Go runtime owns, so the
driver runs it on a daemon thread and turns every callback into a small
:class:`DriverEvent` handed to ``post`` (the session's queue). It never calls back into
the session in any other way.

The workarounds for neonize 0.5.2's hazards (its unsynchronised maps, ``Stop`` before
its event loop, an unpaired ``connect`` that never returns, its finalizer) live in
:mod:`.neonize_compat`; this module only uses them. Those two are the only modules that
import neonize.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from pathlib import Path
from typing import Any

from . import neonize_compat as compat
from .events import MediaFacts
from .neonize_compat import load_neonize

log = logging.getLogger("wadesk.driver")

# ---- why WhatsApp refused: enums, so that no caller matches our wording ------------------------


class FailureReason(IntEnum):
    """Why WhatsApp refused or ended a connection (whatsmeow's ConnectFailureReason, as
    neonize numbers it in its events)."""

    OTHER = 0
    REFUSED = 1
    LOGGED_OUT = 2
    TEMP_BANNED = 3
    MAIN_DEVICE_GONE = 4
    UNKNOWN_LOGOUT = 5
    CLIENT_OUTDATED = 6
    BAD_USER_AGENT = 7
    INTERNAL_SERVER_ERROR = 8
    EXPERIMENTAL = 9
    SERVICE_UNAVAILABLE = 10

    @classmethod
    def of(cls, code: int) -> FailureReason:
        try:
            return cls(code)
        except ValueError:
            return cls.OTHER

    @property
    def logs_out(self) -> bool:
        """The device is no longer linked: pairing must start over."""
        return self in (
            FailureReason.LOGGED_OUT,
            FailureReason.MAIN_DEVICE_GONE,
            FailureReason.UNKNOWN_LOGOUT,
        )

    @property
    def text(self) -> str:
        return _FAILURE_TEXT[self]


_FAILURE_TEXT = {
    FailureReason.OTHER: "WhatsApp refused the connection for a reason wadesk does not know",
    FailureReason.REFUSED: "WhatsApp refused the connection",
    FailureReason.LOGGED_OUT: "the device was logged out",
    FailureReason.TEMP_BANNED: "the account is temporarily banned",
    FailureReason.MAIN_DEVICE_GONE: "the main device (the phone) is gone",
    FailureReason.UNKNOWN_LOGOUT: "the device was logged out for an unknown reason",
    FailureReason.CLIENT_OUTDATED: "this client version is outdated",
    FailureReason.BAD_USER_AGENT: "WhatsApp rejected this client (bad user agent)",
    FailureReason.INTERNAL_SERVER_ERROR: "WhatsApp had an internal server error",
    FailureReason.EXPERIMENTAL: "WhatsApp refused the connection (experimental)",
    FailureReason.SERVICE_UNAVAILABLE: "the WhatsApp service is unavailable",
}


class SendFailure(Enum):
    """What a failed send's error means."""

    REACH_OUT_TIMELOCK = "reach_out_timelock"  # 463: the account may not start this chat
    ADMINS_ONLY = "admins_only"  # 420: only the group's admins may send to it
    REJECTED = "rejected"  # WhatsApp answered with an error code (400, 401, 403, 404, 406, ...)
    UNDELIVERABLE = "undeliverable"  # no such address (unknown server, invalid JID)
    TRANSIENT = "transient"  # anything else: may work later


# ---- driver events (internal to the core) ---------------------------------------------------


@dataclass(frozen=True)
class DriverEvent:
    driver_id: str


@dataclass(frozen=True)
class QRCode(DriverEvent):
    code: str


@dataclass(frozen=True)
class PairSuccess(DriverEvent):
    jid: str


@dataclass(frozen=True)
class PairFailed(DriverEvent):
    reason: str


@dataclass(frozen=True)
class Connected(DriverEvent):
    jid: str
    phone: str
    push_name: str
    lid: str = ""  # the account's own LID (…@lid), when WhatsApp gave one at pairing


@dataclass(frozen=True)
class Disconnected(DriverEvent):
    pass


@dataclass(frozen=True)
class LoggedOut(DriverEvent):
    reason: FailureReason
    on_connect: bool


@dataclass(frozen=True)
class StreamReplaced(DriverEvent):
    pass


@dataclass(frozen=True)
class TemporaryBan(DriverEvent):
    code: str
    expires_in: float


@dataclass(frozen=True)
class ConnectFailure(DriverEvent):
    reason: FailureReason
    message: str


@dataclass(frozen=True)
class ClientOutdated(DriverEvent):
    pass


@dataclass(frozen=True)
class PairingEnded(DriverEvent):
    """whatsmeow's QR loop finished: 'success', 'timeout' or an error name."""

    status: str


@dataclass(frozen=True, kw_only=True)
class IncomingMedia(MediaFacts):
    """A media file a received message points to (not downloaded yet). ``source`` is the
    serialized message that :meth:`NeonizeDriver.download` takes to fetch it."""

    kind: str  # image, video, audio, voice, document, sticker
    mimetype: str
    size: int
    sha256: str  # hex, of the plaintext (WhatsApp's fileSHA256)
    source: bytes


@dataclass(frozen=True)
class Incoming(DriverEvent):
    wa_id: str
    chat: str
    sender: str  # the phone-number JID when WhatsApp gave one, else the LID
    push_name: str
    text: str
    timestamp: float
    is_group: bool
    media: IncomingMedia | None = None
    sender_lid: str | None = None  # …@lid, when known
    mentions: tuple[str, ...] = ()  # the JIDs the message mentions


@dataclass(frozen=True)
class Participant:
    jid: str
    lid: str | None
    phone: str | None  # digits, when WhatsApp revealed the number
    admin: bool
    superadmin: bool


@dataclass(frozen=True)
class GroupInfo:
    jid: str
    name: str
    topic: str
    announce: bool  # only admins may send
    locked: bool  # only admins may change the group's settings
    owner: str
    created: float
    participants: tuple[Participant, ...]


@dataclass(frozen=True)
class ParticipantResult:
    """What WhatsApp answered for one person in a create or a participant change.
    ``reason`` is None when the change was made, else why not (:data:`PARTICIPANT_REFUSALS`)."""

    jid: str
    reason: str | None
    code: int  # WhatsApp's code for this person; 0 or 200 when done
    lid: str | None = None
    phone: str | None = None  # digits


# WhatsApp's per-person codes in a group change, by what they mean
PARTICIPANT_REFUSALS: dict[int, str] = {
    403: "privacy",  # their privacy settings do not let this account add them: send an invite link
    404: "not_on_whatsapp",  # (for remove, promote, demote: not in the group)
    409: "already_participant",
    500: "group_full",
}
GROUP_ACTIONS = ("add", "remove", "promote", "demote")


def group_refusal(text: str) -> str | None:
    """The :class:`GroupRefused` reason whatsmeow's error text names, if any. whatsmeow
    turns WhatsApp's 401 into "not-authorized" (or, for invite links, "you don't have the
    permission"), 403 into "forbidden" / "not participating", 404 into "item-not-found" /
    "does not exist"."""
    low = text.lower()
    if "status 401" in low or "not-authorized" in low or "permission" in low:
        return "not_admin"
    if "status 403" in low or "forbidden" in low or "not participating" in low:
        return "not_in_group"
    if "status 404" in low or "item-not-found" in low or "does not exist" in low:
        return "no_such_group"
    return None


@dataclass(frozen=True)
class GroupChanged(DriverEvent):
    """Someone joined, left, was promoted or demoted in a group (WhatsApp's w:gp2
    notification, neonize's GroupInfoEv). JIDs as WhatsApp named them: by LID in a LID
    group."""

    group: str
    actor: str  # who made the change ("" when WhatsApp did not say)
    actor_name: str
    timestamp: float
    joined: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    promoted: tuple[str, ...] = ()
    demoted: tuple[str, ...] = ()


@dataclass(frozen=True)
class NumberCheck:
    query: str  # what was asked (+digits)
    on_whatsapp: bool
    jid: str | None  # the phone-number JID
    lid: str | None = None  # …@lid, when WhatsApp named the user by it


@dataclass(frozen=True, kw_only=True)
class OutgoingMedia(MediaFacts):
    """A media message to send: the file's bytes and what the recipient's phone shows."""

    kind: str
    data: bytes
    mimetype: str
    mentions: tuple[str, ...] = ()  # the JIDs the caption mentions (image, video, document)


@dataclass(frozen=True)
class Receipt(DriverEvent):
    wa_ids: tuple[str, ...]
    status: str  # delivered | read | played
    chat: str
    timestamp: float


@dataclass(frozen=True)
class Exited(DriverEvent):
    """The neonize call returned (error None) or failed (error is the reason)."""

    error: str | None


@dataclass(frozen=True)
class SendResult:
    wa_id: str
    timestamp: float


class DownloadFailed(RuntimeError):
    """A received file could not be downloaded. ``final`` when WhatsApp says it is gone
    (403, 404, 410) or the file does not match its hashes; else it may work later."""

    def __init__(self, message: str, *, final: bool) -> None:
        super().__init__(message)
        self.final = final


_FINAL_DOWNLOAD = ("status code 403", "status code 404", "status code 410", "hmac", "sha256", "no url")


class DriverError(RuntimeError):
    """A neonize call failed; ``str(err)`` is whatsmeow's message."""


class NotRunning(DriverError):
    """Nothing was handed to neonize: the client is not connected (or is being stopped)."""

    def __init__(self) -> None:
        super().__init__("not connected to WhatsApp")


class LibraryBusy(DriverError):
    """The client was not started: neonize's maps stayed busy (another client's call)."""


class GroupRefused(DriverError):
    """WhatsApp refused a group request as a whole. ``reason``: ``not_admin`` (this account
    may not do that), ``not_in_group`` (it is not a participant), ``no_such_group``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SendFailed(DriverError):
    """A send that neonize reported as failed. ``written`` is False only when whatsmeow's
    error proves the message never left this process, or that WhatsApp refused it; True
    when it may have been written to WhatsApp before the failure (no answer, connection
    lost after the write, or an error this module does not know). ``failure`` and
    ``code`` say what WhatsApp's answer means (see :func:`classify_send_error`)."""

    def __init__(
        self,
        message: str,
        *,
        written: bool,
        failure: SendFailure = SendFailure.TRANSIENT,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.written = written
        self.failure = failure
        self.code = code

    @classmethod
    def of(cls, error: BaseException) -> SendFailed:
        """A SendFailed for any error a send raised (our own, or a fake's DriverError)."""
        if isinstance(error, SendFailed):
            return error
        text = str(error) or type(error).__name__
        if isinstance(error, NotRunning):
            return cls(text, written=False)
        failure, code = classify_send_error(text)
        return cls(text, written=send_error_written(text), failure=failure, code=code)


def classify_send_error(text: str) -> tuple[SendFailure, int | None]:
    """What whatsmeow's send error means: ``server returned error 463`` (WhatsApp's ack
    carried an error code), an address WhatsApp cannot deliver to, or something passing.
    420 is what WhatsApp answers a message into a group where only admins may send, from an
    account that is not one of them (WhatsApp documents no code; whatsmeow-based clients
    report 420 for this case)."""
    low = text.lower()
    found = re.search(r"(?:server returned error|error|status)\s+(\d{3})", low)
    code = int(found.group(1)) if found else None
    if code == 463:
        return SendFailure.REACH_OUT_TIMELOCK, code
    if code == 420:
        return SendFailure.ADMINS_ONLY, code
    if code in (400, 401, 403, 404, 406):
        return SendFailure.REJECTED, code
    if "unknown server" in low or "invalid jid" in low or "can't send message to" in low:
        return SendFailure.UNDELIVERABLE, None
    return SendFailure.TRANSIENT, code


# whatsmeow errors raised before the message node is written, or WhatsApp's own refusal
# of it (an error ack means the server did not take the message)
_NOT_WRITTEN = (
    "websocket not connected",  # ErrNotConnected, checked before the write
    "the store doesn't contain a device jid",  # ErrNotLoggedIn
    "failed to get device list",  # usync before the message is built
    "failed to encrypt",
    "failed to marshal",
    "unknown server",
    "invalid jid",
    "can't send message to",
    "server returned error",  # the server's ack carried an error: it refused the message
)


def send_error_written(text: str) -> bool:
    """True unless ``text`` (whatsmeow's send error) proves the message was not delivered."""
    low = text.lower()
    return not any(marker in low for marker in _NOT_WRITTEN)


def _jid_str(jid: Any) -> str:
    if jid is None or not getattr(jid, "Server", ""):
        return ""
    return f"{jid.User}@{jid.Server}" if jid.User else jid.Server


def _text_of(message: Any) -> str | None:
    """The text of a WhatsApp message, or None if it carries no text we show."""
    if message is None:
        return None
    if message.conversation:
        return message.conversation
    if message.HasField("extendedTextMessage") and message.extendedTextMessage.text:
        return message.extendedTextMessage.text
    for inner in ("ephemeralMessage", "viewOnceMessage", "documentWithCaptionMessage"):
        if message.HasField(inner):
            return _text_of(getattr(message, inner).message)
    for media in ("imageMessage", "videoMessage", "documentMessage"):
        if message.HasField(media) and getattr(message, media).caption:
            return getattr(message, media).caption
    return None


_MEDIA_FIELDS = (
    ("imageMessage", "image"),
    ("videoMessage", "video"),
    ("audioMessage", "audio"),
    ("documentMessage", "document"),
    ("stickerMessage", "sticker"),
)
_WRAPPERS = ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "documentWithCaptionMessage")


def media_of(message: Any) -> IncomingMedia | None:
    """The media file a WhatsApp message carries, or None."""
    if message is None:
        return None
    for inner in _WRAPPERS:
        if message.HasField(inner):
            return media_of(getattr(message, inner).message)
    for name, kind in _MEDIA_FIELDS:
        if not message.HasField(name):
            continue
        m = getattr(message, name)
        if kind == "audio" and m.PTT:
            kind = "voice"
        only = type(message)()
        getattr(only, name).CopyFrom(m)

        def get(field: str, m: Any = m) -> Any:
            return getattr(m, field) if field in m.DESCRIPTOR.fields_by_name else None

        return IncomingMedia(
            kind=kind,
            mimetype=m.mimetype or "application/octet-stream",
            size=int(m.fileLength),
            sha256=bytes(m.fileSHA256).hex(),
            source=only.SerializeToString(),
            filename=get("fileName") or None,
            caption=get("caption") or None,
            seconds=float(get("seconds")) if get("seconds") else None,
            width=int(get("width")) if get("width") else None,
            height=int(get("height")) if get("height") else None,
            pages=int(get("pageCount")) if get("pageCount") else None,
            thumbnail=bytes(get("JPEGThumbnail")) if get("JPEGThumbnail") else None,
        )
    return None


def mentions_of(message: Any) -> tuple[str, ...]:
    """The JIDs a message mentions (its context info's mentionedJID)."""
    if message is None:
        return ()
    for inner in _WRAPPERS:
        if message.HasField(inner):
            return mentions_of(getattr(message, inner).message)
    for name in ("extendedTextMessage", "imageMessage", "videoMessage", "documentMessage"):
        if message.HasField(name) and getattr(message, name).HasField("contextInfo"):
            return tuple(getattr(message, name).contextInfo.mentionedJID)
    return ()


def unix_seconds(value: float | int | None) -> float:
    """A neonize timestamp as Unix seconds: MessageInfo.Timestamp comes in milliseconds,
    other events in seconds. Anything past the year 5138 in seconds is milliseconds."""
    if not value:
        return time.time()
    value = float(value)
    return value / 1000.0 if value > 1e11 else value


_RECEIPT_STATUS = {1: "delivered", 4: "read", 6: "played"}
_TEMP_BAN_REASONS = {
    1: "sending to too many people",
    2: "being blocked by too many users",
    3: "creating too many groups",
    4: "sending the same message to too many people",
    5: "broadcast list misuse",
}


class NeonizeDriver:
    """One neonize client and its blocking connect call, for one connection attempt.

    Its flags are Events: callbacks set and read them from Go threads."""

    def __init__(
        self,
        db_path: Path,
        post: Callable[[DriverEvent], None],
        *,
        device_name: str = "wadesk",
        proxy: str | None = None,
    ) -> None:
        self.id = secrets.token_hex(6)
        self.db_path = Path(db_path)
        self.device_name = device_name
        self.proxy = proxy
        self._post = post
        self._gate = compat.Gate()  # no call into neonize may overlap its Stop
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._returned = threading.Event()
        self._stopped = threading.Event()
        self._pairing = threading.Event()  # the QR loop is running (device not paired yet)
        self._loop_running = threading.Event()  # neonize's event loop started (Stop is safe)
        self._hold: compat.StartHold | None = None

    # -- lifecycle --
    def start(self) -> None:
        n = load_neonize()
        device_props = n["DeviceProps"](os=self.device_name, platformType=n["DeviceProps"].DESKTOP)
        client = n["client_class"](str(self.db_path), props=device_props, uuid=f"wadesk-{self.id}")
        client.on_login_status = self._on_login_status
        client.event.qr(self._on_qr)
        ev = n["events"]
        handlers = {
            ev.PairStatusEv: self._on_pair_status,
            ev.ConnectedEv: self._on_connected,
            ev.DisconnectedEv: self._on_disconnected,
            ev.LoggedOutEv: self._on_logged_out,
            ev.StreamReplacedEv: self._on_stream_replaced,
            ev.TemporaryBanEv: self._on_temporary_ban,
            ev.ConnectFailureEv: self._on_connect_failure,
            ev.ClientOutdatedEv: self._on_client_outdated,
            ev.MessageEv: self._on_message,
            ev.ReceiptEv: self._on_receipt,
            ev.GroupInfoEv: self._on_group_info,
        }
        for event_type, handler in handlers.items():
            client.event(event_type)(self._guard(handler))
        compat.detach_finalizer(client)  # we call Stop ourselves, when it is safe
        compat.watch_event_loop(client, self._on_event_loop)
        self._client = client
        proxy = n["ProxySettings"](proxy_address=self.proxy) if self.proxy else None
        self._thread = threading.Thread(
            target=self._run, args=(proxy,), name=f"wadesk-neonize-{self.id}", daemon=True
        )
        try:
            self._hold = compat.StartHold()
        except compat.LibraryBusy as exc:
            self._stopped.set()
            raise LibraryBusy(str(exc)) from exc
        self._thread.start()

    @property
    def _alive(self) -> threading.Event:
        """Set once the call is past its start-up map writes."""
        assert self._hold is not None
        return self._hold.alive

    def _show_life(self) -> None:
        if self._hold is not None:
            self._hold.release()

    def _on_event_loop(self) -> None:
        self._loop_running.set()
        self._show_life()

    def _run(self, proxy: Any) -> None:
        error: str | None = None
        try:
            self._client.connect(proxy)
        except Exception as exc:  # noqa: BLE001 - reported to the session as a reason
            error = str(exc) or type(exc).__name__
        finally:
            compat.retain_callbacks(self._client)  # Go may still call them (see compat)
            self._returned.set()
            self._show_life()
        if not self._stopped.is_set():
            self._post(Exited(self.id, error))

    def stop(self, timeout: float = 3.0) -> bool:
        """Disconnect and cancel the neonize call. True if it returned within ``timeout``;
        otherwise it is finished in the background (or, unpaired, left behind)."""
        if self._client is None:
            return True
        if self._stopped.is_set():
            return self._returned.is_set()
        self._stopped.set()
        if self._returned.is_set() or self._loop_running.is_set():
            self._stop_now(timeout)
            return self._returned.wait(timeout)
        if self._pairing.is_set():
            self._end_pairing_loop()
            return False
        threading.Thread(
            target=compat.stop_when_safe,
            args=(self._returned, self._loop_running, self._pairing, lambda: self._stop_now(3.0)),
            kwargs={"end_pairing": self._end_pairing_loop},
            name=f"wadesk-reap-{self.id}",
            daemon=True,
        ).start()
        return False

    def _stop_now(self, timeout: float) -> None:
        compat.stop_client(self._client, self._gate, timeout)

    def _end_pairing_loop(self) -> None:
        compat.end_pairing_loop(self.proxy)

    @property
    def returned(self) -> bool:
        return self._returned.is_set()

    # -- calls --
    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if (
            self._stopped.is_set()
            or self._client is None
            or self._hold is None
            or not self._alive.is_set()
            or not self._gate.enter()
        ):
            raise NotRunning()
        try:
            with compat.MAPS.shared():
                return getattr(self._client, name)(*args, **kwargs)
        except DriverError:
            raise
        except compat.LibraryBusy as exc:  # the call was not made
            raise NotRunning() from exc
        except Exception as exc:
            raise DriverError(str(exc) or type(exc).__name__) from exc
        finally:
            self._gate.leave()

    def send_text(self, jid: str, text: str, mentions: tuple[str, ...] = ()) -> SendResult:
        target = _jid(jid)
        message: Any = text
        if mentions:  # an extended text with the mentioned JIDs, as WhatsApp's clients send it
            proto = load_neonize()["proto"]
            message = proto.Message(
                extendedTextMessage=proto.ExtendedTextMessage(
                    text=text, contextInfo=proto.ContextInfo(mentionedJID=list(mentions))
                )
            )
        return self._send_message(target, message)

    def _send_message(self, target: Any, message: Any) -> SendResult:
        try:
            response = self._call("send_message", target, message)
        except NotRunning:
            raise
        except DriverError as exc:
            raise SendFailed.of(exc) from exc
        return SendResult(wa_id=response.ID, timestamp=float(response.Timestamp or time.time()))

    def send_media(self, jid: str, media: OutgoingMedia) -> SendResult:
        """Upload the file, then send the message that points to it. An upload that fails
        sent nothing (``written`` False); the send itself is classified as for text."""
        n = load_neonize()
        try:
            upload = self._call("upload", media.data, n["media_types"][media.kind])
        except NotRunning:
            raise
        except DriverError as exc:
            raise SendFailed(f"upload failed: {exc}", written=False) from exc
        return self._send_message(_jid(jid), build_media_message(n["proto"], media, upload))

    def download(self, source: bytes) -> bytes:
        """Download and decrypt a received file (whatsmeow checks its MAC and hashes)."""
        message = load_neonize()["proto"].Message.FromString(source)
        try:
            return bytes(self._call("download_any", message))
        except NotRunning:
            raise
        except DriverError as exc:
            low = str(exc).lower()
            raise DownloadFailed(str(exc), final=any(m in low for m in _FINAL_DOWNLOAD)) from exc

    # -- groups and contacts --
    def joined_groups(self) -> list[GroupInfo]:
        return [_group(g) for g in self._call("get_joined_groups")]

    def group_info(self, jid: str) -> GroupInfo:
        return _group(self._group_call("get_group_info", _jid(jid)))

    def _group_call(self, name: str, *args: Any) -> Any:
        try:
            return self._call(name, *args)
        except NotRunning:
            raise
        except DriverError as exc:
            reason = group_refusal(str(exc))
            if reason is None:
                raise
            raise GroupRefused(str(exc), reason) from exc

    def create_group(self, name: str, participants: list[str]) -> tuple[GroupInfo, list[ParticipantResult]]:
        """Create a group with this account as its admin. WhatsApp leaves out whom it
        could not add and says why, person by person."""
        info = self._group_call("create_group", name, [_jid(j) for j in participants])
        refused = {_jid_str(p.JID): p for p in info.Participants if p.Error}
        group = _group(info, members_only=True)
        results = []
        for jid in participants:
            p = refused.get(jid) or next((q for q in group.participants if jid in (q.jid, q.lid)), None)
            if isinstance(p, Participant):
                results.append(ParticipantResult(jid, None, 0, p.lid, p.phone))
            elif p is not None:
                results.append(_participant_result(jid, p, "add"))
            else:  # neither added nor refused by name: report what is known
                results.append(ParticipantResult(jid, None, 0))
        return group, results

    def change_participants(
        self, group: str, action: str, participants: list[str]
    ) -> list[ParticipantResult]:
        """Add, remove, promote or demote people; one result per person asked for."""
        change = load_neonize()["ParticipantChange"][action.upper()]
        answer = list(
            self._group_call(
                "update_group_participants", _jid(group), [_jid(j) for j in participants], change
            )
        )
        by_jid: dict[str, Any] = {}
        for p in answer:
            for j in (_jid_str(p.JID), _jid_str(p.LID), _jid_str(p.PhoneNumber)):
                if j:
                    by_jid[j] = p
        results = []
        for jid in participants:
            p = by_jid.get(jid)
            results.append(
                _participant_result(jid, p, action)
                if p is not None
                else ParticipantResult(jid, "no_answer", -1)
            )
        return results

    def leave_group(self, group: str) -> None:
        self._group_call("leave_group", _jid(group))

    def invite_link(self, group: str, *, revoke: bool = False) -> str:
        return str(self._group_call("get_group_invite_link", _jid(group), revoke))

    def check_numbers(self, phones: list[str]) -> list[NumberCheck]:
        """Ask WhatsApp which numbers (digits) have an account. neonize needs the + and
        raises on an empty answer: no answer means none of them. whatsmeow asks by LID:
        WhatsApp names a user by its LID and number (whatsmeow keeps the pair, neonize
        passes on only the LID), a number without an account by the number."""
        try:
            answers = self._call("is_on_whatsapp", *[f"+{p}" for p in phones])
        except DriverError as exc:
            if "empty" in str(exc).lower() or "no result" in str(exc).lower():
                return [NumberCheck(f"+{p}", False, None) for p in phones]
            raise
        found = {str(a.Query).lstrip("+"): a for a in answers}
        out = []
        for p in phones:
            a = found.get(p)
            if a is None:
                out.append(NumberCheck(f"+{p}", False, None))
                continue
            named = _jid_str(a.JID)
            if named.endswith("@lid"):
                out.append(NumberCheck(f"+{p}", bool(a.IsIn), f"{p}@s.whatsapp.net", named))
            else:
                out.append(NumberCheck(f"+{p}", bool(a.IsIn), named or None))
        return out

    def lid_of(self, jid: str) -> str | None:
        """The LID whatsmeow's store maps this phone-number JID to, if it knows one."""
        try:
            found = self._call("get_lid_from_pn", _jid(jid))
        except DriverError:
            return None
        lid = _jid_str(found)
        return lid if lid.endswith("@lid") else None

    def pn_of(self, lid: str) -> str | None:
        """The phone-number JID whatsmeow's store maps this LID to, if it knows one. whatsmeow
        learns the pairs from usync answers, group info (``phone_number`` / ``lid`` of each
        participant), group notifications and messages that carry both."""
        try:
            found = self._call("get_pn_from_lid", _jid(lid))
        except DriverError:
            return None
        pn = _jid_str(found)
        return pn if pn.endswith("@s.whatsapp.net") else None

    def mark_read(self, chat: str, sender: str, wa_ids: list[str]) -> None:
        """Tell WhatsApp (and so the sender) that these received messages were read."""
        receipt = load_neonize()["ReceiptType"].READ
        self._call("mark_read", *wa_ids, chat=_jid(chat), sender=_jid(sender), receipt=receipt)

    def pair_phone(self, phone_digits: str) -> str:
        return str(self._call("PairPhone", phone_digits, True))

    def logout(self) -> None:
        self._call("logout")

    # -- callbacks (Go threads): translate and post, never block, never raise -------------
    def _guard(self, handler: Callable[[Any], None]) -> Callable[[Any, Any], None]:
        def wrapped(_client: Any, event: Any) -> None:
            if self._stopped.is_set():
                return
            try:
                handler(event)
            except Exception:
                log.exception("failed to handle a WhatsApp event")

        return wrapped

    def _on_qr(self, _client: Any, data: bytes) -> None:
        self._show_life()
        if self._stopped.is_set():
            return
        self._pairing.set()
        self._post(QRCode(self.id, data.decode("utf-8", "replace")))

    def _on_login_status(self, status: str) -> None:
        """whatsmeow's QR loop ended. Right after this returns, neonize's Go side reads its
        maps to start the event loop: keep everyone else out of them for a moment."""
        self._show_life()
        self._pairing.clear()
        compat.hold_maps_after_qr_loop()
        if status != "success" and not self._stopped.is_set():
            self._post(PairingEnded(self.id, status))

    def _on_pair_status(self, e: Any) -> None:
        if e.Status == 2:  # SUCCESS
            self._pairing.clear()
            self._post(PairSuccess(self.id, _jid_str(e.ID)))
        else:
            self._post(PairFailed(self.id, e.Error or "pairing failed"))

    def _on_connected(self, _e: Any) -> None:
        self._pairing.clear()
        me = self._client.me  # set by neonize when its event loop started
        jid = _jid_str(me.JID) if me is not None else ""
        phone = me.JID.User if me is not None else ""
        push_name = me.PushName if me is not None else ""
        lid = _jid_str(me.LID) if me is not None and me.HasField("LID") else ""
        self._post(Connected(self.id, jid=jid, phone=phone, push_name=push_name, lid=lid))

    def _on_disconnected(self, _e: Any) -> None:
        self._post(Disconnected(self.id))

    def _on_logged_out(self, e: Any) -> None:
        self._post(LoggedOut(self.id, reason=FailureReason.of(int(e.Reason)), on_connect=bool(e.OnConnect)))

    def _on_stream_replaced(self, _e: Any) -> None:
        self._post(StreamReplaced(self.id))

    def _on_temporary_ban(self, e: Any) -> None:
        code = _TEMP_BAN_REASONS.get(int(e.Code), f"code {int(e.Code)}")
        self._post(TemporaryBan(self.id, code=code, expires_in=float(e.Expire)))

    def _on_connect_failure(self, e: Any) -> None:
        code = int(e.Reason)
        reason = FailureReason.of(code)
        message = e.Message if reason is not FailureReason.OTHER else f"code {code}: {e.Message}".rstrip(": ")
        self._post(ConnectFailure(self.id, reason=reason, message=message))

    def _on_client_outdated(self, _e: Any) -> None:
        self._post(ClientOutdated(self.id))

    def _on_message(self, e: Any) -> None:
        source = e.Info.MessageSource
        if source.IsFromMe:
            return
        media = media_of(e.Message)
        text = _text_of(e.Message)
        if text is None and media is None:
            log.debug("ignoring a message with neither text nor media %s", e.Info.ID)
            return
        sender = source.Sender
        lid = None
        if sender.Server == "lid":
            lid = _jid_str(sender)
            if source.SenderAlt.User:
                sender = source.SenderAlt
        elif source.SenderAlt.Server == "lid" and source.SenderAlt.User:
            lid = _jid_str(source.SenderAlt)
        self._post(
            Incoming(
                self.id,
                wa_id=e.Info.ID,
                chat=_jid_str(source.Chat),
                sender=_jid_str(sender),
                push_name=e.Info.Pushname,
                text=text or "",
                timestamp=unix_seconds(e.Info.Timestamp),
                is_group=bool(source.IsGroup),
                media=media,
                sender_lid=lid,
                mentions=mentions_of(e.Message),
            )
        )

    def _on_group_info(self, e: Any) -> None:
        changes = {
            "joined": tuple(_jid_str(j) for j in e.Join),
            "left": tuple(_jid_str(j) for j in e.Leave),
            "promoted": tuple(_jid_str(j) for j in e.Promote),
            "demoted": tuple(_jid_str(j) for j in e.Demote),
        }
        if not any(changes.values()):
            return  # a name, topic or setting change: not a membership change
        self._post(
            GroupChanged(
                self.id,
                group=_jid_str(e.JID),
                actor=_jid_str(e.Sender) if e.HasField("Sender") else "",
                actor_name=e.Notify or "",
                timestamp=unix_seconds(e.Timestamp),
                **changes,
            )
        )

    def _on_receipt(self, e: Any) -> None:
        status = _RECEIPT_STATUS.get(int(e.Type))
        if status is None or not e.MessageIDs:
            return
        self._post(
            Receipt(
                self.id,
                wa_ids=tuple(e.MessageIDs),
                status=status,
                chat=_jid_str(e.MessageSource.Chat),
                timestamp=float(e.Timestamp or time.time()),
            )
        )


def _jid(jid: str) -> Any:
    user, _, server = jid.partition("@")
    return load_neonize()["jid_class"](
        User=user, Server=server, Device=0, RawAgent=0, Integrator=0, IsEmpty=False
    )


def _participant_result(jid: str, p: Any, action: str) -> ParticipantResult:
    code = int(p.Error or 0)
    reason = None if code in (0, 200) else PARTICIPANT_REFUSALS.get(code, f"refused_{code}")
    if reason == "not_on_whatsapp" and action != "add":
        reason = "not_participant"
    phone = (p.PhoneNumber.User or None) if p.HasField("PhoneNumber") else None
    return ParticipantResult(jid, reason, code, _jid_str(p.LID) or None, phone)


def _group(g: Any, *, members_only: bool = False) -> GroupInfo:
    """A group as neonize describes it. ``members_only`` leaves out the participants with
    an error code: whatsmeow's answer to a create lists those WhatsApp did not add too."""
    participants = tuple(
        Participant(
            jid=_jid_str(p.JID),
            lid=_jid_str(p.LID) or None,
            phone=(p.PhoneNumber.User or None) if p.HasField("PhoneNumber") else None,
            admin=bool(p.IsAdmin or p.IsSuperAdmin),
            superadmin=bool(p.IsSuperAdmin),
        )
        for p in g.Participants
        if not (members_only and p.Error)
    )
    return GroupInfo(
        jid=_jid_str(g.JID),
        name=g.GroupName.Name,
        topic=g.GroupTopic.Topic,
        announce=bool(g.GroupAnnounce.IsAnnounce),
        locked=bool(g.GroupLocked.isLocked) if g.HasField("GroupLocked") else False,
        owner=_jid_str(g.OwnerJID),
        created=unix_seconds(g.GroupCreated) if g.GroupCreated else 0.0,
        participants=participants,
    )


CAPTIONED_KINDS = ("image", "video", "document")  # the kinds whose messages carry a caption


def build_media_message(proto: Any, media: OutgoingMedia, upload: Any) -> Any:
    """The WhatsApp message for an uploaded file, with what the recipient's phone needs."""
    common = {
        "URL": upload.url,
        "directPath": upload.DirectPath,
        "mediaKey": upload.MediaKey,
        "fileEncSHA256": upload.FileEncSHA256,
        "fileSHA256": upload.FileSHA256,
        "fileLength": upload.FileLength,
        "mimetype": media.mimetype,
        "mediaKeyTimestamp": int(time.time()),
    }
    kind = media.kind
    if media.mentions and kind in CAPTIONED_KINDS:  # as for a text: the caption's @-mentions
        common["contextInfo"] = proto.ContextInfo(mentionedJID=list(media.mentions))
    if kind == "image":
        inner = proto.ImageMessage(
            **common,
            caption=media.caption or None,
            width=media.width or None,
            height=media.height or None,
            JPEGThumbnail=media.thumbnail or None,
        )
        return proto.Message(imageMessage=inner)
    if kind == "sticker":
        inner = proto.StickerMessage(**common, width=media.width or None, height=media.height or None)
        return proto.Message(stickerMessage=inner)
    if kind == "video":
        inner = proto.VideoMessage(
            **common,
            caption=media.caption or None,
            seconds=round(media.seconds) if media.seconds else None,
            width=media.width or None,
            height=media.height or None,
            JPEGThumbnail=media.thumbnail or None,
        )
        return proto.Message(videoMessage=inner)
    if kind in ("audio", "voice"):
        inner = proto.AudioMessage(
            **common, seconds=round(media.seconds) if media.seconds else None, PTT=kind == "voice"
        )
        return proto.Message(audioMessage=inner)
    name = media.filename or "file"
    inner = proto.DocumentMessage(
        **common,
        fileName=name,
        title=name,
        caption=media.caption or None,
        pageCount=media.pages or None,
        JPEGThumbnail=media.thumbnail or None,
    )
    if media.caption:  # how WhatsApp's own clients send a captioned document
        return proto.Message(
            documentWithCaptionMessage=proto.FutureProofMessage(message=proto.Message(documentMessage=inner))
        )
    return proto.Message(documentMessage=inner)


def has_paired_device(db_path: Path) -> bool:
    """True if neonize's session database holds a paired device (read without neonize)."""
    import sqlite3

    if not Path(db_path).exists() or Path(db_path).stat().st_size == 0:
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2)) as db:
            row = db.execute("SELECT count(*) FROM whatsmeow_device").fetchone()
            return bool(row and row[0])
    except sqlite3.Error:
        return False
