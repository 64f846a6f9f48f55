"""Contacts, groups and LIDs of the fake WhatsApp with a bare neonize client."""

from __future__ import annotations

import pytest
from neonize.events import MessageEv
from neonize.exc import GetGroupInfoError
from neonize.utils import build_jid

from fakewa import signal_lite as sl
from fakewa.bare_client import BareClient
from fakewa.harness import FakeWhatsApp
from fakewa.keys import SignKeyPair

PEER = "15550002222"
STRANGER = "15550009999"


@pytest.mark.e2e
def test_is_on_whatsapp(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    fake_wa.peer(PEER)
    fake_wa.set_on_whatsapp(STRANGER, False)
    fake_wa.set_on_whatsapp("15550003333")
    fake_wa.set_on_whatsapp("15550004444", False)
    fake_wa.peer("15550004444")  # a peer that is marked unregistered stays unregistered
    answers = paired.client.is_on_whatsapp("+" + PEER, "+" + STRANGER, "+15550003333", "+15550004444")
    got = {a.Query: (a.IsIn, a.JID.User, a.JID.Server) for a in answers}
    assert got == {
        "+" + PEER: (True, PEER, "s.whatsapp.net"),
        "+" + STRANGER: (False, STRANGER, "s.whatsapp.net"),
        "+15550003333": (True, "15550003333", "s.whatsapp.net"),
        "+15550004444": (False, "15550004444", "s.whatsapp.net"),
    }
    # a number nobody marked is on WhatsApp
    assert paired.client.is_on_whatsapp("+15550007777")[0].IsIn


def test_sender_key_round_trip() -> None:
    own = sl.SenderKey.generate(SignKeyPair())
    theirs = sl.SenderKey.from_distribution(own.distribution())
    first, second = own.encrypt(b"one"), own.encrypt(b"two")
    assert theirs.decrypt(first) == b"one"
    assert theirs.decrypt(second) == b"two"
    late = sl.SenderKey.from_distribution(own.distribution())  # joins at the current iteration
    with pytest.raises(ValueError, match="older"):
        late.decrypt(first)
    third = own.encrypt(b"three")
    assert late.decrypt(third) == b"three"
    forged = bytearray(own.encrypt(b"four"))
    forged[-70] ^= 1
    with pytest.raises(ValueError, match="signature"):
        theirs.decrypt(bytes(forged))
    stranger = sl.SenderKey.from_distribution(sl.SenderKey.generate(SignKeyPair()).distribution())
    with pytest.raises(ValueError):
        stranger.decrypt(third)


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["pn", "lid"])
def test_client_sends_to_group(fake_wa: FakeWhatsApp, paired: BareClient, mode: str) -> None:
    members = [PEER, "15550003333", "15550004444"]
    gid = fake_wa.create_group("Fake group", members, addressing_mode=mode, admins=[PEER])
    group_jid = build_jid(gid.split("@")[0], "g.us")
    info = paired.client.get_group_info(group_jid)
    assert info.GroupName.Name == "Fake group"
    assert {p.JID.Server for p in info.Participants} == {"lid" if mode == "lid" else "s.whatsapp.net"}
    by_lid = {p.LID.User: p for p in info.Participants}
    assert set(by_lid) == {fake_wa.peer(m).lid for m in members} | {fake_wa.phone.lid}
    assert {p.PhoneNumber.User for p in info.Participants} == set(members) | {fake_wa.phone.phone}
    assert by_lid[fake_wa.phone.lid].IsSuperAdmin
    assert {u for u, p in by_lid.items() if p.IsAdmin} == {fake_wa.phone.lid, fake_wa.peer(PEER).lid}
    with pytest.raises(ValueError, match="not among the peers"):
        fake_wa.create_group("Bad", [PEER], admins=[STRANGER])
    other = fake_wa.create_group("Other group", [PEER])
    joined = {g.JID.User: g.GroupName.Name for g in paired.client.get_joined_groups()}
    assert joined == {gid.split("@")[0]: "Fake group", other.split("@")[0]: "Other group"}

    first = paired.client.send_message(group_jid, "hello group")
    second = paired.client.send_message(group_jid, "second message")
    for m in members:
        assert fake_wa.wait_group_text_from_client(gid, m) == (first.ID, "hello group")
        assert fake_wa.wait_group_text_from_client(gid, m) == (second.ID, "second message")
        assert fake_wa.group_texts_received(gid, m) == ["hello group", "second message"]
        assert fake_wa.texts_received(m) == []  # nothing arrived as a direct message
    server = "lid" if mode == "lid" else "s.whatsapp.net"
    sent = [
        d for k, d in fake_wa.events if k == "node" and d.tag == "message" and d.attrs.get("id") == first.ID
    ]
    participants = sent[0].child("participants")
    assert participants is not None
    assert {to.attrs["jid"].server for to in participants.children()} == {server}
    assert {to.attrs["jid"].user for to in participants.children()} >= {
        fake_wa.peer(m).lid if mode == "lid" else m for m in members
    }
    outsider = fake_wa.peer("15550005555")
    assert outsider.group_texts_received(gid) == []
    assert not [e for e in fake_wa.events if e[0] in ("group-decrypt-error", "decrypt-error")]


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["pn", "lid"])
def test_peer_writes_into_group(fake_wa: FakeWhatsApp, paired: BareClient, mode: str) -> None:
    other = "15550003333"
    gid = fake_wa.create_group("Chatty", [PEER, other], addressing_mode=mode)
    peer = fake_wa.peer(PEER)
    mids = [peer.send_group_text(gid, "first from the peer"), peer.send_group_text(gid, "second")]
    mids.append(fake_wa.peer(other).send_group_text(gid, "from the other member"))
    texts = ["first from the peer", "second", "from the other member"]
    for mid, text, sender in zip(mids, texts, [peer, peer, fake_wa.peer(other)], strict=True):
        ev = paired.wait_event(
            MessageEv, pred=lambda e, mid=mid: mid == e.Info.ID and bool(e.Message.conversation)
        )
        src = ev.Info.MessageSource
        assert ev.Message.conversation == text
        assert src.IsGroup and not src.IsFromMe
        assert (src.Chat.User, src.Chat.Server) == (gid.split("@")[0], "g.us")
        if mode == "lid":
            assert (src.Sender.User, src.Sender.Server) == (sender.lid, "lid")
            assert (src.SenderAlt.User, src.SenderAlt.Server) == (sender.phone, "s.whatsapp.net")
        else:
            assert (src.Sender.User, src.Sender.Server) == (sender.phone, "s.whatsapp.net")
            assert (src.SenderAlt.User, src.SenderAlt.Server) == (sender.lid, "lid")
    # each message arrives once with its text; the sender key distribution (sent with every
    # message) comes as a separate event of the same id, without text
    with_text = [e for e in paired.of_type(MessageEv) if e.Message.conversation]
    assert [e.Info.ID for e in with_text] == mids
    first = [e for e in paired.of_type(MessageEv) if mids[0] == e.Info.ID]
    assert [bool(e.Message.conversation) for e in first] == [False, True]
    assert first[0].Message.senderKeyDistributionMessage.groupID == gid
    with pytest.raises(ValueError, match="not a member"):
        fake_wa.peer("15550005555").send_group_text(gid, "intruder")


