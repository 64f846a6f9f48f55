"""Groups and contacts through the HTTP API (a real Session on the fake driver)."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from headless_harness import TOKEN, FakeWorld, make_session, start_session, wait_until
from PIL import Image

from wadesk.api.app import create_app
from wadesk.core import driver as drv
from wadesk.core import session as session_module

AUTH = {"Authorization": f"Bearer {TOKEN}"}
GROUP = "120363000000000001@g.us"


@pytest.fixture
def gateway(tmp_path: Path):  # type: ignore[no-untyped-def]
    world = FakeWorld("connected")
    world.account_lid = "900001@lid"
    world.groups[GROUP] = drv.GroupInfo(
        jid=GROUP,
        name="Team",
        topic="plans",
        announce=True,
        locked=False,
        owner="15550001111@s.whatsapp.net",
        created=1_700_000_000.0,
        participants=(
            drv.Participant("15550001111@s.whatsapp.net", "900001@lid", "15550001111", True, True),
            drv.Participant("15550002222@s.whatsapp.net", "900002@lid", "15550002222", False, False),
            drv.Participant("900003@lid", "900003@lid", None, False, False),
        ),
    )
    session = make_session(tmp_path / "data", world)
    start_session(session)
    yield session, world, create_app(session, token=TOKEN).test_client()
    session.stop()


def test_groups_are_listed_and_described_with_their_participants(gateway) -> None:  # type: ignore[no-untyped-def]
    _session, _world, client = gateway
    [listed] = client.get("/groups", headers=AUTH).get_json()["groups"]
    assert listed == {
        "jid": GROUP,
        "name": "Team",
        "topic": "plans",
        "participant_count": 3,
        "only_admins_send": True,
        "we_are_admin": True,
    }
    one = client.get(f"/groups/{GROUP}", headers=AUTH).get_json()
    assert [(p["phone"], p["lid"], p["admin"]) for p in one["participants"]] == [
        ("+15550001111", "900001@lid", True),
        ("+15550002222", "900002@lid", False),
        (None, "900003@lid", False),  # a LID-only member: no number is made up
    ]
    missing = client.get("/groups/120363999999999999@g.us", headers=AUTH)
    assert missing.status_code == 404 and missing.get_json()["error"] == "group_not_found"
    assert client.get("/groups/15550002222@s.whatsapp.net", headers=AUTH).get_json()["field"] == "jid"


def test_this_account_is_found_among_the_admins_by_its_number_or_by_its_lid(gateway) -> None:  # type: ignore[no-untyped-def]
    _session, world, client = gateway

    def group(jid: str, *me: drv.Participant) -> None:
        other = drv.Participant("900002@lid", "900002@lid", None, True, False)
        world.groups[jid] = drv.GroupInfo(jid, jid[:6], "", False, False, "", 0.0, (other, *me))

    group("120363000000000011@g.us", drv.Participant("900001@lid", "900001@lid", None, True, False))
    group("120363000000000012@g.us", drv.Participant("900001@lid", "900001@lid", "15550001111", True, False))
    group("120363000000000013@g.us", drv.Participant("900001@lid", "900001@lid", None, False, False))
    group("120363000000000014@g.us")  # an admin, but not this account
    group("120363000000000015@g.us", drv.Participant("1555000111@s.whatsapp.net", None, None, True, False))
    admin = {g["jid"]: g["we_are_admin"] for g in client.get("/groups", headers=AUTH).get_json()["groups"]}
    assert admin == {
        GROUP: True,  # by its number
        "120363000000000011@g.us": True,  # by its LID alone
        "120363000000000012@g.us": True,
        "120363000000000013@g.us": False,  # a member, not an admin
        "120363000000000014@g.us": False,
        "120363000000000015@g.us": False,  # another number that starts the same way
    }


def test_mentions_are_written_into_the_text_and_sent_as_mentions(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    answer = client.post(
        "/send", json={"to": GROUP, "text": "lunch?", "mentions": ["+1 555 000 2222"]}, headers=AUTH
    )
    assert answer.status_code == 202, answer.get_json()
    record = session.message(answer.get_json()["id"])
    assert record.text == "lunch? @15550002222"
    assert json.loads(record.mentions) == ["15550002222@s.whatsapp.net"]
    everyone = client.post(
        "/send", json={"to": GROUP, "text": "all hands", "mention_all": True}, headers=AUTH
    )
    assert everyone.status_code == 202
    mentioned = json.loads(session.message(everyone.get_json()["id"]).mentions)
    assert mentioned == [p.jid for p in world.groups[GROUP].participants]
    wait_until(lambda: len(world.sent) == 2, 10, "both sent")
    assert world.mentions_sent[0] == (GROUP, ("15550002222@s.whatsapp.net",))
    refused = client.post(
        "/send", json={"to": "+1 555 000 2222", "text": "x", "mention_all": True}, headers=AUTH
    )
    assert refused.status_code == 400 and refused.get_json()["field"] == "to"


def test_an_incoming_group_message_says_whom_it_mentions_and_whether_this_account_is_among_them(
    gateway,
) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    assert client.get("/status", headers=AUTH).get_json()["account"]["lid"] == "900001@lid"
    seen: list = []
    session.subscribe(seen.append)

    def incoming(wa_id: str, mentions: tuple[str, ...]) -> None:
        world.current.emit(
            drv.Incoming,
            wa_id=wa_id,
            chat=GROUP,
            sender="15550002222@s.whatsapp.net",
            push_name="Bob",
            text="hey",
            timestamp=time.time(),
            is_group=True,
            sender_lid="900002@lid",
            mentions=mentions,
        )

    incoming("G1", ("900001@lid",))  # a LID group mentions the account by its LID
    incoming("G2", ("15550001111@s.whatsapp.net", "900003@lid"))  # a number group by its number
    incoming("G3", ("900003@lid", "15550002222@s.whatsapp.net"))  # others only
    incoming("G4", ())
    wait_until(lambda: len([e for e in seen if e.kind == "message.received"]) == 4, 5, "four messages")
    got = {
        e.wa_id: (list(e.payload()["mentions"]), e.payload()["mentioned_me"])
        for e in seen
        if e.kind == "message.received"
    }
    assert got == {
        "G1": (["900001@lid"], True),
        "G2": (["15550001111@s.whatsapp.net", "900003@lid"], True),
        "G3": (["900003@lid", "15550002222@s.whatsapp.net"], False),
        "G4": ([], False),
    }
    stored = client.get("/messages?direction=in", headers=AUTH).get_json()["messages"]
    assert {m["wa_id"]: m["mentions"] for m in stored} == {k: v[0] for k, v in got.items()}
    assert all(m["chat"] == GROUP and m["is_group"] and m["sender_lid"] == "900002@lid" for m in stored)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def test_media_to_a_group_mentions_people_in_its_caption(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    inline = client.post(
        "/send",
        json={
            "to": GROUP,
            "media": {"data": base64.b64encode(_png()).decode(), "caption": "the plan"},
            "mentions": ["+1 555 000 2222"],
        },
        headers=AUTH,
    )
    assert inline.status_code == 202, inline.get_json()
    record = session.message(inline.get_json()["id"])
    assert (record.text, record.media.caption) == ("the plan @15550002222", "the plan @15550002222")
    assert json.loads(record.mentions) == ["15550002222@s.whatsapp.net"]
    form = client.post(
        "/send",
        data={
            "to": GROUP,
            "mentions": ["+15550002222", "900003@lid"],
            "mention_all": "false",
            "file": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "plan.pdf", "application/pdf"),
        },
        headers=AUTH,
        content_type="multipart/form-data",
    )
    assert form.status_code == 202, form.get_json()
    everyone = client.post(
        "/send",
        data={"to": GROUP, "mention_all": "true", "file": (io.BytesIO(_png()), "all.png", "image/png")},
        headers=AUTH,
        content_type="multipart/form-data",
    )
    assert everyone.status_code == 202, everyone.get_json()
    wait_until(lambda: len(world.media_sent) == 3, 10, "three media sends")
    sent = [(jid, m.kind, m.caption, m.mentions) for jid, m in world.media_sent]
    assert sent == [
        (GROUP, "image", "the plan @15550002222", ("15550002222@s.whatsapp.net",)),
        (GROUP, "document", "@15550002222 @900003", ("15550002222@s.whatsapp.net", "900003@lid")),
        (
            GROUP,
            "image",
            "@15550001111 @15550002222 @900003",
            tuple(p.jid for p in world.groups[GROUP].participants),
        ),
    ]
    assert client.get(f"/messages/{form.get_json()['id']}", headers=AUTH).get_json()["mentions"] == [
        "15550002222@s.whatsapp.net",
        "900003@lid",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": GROUP, "mentions": ["nope"]}, "mentions[0]"),
        ({"to": "+15550002222", "mention_all": "true"}, "to"),
        ({"to": GROUP, "mention_all": "yes"}, "mention_all"),
        ({"to": GROUP, "mentions": ["+15550002222", "12"]}, "mentions[1]"),
        ({"to": GROUP, "mentions": ["+15550002222"] * 101}, "mentions"),  # a form holds 100
        ({"to": GROUP, "mentions": ["+15550002222"], "kind": "sticker"}, "mentions"),
    ],
)
def test_a_bad_mention_with_media_names_its_field_and_queues_nothing(gateway, body, field) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    picture = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(picture, "WEBP")  # a sticker: it has no caption
    answer = client.post(
        "/send",
        data={**body, "file": (io.BytesIO(picture.getvalue()), "x.webp", "image/webp")},
        headers=AUTH,
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400 and answer.get_json()["field"] == field, answer.get_json()
    assert session.outbox_depth() == 0 and world.media_sent == []


def test_number_checks_answer_and_are_remembered(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    world.not_on_whatsapp.add("15550009999")
    world.lids["15550002222@s.whatsapp.net"] = "900002@lid"
    answer = client.get("/contacts/check?phone=%2B15550002222&phone=%2B15550009999", headers=AUTH)
    assert answer.status_code == 200
    assert answer.get_json()["results"] == [
        {
            "phone": "+15550002222",
            "on_whatsapp": True,
            "jid": "15550002222@s.whatsapp.net",
            "lid": "900002@lid",
        },
        {"phone": "+15550009999", "on_whatsapp": False, "jid": "15550009999@s.whatsapp.net", "lid": None},
    ]
    assert session.store.contact(jid="15550009999@s.whatsapp.net").on_whatsapp is False
    # the LID is kept with the number, but a check is no exchange: /contacts lists neither
    assert session.store.contact(jid="15550002222@s.whatsapp.net").lid == "900002@lid"
    assert client.get("/contacts", headers=AUTH).get_json()["contacts"] == []
    assert client.get("/contacts/check", headers=AUTH).get_json()["field"] == "phone"
    too_many = "&".join(f"phone=%2B1555000{i:04d}" for i in range(51))
    assert client.get(f"/contacts/check?{too_many}", headers=AUTH).get_json()["field"] == "phone"


def test_a_person_met_by_lid_and_later_by_number_is_one_contact(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway

    def incoming(wa_id: str, sender: str, lid: str | None) -> None:
        world.driver.emit(
            drv.Incoming,
            wa_id=wa_id,
            chat=sender,
            sender=sender,
            push_name="Carol",
            text="hi",
            timestamp=time.time(),
            is_group=False,
            sender_lid=lid,
        )

    incoming("M1", "900003@lid", "900003@lid")  # the number is not known yet
    wait_until(lambda: client.get("/contacts", headers=AUTH).get_json()["contacts"], 5, "a contact")
    [first] = client.get("/contacts", headers=AUTH).get_json()["contacts"]
    assert (first["phone"], first["lid"]) == (None, "900003@lid")
    message = client.get("/messages?direction=in", headers=AUTH).get_json()["messages"][0]
    assert message["sender_lid"] == "900003@lid" and message["sender_phone"] is None
    incoming("M2", "15550003333@s.whatsapp.net", "900003@lid")  # WhatsApp revealed the number
    assert session.sync()
    contacts = client.get("/contacts", headers=AUTH).get_json()["contacts"]
    assert [(c["phone"], c["lid"], c["push_name"]) for c in contacts] == [
        ("+15550003333", "900003@lid", "Carol")
    ]


def test_a_sender_named_by_lid_alone_gets_the_number_wadesk_or_whatsmeow_learnt_before(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    seen: list = []
    session.subscribe(seen.append)
    session.store.meet("15550003333@s.whatsapp.net", "900003@lid")  # a message carried both once
    world.lids["15550004444@s.whatsapp.net"] = "900004@lid"  # whatsmeow knows this pair only

    def incoming(wa_id: str, sender: str) -> None:
        world.current.emit(
            drv.Incoming,
            wa_id=wa_id,
            chat=GROUP,
            sender=sender,
            push_name="",
            text=wa_id,
            timestamp=time.time(),
            is_group=True,
            sender_lid=sender,
        )

    for wa_id, sender in (("L1", "900003@lid"), ("L2", "900004@lid"), ("L3", "900005@lid")):
        incoming(wa_id, sender)
    wait_until(lambda: len([e for e in seen if e.kind == "message.received"]) == 3, 5, "three messages")
    events = {
        e.wa_id: (e.payload()["sender"], e.payload()["sender_phone"], e.payload()["sender_lid"])
        for e in seen
        if e.kind == "message.received"
    }
    assert events == {
        "L1": ("15550003333@s.whatsapp.net", "+15550003333", "900003@lid"),
        "L2": ("15550004444@s.whatsapp.net", "+15550004444", "900004@lid"),
        "L3": ("900005@lid", None, "900005@lid"),  # nobody told: no number is made up
    }
    stored = client.get("/messages?direction=in", headers=AUTH).get_json()["messages"]
    assert {m["wa_id"]: (m["sender"], m["sender_phone"], m["sender_lid"]) for m in stored} == events
    # one contact per person: the LID-only sender whose number whatsmeow knew is one row
    contacts = {c["lid"]: c["phone"] for c in client.get("/contacts", headers=AUTH).get_json()["contacts"]}
    assert contacts == {"900003@lid": "+15550003333", "900004@lid": "+15550004444", "900005@lid": None}


def test_a_person_writing_by_lid_whose_number_is_known_is_one_chat_with_the_number(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    seen: list = []
    session.subscribe(seen.append)
    session.store.meet("15550003333@s.whatsapp.net", "900003@lid")  # a message carried both once
    sent = client.post("/send", json={"to": "+15550003333", "text": "to the number"}, headers=AUTH)
    assert sent.status_code == 202, sent.get_json()

    def direct(wa_id: str, lid: str) -> None:  # a direct message, chat and sender by LID alone
        world.current.emit(
            drv.Incoming,
            wa_id=wa_id,
            chat=lid,
            sender=lid,
            push_name="",
            text=wa_id,
            timestamp=time.time(),
            is_group=False,
            sender_lid=lid,
        )

    direct("D1", "900003@lid")
    direct("D2", "900005@lid")  # nobody told its number: its chat stays the LID's
    wait_until(lambda: len([e for e in seen if e.kind == "message.received"]) == 2, 5, "two messages")
    chats = {c["jid"]: c["unread"] for c in client.get("/chats", headers=AUTH).get_json()["chats"]}
    assert chats.get("15550003333@s.whatsapp.net") == 1 and "900003@lid" not in chats
    assert chats.get("900005@lid") == 1
    texts = [
        m["text"]
        for m in client.get("/messages?chat=15550003333@s.whatsapp.net", headers=AUTH).get_json()["messages"]
    ]
    assert sorted(texts) == ["D1", "to the number"]
    received = {e.wa_id: e.payload()["chat"] for e in seen if e.kind == "message.received"}
    assert received == {"D1": "15550003333@s.whatsapp.net", "D2": "900005@lid"}


def test_a_number_not_on_whatsapp_fails_once_checked_and_the_answer_is_kept(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    world.not_on_whatsapp.add("15550009999")
    first = client.post("/send", json={"to": "+15550009999", "text": "hello?"}, headers=AUTH).get_json()["id"]
    wait_until(lambda: session.message(first).status == "failed", 10, "failed")
    assert session.message(first).error.startswith("not_on_whatsapp: +15550009999")
    second = client.post("/send", json={"to": "+15550009999", "text": "again?"}, headers=AUTH).get_json()[
        "id"
    ]
    wait_until(lambda: session.message(second).status == "failed", 10, "failed again")
    assert world.checks == ["15550009999"]  # asked once, then remembered
    assert world.sent == []
    ok = client.post("/send", json={"to": "+15550002222", "text": "hi"}, headers=AUTH).get_json()["id"]
    wait_until(lambda: session.message(ok).status == "sent", 10, "sent")


def test_a_sent_message_names_the_lid_of_its_recipient(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    world.lids["15550002222@s.whatsapp.net"] = "900002@lid"
    events: list = []
    session.subscribe(events.append)

    def sent(to: str) -> dict:
        mid = client.post("/send", json={"to": to, "text": "hi"}, headers=AUTH).get_json()["id"]
        wait_until(lambda: session.message(mid).status == "sent", 10, f"sent to {to}")
        return client.get(f"/messages/{mid}", headers=AUTH).get_json()

    by_number = sent("+15550002222")
    assert (by_number["to"], by_number["to_lid"]) == ("15550002222@s.whatsapp.net", "900002@lid")
    by_lid = sent("900003@lid")
    assert (by_lid["to"], by_lid["to_lid"]) == ("900003@lid", "900003@lid")
    unknown = sent("+15550004444")  # WhatsApp named no LID for this number
    assert unknown["to_lid"] is None
    assert sent(GROUP)["to_lid"] is None
    sent_events = [
        e.payload() for e in events if e.kind == "message.status" and e.payload()["status"] == "sent"
    ]
    assert [(e["to"], e["to_lid"]) for e in sent_events] == [
        ("15550002222@s.whatsapp.net", "900002@lid"),
        ("900003@lid", "900003@lid"),
        ("15550004444@s.whatsapp.net", None),
        (GROUP, None),
    ]
    queued = client.post("/send", json={"to": "+15550002222", "text": "x"}, headers=AUTH).get_json()
    assert "to_lid" in client.get(f"/messages/{queued['id']}", headers=AUTH).get_json()
    world.current.emit(
        drv.Incoming,
        wa_id="IN1",
        chat="15550002222@s.whatsapp.net",
        sender="15550002222@s.whatsapp.net",
        push_name="Bob",
        text="hello",
        timestamp=time.time(),
        is_group=False,
        sender_lid="900002@lid",
    )
    [received] = wait_until(
        lambda: client.get("/messages?direction=in", headers=AUTH).get_json()["messages"], 5, "received"
    )
    assert "to_lid" not in received and received["sender_lid"] == "900002@lid"


def test_the_answer_on_a_number_is_trusted_for_a_day_then_asked_again(gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    assert session_module.RECIPIENT_CHECK_TTL == 86400.0
    world.not_on_whatsapp.add("15550009999")

    def send() -> str:
        return client.post("/send", json={"to": "+15550009999", "text": "hi"}, headers=AUTH).get_json()["id"]

    first = send()
    wait_until(lambda: session.message(first).status == "failed", 10, "failed")
    world.not_on_whatsapp.discard("15550009999")  # the number gets an account
    second = send()
    wait_until(lambda: session.message(second).status == "failed", 10, "failed within the day")
    assert world.checks == ["15550009999"] and world.sent == []
    checked = session.store.contact(jid="15550009999@s.whatsapp.net").checked_at
    # a day later (here: the trusted time shortened to what has passed) WhatsApp is asked again
    monkeypatch.setattr(session_module, "RECIPIENT_CHECK_TTL", time.time() - checked)
    third = send()
    wait_until(lambda: session.message(third).status == "sent", 10, "sent once asked again")
    assert world.checks == ["15550009999", "15550009999"]
    assert world.sent == [("15550009999@s.whatsapp.net", "hi")]
    assert session.store.contact(jid="15550009999@s.whatsapp.net").on_whatsapp is True


def test_contacts_are_the_people_messages_went_to_or_came_from_newest_first_and_paged(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    world.lids["15550002222@s.whatsapp.net"] = "900002@lid"
    world.lids["15550004444@s.whatsapp.net"] = "900004@lid"

    def send(to: str) -> None:
        mid = client.post("/send", json={"to": to, "text": "hi"}, headers=AUTH).get_json()["id"]
        wait_until(lambda: session.message(mid).status in ("sent", "failed"), 10, f"sent to {to}")

    send("+15550002222")
    world.current.emit(
        drv.Incoming,
        wa_id="C1",
        chat="900003@lid",
        sender="900003@lid",
        push_name="Carol",
        text="hello",
        timestamp=time.time(),
        is_group=False,
        sender_lid="900003@lid",
    )
    wait_until(lambda: len(session.contacts()) == 2, 5, "Carol")
    send(GROUP)  # a group is not a person: no contact
    client.post(  # added to a group, but no message exchanged: no contact
        f"/groups/{GROUP}/participants",
        json={"action": "add", "participants": ["+15550004444"]},
        headers=AUTH,
    )
    world.not_on_whatsapp.add("15550009999")
    send("+15550009999")  # failed, nothing exchanged: no contact
    send("900005@lid")
    listed = client.get("/contacts", headers=AUTH).get_json()
    assert [(c["phone"], c["jid"], c["lid"], c["push_name"]) for c in listed["contacts"]] == [
        (None, None, "900005@lid", None),
        (None, None, "900003@lid", "Carol"),
        ("+15550002222", "15550002222@s.whatsapp.net", "900002@lid", None),
    ]
    seen = [c["last_seen"] for c in listed["contacts"]]
    assert seen == sorted(seen, reverse=True) and all(isinstance(t, float) for t in seen)
    assert listed["next_cursor"] is None
    first = client.get("/contacts?limit=2", headers=AUTH).get_json()
    assert [c["lid"] for c in first["contacts"]] == ["900005@lid", "900003@lid"]
    assert first["next_cursor"] is not None
    rest = client.get(f"/contacts?limit=2&cursor={first['next_cursor']}", headers=AUTH).get_json()
    assert [c["lid"] for c in rest["contacts"]] == ["900002@lid"] and rest["next_cursor"] is None
    assert client.get("/contacts?cursor=x", headers=AUTH).get_json()["field"] == "cursor"
    assert client.get("/contacts?limit=0", headers=AUTH).get_json()["field"] == "limit"
    # Bob answers: still one contact, now the newest
    world.current.emit(
        drv.Incoming,
        wa_id="C2",
        chat="15550002222@s.whatsapp.net",
        sender="15550002222@s.whatsapp.net",
        push_name="Bob",
        text="hi back",
        timestamp=time.time(),
        is_group=False,
        sender_lid="900002@lid",
    )
    assert session.sync()
    newest = client.get("/contacts", headers=AUTH).get_json()["contacts"]
    assert [(c["lid"], c["push_name"]) for c in newest] == [
        ("900002@lid", "Bob"),
        ("900005@lid", None),
        ("900003@lid", "Carol"),
    ]


def test_the_check_can_be_turned_off(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    session.check_recipients = False
    world.not_on_whatsapp.add("15550009999")
    sent = client.post("/send", json={"to": "+15550009999", "text": "hello?"}, headers=AUTH).get_json()["id"]
    wait_until(lambda: session.message(sent).status == "sent", 10, "sent unchecked")
    assert world.checks == []


# ---- group management ----------------------------------------------------------------------


def test_a_group_is_created_and_whatsapp_says_whom_it_added(gateway) -> None:  # type: ignore[no-untyped-def]
    _session, world, client = gateway
    world.not_on_whatsapp.add("15550009999")
    world.lids["15550002222@s.whatsapp.net"] = "900002@lid"
    r = client.post(
        "/groups",
        json={"name": " Launch ", "participants": ["+1 555 000 2222", "15550009999", "+15550002222"]},
        headers=AUTH,
    )
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert r.headers["Location"] == f"/groups/{body['jid']}"
    assert body["name"] == "Launch" and body["we_are_admin"] is True
    # the same person twice is asked for once; each answer names what was asked
    assert [(x["participant"], x["ok"], x["reason"], x["lid"]) for x in body["results"]] == [
        ("+1 555 000 2222", True, None, "900002@lid"),
        ("15550009999", False, "not_on_whatsapp", None),
    ]
    assert [p["phone"] for p in body["participants"]] == ["+15550001111", "+15550002222"]
    assert world.group_requests == [
        ("create", body["jid"], ("15550002222@s.whatsapp.net", "15550009999@s.whatsapp.net"))
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "   ", "participants": []}, "name"),
        ({"name": "x" * 101, "participants": []}, "name"),
        ({"name": "Team", "participants": ["not a number"]}, "participants[0]"),
        ({"name": "Team", "participants": ["+15550002222", GROUP]}, "participants[1]"),
        ({"name": "Team"}, "participants"),
        ({"name": "Team", "participants": [], "extra": 1}, "extra"),
    ],
)
def test_a_bad_create_request_names_its_field(gateway, body, field) -> None:  # type: ignore[no-untyped-def]
    _session, world, client = gateway
    r = client.post("/groups", json=body, headers=AUTH)
    assert r.status_code == 400 and r.get_json()["field"] == field, r.get_json()
    assert world.group_requests == []


def test_participants_are_added_removed_promoted_and_demoted(gateway) -> None:  # type: ignore[no-untyped-def]
    _session, world, client = gateway
    url = f"/groups/{GROUP}/participants"
    r = client.post(
        url, json={"action": "add", "participants": ["+15550004444", "+15550002222"]}, headers=AUTH
    )
    assert r.status_code == 200, r.get_json()
    assert [(x["phone"], x["ok"], x["reason"]) for x in r.get_json()["results"]] == [
        ("+15550004444", True, None),
        ("+15550002222", False, "already_participant"),  # partly done: 200 with the reasons
    ]
    r = client.post(url, json={"action": "promote", "participants": ["15550004444"]}, headers=AUTH)
    assert r.status_code == 200 and r.get_json()["results"][0]["ok"] is True
    admins = [
        p["phone"]
        for p in client.get(f"/groups/{GROUP}", headers=AUTH).get_json()["participants"]
        if p["admin"]
    ]
    assert admins == ["+15550001111", "+15550004444"]
    r = client.post(url, json={"action": "demote", "participants": ["15550004444"]}, headers=AUTH)
    assert r.status_code == 200
    r = client.post(url, json={"action": "remove", "participants": ["15550004444"]}, headers=AUTH)
    assert r.status_code == 200
    phones = [p["phone"] for p in client.get(f"/groups/{GROUP}", headers=AUTH).get_json()["participants"]]
    assert "+15550004444" not in phones
    assert [a for a, _g, _p in world.group_requests] == ["add", "promote", "demote", "remove"]


@pytest.mark.parametrize(
    ("setup", "action", "people", "status", "error"),
    [
        (lambda w: w.not_on_whatsapp.add("15550009999"), "add", ["+15550009999"], 422, "not_on_whatsapp"),
        (lambda w: setattr(w, "group_limit", 3), "add", ["+15550004444"], 409, "group_full"),
        (lambda w: None, "add", ["+15550002222"], 409, "already_participant"),
        (lambda w: None, "remove", ["+15550007777"], 422, "not_participant"),
        (lambda w: w.not_admin.add(GROUP), "add", ["+15550004444"], 403, "not_admin"),
    ],
)
def test_whatsapp_refusals_are_4xx_naming_the_reason(gateway, setup, action, people, status, error) -> None:  # type: ignore[no-untyped-def]
    _session, world, client = gateway
    setup(world)
    before = world.groups[GROUP]
    r = client.post(
        f"/groups/{GROUP}/participants", json={"action": action, "participants": people}, headers=AUTH
    )
    assert r.status_code == status, r.get_json()
    body = r.get_json()
    assert body["error"] == error and body["message"]
    if status != 403:
        assert [x["reason"] for x in body["results"]] == [error]
    assert world.groups[GROUP].participants == before.participants


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "kick", "participants": ["+15550002222"]}, "action"),
        ({"action": "add", "participants": []}, "participants"),
        ({"action": "add", "participants": ["nope"]}, "participants[0]"),
    ],
)
def test_a_bad_participants_request_names_its_field(gateway, body, field) -> None:  # type: ignore[no-untyped-def]
    _session, world, client = gateway
    r = client.post(f"/groups/{GROUP}/participants", json=body, headers=AUTH)
    assert r.status_code == 400 and r.get_json()["field"] == field, r.get_json()
    r = client.post(
        "/groups/15550002222@s.whatsapp.net/participants",
        json={"action": "add", "participants": ["+15550004444"]},
        headers=AUTH,
    )
    assert r.status_code == 400 and r.get_json()["field"] == "jid"
    assert world.group_requests == []


def test_invite_link_revoke_and_leave(gateway) -> None:  # type: ignore[no-untyped-def]
    _session, world, client = gateway
    first = client.get(f"/groups/{GROUP}/invite-link", headers=AUTH).get_json()["link"]
    assert first.startswith("https://chat.whatsapp.com/")
    assert client.get(f"/groups/{GROUP}/invite-link", headers=AUTH).get_json()["link"] == first
    new = client.post(f"/groups/{GROUP}/invite-link/revoke", headers=AUTH).get_json()["link"]
    assert new != first and new.startswith("https://chat.whatsapp.com/")
    world.not_admin.add(GROUP)
    r = client.get(f"/groups/{GROUP}/invite-link", headers=AUTH)
    assert r.status_code == 403 and r.get_json()["error"] == "not_admin"
    r = client.post(f"/groups/{GROUP}/leave", headers=AUTH)
    assert r.status_code == 200 and r.get_json() == {"group": GROUP, "status": "left"}
    assert [g["jid"] for g in client.get("/groups", headers=AUTH).get_json()["groups"]] == []
    r = client.post(f"/groups/{GROUP}/leave", headers=AUTH)
    assert r.status_code == 404 and r.get_json()["error"] == "group_not_found"


def group_changed(
    session: session_module.Session, world: FakeWorld, count: int, **change: object
) -> list[Any]:
    """Emits a GroupChanged of GROUP from the driver; the payloads of the ``count``
    group.participants events it becomes, in order."""
    seen: list = []
    session.subscribe(seen.append)
    world.current.emit(drv.GroupChanged, group=GROUP, **change)
    wait_until(
        lambda: len([e for e in seen if e.kind == "group.participants"]) == count, 5, f"{count} group events"
    )
    return [e.payload() for e in seen if e.kind == "group.participants"]


def test_participant_changes_become_group_participants_events(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, _client = gateway
    world.lids["15550002222@s.whatsapp.net"] = "900002@lid"
    session.store.meet("15550002222@s.whatsapp.net", "900002@lid")
    left, promoted = group_changed(
        session,
        world,
        2,
        actor="900002@lid",
        actor_name="Bob",
        timestamp=1_700_000_100.0,
        left=("900002@lid",),
        promoted=("900003@lid",),
    )
    bob = {"jid": "15550002222@s.whatsapp.net", "lid": "900002@lid", "phone": "+15550002222"}
    assert left["group"] == GROUP and left["action"] == "leave"
    assert list(left["participants"]) == [{**bob, "push_name": None}]  # the number known from the LID
    assert left["by"] == {**bob, "push_name": "Bob"} and left["timestamp"] == 1_700_000_100.0
    assert promoted["action"] == "promote"
    assert list(promoted["participants"]) == [
        {"jid": None, "lid": "900003@lid", "phone": None, "push_name": None}
    ]


def test_people_not_met_yet_are_named_with_what_whatsapp_told_the_client(gateway) -> None:  # type: ignore[no-untyped-def]
    session, world, _client = gateway
    world.lids["15550004444@s.whatsapp.net"] = "900004@lid"  # whatsmeow's LID store knows these
    world.lids["15550005555@s.whatsapp.net"] = "900005@lid"
    joined, left = group_changed(
        session,
        world,
        2,
        actor="",
        actor_name="",
        timestamp=1_700_000_200.0,
        joined=("15550005555@s.whatsapp.net",),
        left=("900004@lid",),
    )
    assert list(joined["participants"]) == [
        {"jid": "15550005555@s.whatsapp.net", "lid": "900005@lid", "phone": "+15550005555", "push_name": None}
    ]
    assert list(left["participants"]) == [
        {"jid": "15550004444@s.whatsapp.net", "lid": "900004@lid", "phone": "+15550004444", "push_name": None}
    ]
    assert left["by"] is None
    assert session.contacts() == []  # named, not made contacts: wadesk exchanged nothing with them
