"""The one stand-in for the neonize driver, for unit tests of the session and of the API
on a real :class:`wadesk.core.session.Session`.

It never talks to WhatsApp: a test plays the Go side by calling :meth:`FakeDriver.emit`
with the same driver events the real driver posts, or lets a new driver connect (or show
a QR code) by itself (``mode``). End-to-end tests use the real client instead.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from wadesk.core import driver as drv

ACCOUNT_PHONE = "15550001111"


class FakeDriver:
    """What the session calls on a driver; records what was sent."""

    def __init__(self, factory: FakeDriverFactory, post: Callable[[drv.DriverEvent], None]) -> None:
        self.id = f"fake-{len(factory.drivers)}"
        self.factory = factory
        self.post = post
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.sent: list[tuple[str, str]] = []
        self.paired_with: list[str] = []
        self.logged_out = False

    # -- the driver interface --
    def start(self) -> None:
        self.started.set()
        mode = self.factory.mode
        if mode == "connected":
            self.emit(
                drv.Connected, jid=f"{ACCOUNT_PHONE}@s.whatsapp.net", phone=ACCOUNT_PHONE, push_name="Fake"
            )
        elif mode == "qr":
            self.emit(drv.QRCode, code=self.factory.next_qr())

    def stop(self, timeout: float = 3.0) -> bool:
        self.stopped.set()
        return True

    def send_text(self, jid: str, text: str, mentions: tuple[str, ...] = ()) -> drv.SendResult:
        if self.stopped.is_set():
            raise drv.NotRunning()
        result = self.factory.send_result(jid, text)
        self.sent.append((jid, text))
        self.factory.sent.append((jid, text))
        if mentions:
            self.factory.mentions_sent.append((jid, mentions))
        if self.factory.on_send is not None:
            self.factory.on_send(result)  # runs before the session learns the result
        return result

    def send_media(self, jid: str, media: drv.OutgoingMedia) -> drv.SendResult:
        if self.stopped.is_set():
            raise drv.NotRunning()
        result = self.factory.send_result(jid, media.caption or "")
        self.factory.media_sent.append((jid, media))
        self.sent.append((jid, media.caption or ""))
        self.factory.sent.append((jid, media.caption or ""))
        return result

    def download(self, source: bytes) -> bytes:
        if self.stopped.is_set():
            raise drv.NotRunning()
        answer = self.factory.downloads.get(source)
        if answer is None:
            raise drv.DownloadFailed("download failed with status code 404", final=True)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def joined_groups(self) -> list[drv.GroupInfo]:
        return list(self.factory.groups.values())

    def group_info(self, jid: str) -> drv.GroupInfo:
        if jid not in self.factory.groups:
            raise drv.DriverError("that group does not exist")
        return self.factory.groups[jid]

    def check_numbers(self, phones: list[str]) -> list[drv.NumberCheck]:
        self.factory.checks.extend(phones)
        return [
            drv.NumberCheck(f"+{p}", p not in self.factory.not_on_whatsapp, f"{p}@s.whatsapp.net")
            for p in phones
        ]

    def lid_of(self, jid: str) -> str | None:
        return self.factory.lids.get(jid)

    def pair_phone(self, phone_digits: str) -> str:
        self.paired_with.append(phone_digits)
        self.factory.pair_requests.append(phone_digits)
        return "ABCD-EFGH"

    def logout(self) -> None:
        self.logged_out = True
        self.factory.logouts += 1

    # -- the test side --
    def emit(self, event_type: type[drv.DriverEvent], **fields: Any) -> None:
        self.post(event_type(self.id, **fields))


class FakeDriverFactory:
    """Builds FakeDrivers for a Session (pass it as ``driver_factory``), newest last.

    ``mode`` is what a new driver does when started: ``"connected"``, ``"qr"`` or
    ``"none"`` (the test emits the events). ``send_errors`` are raised by the next sends,
    one each; ``send_error`` (a text) by every send while set."""

    driver_class: type[FakeDriver] = FakeDriver

    def __init__(self, mode: str = "none") -> None:
        self.mode = mode
        self.drivers: list[FakeDriver] = []
        self.created = threading.Condition()
        self.sent: list[tuple[str, str]] = []  # every send that reached 'WhatsApp', all drivers
        self.send_errors: list[Exception] = []
        self.send_error: str | None = None
        self.on_send: Callable[[drv.SendResult], None] | None = None
        self.pair_requests: list[str] = []
        self.media_sent: list[tuple[str, drv.OutgoingMedia]] = []
        self.downloads: dict[bytes, bytes | Exception] = {}  # a received file's source -> its bytes
        self.logouts = 0
        self.groups: dict[str, drv.GroupInfo] = {}
        self.mentions_sent: list[tuple[str, tuple[str, ...]]] = []
        self.not_on_whatsapp: set[str] = set()  # digits
        self.checks: list[str] = []  # numbers asked about
        self.lids: dict[str, str] = {}  # phone JID -> LID
        self._count = 0
        self._qr = itertools.count(1)

    def __call__(self, post: Callable[[drv.DriverEvent], None]) -> FakeDriver:
        driver = self.driver_class(self, post)
        with self.created:
            self.drivers.append(driver)
            self.created.notify_all()
        return driver

    @property
    def factory(self) -> FakeDriverFactory:
        return self

    def send_result(self, jid: str, text: str) -> drv.SendResult:
        if self.send_errors:
            raise self.send_errors.pop(0)
        if self.send_error:
            raise drv.DriverError(self.send_error)
        self._count += 1
        # whatsmeow's ids look like this (3EB0 and hex digits)
        return drv.SendResult(wa_id=f"3EB0{self._count:08X}", timestamp=time.time())

    def next_qr(self) -> str:
        return f"2@fake-ref-{next(self._qr)},ZmFrZS1ub2lzZQ==,ZmFrZS1pZGVudGl0eQ==,ZmFrZS1hZHY="

    @property
    def current(self) -> FakeDriver:
        return self.drivers[-1]

    driver = current

    def wait_for_driver(self, count: int, timeout: float = 5.0) -> FakeDriver:
        with self.created:
            if not self.created.wait_for(lambda: len(self.drivers) >= count, timeout):
                raise TimeoutError(f"expected {count} drivers, have {len(self.drivers)}")
            return self.drivers[count - 1]
