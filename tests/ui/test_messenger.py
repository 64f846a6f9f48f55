"""The messenger on the real session with the fake driver: the chat list (order, unread
counts, live updates), one chat's conversation (paged from the store), sending from the open
chat, search, new chats, drafts, read receipts, notifications, the keyboard, the narrow
layout and the remembered split, and the rule that the GUI thread never reads the store."""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QApplication, QWidget

from wadesk.core import driver as drv
from wadesk.core.datadir import DataDir
from wadesk.core.store import StorageError, Store, new_message_id
from wadesk.ui import tray as traymod
from wadesk.ui.chats import Hit, chat_preview
from wadesk.ui.messenger import CONVERSATION_PAGE, NARROW

from .rig import PEER_JID, Rig

BEN = PEER_JID  # 15550002222
LEA = "15550003333@s.whatsapp.net"
NONAME = "15550004444@s.whatsapp.net"
GROUP = "120363000000000001@g.us"
OWNER = "15550001111@s.whatsapp.net"


def group_info(jid: str = GROUP, name: str = "Shop team") -> drv.GroupInfo:
    return drv.GroupInfo(jid, name, "", False, False, OWNER, time.time(), ())


def three_peers_and_a_group_write(rig: Rig) -> None:
    """Ben, Lea (twice), a number without a name, and Lea in the joined group, in that order."""
    rig.factory.groups[GROUP] = group_info()
    rig.connect(open_chat=None)
    start = time.time() - 600
    rig.incoming("15550002222", "hello from Ben", "Ben", timestamp=start + 1)
    rig.incoming("15550003333", "hi, Lea here", "Lea", timestamp=start + 2)
    rig.incoming("15550003333", "are you open today?", "Lea", timestamp=start + 3)
    rig.incoming("15550004444", "no name here", "", timestamp=start + 4)
    rig.incoming("15550003333", "who closes today?", "Lea", group=GROUP, timestamp=start + 5)
    rig.qtbot.waitUntil(lambda: [c.jid for c in rig.chats.chats()] == [GROUP, NONAME, LEA, BEN])
    rig.qtbot.waitUntil(lambda: rig.chats.chat(GROUP).unread == 1)
    rig.idle()


def counts(rig: Rig) -> list[tuple[str, int]]:
    from wadesk.ui.chats import chat_title

    return [(chat_title(c), c.unread) for c in rig.chats.chats()]


def click_chat(rig: Rig, jid: str) -> None:
    view = rig.window.chat_list
    row = rig.chats.row_of(jid)
    assert row is not None
    rect = view.visualRect(rig.chats.index(row))
    rig.qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    rig.wait_open(jid)


def fill(store: Store, jid: str, count: int, *, start: float | None = None) -> None:
    """``count`` received messages in one chat, one a minute, straight into the store."""
    first = start if start is not None else time.time() - count * 60 - 3600
    with store.transaction("fill") as db:
        db.executemany(
            "INSERT INTO messages (id, direction, chat, sender, push_name, text, status, wa_id,"
            " wa_timestamp, is_group, created_at, updated_at)"
            " VALUES (?, 'in', ?, ?, 'Ben', ?, 'received', ?, ?, 0, ?, ?)",
            (
                (new_message_id(), jid, jid, f"message number {i}", f"F{jid[:6]}{i}", t, t, t)
                for i in range(count)
                for t in (first + i * 60,)
            ),
        )


@pytest.fixture
def conversation_calls(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None, int]]:
    """Every session.conversation call: (chat, before, limit)."""
    calls: list[tuple[str, int | None, int]] = []
    real = rig.session.conversation

    def recording(chat: str, *, before: int | None = None, limit: int = 50, **kw: Any) -> Any:
        calls.append((chat, before, limit))
        return real(chat, before=before, limit=limit, **kw)

    monkeypatch.setattr(rig.session, "conversation", recording)
    return calls


# ---- the chat list ---------------------------------------------------------------------------


def test_three_peers_and_a_group_write_four_chats_newest_first(qtbot: Any, rig: Rig) -> None:
    three_peers_and_a_group_write(rig)
    assert counts(rig) == [("Shop team", 1), ("+1 555-000-4444", 1), ("Lea", 2), ("Ben", 1)]
    group = rig.chats.chat(GROUP)
    assert group.is_group and group.joined
    assert chat_preview(group).prefix == "Lea: " and chat_preview(group).text == "who closes today?"
    assert rig.chats.chat(LEA).preview == "are you open today?"
    # the store agrees (the list was updated from the events, not read again)
    assert [(c.jid, c.unread) for c in rig.session.chats()] == [(GROUP, 1), (NONAME, 1), (LEA, 2), (BEN, 1)]
    # a new message moves its chat to the top, live
    rig.incoming("15550002222", "me again", "Ben")
    qtbot.waitUntil(lambda: rig.chats.jid_at(0) == BEN)
    assert rig.chats.chat(BEN).unread == 2
    assert [c.jid for c in rig.chats.chats()] == [BEN, GROUP, NONAME, LEA]


