"""GET /chats, GET /messages?chat= and ?q=, POST /chats/<jid>/read (a real Session, fake driver)."""

from __future__ import annotations

import time

from flask.testing import FlaskClient
from headless_harness import TOKEN, FakeWorld

from wadesk.core.session import Session

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BOB = "15550002222@s.whatsapp.net"
CAROL = "15550003333@s.whatsapp.net"


def receive(session: Session, chat: str, text: str, name: str = "Bob") -> None:
    session.store.record_incoming(
        wa_id=f"W{time.monotonic_ns()}",
        chat=chat,
        sender=chat,
        push_name=name,
        text=text,
        timestamp=time.time(),
        is_group=False,
    )


def test_chats_list_unread_counts_and_the_last_message(client: FlaskClient, session: Session) -> None:
    receive(session, BOB, "first")
    receive(session, CAROL, "from carol", name="Carol")
    receive(session, BOB, "the parcel arrived")
    r = client.get("/chats", headers=AUTH)
    assert r.status_code == 200
    bob, carol = r.get_json()["chats"]
    assert (bob["jid"], bob["name"], bob["phone"], bob["unread"], bob["is_group"]) == (
        BOB,
        "Bob",
        "+15550002222",
        2,
        False,
    )
    assert bob["last_message"]["preview"] == "the parcel arrived"
    assert bob["last_message"]["direction"] == "in"
    assert carol["name"] == "Carol"
    assert [c["jid"] for c in client.get("/chats?q=carol", headers=AUTH).get_json()["chats"]] == [CAROL]
    page = client.get("/chats?limit=1", headers=AUTH).get_json()
    assert len(page["chats"]) == 1 and page["next_cursor"] == "1"
    rest = client.get("/chats?limit=1&cursor=1", headers=AUTH).get_json()
    assert [c["jid"] for c in rest["chats"]] == [CAROL]


def test_reading_a_chat_clears_its_count_and_tells_whatsapp_only_when_asked(
    client: FlaskClient, session: Session, world: FakeWorld
) -> None:
    receive(session, BOB, "one")
    r = client.post(f"/chats/{BOB}/read", headers=AUTH)
    assert r.status_code == 200 and r.get_json() == {"chat": BOB, "marked_read": 1}
    assert world.read_receipts == []
    receive(session, BOB, "two")
    r = client.post("/chats/+15550002222/read?receipts=true", headers=AUTH)
    assert r.get_json()["marked_read"] == 1
    assert [(c, s) for c, s, _ in world.read_receipts] == [(BOB, BOB)]
    assert client.get("/chats", headers=AUTH).get_json()["chats"][0]["unread"] == 0
    assert client.post("/chats/15559999999@s.whatsapp.net/read", headers=AUTH).status_code == 404
    bad = client.post(f"/chats/{BOB}/read?receipts=yes", headers=AUTH)
    assert bad.status_code == 400 and bad.get_json()["field"] == "receipts"


def test_messages_of_one_chat_and_a_search(client: FlaskClient, session: Session) -> None:
    receive(session, BOB, "where is my parcel")
    receive(session, CAROL, "parcel for carol", name="Carol")
    receive(session, BOB, "never mind")
    one_chat = client.get("/messages?chat=+1 555 000 2222", headers=AUTH).get_json()["messages"]
    assert [m["text"] for m in one_chat] == ["never mind", "where is my parcel"]  # newest first
    found = client.get("/messages?q=parc", headers=AUTH).get_json()["messages"]
    assert [m["text"] for m in found] == ["parcel for carol", "where is my parcel"]
    assert [
        m["text"] for m in client.get(f"/messages?q=parcel&chat={BOB}", headers=AUTH).get_json()["messages"]
    ] == ["where is my parcel"]
    first = client.get("/messages?q=parcel&limit=1", headers=AUTH).get_json()
    second = client.get(f"/messages?q=parcel&limit=1&cursor={first['next_cursor']}", headers=AUTH).get_json()
    assert [m["text"] for m in second["messages"]] == ["where is my parcel"]
    for query, field in (("q=", "q"), ("q=" + "x" * 201, "q"), ("chat=nope", "chat")):
        r = client.get(f"/messages?{query}", headers=AUTH)
        assert r.status_code == 400 and r.get_json()["field"] == field
