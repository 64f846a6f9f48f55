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
                drv.Connected,
                jid=f"{ACCOUNT_PHONE}@s.whatsapp.net",
                phone=ACCOUNT_PHONE,
                push_name="Fake",
                lid=self.factory.account_lid,
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
        if jid not in self.factory.groups:  # as the real driver passes on whatsmeow's ErrGroupNotFound
            raise drv.GroupRefused("that group does not exist", "no_such_group")
        return self.factory.groups[jid]

    # group management, as WhatsApp answers it: per-person codes, refusals as GroupRefused
    def _managed(self, jid: str) -> drv.GroupInfo:
        f = self.factory
        if jid not in f.groups:
            raise drv.GroupRefused("info query returned status 404: item-not-found", "no_such_group")
        if jid in f.not_admin:
            raise drv.GroupRefused("info query returned status 401: not-authorized", "not_admin")
        return f.groups[jid]

    def _person(self, jid: str) -> drv.Participant:
        lid = self.factory.lids.get(jid)
        phone = jid.partition("@")[0] if jid.endswith("@s.whatsapp.net") else None
        return drv.Participant(jid=jid, lid=lid, phone=phone, admin=False, superadmin=False)

    def create_group(
        self, name: str, participants: list[str]
    ) -> tuple[drv.GroupInfo, list[drv.ParticipantResult]]:
        f = self.factory
        jid = f"1203630{len(f.groups) + 1:011d}@g.us"
        me = drv.Participant(f"{ACCOUNT_PHONE}@s.whatsapp.net", None, ACCOUNT_PHONE, True, True)
        added, results = [], []
        for p in participants:
            if p.partition("@")[0] in f.not_on_whatsapp:
                results.append(drv.ParticipantResult(p, "not_on_whatsapp", 404))
            else:
                added.append(self._person(p))
                results.append(drv.ParticipantResult(p, None, 0, f.lids.get(p), self._person(p).phone))
        group = drv.GroupInfo(jid, name, "", False, False, me.jid, time.time(), (me, *added))
        f.groups[jid] = group
        f.group_requests.append(("create", jid, tuple(participants)))
        return group, results

    def change_participants(
        self, group: str, action: str, participants: list[str]
    ) -> list[drv.ParticipantResult]:
        f = self.factory
        info = self._managed(group)
        members = {p.jid: p for p in info.participants}
        results = []
        for jid in participants:
            code = 200
            if action == "add":
                if jid.partition("@")[0] in f.not_on_whatsapp:
                    code = 404
                elif jid in members:
                    code = 409
                elif len(members) >= f.group_limit:
                    code = 500
                else:
                    members[jid] = self._person(jid)
            elif jid not in members:
                code = 404
            elif action == "remove":
                del members[jid]
            else:
                old = members[jid]
                members[jid] = drv.Participant(old.jid, old.lid, old.phone, action == "promote", False)
            reason = None if code == 200 else drv.PARTICIPANT_REFUSALS[code]
            if reason == "not_on_whatsapp" and action != "add":
                reason = "not_participant"
            results.append(drv.ParticipantResult(jid, reason, code, f.lids.get(jid)))
        f.groups[group] = drv.GroupInfo(**{**info.__dict__, "participants": tuple(members.values())})
        f.group_requests.append((action, group, tuple(participants)))
        return results

    def leave_group(self, group: str) -> None:
        if group not in self.factory.groups:
            raise drv.GroupRefused("info query returned status 404: item-not-found", "no_such_group")
        del self.factory.groups[group]
        self.factory.group_requests.append(("leave", group, ()))

    def invite_link(self, group: str, *, revoke: bool = False) -> str:
        self._managed(group)
        f = self.factory
        if revoke or group not in f.invite_codes:
            f.invite_codes[group] = f"Fake{len(f.group_requests):04d}{group[:8]}"
            f.group_requests.append(("revoke" if revoke else "invite", group, ()))
        return f"https://chat.whatsapp.com/{f.invite_codes[group]}"

    def check_numbers(self, phones: list[str]) -> list[drv.NumberCheck]:
        self.factory.checks.extend(phones)
        f = self.factory
        return [  # named by LID where it is known, as whatsmeow's answer is
            drv.NumberCheck(f"+{p}", True, f"{p}@s.whatsapp.net", f.lids.get(f"{p}@s.whatsapp.net"))
            if p not in f.not_on_whatsapp
            else drv.NumberCheck(f"+{p}", False, f"{p}@s.whatsapp.net")
            for p in phones
        ]

    def lid_of(self, jid: str) -> str | None:
        return self.factory.lids.get(jid)

    def pn_of(self, lid: str) -> str | None:
        return next((pn for pn, known in self.factory.lids.items() if known == lid), None)

    def mark_read(self, chat: str, sender: str, wa_ids: list[str]) -> None:
        self.factory.read_receipts.append((chat, sender, tuple(wa_ids)))

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
        self.account_lid = ""  # the LID a connecting driver names for the account ("" for none)
        self.not_admin: set[str] = set()  # groups where this account is not an admin
        self.group_limit = 1024  # people in a group
        self.group_requests: list[tuple[str, str, tuple[str, ...]]] = []  # (action, group, people)
        self.invite_codes: dict[str, str] = {}
        self.read_receipts: list[tuple[str, str, tuple[str, ...]]] = []  # (chat, sender, wa_ids)
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
