from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_driver import FakeDriverFactory

from wadesk.core.datadir import DataDir
from wadesk.core.events import Event, StateChanged, Status
from wadesk.core.session import Session
from wadesk.core.store import Store


class EventLog:
    """Collects a session's events and waits for the one a test expects."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait(self, predicate: Callable[[Event], bool], timeout: float = 5.0, after: int = 0) -> Event:
        with self._cond:
            found: list[Event] = []

            def match() -> bool:
                found[:] = [e for e in self.events[after:] if predicate(e)]
                return bool(found)

            if not self._cond.wait_for(match, timeout):
                raise TimeoutError(f"no matching event; last events: {self.events[-6:]!r}")
            return found[0]

    def wait_state(self, status: Status, timeout: float = 5.0, after: int = 0) -> Any:
        event = self.wait(lambda e: isinstance(e, StateChanged) and e.state.status is status, timeout, after)
        assert isinstance(event, StateChanged)
        return event.state

    def of(self, kind: type[Event]) -> list[Any]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def mark(self) -> int:
        with self._cond:
            return len(self.events)


@pytest.fixture
def data(tmp_path) -> DataDir:
    return DataDir(tmp_path / "data").prepare()


@pytest.fixture
def make_session(data) -> Iterator[Callable[..., tuple[Session, FakeDriverFactory, EventLog]]]:
    """Build started sessions on a FakeDriver; every one is stopped after the test."""
    sessions: list[Session] = []

    def make(**kwargs: Any) -> tuple[Session, FakeDriverFactory, EventLog]:
        factory = FakeDriverFactory()
        log = EventLog()
        kwargs.setdefault("send_interval", 0)
        kwargs.setdefault("reconnect_delay", lambda attempt: 0.05)
        kwargs.setdefault("send_retry_delay", lambda attempt: 0.05)
        session = Session(Store(data.store_db), data.session_db, driver_factory=factory, **kwargs)
        session.subscribe(log)
        sessions.append(session)
        session.start()
        factory.wait_for_driver(1)
        return session, factory, log

    yield make
    for session in sessions:
        assert session.stop(5.0), "session threads did not stop"
        session.store.close()
