"""A stand-in for the neonize driver, for narrow unit tests of the session's state machine.

It never talks to WhatsApp: a test plays the Go side by calling :meth:`FakeDriver.emit`
with the same driver events the real driver posts. End-to-end tests use the real client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from wadesk.core import driver as drv


class FakeDriver:
    def __init__(self, post: Callable[[drv.DriverEvent], None], factory: FakeDriverFactory) -> None:
        self.id = f"fake-{len(factory.drivers)}"
        self._post = post
        self.factory = factory
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.sent: list[tuple[str, str]] = []
        self.paired_with: list[str] = []
        self.logged_out = False

    # the driver interface the session uses
    def start(self) -> None:
        self.started.set()

    def stop(self, timeout: float = 3.0) -> bool:
        self.stopped.set()
        return True

    def send_text(self, jid: str, text: str) -> drv.SendResult:
        if self.stopped.is_set():
            raise drv.NotRunning()
        result = self.factory.send_result(jid, text)
        self.sent.append((jid, text))
        return result

    def pair_phone(self, phone_digits: str) -> str:
        self.paired_with.append(phone_digits)
        return "ABCD-EFGH"

    def logout(self) -> None:
        self.logged_out = True

    # test side
    def emit(self, event_type: type[drv.DriverEvent], **fields: Any) -> None:
        self._post(event_type(self.id, **fields))


class FakeDriverFactory:
    """Builds FakeDrivers for a Session and remembers them, newest last."""

    def __init__(self) -> None:
        self.drivers: list[FakeDriver] = []
        self.created = threading.Condition()
        self.send_errors: list[Exception] = []
        self.on_send: Callable[[drv.SendResult], None] | None = None
        self._count = 0

    def __call__(self, post: Callable[[drv.DriverEvent], None]) -> FakeDriver:
        driver = FakeDriver(post, self)
        with self.created:
            self.drivers.append(driver)
            self.created.notify_all()
        return driver

    def send_result(self, jid: str, text: str) -> drv.SendResult:
        if self.send_errors:
            raise self.send_errors.pop(0)
        self._count += 1
        result = drv.SendResult(wa_id=f"WA{self._count:04d}", timestamp=1_700_000_000.0 + self._count)
        if self.on_send is not None:
            self.on_send(result)  # runs before the session learns the result
        return result

    @property
    def current(self) -> FakeDriver:
        return self.drivers[-1]

    def wait_for_driver(self, count: int, timeout: float = 5.0) -> FakeDriver:
        with self.created:
            if not self.created.wait_for(lambda: len(self.drivers) >= count, timeout):
                raise TimeoutError(f"expected {count} drivers, have {len(self.drivers)}")
            return self.drivers[count - 1]
