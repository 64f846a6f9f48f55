"""The store under faults, with a real Session on a fake driver and the real Flask app:
another process holding the database's write lock past the busy timeout, and a full disk.

In both the sender must pause and resume by itself, ``/send`` must answer 503/507 with
Retry-After (never 202 for what cannot be stored, never 500), ``/ready`` must say why,
``/status`` and ``/health`` must answer at once, and nothing accepted may be lost or sent
twice.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from headless_harness import TOKEN, FakeWorld, wait_until
from prometheus_client.parser import text_string_to_metric_families

from wadesk.api.app import create_app
from wadesk.core import driver as drv
from wadesk.core.events import MessageSent, Status
from wadesk.core.session import Session
from wadesk.core.store import CLAIM_SQL, StorageError, Store

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PEER = "+1 555 000 2222"
PEER_JID = "15550002222@s.whatsapp.net"


class Locker:
    """Another process's connection holding the write lock of our database."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
        self.held = False

    def hold(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.db.execute("ROLLBACK")
            self.held = False

    def close(self) -> None:
        self.release()
        self.db.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Session, FakeWorld, Locker]]:
    folder = tmp_path / "data"
    folder.mkdir()
    world = FakeWorld("none")
    store = Store(folder / "wadesk.db", busy_timeout=0.3)
    session = Session(store, folder / "whatsapp.db", send_interval=0, driver_factory=world.factory)
    locker = Locker(folder / "wadesk.db")
    yield session, world, locker
    locker.close()
    session.stop()
    store.close()


def connect(session: Session, world: FakeWorld) -> None:
    world.driver.post(
        drv.Connected(world.driver.id, jid="15550001111@s.whatsapp.net", phone="15550001111", push_name="Me")
    )
    wait_until(lambda: session.state.status is Status.CONNECTED, 5, "connected")


def metric(client, name: str) -> float:  # type: ignore[no-untyped-def]
    for family in text_string_to_metric_families(client.get("/metrics", headers=AUTH).get_data(as_text=True)):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"no metric {name}")


def timed(call):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_a_lock_held_past_the_busy_timeout_pauses_the_outbox_and_sending_resumes_by_itself(setup) -> None:
    session, world, locker = setup
    app = create_app(session, token=TOKEN)
    client = app.test_client()
    session.start()
    wait_until(lambda: world.drivers, 5, "a driver")
    ids = [
        client.post("/send", json={"to": PEER, "text": f"waiting {i}"}, headers=AUTH).get_json()["id"]
        for i in range(5)
    ]

    locker.hold()
    connect(session, world)  # the sender wakes up and finds the store locked
    wait_until(lambda: not session.storage.available, 10, "the store to be seen as unavailable")

    refused = client.post("/send", json={"to": PEER, "text": "not now"}, headers=AUTH)
    assert refused.status_code == 503
    assert refused.get_json()["error"] == "storage_unavailable"
    assert int(refused.headers["Retry-After"]) > 0
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.get_json()["reason"].startswith("storage_unavailable")
    status, took = timed(lambda: client.get("/status", headers=AUTH))
    assert status.status_code == 200 and took < 0.1
    assert status.get_json()["storage"]["available"] is False
    assert status.get_json()["storage"]["kind"] == "locked"
    assert status.get_json()["outbox_depth"] == 5  # read past the lock
    health, took = timed(lambda: client.get("/health"))
    assert health.status_code == 200 and took < 0.1
    assert metric(client, "wadesk_storage_available") == 0
    assert metric(client, "wadesk_storage_errors_total") >= 1
    assert world.sent == []
    assert session._sender is not None and session._sender.is_alive()

    time.sleep(1.0)  # well past the busy timeout: several refused attempts
    locker.release()
    wait_until(lambda: len(world.sent) == 5, 15, "the five queued messages to go out without a restart")
    wait_until(lambda: session.outbox_depth() == 0, 5, "an empty outbox")
    assert [text for _, text in world.sent] == [f"waiting {i}" for i in range(5)]
    assert all(session.store.get(i).status == "sent" for i in ids)
    assert client.get("/ready").status_code == 200
    assert client.post("/send", json={"to": PEER, "text": "now"}, headers=AUTH).status_code == 202
    wait_until(lambda: len(world.sent) == 6, 5, "the new message sent")