@pytest.mark.e2e
def test_lid_only_peer_reveals_number_later(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    who = "15550006666"
    peer = fake_wa.peer(who)
    peer.write_from_lid()
    lid_jid = build_jid(peer.lid, "lid")
    mid = peer.send_text("from my LID")
    ev = paired.wait_event(MessageEv, pred=lambda e: mid == e.Info.ID)
    src = ev.Info.MessageSource
    assert ev.Message.conversation == "from my LID"
    assert (src.Chat.User, src.Chat.Server) == (peer.lid, "lid")
    assert (src.Sender.User, src.Sender.Server) == (peer.lid, "lid")
    assert src.SenderAlt.User == ""
    assert paired.client.get_pn_from_lid(lid_jid).User == ""  # the client knows no number yet

    reply = paired.client.send_message(lid_jid, "answer to the LID")
    assert peer.wait_text() == (reply.ID, "answer to the LID")

    peer.reveal_phone_number()
    mid = peer.send_text("this is my number")
    ev = paired.wait_event(MessageEv, pred=lambda e: mid == e.Info.ID)
    src = ev.Info.MessageSource
    assert (src.Sender.User, src.Sender.Server) == (peer.lid, "lid")
    assert (src.SenderAlt.User, src.SenderAlt.Server) == (who, "s.whatsapp.net")
    assert paired.client.get_pn_from_lid(lid_jid).User == who


@pytest.mark.e2e
def test_lid_group_with_hidden_number(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    hidden, known = fake_wa.peer("15550007777"), fake_wa.peer(PEER)
    hidden.write_from_lid()
    gid = fake_wa.create_group("LID group", [hidden.phone, known.phone], addressing_mode="lid")
    info = paired.client.get_group_info(build_jid(gid.split("@")[0], "g.us"))
    numbers = {p.LID.User: p.PhoneNumber.User for p in info.Participants}
    assert numbers[hidden.lid] == "" and numbers[known.lid] == known.phone

    mid = hidden.send_group_text(gid, "who am I")
    ev = paired.wait_event(MessageEv, pred=lambda e: mid == e.Info.ID and bool(e.Message.conversation))
    src = ev.Info.MessageSource
    assert (src.Sender.User, src.Sender.Server, src.SenderAlt.User) == (hidden.lid, "lid", "")

    hidden.reveal_phone_number()
    mid = hidden.send_group_text(gid, "now you know")
    ev = paired.wait_event(MessageEv, pred=lambda e: mid == e.Info.ID and bool(e.Message.conversation))
    src = ev.Info.MessageSource
    assert (src.Sender.User, src.SenderAlt.User, src.SenderAlt.Server) == (
        hidden.lid,
        hidden.phone,
        "s.whatsapp.net",
    )
    # the client, writing into the group, reaches the hidden member by LID as well
    sent = paired.client.send_message(build_jid(gid.split("@")[0], "g.us"), "hello all")
    assert fake_wa.wait_group_text_from_client(gid, hidden.phone) == (sent.ID, "hello all")
    assert fake_wa.wait_group_text_from_client(gid, known.phone) == (sent.ID, "hello all")


@pytest.mark.e2e
def test_unknown_group(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    with pytest.raises(GetGroupInfoError, match="group does not exist"):
        paired.client.get_group_info(build_jid("120363000000000001", "g.us"))
    assert list(paired.client.get_joined_groups()) == []
    with pytest.raises(KeyError, match="no fake group"):
        fake_wa.group("120363000000000001@g.us")
    with pytest.raises(ValueError, match="addressing_mode"):
        fake_wa.create_group("Bad", [PEER], addressing_mode="phone")