def test_opening_a_chat_clears_its_count_and_shows_only_its_messages(qtbot: Any, rig: Rig) -> None:
    three_peers_and_a_group_write(rig)
    click_chat(rig, LEA)
    assert rig.window.messenger.current_chat == LEA
    assert [e.text for e in rig.window.model.entries()] == ["hi, Lea here", "are you open today?"]
    assert rig.chats.chat(LEA).unread == 0
    assert rig.window.messenger.header.title.text() == "Lea"
    assert rig.window.messenger.header.subtitle.text() == "+1 555-000-3333"
    rig.idle()
    assert rig.session.chat(LEA).unread == 0  # in the store too
    assert rig.session.chat(BEN).unread == 1
    assert rig.factory.read_receipts == []  # "Send read receipts" is off by default
    # a message in the open chat of the active window is read at once
    rig.incoming("15550003333", "still there?", "Lea")
    qtbot.waitUntil(lambda: len(rig.window.model.entries()) == 3)
    rig.idle()
    assert rig.chats.chat(LEA).unread == 0
    qtbot.waitUntil(lambda: rig.session.chat(LEA).unread == 0)
    # the group's message from Lea is in the group, not here
    click_chat(rig, GROUP)
    assert [e.text for e in rig.window.model.entries()] == ["who closes today?"]
    [entry] = rig.window.model.entries()
    assert entry.bubble_heading == "Lea (+1 555-000-3333)"  # in a group, each bubble names its sender


def test_a_send_from_the_open_chat_goes_to_that_chat_only(qtbot: Any, rig: Rig) -> None:
    three_peers_and_a_group_write(rig)
    click_chat(rig, LEA)
    qtbot.keyClicks(rig.compose.message, "yes, until 6")
    qtbot.mouseClick(rig.compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.factory.sent == [(LEA, "yes, until 6")])
    qtbot.waitUntil(lambda: rig.window.model.entries()[-1].status == "sent")
    assert [e.text for e in rig.window.model.entries()][-1] == "yes, until 6"
    assert rig.chats.jid_at(0) == LEA  # the chat moved up
    assert rig.chats.chat(LEA).last_direction == "out"
    assert [c.jid for c in rig.chats.chats()] == [LEA, GROUP, NONAME, BEN]
    click_chat(rig, GROUP)
    rig.type_and_send("I do")
    qtbot.waitUntil(lambda: len(rig.factory.sent) == 2)
    assert rig.factory.sent == [(LEA, "yes, until 6"), (GROUP, "I do")]


def test_the_chat_list_is_read_a_page_at_a_time(qtbot: Any, rig: Rig) -> None:
    from wadesk.ui.chats import PAGE

    start = time.time() - 10_000
    for n in range(PAGE + 50):
        fill(rig.session.store, f"1555100{n:04d}@s.whatsapp.net", 1, start=start + n)
    calls: list[tuple[int, int]] = []
    real = rig.session.chats

    def recording(*, limit: int = 50, offset: int = 0, query: str | None = None) -> Any:
        calls.append((limit, offset))
        return real(limit=limit, offset=offset, query=query)

    rig.session.chats = recording  # type: ignore[method-assign]
    rig.window.messenger.reload_chats()
    qtbot.waitUntil(lambda: rig.chats.rowCount() == PAGE)
    assert calls == [(PAGE + 1, 0)]
    assert rig.chats.jid_at(0) == f"1555100{PAGE + 49:04d}@s.whatsapp.net"  # the newest first
    rig.window.chat_list.scrollToBottom()  # the view asks for more at the end
    qtbot.waitUntil(lambda: rig.chats.rowCount() == PAGE + 50)
    assert calls[1] == (PAGE + 1, PAGE)
    assert not rig.chats.more


def test_a_joined_group_without_messages_is_listed(qtbot: Any, rig: Rig) -> None:
    rig.factory.groups[GROUP] = group_info(name="Suppliers")
    rig.connect(open_chat=None)
    qtbot.waitUntil(lambda: rig.chats.chat(GROUP) is not None)  # ChatsChanged: the list is read again
    chat = rig.chats.chat(GROUP)
    assert (chat.name, chat.joined, chat.last_id) == ("Suppliers", True, None)
    assert chat_preview(chat).text == "No messages yet"