def test_a_send_whose_result_cannot_be_recorded_is_recorded_later_and_not_sent_again(setup) -> None:
    session, world, locker = setup
    events: list[object] = []
    session.subscribe(events.append)
    session.start()
    wait_until(lambda: world.drivers, 5, "a driver")
    connect(session, world)

    def lock_once(_result: object) -> None:  # WhatsApp took it; then the store is locked
        world.on_send = None
        locker.hold()

    world.on_send = lock_once
    record, _ = session.send(PEER, "taken by WhatsApp")
    wait_until(lambda: not session.storage.available, 10, "mark_sent to be refused")
    assert session.store.get(record.id).status == "sending"
    time.sleep(0.8)
    locker.release()
    wait_until(lambda: session.store.get(record.id).status == "sent", 10, "the send to be recorded")
    assert world.sent == [(PEER_JID, "taken by WhatsApp")]  # once
    sent = [e for e in events if isinstance(e, MessageSent)]
    assert [e.id for e in sent] == [record.id] and not sent[0].possible_duplicate


def test_received_messages_that_cannot_be_stored_wait_and_are_stored_in_order(setup) -> None:
    session, world, locker = setup
    stored: list[str] = []
    session.subscribe(lambda e: stored.append(e.text) if type(e).__name__ == "IncomingMessage" else None)
    session.start()
    wait_until(lambda: world.drivers, 5, "a driver")
    connect(session, world)
    locker.hold()
    for i in range(3):
        world.driver.post(
            drv.Incoming(
                world.driver.id,
                wa_id=f"IN{i}",
                chat=PEER_JID,
                sender=PEER_JID,
                push_name="Peer",
                text=f"incoming {i}",
                timestamp=time.time(),
                is_group=False,
            )
        )
    wait_until(lambda: not session.storage.available, 10, "the store to refuse the first one")
    time.sleep(0.5)
    assert stored == []
    locker.release()
    wait_until(lambda: len(stored) == 3, 15, "the kept messages to be stored")
    assert stored == ["incoming 0", "incoming 1", "incoming 2"]
    assert [m.text for m in session.store.list(direction="in", newest_first=False)] == stored


def test_a_core_thread_that_dies_turns_health_503_and_is_logged_once_with_its_traceback(
    setup, caplog: pytest.LogCaptureFixture
) -> None:
    session, _world, _locker = setup
    app = create_app(session, token=TOKEN)
    client = app.test_client()

    def explode() -> None:
        raise SystemExit("simulated fault outside every handler")

    session._send_loop = explode  # type: ignore[method-assign]
    session.start()
    wait_until(lambda: session.dead_threads, 5, "the sender to die")
    health = client.get("/health")
    assert health.status_code == 503
    assert "wadesk-sender" in health.get_json()["reason"]
    assert client.get("/ready").status_code == 503
    assert client.get("/status", headers=AUTH).get_json()["healthy"] is False
    deaths = [r for r in caplog.records if "thread died" in r.getMessage()]
    assert len(deaths) == 1 and deaths[0].exc_info is not None


# ---- a full disk ----------------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(path: Path, size_kib: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of the file system with a filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return filler


