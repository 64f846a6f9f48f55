"""The only module that speaks to neonize (and through it, to WhatsApp).

A :class:`NeonizeDriver` wraps one neonize client for one connection attempt. Its
``connect()`` blocks, and its callbacks arrive on threads the Go runtime owns, so the
driver runs it on a daemon thread and turns every callback into a small
:class:`DriverEvent` handed to ``post`` (the session's queue). It never calls back into
the session in any other way.

neonize facts this module works around (neonize 0.5.2):

* neonize keeps its clients in Go maps without locks. Its call writes them when it
  starts, reads them when its event loop starts (after connecting, or after the QR loop
  for an unpaired device), and ``Stop`` deletes from them. A read racing a write aborts
  the process, so one process-wide readers-writer lock (:data:`_MAPS`) guards them:
  our calls share it; ``Stop``, the call's start-up and the event loop's start-up hold it
  exclusively.
* ``Stop`` before the event loop started makes that loop dereference a deleted client
  and abort the process later. So ``stop`` calls ``Stop`` only once the call returned or
  its event loop runs; a call still connecting is stopped by a reaper thread when it
  gets there.
* Before a device is paired, neonize's Go side waits in a QR loop that ``Stop`` does not
  end, and after that loop it waits for a device ID that never comes: such a call never
  returns. Its thread is a daemon and is left behind; on Linux the driver shuts the
  pairing socket from our side so that whatsmeow ends the QR loop at once instead of
  calling back for up to 160 s.
* neonize's garbage-collection finalizer would call ``Stop`` from any thread at any time:
  the driver detaches it and stops its clients itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("wadesk.driver")

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


@dataclass(frozen=True)
class Disconnected(DriverEvent):
    pass


@dataclass(frozen=True)
class LoggedOut(DriverEvent):
    reason: str
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
    reason: str
    message: str


@dataclass(frozen=True)
class ClientOutdated(DriverEvent):
    pass


@dataclass(frozen=True)
class PairingEnded(DriverEvent):
    """whatsmeow's QR loop finished: 'success', 'timeout' or an error name."""

    status: str


@dataclass(frozen=True)
class Incoming(DriverEvent):
    wa_id: str
    chat: str
    sender: str
    push_name: str
    text: str
    timestamp: float
    is_group: bool


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


class DriverError(RuntimeError):
    """A neonize call failed; ``str(err)`` is whatsmeow's message."""


class NotRunning(DriverError):
    """Nothing was handed to neonize: the client is not connected (or is being stopped)."""

    def __init__(self) -> None:
        super().__init__("not connected to WhatsApp")


class SendFailed(DriverError):
    """A send that neonize reported as failed. ``written`` is False only when whatsmeow's
    error proves the message never left this process, or that WhatsApp refused it; True
    when it may have been written to WhatsApp before the failure (no answer, connection
    lost after the write, or an error this module does not know)."""

    def __init__(self, message: str, *, written: bool) -> None:
        super().__init__(message)
        self.written = written


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


class _RWLock:
    """Readers-writer lock whose exclusive side may be released by another thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def acquire_shared(self, timeout: float = 60.0) -> bool:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._writer, timeout):
                return False
            self._readers += 1
            return True

    def release_shared(self) -> None:
        with self._cond:
            self._readers -= 1
            self._cond.notify_all()

    def acquire_exclusive(self, timeout: float = 60.0) -> bool:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._writer and self._readers == 0, timeout):
                return False
            self._writer = True
            return True

    def release_exclusive(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()

    @contextlib.contextmanager
    def shared(self) -> Any:
        if not self.acquire_shared():
            raise DriverError("the WhatsApp library is busy")
        try:
            yield
        finally:
            self.release_shared()

    @contextlib.contextmanager
    def exclusive(self, timeout: float = 10.0) -> Any:
        acquired = self.acquire_exclusive(timeout)
        if not acquired:
            log.warning("the WhatsApp library stayed busy for %.0f s; going ahead", timeout)
        try:
            yield
        finally:
            if acquired:
                self.release_exclusive()


_MAPS = _RWLock()  # guards neonize's unsynchronised Go maps, process-wide
START_HOLD = 30.0  # longest a starting call keeps _MAPS exclusively (until it shows life)
REAP_WAIT = 120.0  # how long a reaper waits for a stopped-while-connecting call


class _Gate:
    """Counts calls in progress; once closed, admits no new ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._closed = False

    def enter(self) -> bool:
        with self._cond:
            if self._closed:
                return False
            self._active += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        with self._cond:
            self._closed = True
            return self._cond.wait_for(lambda: self._active == 0, timeout)