def test_a_chat_row_says_who_what_and_when(qtbot: Any, rig: Rig) -> None:
    three_peers_and_a_group_write(rig)
    index = rig.chats.index(rig.chats.row_of(LEA))
    spoken = index.data(Qt.ItemDataRole.AccessibleTextRole)
    assert spoken.startswith("Lea, +1 555-000-3333. 2 unread messages. ")
    assert "today at" in spoken and spoken.endswith(": are you open today?")
    group = rig.chats.index(rig.chats.row_of(GROUP)).data(Qt.ItemDataRole.AccessibleTextRole)
    assert group.startswith("Shop team, group. 1 unread message. Lea today at")
    # what a screen reader gets from the list itself
    list_view = QAccessible.queryAccessibleInterface(rig.window.chat_list)
    assert list_view is not None
    names = {list_view.child(i).text(QAccessible.Text.Name) for i in range(list_view.childCount())}
    assert spoken in names
    click_chat(rig, LEA)
    bubble = rig.window.model.index(1).data(Qt.ItemDataRole.AccessibleTextRole)
    assert bubble.startswith("Received from Lea (+1 555-000-3333) at ")
    assert bubble.endswith(": are you open today?")


def test_the_chat_list_and_a_conversation_that_cannot_be_read_say_so(
    qtbot: Any, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    three_peers_and_a_group_write(rig)
    real_chats, real_conversation = rig.session.chats, rig.session.conversation
    down = StorageError("locked", "database is locked", "read")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise down

    monkeypatch.setattr(rig.session, "chats", refuse)
    monkeypatch.setattr(rig.session, "conversation", refuse)
    messenger = rig.window.messenger
    messenger._retry_chats.setInterval(200)
    messenger.reload_chats()
    qtbot.waitUntil(lambda: "cannot be shown" in rig.window.chat_list.placeholder)
    assert "database is locked" in rig.window.chat_list.placeholder
    assert rig.chats.rowCount() == 4  # what was shown stays
    messenger.open_chat(BEN)
    qtbot.waitUntil(lambda: "cannot be shown" in rig.window.log_view.placeholder)
    monkeypatch.setattr(rig.session, "chats", real_chats)
    monkeypatch.setattr(rig.session, "conversation", real_conversation)
    qtbot.waitUntil(lambda: "No chats yet" in rig.window.chat_list.placeholder)  # tried again by itself
    assert rig.window.isVisible()


# ---- the conversation: pages from the store ----------------------------------------------------


def test_a_long_chat_opens_from_one_page_and_pages_back_as_one_scrolls_up(
    qtbot: Any, rig: Rig, conversation_calls: list[tuple[str, int | None, int]]
) -> None:
    fill(rig.session.store, BEN, 20_000)
    fill(rig.session.store, LEA, 10)
    rig.window.messenger.reload_chats()
    qtbot.waitUntil(lambda: rig.chats.rowCount() == 2)
    click_chat(rig, LEA)
    assert conversation_calls == [(LEA, None, CONVERSATION_PAGE)]
    assert rig.window.model.rowCount() == 10
    conversation_calls.clear()
    click_chat(rig, BEN)  # 20,000 messages: the same one read of one page
    qtbot.wait(100)
    assert conversation_calls == [(BEN, None, CONVERSATION_PAGE)]
    model, view = rig.window.model, rig.window.log_view
    assert model.rowCount() == CONVERSATION_PAGE
    assert model.entries()[-1].text == "message number 19999"
    assert model.has_more
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() > 0)  # the newest are shown
    # scrolling to the top reads the page before, and what was on screen stays where it was
    oldest = model.entries()[0]
    bar.setValue(0)
    qtbot.waitUntil(lambda: model.rowCount() == 2 * CONVERSATION_PAGE)
    assert conversation_calls[1] == (BEN, oldest.seq, CONVERSATION_PAGE)
    row = model.entries().index(oldest)
    assert row == CONVERSATION_PAGE
    assert abs(view.visualRect(model.index(row)).top()) < 40
    assert model.entries()[0].text == f"message number {20_000 - 2 * CONVERSATION_PAGE}"
    assert len(conversation_calls) == 2