def test_a_full_disk_answers_507_and_sending_resumes_once_space_is_freed(tmp_path: Path) -> None:
    # 4 MB: the store's schema (search index, chats) takes room of its own, and what the
    # filler gives back must hold the sender's WAL growth until the next checkpoint
    with small_filesystem(tmp_path / "small", 4096) as folder:
        world = FakeWorld("none")
        store = Store(folder / "wadesk.db", busy_timeout=0.3)
        session = Session(store, folder / "whatsapp.db", send_interval=0, driver_factory=world.factory)
        client = create_app(session, token=TOKEN).test_client()
        try:
            session.start()
            wait_until(lambda: world.drivers, 5, "a driver")
            accepted = []
            for i in range(20):
                r = client.post("/send", json={"to": PEER, "text": f"before {i} " + "x" * 2000}, headers=AUTH)
                assert r.status_code == 202
                accepted.append(r.get_json()["id"])
            filler = fill(folder)
            answers = set()
            for i in range(200):  # until the database's free pages are used up too
                r = client.post("/send", json={"to": PEER, "text": f"full {i} " + "y" * 4000}, headers=AUTH)
                assert r.status_code in (202, 507), r.get_data(as_text=True)
                answers.add(r.status_code)
                if r.status_code == 202:
                    accepted.append(r.get_json()["id"])
                else:
                    assert r.get_json()["error"] == "storage_full"
                    assert int(r.headers["Retry-After"]) > 0
                    break
            assert 507 in answers
            connect(session, world)  # the sender's claim cannot be committed either
            wait_until(lambda: not session.storage.available, 10, "the store to be seen as full")
            assert client.get("/ready").status_code == 503
            assert session._sender is not None and session._sender.is_alive()

            filler.unlink()
            wait_until(lambda: len(world.sent) == len(accepted), 20, "every accepted message to go out")
            assert all(session.store.get(i).status == "sent" for i in accepted)
            assert len({t for _, t in world.sent}) == len(accepted)  # none twice
            assert client.post("/send", json={"to": PEER, "text": "after"}, headers=AUTH).status_code == 202
            wait_until(lambda: session.storage.available, 5, "the store to be available again")
        finally:
            session.stop()
            store.close()


def test_storage_errors_leave_the_write_connection_usable(tmp_path: Path) -> None:
    store = Store(tmp_path / "wadesk.db", busy_timeout=0.2)
    other = sqlite3.connect(tmp_path / "wadesk.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StorageError) as refused:
        store.enqueue(PEER_JID, "refused")
    assert refused.value.kind == "locked"
    assert store.health.available is False
    other.execute("ROLLBACK")
    record, created = store.enqueue(PEER_JID, "accepted")
    assert created and store.get(record.id) is not None
    assert store.health.available is True
    assert store.outbox_depth() == 1  # the refused one left nothing behind
    other.close()
    store.close()


def test_the_claim_walks_the_chats_heads_not_the_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "wadesk.db")
    plan = " ".join(
        str(row[3]) for row in store._db.execute("EXPLAIN QUERY PLAN " + CLAIM_SQL, (time.time(),))
    )
    assert "SCAN h USING COVERING INDEX outbox_heads_seq" in plan  # the heads, in seq order
    assert "SEARCH m USING INTEGER PRIMARY KEY" in plan  # each head's row by its key
    assert "SCAN m" not in plan and "TEMP B-TREE" not in plan  # no walk of the history, no sort
    store.close()


def test_heads_keep_per_chat_order_and_survive_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "wadesk.db")
    a1, _ = store.enqueue("1@s.whatsapp.net", "a1")
    a2, _ = store.enqueue("1@s.whatsapp.net", "a2")
    b1, _ = store.enqueue("2@s.whatsapp.net", "b1")
    first = store.claim_next()
    assert first.id == a1.id
    assert store.claim_next().id == b1.id  # a2 waits behind a1, which is being sent
    assert store.claim_next() is None
    store.mark_retry(a1.id, "later", time.time() + 60)
    assert store.claim_next() is None  # a1 heads chat 1 and is not due; a2 still waits
    store.close()
    store = Store(tmp_path / "wadesk.db")  # heads are rebuilt from the messages at open
    store.mark_retry(a1.id, "now", 0)
    assert store.claim_next().id == a1.id
    store.mark_sent(a1.id, "WA1", time.time())
    store.mark_failed(b1.id, "refused")
    assert store.claim_next().id == a2.id
    store.mark_sent(a2.id, "WA2", time.time())
    assert store.claim_next() is None
    assert store._db.execute("SELECT count(*) FROM outbox_heads").fetchone()[0] == 0
    store.close()