# ---- neonize loading ---------------------------------------------------------------------

_neonize: dict[str, Any] = {}
_load_lock = threading.Lock()


class _DaemonThread(threading.Thread):
    """neonize starts its Go call on a non-daemon thread; one that can never be joined
    (see module docstring) would keep the interpreter from exiting."""

    def __init__(self, *args: Any, daemon: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, daemon=True, **kwargs)


def load_neonize() -> dict[str, Any]:
    """Import neonize (this loads its Go library) once, and return what the driver uses."""
    with _load_lock:
        if _neonize:
            return _neonize
        # neonize configures the root logger at import unless it already has handlers,
        # and warns about ffmpeg (only needed for media) on every connect.
        root = logging.getLogger()
        added = None
        if not root.handlers:
            added = logging.NullHandler()
            root.addHandler(added)
        try:
            import neonize.client as nclient
            from neonize import events as nevents
            from neonize._binder import ProxySettings
            from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
        finally:
            if added is not None:
                root.removeHandler(added)
        logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)
        nclient.Thread = _DaemonThread  # type: ignore[misc]

        class Client(nclient.NewClient):  # type: ignore[misc, valid-type]
            """NewClient that reports whatsmeow's QR-loop result instead of printing it."""

            on_login_status: Callable[[str], None] | None = None

            def _NewClient__onLoginStatus(self, uuid: Any, status: Any) -> None:
                with contextlib.suppress(Exception):
                    import ctypes

                    text = ctypes.string_at(status).decode("utf-8", "replace")
                    if self.on_login_status is not None:
                        self.on_login_status(text)

        _neonize.update(
            client_class=Client,
            events=nevents,
            ProxySettings=ProxySettings,
            DeviceProps=DeviceProps,
            jid_class=nclient.JID,
        )
        return _neonize


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
    """One neonize client and its blocking connect call, for one connection attempt."""

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
        self._gate = _Gate()  # no call into neonize may overlap its Stop
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._returned = threading.Event()
        self._stopped = False
        self._pairing = False  # the QR loop is running (device not paired yet)
        self._loop_running = threading.Event()  # neonize's event loop started (Stop is safe)
        self._alive = threading.Event()  # the call showed life: its start-up writes are done
        self._start_hold = False
        self._hold_lock = threading.Lock()
        self._hold_timer: threading.Timer | None = None

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
        }
        for event_type, handler in handlers.items():
            client.event(event_type)(self._guard(handler))
        client._stop_finalizer.detach()  # we call Stop ourselves, when it is safe
        execute = client.event.execute

        def execute_and_watch(uuid: Any, binary: Any, size: Any, code: int) -> Any:
            if code == 0:  # neonize's event loop starts with the account info
                self._loop_running.set()
                self._show_life()
            return execute(uuid, binary, size, code)

        client.event.execute = execute_and_watch
        self._client = client
        proxy = n["ProxySettings"](proxy_address=self.proxy) if self.proxy else None
        self._thread = threading.Thread(
            target=self._run, args=(proxy,), name=f"wadesk-neonize-{self.id}", daemon=True
        )
        self._start_hold = _MAPS.acquire_exclusive(10.0)
        self._hold_timer = threading.Timer(START_HOLD, self._show_life)
        self._hold_timer.daemon = True
        self._hold_timer.start()
        self._thread.start()

    def _show_life(self) -> None:
        """The call is past its start-up map writes: let other calls in."""
        self._alive.set()
        with self._hold_lock:
            hold, self._start_hold = self._start_hold, False
        if hold:
            _MAPS.release_exclusive()
            if self._hold_timer is not None:
                self._hold_timer.cancel()

    def _run(self, proxy: Any) -> None:
        error: str | None = None
        try:
            self._client.connect(proxy)
        except Exception as exc:  # noqa: BLE001 - reported to the session as a reason
            error = str(exc) or type(exc).__name__
        finally:
            self._returned.set()
            self._show_life()
        if not self._stopped:
            self._post(Exited(self.id, error))

    def stop(self, timeout: float = 3.0) -> bool:
        """Disconnect and cancel the neonize call. True if it returned within ``timeout``;
        otherwise it is finished in the background (or, unpaired, left behind)."""
        if self._client is None:
            return True
        if self._stopped:
            return self._returned.is_set()
        self._stopped = True
        if self._returned.is_set() or self._loop_running.is_set():
            self._stop_now(timeout)
            return self._returned.wait(timeout)
        if self._pairing:
            self._end_pairing_loop()
            return False
        threading.Thread(target=self._reap, name=f"wadesk-reap-{self.id}", daemon=True).start()
        return False

    def _stop_now(self, timeout: float) -> None:
        if self._gate.enter():
            try:
                with contextlib.suppress(Exception), _MAPS.shared():
                    self._client.disconnect()  # in-flight calls fail fast
            finally:
                self._gate.leave()
        self._gate.close(timeout)
        with _MAPS.exclusive(), contextlib.suppress(Exception):
            self._client.stop()

    def _reap(self) -> None:
        """Finish stopping a call that was still connecting: once it returns or its event
        loop runs, Stop it; if it turned out to be pairing, end the QR loop."""
        deadline = time.monotonic() + REAP_WAIT
        while time.monotonic() < deadline:
            if self._returned.is_set() or self._loop_running.is_set():
                self._stop_now(3.0)
                return
            if self._pairing:
                self._end_pairing_loop()
                return
            time.sleep(0.1)
        log.warning("a stopped WhatsApp client did not finish connecting within %.0f s", REAP_WAIT)

    @property
    def returned(self) -> bool:
        return self._returned.is_set()

    def _end_pairing_loop(self) -> None:
        """Shut the pairing connection down from our side (Linux), so whatsmeow sees the
        server go away, ends its QR loop and stops calling back."""
        if not sys.platform.startswith("linux"):
            return
        port = _proxy_port(self.proxy) if self.proxy else 443
        for fd in _socket_fds():
            try:
                sock = socket.socket(fileno=os.dup(fd))
            except OSError:
                continue
            try:
                if (
                    sock.family in (socket.AF_INET, socket.AF_INET6)
                    and sock.type == socket.SOCK_STREAM
                    and sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
                    and sock.getpeername()[1] == port
                ):
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            finally:
                sock.close()

    # -- calls --
    def _call(self, name: str, *args: Any) -> Any:
        if self._stopped or self._client is None or not self._alive.is_set() or not self._gate.enter():
            raise NotRunning()
        try:
            with _MAPS.shared():
                return getattr(self._client, name)(*args)
        except DriverError:
            raise
        except Exception as exc:
            raise DriverError(str(exc) or type(exc).__name__) from exc
        finally:
            self._gate.leave()

    def send_text(self, jid: str, text: str) -> SendResult:
        user, _, server = jid.partition("@")
        target = load_neonize()["jid_class"](
            User=user, Server=server, Device=0, RawAgent=0, Integrator=0, IsEmpty=False
        )
        try:
            response = self._call("send_message", target, text)
        except NotRunning:
            raise
        except DriverError as exc:
            raise SendFailed(str(exc), written=send_error_written(str(exc))) from exc
        return SendResult(wa_id=response.ID, timestamp=float(response.Timestamp or time.time()))

    def pair_phone(self, phone_digits: str) -> str:
        return str(self._call("PairPhone", phone_digits, True))

    def logout(self) -> None:
        self._call("logout")

    # -- callbacks (Go threads): translate and post, never block, never raise -------------
    def _guard(self, handler: Callable[[Any], None]) -> Callable[[Any, Any], None]:
        def wrapped(_client: Any, event: Any) -> None:
            if self._stopped:
                return
            try:
                handler(event)
            except Exception:
                log.exception("failed to handle a WhatsApp event")

        return wrapped

    def _on_qr(self, _client: Any, data: bytes) -> None:
        self._show_life()
        if self._stopped:
            return
        self._pairing = True
        self._post(QRCode(self.id, data.decode("utf-8", "replace")))

    def _on_login_status(self, status: str) -> None:
        """whatsmeow's QR loop ended. Right after this returns, neonize's Go side reads its
        maps to start the event loop: keep everyone else out of them for a moment."""
        self._show_life()
        self._pairing = False
        if _MAPS.acquire_exclusive(5.0):
            release = threading.Timer(0.3, _MAPS.release_exclusive)
            release.daemon = True
            release.start()
        if status != "success" and not self._stopped:
            self._post(PairingEnded(self.id, status))

    def _on_pair_status(self, e: Any) -> None:
        if e.Status == 2:  # SUCCESS
            self._pairing = False
            self._post(PairSuccess(self.id, _jid_str(e.ID)))
        else:
            self._post(PairFailed(self.id, e.Error or "pairing failed"))

    def _on_connected(self, _e: Any) -> None:
        self._pairing = False
        me = self._client.me  # set by neonize when its event loop started
        jid = _jid_str(me.JID) if me is not None else ""
        phone = me.JID.User if me is not None else ""
        push_name = me.PushName if me is not None else ""
        self._post(Connected(self.id, jid=jid, phone=phone, push_name=push_name))

    def _on_disconnected(self, _e: Any) -> None:
        self._post(Disconnected(self.id))

    def _on_logged_out(self, e: Any) -> None:
        reason = _failure_reason(int(e.Reason))
        self._post(LoggedOut(self.id, reason=reason, on_connect=bool(e.OnConnect)))

    def _on_stream_replaced(self, _e: Any) -> None:
        self._post(StreamReplaced(self.id))

    def _on_temporary_ban(self, e: Any) -> None:
        code = _TEMP_BAN_REASONS.get(int(e.Code), f"code {int(e.Code)}")
        self._post(TemporaryBan(self.id, code=code, expires_in=float(e.Expire)))

    def _on_connect_failure(self, e: Any) -> None:
        self._post(ConnectFailure(self.id, reason=_failure_reason(int(e.Reason)), message=e.Message))

    def _on_client_outdated(self, _e: Any) -> None:
        self._post(ClientOutdated(self.id))

    def _on_message(self, e: Any) -> None:
        source = e.Info.MessageSource
        if source.IsFromMe:
            return
        text = _text_of(e.Message)
        if text is None:
            log.debug("ignoring a non-text message %s", e.Info.ID)
            return
        sender = source.Sender
        if sender.Server == "lid" and source.SenderAlt.User:
            sender = source.SenderAlt
        self._post(
            Incoming(
                self.id,
                wa_id=e.Info.ID,
                chat=_jid_str(source.Chat),
                sender=_jid_str(sender),
                push_name=e.Info.Pushname,
                text=text,
                timestamp=unix_seconds(e.Info.Timestamp),
                is_group=bool(source.IsGroup),
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


_FAILURE_REASONS = {
    1: "WhatsApp refused the connection",
    2: "the device was logged out",
    3: "the account is temporarily banned",
    4: "the main device (the phone) is gone",
    5: "the device was logged out for an unknown reason",
    6: "this client version is outdated",
    7: "WhatsApp rejected this client (bad user agent)",
    8: "WhatsApp had an internal server error",
    9: "WhatsApp refused the connection (experimental)",
    10: "the WhatsApp service is unavailable",
}


def _failure_reason(code: int) -> str:
    return _FAILURE_REASONS.get(code, f"connect failure {code}")


def _proxy_port(url: str) -> int:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443, "socks5": 1080}.get(parts.scheme, 0)


def _socket_fds() -> list[int]:
    fds = []
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError, ValueError):
                if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                    fds.append(int(name))
    return fds


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
