"""Groups, contacts and identities end to end: the real ``wadesk --headless`` process and the
real neonize client against the fake WhatsApp server's groups (sender keys), contact checks
and LID-addressed peers.

The group management tests (create, participants, invite link, leave, membership events,
announcement groups, group media) share one paired gateway with a webhook receiver (the
``world`` fixture); each makes its own groups."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from fakewa.harness import FakeWhatsApp
from fakewa.keys import SignKeyPair, TestPKI
from headless_harness import SECRET, TOKEN, Delivery, Headless, Receiver, clean_env, env_for, pair, wait_until
from test_media_e2e import photo

from wadesk.api.webhooks import verify

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
    # each member got it as a mention (the mentioned JIDs in the message), not just as text
    for peer in PEERS:
        [(_, message)] = fake_wa.group_messages_received(group, peer)
        assert message.extendedTextMessage.text == f"who brings the ball? @{PEERS[1]}"
        assert list(message.extendedTextMessage.contextInfo.mentionedJID) == [f"{PEERS[1]}@s.whatsapp.net"]
    assert gw.stop() == 0


def test_a_member_writing_into_the_group_is_the_sender_with_phone_and_lid(
    fake_wa: FakeWhatsApp,
    receiver: Receiver,
    hooked_gateway: Callable[..., Headless],
) -> None:
    group = fake_wa.create_group("Book club", PEERS)
    gw = hooked_gateway(**FAST)
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


def test_a_member_mentioning_this_account_in_a_lid_group_is_a_message_that_says_so(
    fake_wa: FakeWhatsApp,
    receiver: Receiver,
    hooked_gateway: Callable[..., Headless],
) -> None:
    group = fake_wa.create_group("Lidded chat", PEERS[:2], addressing_mode="lid")
    gw = hooked_gateway(**FAST)
    account = gw.get("/status").json()["account"]
    assert account["lid"] == f"{fake_wa.phone.lid}@lid"  # WhatsApp named it at pairing
    member, other = fake_wa.peer(PEERS[0]), fake_wa.peer(PEERS[1])
    member.send_group_text(group, "@me are you in?", mentions=[account["lid"]])
    wait_until(lambda: receiver.payloads("message.received"), 30, "the first group message")
    member.send_group_text(group, "ask the other one", mentions=[f"{other.lid}@lid"])
    wait_until(lambda: len(receiver.payloads("message.received")) >= 2, 30, "the second group message")

    first, second = receiver.payloads("message.received")
    assert (first["chat"], first["is_group"], first["text"]) == (group, True, "@me are you in?")
    assert (first["sender_lid"], first["sender_phone"]) == (f"{member.lid}@lid", f"+{PEERS[0]}")
    assert (first["mentions"], first["mentioned_me"]) == ([f"{fake_wa.phone.lid}@lid"], True)
    assert (second["mentions"], second["mentioned_me"]) == ([f"{other.lid}@lid"], False)
    stored = {m["text"]: m["mentions"] for m in gw.get("/messages?direction=in").json()["messages"]}
    assert stored == {
        "@me are you in?": [f"{fake_wa.phone.lid}@lid"],
        "ask the other one": [f"{other.lid}@lid"],
    }
    assert gw.stop() == 0


def test_a_member_who_hides_its_number_in_a_lid_group_is_named_with_the_number_it_gave_before(
    fake_wa: FakeWhatsApp,
    receiver: Receiver,
    hooked_gateway: Callable[..., Headless],
) -> None:
    gw = hooked_gateway(**FAST)
    peer = fake_wa.peer(PEERS[1])
    peer.write_from_lid(hide_phone=False)  # a direct message from its LID, with its number
    peer.send_text("my number is attached")
    wait_until(lambda: receiver.payloads("message.received"), 30, "the direct message")
    peer.write_from_lid(hide_phone=True)  # in the LID group, WhatsApp gives its LID alone
    group = fake_wa.create_group("Hidden numbers", [PEERS[0], PEERS[1]], addressing_mode="lid")
    peer.send_group_text(group, "guess who")
    wait_until(lambda: len(receiver.payloads("message.received")) >= 2, 30, "the group message")
    direct, in_group = receiver.payloads("message.received")
    assert (direct["sender_phone"], direct["sender_lid"]) == (f"+{PEERS[1]}", f"{peer.lid}@lid")
    assert (in_group["chat"], in_group["text"]) == (group, "guess who")
    assert (in_group["sender"], in_group["sender_phone"], in_group["sender_lid"]) == (
        f"{PEERS[1]}@s.whatsapp.net",
        f"+{PEERS[1]}",
        f"{peer.lid}@lid",
    )
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
    assert results[f"+{PEERS[0]}"]["jid"] == f"{PEERS[0]}@s.whatsapp.net"
    assert results[f"+{PEERS[0]}"]["lid"] == f"{fake_wa.peer(PEERS[0]).lid}@lid"  # WhatsApp named it
    assert results["+15550009999"]["on_whatsapp"] is False
    assert results["+15550009999"]["lid"] is None
    # a send to it fails with the reason instead of a "sent" that reaches nobody
    failed = gw.send("+15550009999", "anyone there?")
    record = wait_until(lambda: (m := gw.message(failed))["status"] == "failed" and m, 30, "failed")
    assert record["error"].startswith("not_on_whatsapp")
    assert record["wa_id"] is None and record["attempts"] <= 1, record
    assert fake_wa.texts_received("15550009999") == []

    def messages_to(*users: str) -> list[Any]:
        """The message nodes the client sent to any of these users (by number or LID)."""
        return [
            d
            for kind, d in fake_wa.events
            if kind == "node" and d.tag == "message" and getattr(d.attrs.get("to"), "user", None) in users
        ]

    assert messages_to("15550009999") == []  # no message to that number left the client at all
    # a send to the number that is on WhatsApp goes out and names the LID WhatsApp gave it
    ok = gw.send(f"+{PEERS[0]}", "you are there")
    sent = wait_until(lambda: (m := gw.message(ok))["status"] == "sent" and m, 30, "sent")
    assert (sent["to"], sent["to_lid"]) == (f"{PEERS[0]}@s.whatsapp.net", f"{fake_wa.peer(PEERS[0]).lid}@lid")
    assert fake_wa.wait_text_from_client(PEERS[0], timeout=30)[1] == "you are there"
    assert len(messages_to(PEERS[0], fake_wa.peer(PEERS[0]).lid)) == 1
    assert gw.stop() == 0


def test_a_peer_known_only_by_lid_becomes_one_contact_when_its_number_is_revealed(
    fake_wa: FakeWhatsApp,
    receiver: Receiver,
    hooked_gateway: Callable[..., Headless],
) -> None:
    gw = hooked_gateway(**FAST)
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
    assert gw.message(answer.json()["id"])["to_lid"] == f"{peer.lid}@lid"

    peer.reveal_phone_number()
    peer.send_text("now with my number")
    wait_until(lambda: len(receiver.payloads("message.received")) >= 2, 30, "the second message")
    second = receiver.payloads("message.received")[1]
    assert (second["sender"], second["sender_phone"], second["sender_lid"]) == (
        f"{PEERS[2]}@s.whatsapp.net",
        f"+{PEERS[2]}",
        f"{peer.lid}@lid",
    )
    stored = gw.get("/messages?direction=in").json()["messages"]
    assert [(m["text"], m["sender_phone"], m["sender_lid"]) for m in stored] == [
        ("now with my number", f"+{PEERS[2]}", f"{peer.lid}@lid"),
        ("hello from a LID", None, f"{peer.lid}@lid"),
    ]
    contacts = [
        c
        for c in gw.get("/contacts").json()["contacts"]
        if c["lid"] == f"{peer.lid}@lid" or c["phone"] == f"+{PEERS[2]}"
    ]
    assert [(c["phone"], c["jid"], c["lid"]) for c in contacts] == [
        (f"+{PEERS[2]}", f"{PEERS[2]}@s.whatsapp.net", f"{peer.lid}@lid")
    ]
    assert gw.stop() == 0


# ---- group management through the API: one paired gateway for all of the tests below ----------

NOBODY = "15550009898"  # a number the fake says is not on WhatsApp
LEAVER = "15550006666"  # a member who leaves groups
STRANGER = "15550007777"  # a member wadesk never exchanged anything with
REFUSER = "15550008888"  # only accepts invitations: adding it is refused (privacy)
ACCOUNT = "15550001111"


@dataclass
class World:
    """One fake WhatsApp, one paired gateway with a webhook receiver; each test makes its own groups."""

    wa: FakeWhatsApp
    gw: Headless
    hooks: Receiver

    def change(self, group: str, action: str, *phones: str) -> requests.Response:
        return self.gw.post(
            f"/groups/{group}/participants",
            json={"action": action, "participants": [f"+{p}" for p in phones]},
        )

    def group_events(self, group: str, action: str) -> list[Delivery]:
        """The accepted group.participants deliveries about this group with this action."""
        return [
            d
            for d in self.hooks.accepted()
            if d.json["event"] == "group.participants"
            and d.json["payload"]["group"] == group
            and d.json["payload"]["action"] == action
        ]


@pytest.fixture(scope="module")
def world(
    fakewa_pki: TestPKI, fakewa_root: SignKeyPair, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    wa = FakeWhatsApp(fakewa_pki, fakewa_root)
    hooks = Receiver().start()
    folder = tmp_path_factory.mktemp("groups-gateway")
    env = env_for(
        clean_env(wa.child_env()),
        folder / "data",
        WADESK_API_TOKEN=TOKEN,
        WADESK_PROXY=wa.proxy_url,
        WEBHOOK_URL=hooks.url,
        WEBHOOK_SECRET=SECRET,
        **FAST,
    )
    gw = Headless(env, folder / "data", TOKEN, folder / "gateway.log")
    try:
        gw.start()
        pair(gw, wa)
        yield World(wa, gw, hooks)
        assert gw.stop() == 0
    finally:
        gw.close()
        hooks.stop()
        wa.close()


@pytest.fixture
def shared(world: World, request: pytest.FixtureRequest) -> Iterator[World]:
    """The module's world; the gateway's latest log lines are printed when the test failed."""
    start = len(world.gw.logs())
    yield world
    report: Any = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"---- gateway log during the test ----\n{world.gw.logs()[start:][-30000:]}")


def test_a_group_is_created_with_the_people_on_whatsapp_and_a_text_reaches_both_exactly(
    shared: World,
) -> None:
    wa, gw = shared.wa, shared.gw
    a, b = PEERS[0], PEERS[1]
    wa.set_on_whatsapp(NOBODY, False)
    answer = gw.post("/groups", json={"name": "Launch", "participants": [f"+{a}", f"+{b}", f"+{NOBODY}"]})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    group = body["jid"]
    assert answer.headers["Location"] == f"/groups/{group}"
    assert (body["name"], body["we_are_admin"]) == ("Launch", True)
    assert [(r["participant"], r["ok"], r["reason"], r["code"]) for r in body["results"]] == [
        (f"+{a}", True, None, 0),
        (f"+{b}", True, None, 0),
        (f"+{NOBODY}", False, "not_on_whatsapp", 404),
    ]
    added = {r["phone"]: r["lid"] for r in body["results"][:2]}
    assert added == {f"+{a}": f"{wa.peer(a).lid}@lid", f"+{b}": f"{wa.peer(b).lid}@lid"}
    assert wa.group_members(group) == {ACCOUNT, a, b}
    assert wa.group_admins(group) == {ACCOUNT}
    assert gw.get(f"/groups/{group}").json()["participant_count"] == 3

    sent = gw.send(group, "welcome aboard")
    for peer in (a, b):
        assert wa.wait_group_text_from_client(group, peer, timeout=30)[1] == "welcome aboard"
    wait_until(lambda: gw.message(sent)["status"] == "sent", 20, "sent")
    assert [wa.group_texts_received(group, p) for p in (a, b)] == [["welcome aboard"]] * 2
    assert wa.group_texts_received(group, NOBODY) == []


def test_the_created_group_lists_only_the_people_whatsapp_added(shared: World) -> None:
    wa = shared.wa
    wa.set_on_whatsapp(NOBODY, False)
    answer = shared.gw.post(
        "/groups", json={"name": "Launch, again", "participants": [f"+{PEERS[0]}", f"+{NOBODY}"]}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert wa.group_members(body["jid"]) == {ACCOUNT, PEERS[0]}
    assert {p["phone"] for p in body["participants"]} == {f"+{ACCOUNT}", f"+{PEERS[0]}"}, body
    assert body["participant_count"] == 2, body


def test_a_member_is_added_promoted_demoted_and_removed_and_refusals_name_the_reason(
    shared: World,
) -> None:
    wa, gw = shared.wa, shared.gw
    a, b, c = PEERS
    group = wa.create_group("Crew", [a, b])

    added = shared.change(group, "add", c)
    assert added.status_code == 200, added.text
    assert [(r["participant"], r["ok"], r["phone"]) for r in added.json()["results"]] == [
        (f"+{c}", True, f"+{c}")
    ]
    assert wa.group_members(group) == {ACCOUNT, a, b, c}
    assert shared.change(group, "promote", c).status_code == 200
    assert wa.group_admins(group) == {ACCOUNT, c}
    listed = {p["phone"]: p["admin"] for p in gw.get(f"/groups/{group}").json()["participants"]}
    assert listed == {f"+{ACCOUNT}": True, f"+{a}": False, f"+{b}": False, f"+{c}": True}
    assert shared.change(group, "demote", c).status_code == 200
    assert wa.group_admins(group) == {ACCOUNT}
    assert shared.change(group, "remove", c).status_code == 200
    assert wa.group_members(group) == {ACCOUNT, a, b}
    # WhatsApp tells every device of the group, this one too: each change is an event
    join = wait_until(lambda: shared.group_events(group, "join"), 30, "the join event")[0].json["payload"]
    assert [p["phone"] for p in join["participants"]] == [f"+{c}"]
    assert join["by"]["phone"] == f"+{ACCOUNT}"

    again = shared.change(group, "add", a)
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "already_participant"
    assert [(r["participant"], r["ok"], r["reason"], r["code"]) for r in again.json()["results"]] == [
        (f"+{a}", False, "already_participant", 409)
    ]
    wa.peer(REFUSER).refuse_group_adds()
    privacy = shared.change(group, "add", REFUSER)
    assert privacy.status_code == 422, privacy.text
    assert privacy.json()["error"] == "privacy"
    assert [(r["reason"], r["code"]) for r in privacy.json()["results"]] == [("privacy", 403)]
    outsider = shared.change(group, "remove", c)
    assert outsider.status_code == 422, outsider.text
    assert outsider.json()["error"] == "not_participant"
    assert [(r["reason"], r["code"]) for r in outsider.json()["results"]] == [("not_participant", 404)]
    mixed = shared.change(group, "add", a, REFUSER)
    assert mixed.status_code == 422, mixed.text
    assert mixed.json()["error"] == "participants_refused"
    assert [r["reason"] for r in mixed.json()["results"]] == ["already_participant", "privacy"]
    tiny = wa.create_group("Tiny", [a], size_limit=2)
    full = shared.change(tiny, "add", b)
    assert full.status_code == 409, full.text
    assert full.json()["error"] == "group_full"
    assert [(r["reason"], r["code"]) for r in full.json()["results"]] == [("group_full", 500)]
    assert wa.group_members(group) == {ACCOUNT, a, b} and wa.group_members(tiny) == {ACCOUNT, a}


def test_not_an_admin_changes_nothing_and_gets_no_invite_link(shared: World) -> None:
    wa, gw = shared.wa, shared.gw
    a, b = PEERS[0], PEERS[1]
    group = wa.create_group("Theirs", [a], admins=[a])
    wa.set_group_admin(group, False)

    for answer in (
        shared.change(group, "add", b),
        shared.change(group, "promote", a),
        gw.get(f"/groups/{group}/invite-link"),
        gw.post(f"/groups/{group}/invite-link/revoke"),
    ):
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "not_admin"
    assert wa.group_members(group) == {ACCOUNT, a} and wa.group_admins(group) == {a}
    assert wa.group_events(group, "group-participants") == []
    assert wa.group_events(group, "group-invite") == []
    refused = [(tag, code) for _, tag, code in wa.group_events(group, "group-refused")]
    assert refused == [("add", 401), ("promote", 401), ("invite", 401), ("invite", 401)]
    assert wa.group(group).invite_code is None


def test_the_invite_link_is_whatsapps_and_a_revoke_gives_the_new_one(shared: World) -> None:
    wa, gw = shared.wa, shared.gw
    group = wa.create_group("Open door", [PEERS[0]])
    first = gw.get(f"/groups/{group}/invite-link")
    assert first.status_code == 200, first.text
    code = wa.group(group).invite_code
    assert first.json() == {"group": group, "link": f"https://chat.whatsapp.com/{code}"}
    assert gw.get(f"/groups/{group}/invite-link").json()["link"] == first.json()["link"]
    revoked = gw.post(f"/groups/{group}/invite-link/revoke")
    assert revoked.status_code == 200, revoked.text
    new_code = wa.group(group).invite_code
    assert new_code != code
    assert revoked.json() == {"group": group, "link": f"https://chat.whatsapp.com/{new_code}"}
    jid = wa.group(group).jid
    assert wa.group_events(group, "group-invite") == [
        (jid, code, False),
        (jid, code, False),
        (jid, new_code, True),
    ]


def watch_events(gw: Headless, events: str) -> list[str]:
    """The lines of an open ``/events?events=…`` stream, as they arrive (a daemon thread reads)."""
    lines: list[str] = []

    def read() -> None:
        with gw.get(f"/events?events={events}", stream=True, timeout=60) as response:
            for line in response.iter_lines(decode_unicode=True):
                lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    wait_until(lambda: lines, 10, "the event stream to start")
    return lines


def test_a_member_who_leaves_is_a_signed_group_participants_event_on_webhook_and_sse(
    shared: World,
) -> None:
    wa, gw = shared.wa, shared.gw
    stays, goes = PEERS[0], LEAVER
    leaver = wa.peer(goes)
    # the leaver wrote to the account before, so wadesk knows its number and LID
    leaver.send_text("hello before I go")
    wait_until(
        lambda: any(
            p["sender_lid"] == f"{leaver.lid}@lid" for p in shared.hooks.payloads("message.received")
        ),
        30,
        "the leaver's message",
    )
    stream = watch_events(gw, "group.participants")
    groups = {
        "pn": wa.create_group("Stay or go", [stays, goes]),
        "lid": wa.create_group("Lidded", [stays, goes], "lid"),
    }
    for group in groups.values():
        wa.wait_ack(leaver.leave_group(group))

    for mode, group in groups.items():
        [hook] = wait_until(lambda g=group: shared.group_events(g, "leave"), 30, f"the {mode} leave event")
        assert verify(SECRET, hook.body, hook.headers)  # signed as Standard Webhooks says
        assert hook.headers["webhook-id"] == hook.json["id"]
        event = hook.json["payload"]
        assert (event["group"], event["action"]) == (group, "leave")
        person = {"jid": f"{goes}@s.whatsapp.net", "lid": f"{leaver.lid}@lid", "phone": f"+{goes}"}
        assert event["participants"] == [{**person, "push_name": None}], event
        assert event["by"] == {**person, "push_name": leaver.user.push_name}, event  # left by itself
        assert event["timestamp"] > 0
        seen = wait_until(
            lambda g=group: [
                json.loads(line[5:]) for line in stream if line.startswith("data:") and g in line
            ],
            10,
            f"the {mode} leave event on /events",
        )
        assert [(e["event"], e["id"], e["payload"]) for e in seen] == [
            ("group.participants", hook.json["id"], event)
        ]
    assert all(wa.group_members(g) == {ACCOUNT, stays} for g in groups.values())


def test_a_stranger_leaving_a_lid_group_is_named_with_the_number_whatsapp_gave(shared: World) -> None:
    wa = shared.wa
    stranger = wa.peer(STRANGER)
    group = wa.create_group("Lidded strangers", [PEERS[0], STRANGER], "lid")
    wa.wait_ack(stranger.leave_group(group))
    [hook] = wait_until(lambda: shared.group_events(group, "leave"), 30, "the leave event")
    [person] = hook.json["payload"]["participants"]
    assert (person["lid"], person["phone"]) == (f"{stranger.lid}@lid", f"+{STRANGER}"), person


def test_leaving_a_group_takes_it_off_the_list(shared: World) -> None:
    wa, gw = shared.wa, shared.gw
    group = wa.create_group("Farewell", [PEERS[0]])

    def listed() -> list[str]:
        return [g["jid"] for g in gw.get("/groups").json()["groups"]]

    wait_until(lambda: group in listed(), 10, "the group listed")
    left = gw.post(f"/groups/{group}/leave")
    assert left.status_code == 200, left.text
    assert left.json() == {"group": group, "status": "left"}
    assert wa.group_events(group, "group-leave") == [wa.group(group).jid]
    assert not wa.group(group).account_member
    assert group not in listed()


def test_a_group_this_account_left_is_not_found(shared: World) -> None:
    wa, gw = shared.wa, shared.gw
    group = wa.create_group("Farewell again", [PEERS[0]])
    assert gw.post(f"/groups/{group}/leave").status_code == 200
    assert not wa.group(group).account_member
    gone = gw.get(f"/groups/{group}")
    assert gone.status_code == 404, gone.text
    assert gone.json()["error"] == "group_not_found"


def announcement_group(wa: FakeWhatsApp, name: str) -> str:
    """A group where only admins may send, of which this account is a member but not an admin."""
    group = wa.create_group(name, PEERS[:2], admins=[PEERS[0]], announce=True)
    wa.set_group_admin(group, False)
    return group


def first_attempt(gw: Headless, message: str) -> dict[str, Any]:
    """The message once its first attempt failed (``error`` set) or it went out."""

    def done() -> dict[str, Any] | None:
        record = gw.message(message)
        return record if record["error"] or record["status"] not in ("queued", "sending") else None

    return wait_until(done, 30, "the first attempt")


def test_a_text_into_a_group_where_only_admins_may_send_is_refused_and_reaches_nobody(shared: World) -> None:
    wa, gw = shared.wa, shared.gw
    group = announcement_group(wa, "Notices")
    info = gw.get(f"/groups/{group}").json()
    assert (info["only_admins_send"], info["we_are_admin"]) == (True, False)

    sent = gw.send(group, "may I say something?")
    record = first_attempt(gw, sent)
    assert [code for _, _, code in wa.group_events(group, "group-send-refused")] == [420]
    assert [wa.group_texts_received(group, p) for p in PEERS[:2]] == [[], []]
    assert wa.group_events(group, "group-decrypted") == []
    assert record["status"] != "sent" and record["wa_id"] is None, record
    assert "420" in record["error"], record  # WhatsApp's code is passed on


def test_a_text_into_a_group_where_only_admins_may_send_fails_at_once_saying_why(shared: World) -> None:
    gw = shared.gw
    sent = gw.send(announcement_group(shared.wa, "Notices, again"), "may I say something?")
    record = first_attempt(gw, sent)
    assert record["status"] == "failed", record
    assert record["error"] == "only admins may send to this group (error 420)", record
    assert record["attempts"] == 1 and record["possible_duplicate"] is False, record


def test_an_image_to_a_group_reaches_every_member_byte_for_byte(shared: World) -> None:
    wa, gw = shared.wa, shared.gw
    members = PEERS[:2]
    group = wa.create_group("Album", members)
    first = photo()
    answer = gw.post("/send", data={"to": group, "caption": "the team"}, files={"file": ("team.jpg", first)})
    assert answer.status_code == 202, answer.text
    second = photo(200, 300)
    inline = gw.post("/send", json={"to": group, "media": {"data": base64.b64encode(second).decode()}})
    assert inline.status_code == 202, inline.text
    for peer in members:
        got = wa.wait_group_media_from_client(group, peer, timeout=30, kind="image")
        assert got.plaintext == first and (got.caption, got.mimetype) == ("the team", "image/jpeg")
        assert hashlib.sha256(got.plaintext).digest() == bytes(got.fields.fileSHA256)
        got = wa.wait_group_media_from_client(group, peer, timeout=30, kind="image")
        assert got.plaintext == second and (got.fields.width, got.fields.height) == (200, 300)
        assert [m.plaintext for m in wa.group_media_received(group, peer)] == [first, second]
    for mid in (answer.json()["id"], inline.json()["id"]):
        wait_until(lambda m=mid: gw.message(m)["status"] == "sent", 20, "sent")
    assert gw.message(inline.json()["id"])["media"]["sha256"] == hashlib.sha256(second).hexdigest()


def test_an_image_to_a_group_mentions_a_member_in_its_caption(shared: World) -> None:
    wa, gw = shared.wa, shared.gw
    members = PEERS[:2]
    group = wa.create_group("Tagged", members)
    picture = photo()
    answer = gw.post(
        "/send",
        data={"to": group, "caption": "look", "mentions": f"+{members[1]}"},
        files={"file": ("tag.jpg", picture)},
    )
    assert answer.status_code == 202, answer.text
    for peer in members:
        got = wa.wait_group_media_from_client(group, peer, timeout=30, kind="image")
        assert got.plaintext == picture and got.caption == f"look @{members[1]}"
        assert list(got.fields.contextInfo.mentionedJID) == [f"{members[1]}@s.whatsapp.net"]
    record = wait_until(lambda: (m := gw.message(answer.json()["id"]))["status"] == "sent" and m, 20, "sent")
    assert record["mentions"] == [f"{members[1]}@s.whatsapp.net"] and record["text"] == f"look @{members[1]}"