def test_a_bubble_is_measured_once_and_again_when_its_message_or_the_width_changes(
    qtbot: Any, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.connect()
    rig.type_and_send("see you at 5")
    model, view = rig.window.model, rig.window.log_view
    qtbot.waitUntil(lambda: model.rowCount() == 1 and model.entries()[0].status == "sent")
    measured: list[str] = []
    real = view.bubbles._measure_entry
    monkeypatch.setattr(
        view.bubbles, "_measure_entry", lambda index, entry: measured.append(entry.text) or real(index, entry)
    )
    view.viewport().repaint()
    assert measured == []  # painting again lays nothing out again
    before = view.visualRect(model.index(0)).height()
    # the message changes (it failed, with a long reason): measured again, the bubble grows
    [entry] = model.entries()
    model.update(entry.id, status="failed", error="not_on_whatsapp: " + "no account for this number " * 12)
    qtbot.waitUntil(lambda: view.visualRect(model.index(0)).height() > before)
    assert measured and set(measured) == {"see you at 5"}
    # a narrower window: measured again for the new width
    measured.clear()
    taller = view.visualRect(model.index(0)).height()
    rig.window.resize(rig.window.width() - 200, rig.window.height())
    qtbot.waitUntil(lambda: view.visualRect(model.index(0)).height() > taller)
    assert measured


def test_a_message_arriving_while_the_page_is_read_is_shown_once(qtbot: Any, rig: Rig) -> None:
    rig.connect(open_chat=None)
    gate = threading.Event()
    real = rig.session.conversation

    def slow(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        gate.wait(5)
        return result

    rig.session.conversation = slow  # type: ignore[method-assign]
    try:
        rig.window.messenger.open_chat(BEN)
        rig.incoming("15550002222", "while reading", "Ben")
        qtbot.waitUntil(lambda: len(rig.window.messenger._buffered) == 1)  # held until the page is in
        gate.set()
        rig.wait_open(BEN)
        qtbot.waitUntil(lambda: len(rig.window.model.entries()) == 1)
        qtbot.wait(100)
        assert [e.text for e in rig.window.model.entries()] == ["while reading"]
    finally:
        gate.set()
        rig.session.conversation = real  # type: ignore[method-assign]


# ---- search ----------------------------------------------------------------------------------------


def search(rig: Rig, text: str) -> None:
    rig.window.search.clear()
    rig.qtbot.keyClicks(rig.window.search, text)
    rig.qtbot.waitUntil(lambda: rig.window.messenger.search_model.query == text, timeout=5000)


def test_search_finds_a_message_by_a_word_and_opens_its_chat(qtbot: Any, rig: Rig) -> None:
    three_peers_and_a_group_write(rig)
    search(rig, "closes")
    messenger = rig.window.messenger
    assert messenger.list_stack.currentWidget() is messenger.search_view
    [hit] = messenger.search_model.hits()
    assert isinstance(hit, Hit) and hit.record.text == "who closes today?" and hit.title == "Shop team"
    assert messenger.search_model.chats() == []
    row = messenger.search_model.rows().index(hit)
    rect = messenger.search_view.visualRect(messenger.search_model.index(row))
    qtbot.mouseClick(messenger.search_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    rig.wait_open(GROUP)
    qtbot.waitUntil(lambda: rig.window.log_view.current_entry() is not None)
    assert rig.window.log_view.current_entry().text == "who closes today?"
    # a word's start finds it too; Enter opens the first result
    search(rig, "ope")
    assert [h.record.text for h in messenger.search_model.hits()] == ["are you open today?"]
    qtbot.keyClick(rig.window.search, Qt.Key.Key_Return)
    rig.wait_open(LEA)
    # Escape leaves the search: the chat list is back
    rig.window.search.setFocus()
    qtbot.keyClick(rig.window.search, Qt.Key.Key_Escape)
    assert rig.window.search.text() == ""
    assert messenger.list_stack.currentWidget() is rig.window.chat_list
    assert rig.window.chat_list.hasFocus()


def test_a_message_far_back_is_paged_to_when_chosen(qtbot: Any, rig: Rig) -> None:
    fill(rig.session.store, BEN, 400)
    rig.window.messenger.reload_chats()
    qtbot.waitUntil(lambda: rig.chats.rowCount() == 1)
    search(rig, "number 7")  # "message number 7", 393 messages back
    hit = next(h for h in rig.window.messenger.search_model.hits() if h.record.text == "message number 7")
    rig.window.messenger.open_chat(BEN, reveal=(hit.record.id, hit.record.seq))
    qtbot.waitUntil(lambda: rig.window.log_view.current_entry() is not None, timeout=8000)
    assert rig.window.log_view.current_entry().text == "message number 7"


def test_the_chat_filter_matches_names_and_numbers_in_any_notation(qtbot: Any, rig: Rig) -> None:
    three_peers_and_a_group_write(rig)
    messenger = rig.window.messenger
    search(rig, "lea")
    assert [c.jid for c in messenger.search_model.chats()] == [LEA]
    search(rig, "shop")
    assert [c.jid for c in messenger.search_model.chats()] == [GROUP]
    search(rig, "555 000 4444")
    assert [c.jid for c in messenger.search_model.chats()] == [NONAME]
    search(rig, "+1 (555) 000-3333")
    assert [c.jid for c in messenger.search_model.chats()] == [LEA]
    search(rig, "nobody")
    assert messenger.search_model.rowCount() == 0
    assert rig.window.messenger.search_view.placeholder == "No chats or messages found for “nobody”."
    # Down goes to the results, Enter opens one
    search(rig, "ben")
    qtbot.keyClick(rig.window.search, Qt.Key.Key_Down)
    assert messenger.search_view.hasFocus()
    qtbot.keyClick(messenger.search_view, Qt.Key.Key_Return)
    rig.wait_open(BEN)
    qtbot.keyClick(messenger.search_view, Qt.Key.Key_Escape)  # Escape in the results leaves too
    assert rig.window.search.text() == "" and rig.window.chat_list.hasFocus()


# ---- new chats -------------------------------------------------------------------------------------


def new_chat(rig: Rig, typed: str) -> Any:
    rig.qtbot.keyClick(rig.window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    dialog = rig.window.new_chat_dialog
    assert dialog is not None and dialog.isVisible()
    rig.qtbot.keyClicks(dialog.number, typed)
    return dialog


def test_a_new_chat_to_a_number_not_on_whatsapp_says_so_and_queues_nothing(qtbot: Any, rig: Rig) -> None:
    rig.factory.not_on_whatsapp.add("15550009999")
    rig.connect(open_chat=None)
    dialog = new_chat(rig, "+1 555 000 9999")
    assert dialog.status.text() == "✓ WhatsApp number +1 555-000-9999"
    qtbot.mouseClick(dialog.start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "not on WhatsApp" in dialog.status.text())
    assert dialog.status.text() == (
        "+1 555-000-9999 is not on WhatsApp: a message to it cannot be delivered, so none is sent."
    )
    assert dialog.status.objectName() == "error" and dialog.isVisible()
    assert not dialog.start.isEnabled()
    assert rig.factory.checks == ["15550009999"]
    assert rig.window.messenger.current_chat is None
    rig.idle()
    assert rig.session.outbox_depth() == 0 and rig.factory.sent == []
    assert rig.session.chat("15550009999@s.whatsapp.net") is None  # not even listed
    dialog.reject()


def test_a_new_chat_in_any_notation_opens_after_the_check(qtbot: Any, rig: Rig) -> None:
    rig.connect(open_chat=None)
    dialog = new_chat(rig, "0015550005555")
    qtbot.keyClick(dialog.number, Qt.Key.Key_Return)
    jid = "15550005555@s.whatsapp.net"
    rig.wait_open(jid)
    assert rig.factory.checks == ["15550005555"]
    assert rig.window.new_chat_dialog is None
    assert rig.window.messenger.header.title.text() == "+1 555-000-5555"
    assert rig.chats.jid_at(0) == jid and chat_preview(rig.chats.chat(jid)).text == "No messages yet"
    qtbot.waitUntil(rig.compose.message.hasFocus)
    rig.type_and_send("welcome")
    qtbot.waitUntil(lambda: rig.factory.sent == [(jid, "welcome")])


def test_a_new_chat_while_offline_says_the_check_comes_at_send_time(qtbot: Any, rig: Rig) -> None:
    rig.start()  # paired, not connected: WhatsApp cannot be asked now
    dialog = new_chat(rig, "+1 555 000 6666")
    qtbot.mouseClick(dialog.start, Qt.MouseButton.LeftButton)
    jid = "15550006666@s.whatsapp.net"
    rig.wait_open(jid)
    assert "asked whether this number has an account when the first message goes out" in (
        rig.window.messenger.header.subtitle.text()
    )
    assert rig.factory.checks == []


def test_a_group_can_be_picked_for_a_new_chat(qtbot: Any, rig: Rig) -> None:
    three_peers_and_a_group_write(rig)
    dialog = new_chat(rig, "")
    assert [c.jid for c in dialog.groups_model.chats()] == [GROUP]
    qtbot.keyClicks(dialog.number, "shop")
    assert [c.jid for c in dialog.groups_model.chats()] == [GROUP]
    qtbot.keyClicks(dialog.number, "x")
    assert dialog.groups_model.rowCount() == 0
    assert dialog.status.objectName() == "error"
    dialog.number.clear()
    rect = dialog.groups.visualRect(dialog.groups_model.index(0))
    qtbot.mouseClick(dialog.groups.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    rig.wait_open(GROUP)
    assert rig.factory.checks == []  # a group is not a number to check


def test_a_number_without_its_country_code_is_refused_as_typed(qtbot: Any, rig: Rig) -> None:
    rig.connect(open_chat=None)
    dialog = new_chat(rig, "0151 23456789")
    assert "country code" in dialog.status.text()
    assert not dialog.start.isEnabled()
    qtbot.keyClick(dialog.number, Qt.Key.Key_Return)
    assert rig.factory.checks == [] and rig.window.messenger.current_chat is None
    dialog.reject()


# ---- drafts, attachments, read receipts ------------------------------------------------------------


def test_drafts_survive_switching_chats_and_a_restart(
    qtbot: Any, make_rig: Callable[..., Rig], data: DataDir
) -> None:
    rig = make_rig()
    three_peers_and_a_group_write(rig)
    click_chat(rig, BEN)
    qtbot.keyClicks(rig.compose.message, "half a thought")
    click_chat(rig, LEA)
    assert rig.compose.message.toPlainText() == ""
    ben = rig.chats.chat(BEN)
    assert chat_preview(ben).prefix == "Draft: " and chat_preview(ben).text == "half a thought"
    rig.idle()
    assert rig.session.chat(BEN).draft == "half a thought"
    qtbot.keyClicks(rig.compose.message, "for Lea")
    click_chat(rig, BEN)
    assert rig.compose.message.toPlainText() == "half a thought"
    assert chat_preview(rig.chats.chat(BEN), BEN).prefix == ""  # the open chat's draft is in the form
    rig.window.shutdown()  # the open chat's draft is kept too
    assert rig.window.wait_stopped(5)
    rig.session.store.close()

    again = make_rig()
    qtbot.waitUntil(lambda: again.chats.rowCount() == 4)
    click_chat(again, LEA)
    assert again.compose.message.toPlainText() == "for Lea"
    click_chat(again, BEN)
    assert again.compose.message.toPlainText() == "half a thought"
    again.connect(open_chat=None)
    again.compose.submit()  # sending it: the draft is gone
    qtbot.waitUntil(lambda: again.factory.sent == [(BEN, "half a thought")])
    again.idle()
    assert again.session.chat(BEN).draft is None
    assert again.compose.message.toPlainText() == ""


def test_an_attachment_stays_with_its_chat(qtbot: Any, rig: Rig, tmp_path: Any) -> None:
    rig.connect()
    path = tmp_path / "terms.txt"
    path.write_text("the terms\n")
    rig.window.attach_file(path)
    qtbot.waitUntil(lambda: rig.compose.attachment is not None)
    rig.open(LEA)
    assert not rig.compose.has_attachment
    rig.open(BEN)
    assert rig.compose.attachment is not None and rig.compose.attachment.name == "terms.txt"


@pytest.mark.parametrize("receipts", [False, True])
def test_read_receipts_only_when_the_setting_is_on(qtbot: Any, rig: Rig, receipts: bool) -> None:
    three_peers_and_a_group_write(rig)
    action = rig.window.read_receipts_action
    assert not action.isChecked()
    if receipts:
        action.trigger()
    assert (
        QSettings(str(rig.window.settings.fileName()), QSettings.Format.IniFormat).value(
            "chats/send_read_receipts"
        )
        == ("true" if receipts else "false")
        or not receipts
    )
    click_chat(rig, LEA)
    rig.idle()
    qtbot.wait(50)
    if receipts:
        qtbot.waitUntil(lambda: bool(rig.factory.read_receipts))
        [(chat, sender, ids)] = rig.factory.read_receipts
        assert (chat, sender, len(ids)) == (LEA, LEA, 2)
    else:
        assert rig.factory.read_receipts == []
    assert rig.session.chat(LEA).unread == 0


# ---- notifications ---------------------------------------------------------------------------------


@pytest.fixture
def notes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(traymod.Tray, "visible", property(lambda self: True))
    monkeypatch.setattr(traymod.Tray, "notify", lambda self, title, text: shown.append((title, text)))
    monkeypatch.setattr(traymod.Tray, "show", lambda self: None)  # no tray host to show it in
    return shown


@contextlib.contextmanager
def another_window_active(qtbot: Any) -> Iterator[QWidget]:
    other = QWidget()
    other.setWindowTitle("another program")
    other.resize(200, 100)
    other.show()
    other.activateWindow()
    qtbot.waitUntil(other.isActiveWindow)
    try:
        yield other
    finally:
        other.close()
        other.deleteLater()


def test_notifications_name_the_chat_and_clicking_one_opens_it(
    qtbot: Any, make_rig: Callable[..., Rig], notes: list[tuple[str, str]]
) -> None:
    rig = make_rig(use_tray=True)
    rig.factory.groups[GROUP] = group_info()
    rig.connect(open_chat=None)
    rig.incoming("15550002222", "seen, no note", "Ben")  # the window is active: no notification
    qtbot.waitUntil(lambda: rig.chats.chat(BEN) is not None)
    rig.idle()
    assert notes == []
    with another_window_active(qtbot):
        rig.incoming("15550002222", "are you there?", "Ben")
        rig.incoming("15550003333", "who closes today?", "Lea", group=GROUP)
        qtbot.waitUntil(lambda: len(notes) == 2)
        assert notes == [("Ben", "are you there?"), ("Shop team", "Lea: who closes today?")]
        rig.window.tray.messageClicked.emit()  # the last one was clicked
        rig.wait_open(GROUP)
    assert rig.window.isVisible()


def test_an_open_chat_counts_what_arrives_while_the_window_is_not_active(qtbot: Any, rig: Rig) -> None:
    three_peers_and_a_group_write(rig)
    click_chat(rig, BEN)
    with another_window_active(qtbot):
        rig.incoming("15550002222", "hello?", "Ben")
        qtbot.waitUntil(lambda: rig.chats.chat(BEN).unread == 1)
        rig.idle()
        assert rig.session.chat(BEN).unread == 1
    rig.window.activateWindow()
    qtbot.waitUntil(rig.window.isActiveWindow)
    qtbot.waitUntil(lambda: rig.chats.chat(BEN).unread == 0)
    qtbot.waitUntil(lambda: rig.session.chat(BEN).unread == 0)


# ---- keyboard, layout ------------------------------------------------------------------------------


def test_keyboard_shortcuts(qtbot: Any, rig: Rig) -> None:
    three_peers_and_a_group_write(rig)
    window = rig.window
    window.chat_list.setFocus()
    for keys in (
        (Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier),
        (Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier),
    ):
        rig.compose.message.setFocus() if window.messenger.current_chat else window.chat_list.setFocus()
        qtbot.keyClick(QApplication.focusWidget(), *keys)
        assert window.search.hasFocus(), keys
        qtbot.keyClick(window.search, Qt.Key.Key_Escape)
        assert window.chat_list.hasFocus()
    # Alt+Down / Alt+Up and Ctrl+Tab / Ctrl+Shift+Tab move between chats (newest first)
    alt, ctrl = Qt.KeyboardModifier.AltModifier, Qt.KeyboardModifier.ControlModifier
    shift = Qt.KeyboardModifier.ShiftModifier
    steps = [
        (Qt.Key.Key_Down, alt, GROUP),
        (Qt.Key.Key_Down, alt, NONAME),
        (Qt.Key.Key_Tab, ctrl, LEA),
        (Qt.Key.Key_Tab, ctrl, BEN),
        (Qt.Key.Key_Tab, ctrl, BEN),  # the last one stays
        (Qt.Key.Key_Up, alt, LEA),
        (Qt.Key.Key_Backtab, ctrl | shift, NONAME),
    ]
    for key, modifiers, expected in steps:
        qtbot.keyClick(QApplication.focusWidget() or window, key, modifiers)
        rig.wait_open(expected)
    rig.compose.message.setFocus()
    qtbot.keyClick(rig.compose.message, Qt.Key.Key_Down, alt)  # from the message field too
    rig.wait_open(LEA)
    assert rig.compose.message.hasFocus()
    # Ctrl+N: the new chat dialog; Escape closes it
    qtbot.keyClick(rig.compose.message, Qt.Key.Key_N, ctrl)
    dialog = window.new_chat_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(dialog.number.hasFocus)
    qtbot.keyClick(dialog.number, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.new_chat_dialog is None)
    # in the list, the arrows move the current chat (wide: it opens), Enter opens it
    window.chat_list.setFocus()
    qtbot.keyClick(window.chat_list, Qt.Key.Key_Down)
    rig.wait_open(BEN)
    assert window.windowTitle() == "Ben – wadesk"


def test_narrow_window_shows_one_pane_with_a_back_button(qtbot: Any, rig: Rig) -> None:
    three_peers_and_a_group_write(rig)
    window, messenger = rig.window, rig.window.messenger
    window.resize(NARROW - 140, 560)
    qtbot.waitUntil(lambda: messenger.narrow)
    assert messenger.chats_pane.isVisible() and not messenger.conversation.isVisible()
    # moving in the list does not open a chat here; a click does
    window.chat_list.setFocus()
    window.chat_list.setCurrentIndex(rig.chats.index(1))
    qtbot.wait(50)
    assert messenger.current_chat is None
    click_chat(rig, LEA)
    assert messenger.conversation.isVisible() and not messenger.chats_pane.isVisible()
    assert messenger.header.back.isVisible()
    assert rig.compose.message.hasFocus()
    qtbot.mouseClick(messenger.header.back, Qt.MouseButton.LeftButton)
    assert messenger.chats_pane.isVisible() and not messenger.conversation.isVisible()
    assert window.chat_list.hasFocus()
    click_chat(rig, BEN)
    qtbot.keyClick(rig.compose.message, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)  # Alt+Left: Back
    assert messenger.chats_pane.isVisible() and not messenger.conversation.isVisible()
    # wide again: both, with the chat still open
    window.resize(NARROW + 300, 560)
    qtbot.waitUntil(lambda: not messenger.narrow)
    assert messenger.chats_pane.isVisible() and messenger.conversation.isVisible()
    assert not messenger.header.back.isVisible()
    assert messenger.current_chat == BEN


def test_the_split_is_resizable_and_remembered(qtbot: Any, make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.window.resize(780, 560)
    splitter = rig.window.messenger.splitter
    handle = splitter.handle(1)
    qtbot.waitUntil(lambda: splitter.sizes()[0] > 0)
    before = splitter.sizes()[0]
    start = handle.rect().center()
    qtbot.mousePress(handle, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(handle, start + QPoint(60, 0))
    qtbot.mouseRelease(handle, Qt.MouseButton.LeftButton, pos=start + QPoint(60, 0))
    qtbot.waitUntil(lambda: splitter.sizes()[0] != before)
    wanted = splitter.sizes()[0]
    assert abs(wanted - (before + 60)) <= 2
    rig.window.shutdown()
    assert rig.window.wait_stopped(5)
    rig.session.store.close()
    again = make_rig()
    again.window.resize(780, 560)
    qtbot.waitUntil(lambda: again.window.messenger.splitter.sizes()[0] == wanted)


# ---- the GUI thread never reads the store ----------------------------------------------------------


def test_the_gui_thread_never_reads_or_writes_the_store(
    qtbot: Any, make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    gui = threading.get_ident()
    on_gui: list[str] = []
    real_query, real_transaction = Store.query, Store.transaction

    def query(self: Store, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if threading.get_ident() == gui:
            on_gui.append(f"query {sql[:60]}\n" + "".join(traceback.format_stack(limit=8)))
        return real_query(self, sql, params)

    def transaction(self: Store, operation: str = "write") -> Any:
        if threading.get_ident() == gui:
            on_gui.append(f"transaction {operation}\n" + "".join(traceback.format_stack(limit=8)))
        return real_transaction(self, operation)

    monkeypatch.setattr(Store, "query", query)
    monkeypatch.setattr(Store, "transaction", transaction)
    rig = make_rig()
    fill(rig.session.store, BEN, 300)  # the test's own writes happen before the window reads
    on_gui.clear()
    three_peers_and_a_group_write(rig)  # the list from the store and from events
    click_chat(rig, BEN)  # a conversation's first page, and marking it read
    bar = rig.window.log_view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() > 0)
    bar.setValue(0)  # an older page
    qtbot.waitUntil(lambda: rig.window.model.rowCount() > CONVERSATION_PAGE)
    qtbot.keyClicks(rig.compose.message, "a draft")
    click_chat(rig, LEA)  # the draft is kept
    rig.type_and_send("sent from the window")  # queued, sent, the outbox count
    path = tmp_path / "note.txt"
    path.write_text("a note\n")
    rig.window.attach_file(path)
    qtbot.waitUntil(lambda: rig.compose.attachment is not None)
    rig.compose.submit()
    qtbot.waitUntil(lambda: len(rig.factory.sent) == 2)
    search(rig, "closes")  # search, with the chats' names
    qtbot.keyClick(rig.window.search, Qt.Key.Key_Escape)
    dialog = new_chat(rig, "+1 555 000 7777")  # the number check and a new chat
    qtbot.keyClick(dialog.number, Qt.Key.Key_Return)
    rig.wait_open("15550007777@s.whatsapp.net")
    api = threading.Thread(target=rig.session.send, args=("+15550003333", "through the local API"))
    api.start()  # as the local API does, on its own thread: an event about a message not shown
    api.join(5)
    rig.incoming("15550008888", "a stranger writes")  # a chat not listed yet
    qtbot.waitUntil(lambda: rig.chats.chat("15550008888@s.whatsapp.net") is not None)
    rig.idle()
    rig.window.shutdown()
    assert rig.window.wait_stopped(5)
    assert on_gui == [], on_gui[0]
