"""Chats, conversations and search in the store and the session (fake driver)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from fake_driver import ACCOUNT_PHONE

from wadesk.core import driver as drv
from wadesk.core.events import ChatsChanged, IncomingMessage, Status
from wadesk.core.store import _MIGRATIONS, Store, _statements, fts_query, preview_of

BOB = "15550002222@s.whatsapp.net"
CAROL = "15550003333@s.whatsapp.net"
GROUP = "120363000000000001@g.us"


def incoming(
    store: Store, chat: str, text: str, *, sender: str | None = None, name: str = "Bob", at: float = 0
) -> None:
    store.record_incoming(
        wa_id=f"W{time.monotonic_ns()}",
        chat=chat,
        sender=sender or chat,
        push_name=name,
        text=text,
        timestamp=at or time.time(),
        is_group=chat.endswith("@g.us"),
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "wadesk.db")
    yield s
    s.close()


def test_the_chat_list_is_kept_by_the_store_newest_activity_first(store: Store) -> None:
    incoming(store, BOB, "hi", at=1000)
    incoming(store, GROUP, "hello all", sender=CAROL, name="Carol", at=1001)
    store.enqueue(CAROL, "to carol")
    incoming(store, BOB, "again", at=time.time() + 10)
    chats = store.chats()
    assert [c.jid for c in chats] == [BOB, CAROL, GROUP]
    bob, carol, group = chats
    assert (bob.name, bob.unread, bob.preview, bob.last_direction, bob.phone) == (
        "Bob",
        2,
        "again",
        "in",
        "+15550002222",
    )
    assert (carol.unread, carol.last_direction, carol.preview) == (0, "out", "to carol")
    assert carol.name == "Carol"  # met as a group member: the contact's push name
    assert (group.is_group, group.unread, group.last_sender) == (True, 1, CAROL)


def test_of_chats_active_in_the_same_second_the_latest_message_comes_first(store: Store) -> None:
    # WhatsApp's timestamps are whole seconds: the order of arrival decides, not the JID
    incoming(store, CAROL, "first", at=1000)
    incoming(store, BOB, "second", at=1000)
    incoming(store, CAROL, "third", at=1000)
    assert [c.jid for c in store.chats()] == [CAROL, BOB]
    incoming(store, BOB, "fourth", at=1000)
    assert [c.jid for c in store.chats()] == [BOB, CAROL]
    assert [c.jid for c in store.chats(limit=1, offset=1)] == [CAROL]


def test_storing_a_received_message_does_not_read_the_whole_chat(store: Store) -> None:
    """The redelivery check finds the WhatsApp id by its index: the work of storing one more
    message is the same in a chat of 20 messages as in one of 20,000 (counted in SQLite's
    virtual machine steps, not timed)."""

    def steps_to_store_one(chat: str, wa_id: str) -> int:
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        store._db.set_progress_handler(count, 100)
        try:
            incoming(store, chat, "one more", at=2000)
            assert (
                store.record_incoming(  # a redelivery is still recognised
                    wa_id=wa_id,
                    chat=chat,
                    sender=chat,
                    push_name="Bob",
                    text="x",
                    timestamp=1,
                    is_group=False,
                )
                is None
            )
        finally:
            store._db.set_progress_handler(None, 100)
        return steps[0]

    for chat, count in ((BOB, 20), (CAROL, 20_000)):
        with store.transaction("fill") as db:
            db.executemany(
                "INSERT INTO messages (id, direction, chat, sender, push_name, text, status, wa_id,"
                " wa_timestamp, is_group, created_at, updated_at)"
                " VALUES (?, 'in', ?, ?, 'Bob', ?, 'received', ?, 1000, 0, 1000, 1000)",
                ((f"m-{chat}-{i}", chat, chat, f"message {i}", f"W-{chat}-{i}") for i in range(count)),
            )
    small = steps_to_store_one(BOB, f"W-{BOB}-3")
    large = steps_to_store_one(CAROL, f"W-{CAROL}-3")
    assert large < 2 * small + 20, (small, large)


def test_failures_are_marked_and_showing_a_chat_clears_its_counts(store: Store) -> None:
    record, _ = store.enqueue(BOB, "will fail")
    incoming(store, BOB, "one")
    incoming(store, BOB, "two")
    store.mark_failed(record.id, "not_on_whatsapp: nobody")
    store.mark_failed(record.id, "again")  # already failed: counted once
    chat = store.chat(BOB)
    assert chat is not None and (chat.unread, chat.failed) == (2, 1)
    unread = store.mark_chat_read(BOB)
    assert [m.text for m in unread] == ["one", "two"]
    chat = store.chat(BOB)
    assert chat is not None and (chat.unread, chat.failed) == (0, 0)
    assert store.mark_chat_read(BOB) == []  # nothing new
    incoming(store, BOB, "three")
    assert [m.text for m in store.mark_chat_read(BOB)] == ["three"]
    assert store.mark_chat_read("nobody@s.whatsapp.net") == []


def test_clearing_the_unread_count_without_reading_the_messages(store: Store) -> None:
    record, _ = store.enqueue(BOB, "will fail")
    store.mark_failed(record.id, "not_on_whatsapp: nobody")
    incoming(store, BOB, "one")
    incoming(store, BOB, "two")
    assert store.clear_unread(BOB) == 2
    chat = store.chat(BOB)
    assert chat is not None and (chat.unread, chat.failed) == (0, 0)
    assert store.clear_unread(BOB) == 0
    incoming(store, BOB, "three")
    assert [m.text for m in store.mark_chat_read(BOB)] == ["three"]  # read up to where it was cleared
    assert store.clear_unread("nobody@s.whatsapp.net") == 0


def test_joined_groups_are_listed_named_and_keep_their_history_after_leaving(store: Store) -> None:
    incoming(store, GROUP, "old", sender=CAROL)
    store.set_joined_groups([(GROUP, "Team"), ("120363000000000002@g.us", "Quiet")])
    named = {c.jid: c for c in store.chats()}
    assert named[GROUP].name == "Team" and named[GROUP].joined
    assert named["120363000000000002@g.us"].last_at is None and named["120363000000000002@g.us"].unread == 0
    store.set_joined_groups([("120363000000000002@g.us", "Quiet")])
    left = store.chat(GROUP)
    assert left is not None and not left.joined and left.name == "Team" and left.preview == "old"


def test_chats_filter_by_name_and_by_number_in_any_notation(store: Store) -> None:
    incoming(store, BOB, "x", name="Bob Builder")
    incoming(store, CAROL, "y", name="Carol")
    store.set_joined_groups([(GROUP, "Builders 100%")])
    assert {c.jid for c in store.chats(query="build")} == {BOB, GROUP}
    assert [c.jid for c in store.chats(query="+1 555 000-3333")] == [CAROL]
    assert [c.jid for c in store.chats(query="100%")] == [GROUP]
    assert [c.jid for c in store.chats(query="%")] == [GROUP]  # the wildcard is text
    assert store.chats(query="_") == []


def test_a_draft_is_kept_per_chat(store: Store) -> None:
    store.set_draft(BOB, "half a thought")
    chat = store.chat(BOB)
    assert chat is not None and chat.draft == "half a thought" and chat.last_id is None
    store.set_draft(BOB, "")
    chat = store.chat(BOB)
    assert chat is not None and chat.draft is None


def test_a_conversation_is_paged_back_through_the_chat_index(store: Store) -> None:
    for i in range(120):
        incoming(store, BOB if i % 2 else CAROL, f"m{i}")
    pages, before = [], None
    while True:
        page = store.conversation(BOB, before=before, limit=25)
        if not page:
            break
        pages.append([m.text for m in page])
        before = page[0].seq
    assert [len(p) for p in pages] == [25, 25, 10]
    assert pages[0][-1] == "m119" and pages[-1][0] == "m1"
    flat = [t for p in reversed(pages) for t in p]
    assert flat == [f"m{i}" for i in range(1, 120, 2)]  # oldest first, no gaps, no repeats
    plan = store.query(
        "EXPLAIN QUERY PLAN SELECT * FROM messages WHERE chat = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        (BOB, 10**9, 25),
    )
    assert any("messages_chat" in row[3] for row in plan), [tuple(r) for r in plan]


def test_search_finds_words_and_word_starts_and_treats_operators_as_text(store: Store) -> None:
    incoming(store, BOB, "Your parcel was délivered today")
    incoming(store, CAROL, "Delivery AND pickup: NEAR(the) door*")
    store.enqueue(BOB, "thanks for the delivery")
    assert {m.text for m in store.search("deliv")} == {
        "Your parcel was délivered today",
        "Delivery AND pickup: NEAR(the) door*",
        "thanks for the delivery",
    }
    assert [m.text for m in store.search("parcel today")] == ["Your parcel was délivered today"]
    assert [m.text for m in store.search("deliv", chat=CAROL)] == ["Delivery AND pickup: NEAR(the) door*"]
    assert [m.text for m in store.search("deliv", direction="out")] == ["thanks for the delivery"]
    for hostile in ('"', "AND", "NEAR(", "*", "a OR b", "')--", "col:x"):
        store.search(hostile)  # never an FTS syntax error
    assert store.search("   ...  ") == []
    newest = store.search("deliv", limit=1)
    older = store.search("deliv", before=newest[0].seq, limit=5)
    assert len(older) == 2 and newest[0].seq > older[0].seq > older[1].seq


def test_fts_query_quotes_every_word() -> None:
    assert fts_query('say "hi" AND bye*') == '"say"* "hi"* "AND"* "bye"*'
    assert fts_query("...") is None


def test_previews_say_what_a_file_is() -> None:
    assert preview_of("", "image") == "📷 Photo"
    assert preview_of("look", "image") == "📷 Photo: look"
    assert preview_of("", "document", "report.pdf") == "📄 report.pdf"
    assert preview_of("two\nlines  here") == "two lines here"


def test_a_version_4_store_gets_its_chats_and_search_index(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for script in _MIGRATIONS[:4]:
        for statement in _statements(script):
            db.execute(statement)
    now = time.time()
    rows = [
        ("a", "in", BOB, "older hello", "received", 1000.0),
        ("b", "out", BOB, "answer", "failed", 1001.0),
        ("c", "in", GROUP, "group hello", "received", 1002.0),
    ]
    for mid, direction, chat, text, status, at in rows:
        db.execute(
            "INSERT INTO messages (id, direction, chat, text, status, wa_timestamp, is_group, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (mid, direction, chat, text, status, at, int(chat.endswith("@g.us")), now, now),
        )
    db.execute("PRAGMA user_version=4")
    db.commit()
    db.close()
    store = Store(path)
    try:
        chats = {c.jid: c for c in store.chats()}
        assert set(chats) == {BOB, GROUP}
        assert chats[BOB].unread == 0  # history from before is read
        assert chats[BOB].failed == 1 and chats[BOB].preview == "answer"
        assert chats[GROUP].is_group
        assert [m.id for m in store.search("hello")] == ["c", "a"]
        incoming(store, BOB, "new one")
        chat = store.chat(BOB)
        assert chat is not None and chat.unread == 1
    finally:
        store.close()


# ---- the session -------------------------------------------------------------------------------


def test_read_receipts_are_sent_only_when_asked(make_session) -> None:  # type: ignore[no-untyped-def]
    session, factory, log = make_session()
    factory.current.emit(
        drv.Connected, jid=f"{ACCOUNT_PHONE}@s.whatsapp.net", phone=ACCOUNT_PHONE, push_name="Me"
    )
    log.wait_state(Status.CONNECTED)
    for i, (chat, sender) in enumerate([(BOB, BOB), (GROUP, BOB), (GROUP, CAROL), (GROUP, CAROL)]):
        factory.current.emit(
            drv.Incoming,
            wa_id=f"ID{i}",
            chat=chat,
            sender=sender,
            push_name="x",
            text=f"t{i}",
            timestamp=time.time(),
            is_group=chat == GROUP,
        )
    log.wait(lambda e: isinstance(e, IncomingMessage) and e.wa_id == "ID3")
    assert session.mark_chat_read(BOB) == 1
    assert factory.read_receipts == []  # off unless asked
    assert session.mark_chat_read(GROUP, send_receipts=True) == 3
    assert sorted(factory.read_receipts) == [(GROUP, BOB, ("ID1",)), (GROUP, CAROL, ("ID2", "ID3"))]


def test_joined_groups_are_listed_after_connecting(make_session) -> None:  # type: ignore[no-untyped-def]
    session, factory, log = make_session()
    me = drv.Participant(f"{ACCOUNT_PHONE}@s.whatsapp.net", None, ACCOUNT_PHONE, True, True)
    factory.groups[GROUP] = drv.GroupInfo(GROUP, "Team", "", False, False, me.jid, 0.0, (me,))
    factory.current.emit(
        drv.Connected, jid=f"{ACCOUNT_PHONE}@s.whatsapp.net", phone=ACCOUNT_PHONE, push_name="Me"
    )
    changed = log.wait(lambda e: isinstance(e, ChatsChanged))
    assert isinstance(changed, ChatsChanged) and changed.jids == (GROUP,)
    assert not changed.public  # for the window: not a webhook or /events event
    [chat] = session.chats()
    assert (chat.jid, chat.name, chat.joined) == (GROUP, "Team", True)
    opened = session.open_chat("+1 555 000 2222")
    assert opened.jid == BOB and opened.last_id is None
    assert BOB in [c.jid for c in session.chats(query="555")]
