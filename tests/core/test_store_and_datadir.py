import os
import stat
import threading

from wadesk.core.backoff import backoff_delay
from wadesk.core.datadir import DataDir
from wadesk.core.store import Store


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_data_dir_is_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        data = DataDir(tmp_path / "a" / "b").prepare()
        assert mode(data.path) == 0o700
        assert mode(data.session_db) == 0o600
        assert mode(data.store_db) == 0o600
        Store(data.store_db).close()
        data.tighten()
        for entry in os.scandir(data.path):
            assert mode(entry.path) == 0o600, entry.name
    finally:
        os.umask(old)


def test_existing_loose_folder_is_tightened(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    (loose / "whatsapp.db").write_bytes(b"")
    os.chmod(loose / "whatsapp.db", 0o644)
    DataDir(loose).prepare()
    assert mode(loose) == 0o700
    assert mode(loose / "whatsapp.db") == 0o600


def test_generated_secret_is_kept_0600_and_reused(tmp_path):
    data = DataDir(tmp_path / "d").prepare()
    value, created = data.secret("api-token")
    assert created and len(value) >= 40
    assert mode(data.file("api-token")) == 0o600
    again, created_again = data.secret("api-token")
    assert (again, created_again) == (value, False)


def test_outbox_survives_reopen_and_keeps_order(tmp_path):
    path = tmp_path / "s.db"
    store = Store(path)
    ids = [store.enqueue("1@s.whatsapp.net", f"t{i}")[0].id for i in range(5)]
    store.close()
    store = Store(path)
    claimed = []
    while (record := store.claim_next()) is not None:
        claimed.append(record.id)
        store.mark_sent(record.id, f"WA{record.id}", 1.0)
    assert claimed == ids
    assert store.outbox_depth() == 0
    assert store.count_by_status() == {"sent": 5}


def test_a_number_and_lid_linked_without_an_exchange_are_not_listed_as_contacts(tmp_path):
    store = Store(tmp_path / "s.db")
    store.link("15550002222@s.whatsapp.net", "900002@lid")
    assert store.contact(lid="900002@lid").jid == "15550002222@s.whatsapp.net"
    assert store.contacts() == []
    # someone who wrote from a LID only, whose number a check revealed: one contact, still listed
    store.meet(None, "900003@lid", "Carol")
    store.record_check("15550003333@s.whatsapp.net", True)
    store.link("15550003333@s.whatsapp.net", "900003@lid")
    [carol] = store.contacts()
    assert (carol.jid, carol.lid, carol.push_name, carol.on_whatsapp) == (
        "15550003333@s.whatsapp.net",
        "900003@lid",
        "Carol",
        True,
    )
    store.close()


def test_pagination_newest_first(tmp_path):
    store = Store(tmp_path / "s.db")
    ids = [store.enqueue("1@s.whatsapp.net", f"t{i}")[0].id for i in range(7)]
    page1 = store.list(limit=3)
    assert [m.id for m in page1] == ids[::-1][:3]
    page2 = store.list(limit=3, before=page1[-1].seq)
    assert [m.id for m in page2] == ids[::-1][3:6]


def test_concurrent_enqueues_lose_nothing(tmp_path):
    store = Store(tmp_path / "s.db")

    def work(n):
        for i in range(50):
            store.enqueue("1@s.whatsapp.net", f"{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.outbox_depth() == 200
    texts = {m.text for m in store.list(limit=500)}
    assert len(texts) == 200


def test_backoff_doubles_to_a_cap_with_jitter():
    import random

    rng = random.Random(7)
    nominal = [1, 2, 4, 8, 16, 32, 60, 60, 60]
    for attempt, expected in enumerate(nominal, start=1):
        for _ in range(20):
            delay = backoff_delay(attempt, rng=rng)
            assert expected * 0.8 - 1e-9 <= delay <= min(60, expected * 1.2) + 1e-9
    delays = {round(backoff_delay(3, rng=rng), 3) for _ in range(20)}
    assert len(delays) > 5  # jittered, not lockstep
    assert backoff_delay(1000, rng=rng) <= 60


def test_unwritable_data_dir_says_who_must_own_it(tmp_path, monkeypatch):
    import pathlib

    import pytest

    from wadesk.core.datadir import DataDirError

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    with pytest.raises(DataDirError, match=r"Permission denied \(it must be writable by user \d+\)"):
        DataDir(tmp_path / "x").prepare()


def test_a_store_of_the_first_schema_opens_with_every_message_and_queued_event(tmp_path):
    """A data folder made before the outbox heads and media: migrated in place, nothing lost."""
    import sqlite3

    from wadesk.core import store as store_mod

    path = tmp_path / "wadesk.db"
    old = sqlite3.connect(path, isolation_level=None)
    for statement in filter(str.strip, store_mod._MIGRATIONS[0].split(";")):
        old.execute(statement)
    old.execute("PRAGMA user_version=1")
    now = 1_700_000_000.0
    rows = [
        ("msg_a", "out", "1@s.whatsapp.net", "sent one", "sent", now),
        ("msg_b", "out", "1@s.whatsapp.net", "waiting", "queued", now + 1),
        ("msg_c", "out", "2@s.whatsapp.net", "in flight", "sending", now + 2),
        ("msg_d", "in", "3@s.whatsapp.net", "hello", "received", now + 3),
    ]
    old.executemany(
        "INSERT INTO messages (id, direction, chat, text, status, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*r, r[-1]) for r in rows],
    )
    old.execute(
        "INSERT INTO webhook_queue (receiver, event_id, event, body, created_at)"
        " VALUES ('http://r/hook', 'evt_1', 'message', x'7b7d', ?)",
        (now,),
    )
    old.close()

    store = Store(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == len(store_mod._MIGRATIONS)
    assert [m.id for m in store.list(newest_first=False)] == ["msg_a", "msg_b", "msg_c", "msg_d"]
    assert store.get("msg_a").media is None and not store.get("msg_a").possible_duplicate
    from wadesk.core.store import WebhookQueue

    assert WebhookQueue(store).backlog() == {"http://r/hook": 1}
    assert store.outbox_depth() == 2
    assert [r.id for r in store.requeue_interrupted()] == ["msg_c"]
    assert {store.claim_next().id, store.claim_next().id} == {"msg_b", "msg_c"}  # heads were built
    store.close()
