"""Groups, contacts and identities end to end: the real ``wadesk --headless`` process and the
real neonize client against the fake WhatsApp server's groups (sender keys), contact checks
and LID-addressed peers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fakewa.harness import FakeWhatsApp
from headless_harness import Headless, Receiver, wait_until
from test_headless_e2e import SECRET, pair

pytestmark = pytest.mark.e2e

PEERS = ["15550002222", "15550003333", "15550004444"]
FAST = {"WADESK_SEND_INTERVAL": "0"}


def test_a_group_is_listed_and_a_text_with_a_mention_reaches_every_member_exactly(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    group = fake_wa.create_group("Weekend", PEERS)
    gw = headless(gateway_env(**FAST)).start()
    pair(gw, fake_wa)
    listed = wait_until(
        lambda: (r := gw.get("/groups")).status_code == 200 and r.json()["groups"], 20, "groups"
    )
    assert [(g["jid"], g["name"], g["participant_count"]) for g in listed] == [(group, "Weekend", 4)]
    info = gw.get(f"/groups/{group}").json()
    assert {p["phone"] for p in info["participants"]} >= {f"+{p}" for p in PEERS}
    assert all(p["lid"] for p in info["participants"])

    answer = gw.post(
        "/send", json={"to": group, "text": "who brings the ball?", "mentions": [f"+{PEERS[1]}"]}
    )
    assert answer.status_code == 202, answer.text
    for peer in PEERS:
        _, text = fake_wa.wait_group_text_from_client(group, peer, timeout=30)
        assert text == f"who brings the ball? @{PEERS[1]}"
    wait_until(lambda: gw.message(answer.json()["id"])["status"] == "sent", 20, "sent")
    assert all(fake_wa.group_texts_received(group, p) == [f"who brings the ball? @{PEERS[1]}"] for p in PEERS)
    assert gw.stop() == 0


def test_a_member_writing_into_the_group_is_the_sender_with_phone_and_lid(
    fake_wa: FakeWhatsApp,
    headless: Callable[..., Headless],
    gateway_env: Callable[..., dict[str, str]],
    receiver: Receiver,
) -> None:
    group = fake_wa.create_group("Book club", PEERS)
    receiver.start()
    gw = headless(gateway_env(WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET, **FAST)).start()
    pair(gw, fake_wa)
    member = fake_wa.peer(PEERS[0])
    member.send_group_text(group, "chapter 3 tonight")

    wait_until(lambda: receiver.payloads("message.received"), 30, "the group message webhook")
    [event] = receiver.payloads(
        "message.received"
    )  # the sender-key distribution alone is never forwarded as a message
    assert event["chat"] == group and event["is_group"] is True and event["text"] == "chapter 3 tonight"
    assert event["sender_phone"] == f"+{PEERS[0]}"
    assert event["sender_lid"] == f"{member.lid}@lid"
    assert gw.stop() == 0


def test_numbers_not_on_whatsapp_are_said_so(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    fake_wa.set_on_whatsapp(PEERS[0])
    fake_wa.set_on_whatsapp("15550009999", registered=False)
    gw = headless(gateway_env(**FAST)).start()
    pair(gw, fake_wa)
    answer = gw.get(f"/contacts/check?phone=%2B{PEERS[0]}&phone=%2B15550009999")
    assert answer.status_code == 200, answer.text
    results = {r["phone"]: r for r in answer.json()["results"]}
    assert results[f"+{PEERS[0]}"]["on_whatsapp"] is True
    assert results["+15550009999"]["on_whatsapp"] is False
    # a send to it fails with the reason instead of a "sent" that reaches nobody
    failed = gw.send("+15550009999", "anyone there?")
    record = wait_until(lambda: (m := gw.message(failed))["status"] == "failed" and m, 30, "failed")
    assert record["error"].startswith("not_on_whatsapp")
    assert fake_wa.texts_received("15550009999") == []
    assert gw.stop() == 0


def test_a_peer_known_only_by_lid_becomes_one_contact_when_its_number_is_revealed(
    fake_wa: FakeWhatsApp,
    headless: Callable[..., Headless],
    gateway_env: Callable[..., dict[str, str]],
    receiver: Receiver,
) -> None:
    receiver.start()
    gw = headless(gateway_env(WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET, **FAST)).start()
    pair(gw, fake_wa)
    peer = fake_wa.peer(PEERS[2])
    peer.write_from_lid()
    peer.send_text("hello from a LID")

    wait_until(lambda: receiver.payloads("message.received"), 30, "the first message")
    first = receiver.payloads("message.received")[0]
    assert first["sender_lid"] == f"{peer.lid}@lid" and first["sender_phone"] is None

    # an answer to the LID arrives at that peer
    answer = gw.post("/send", json={"to": f"{peer.lid}@lid", "text": "hi LID"})
    assert answer.status_code == 202, answer.text
    wait_until(lambda: gw.message(answer.json()["id"])["status"] == "sent", 30, "sent to the LID")
    assert "hi LID" in fake_wa.texts_received(PEERS[2])

    peer.reveal_phone_number()
    peer.send_text("now with my number")
    wait_until(lambda: len(receiver.payloads("message.received")) >= 2, 30, "the second message")
    assert receiver.payloads("message.received")[1]["sender_phone"] == f"+{PEERS[2]}"
    contacts = [c for c in gw.get("/contacts").json()["contacts"] if c["lid"] == f"{peer.lid}@lid"]
    assert [(c["phone"], c["lid"]) for c in contacts] == [(f"+{PEERS[2]}", f"{peer.lid}@lid")]
    assert gw.stop() == 0
