"""A bare neonize client in this process, connected to a :class:`~.harness.FakeWhatsApp`.

The client runs ``connect()`` on a background thread. Every client is paired before it is
stopped: neonize's ``stop()`` does not make ``connect()`` return while the client is still
waiting to be paired, and neonize's worker thread is not a daemon thread. Each client gets
its own ``uuid``: neonize stops the client with an object's uuid when that object is
garbage-collected. Imports neonize: load it only once the test environment is in place.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neonize.client import NewClient
from neonize.events import (
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    GroupInfoEv,
    JoinedGroupEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    ReceiptEv,
    StreamReplacedEv,
    TemporaryBanEv,
)

from .harness import FakeWhatsApp

CLIENT_EVENTS = (
    PairStatusEv,
    ConnectedEv,
    DisconnectedEv,
    GroupInfoEv,
    JoinedGroupEv,
    MessageEv,
    ReceiptEv,
    LoggedOutEv,
    StreamReplacedEv,
    TemporaryBanEv,
    ClientOutdatedEv,
    ConnectFailureEv,
)


class BareClient:
    """A plain neonize client in this process that records its QR codes and events."""

    def __init__(self, fake: FakeWhatsApp, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.fake = fake
        self.client = NewClient(str(directory / "client.db"), uuid=f"fakewa-test-{secrets.token_hex(6)}")
        self.qr_codes: list[str] = []
        self.events: list[Any] = []
        self.connect_error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True, name="neonize-connect")

        def on_qr(_client: NewClient, data: bytes) -> None:
            with self._cond:
                self.qr_codes.append(data.decode())
                self._cond.notify_all()

        def on_event(_client: NewClient, event: Any) -> None:
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

        self.client.event.qr(on_qr)
        for cls in CLIENT_EVENTS:
            self.client.event(cls)(on_event)

    def _run(self) -> None:
        from neonize._binder import ProxySettings

        try:
            self.client.connect(ProxySettings(proxy_address=self.fake.proxy_url))
        except BaseException as e:
            self.connect_error = e

    def start(self) -> BareClient:
        self._thread.start()
        return self

    def _wait(self, cond: Callable[[], Any], timeout: float, what: str) -> Any:
        with self._cond:
            if self._cond.wait_for(cond, timeout):
                return cond()
        names = [type(e).__name__ for e in self.events[-10:]]
        raise TimeoutError(
            f"client: no {what} within {timeout:g}s; client events: {names}; "
            f"QR codes: {len(self.qr_codes)}; server events:\n{self.fake.server.describe_events()}"
        )

    def wait_qr(self, count: int = 1, timeout: float = 15) -> str:
        """The ``count``-th QR string the client showed."""
        return self._wait(
            lambda: len(self.qr_codes) >= count and self.qr_codes[count - 1], timeout, f"QR #{count}"
        )

    def of_type(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def wait_event(
        self, cls: type, count: int = 1, timeout: float = 15, pred: Callable[[Any], bool] | None = None
    ) -> Any:
        """The ``count``-th event of type ``cls`` (matching ``pred``)."""

        def found() -> Any:
            hits = [e for e in self.of_type(cls) if pred is None or pred(e)]
            return hits[count - 1] if len(hits) >= count else None

        return self._wait(found, timeout, f"{cls.__name__} #{count}")

    def pair(self) -> None:
        """Let the fake phone scan the QR code shown last and wait until the client is connected."""
        self.fake.scan(self.qr_codes[-1] if self.qr_codes else self.wait_qr())
        self.wait_event(PairStatusEv)
        self.wait_event(ConnectedEv)

    def stop(self, timeout: float = 15) -> None:
        if self.qr_codes and not self.of_type(PairStatusEv):
            # A test failed before pairing: pair now, or connect() would never return.
            try:
                self.pair()
            except (TimeoutError, ValueError, RuntimeError) as e:
                print(f"could not pair the client before stopping it: {e}")
        self.client.stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "neonize connect() did not return after stop()"
