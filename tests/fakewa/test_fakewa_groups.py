"""Contacts, groups and LIDs of the fake WhatsApp with a bare neonize client."""

from __future__ import annotations

import pytest
from neonize.events import GroupInfoEv, MessageEv
from neonize.exc import (
    GetGroupInfoError,
    GetGroupInviteLinkError,
    LeaveGroupError,
    SendMessageError,
    UpdateGroupParticipantsError,
)
from neonize.proto.Neonize_pb2 import JID
from neonize.utils import build_jid
from neonize.utils.enum import ParticipantChange

from fakewa import signal_lite as sl
from fakewa.bare_client import BareClient
from fakewa.harness import FakeWhatsApp
from fakewa.keys import SignKeyPair
from fakewa.test_fakewa_media import png

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
    # whatsmeow asks by LID: a user is named by its LID (and the pair kept), a number without
    # an account by the number
    assert got == {
        "+" + PEER: (True, fake_wa.peer(PEER).lid, "lid"),
        "+" + STRANGER: (False, STRANGER, "s.whatsapp.net"),
        "+15550003333": (True, fake_wa.peer("15550003333").lid, "lid"),
        "+15550004444": (False, "15550004444", "s.whatsapp.net"),
    }
    lid = paired.client.get_lid_from_pn(build_jid(PEER, "s.whatsapp.net"))
    assert (lid.User, lid.Server) == (fake_wa.peer(PEER).lid, "lid")
    assert paired.client.get_lid_from_pn(build_jid(STRANGER, "s.whatsapp.net")).User == ""
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
    # whatsmeow sends the sender key distribution to every member device with every group
    # message, not only with the first, next to the group ciphertext (skmsg)
    for mid in (first.ID, second.ID):
        [sent] = [
            d for k, d in fake_wa.events if k == "node" and d.tag == "message" and d.attrs.get("id") == mid
        ]
        participants = sent.child("participants")
        assert participants is not None
        assert {to.attrs["jid"].server for to in participants.children()} == {server}
        assert {to.attrs["jid"].user for to in participants.children()} >= {
            fake_wa.peer(m).lid if mode == "lid" else m for m in members
        }
        assert [c.attrs.get("type") for c in sent.children() if c.tag == "enc"] == ["skmsg"]
        # the account's own phone gets the key too, addressed as the group addresses the
        # account: by its LID in a LID group, by its number in a number group
        own = fake_wa.phone.lid if mode == "lid" else fake_wa.phone.phone
        assert own in {to.attrs["jid"].user for to in participants.children()}
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


def _gjid(gid: str) -> JID:
    return build_jid(gid.split("@")[0], "g.us")


@pytest.mark.e2e
def test_client_creates_group(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    other = "15550003333"
    fake_wa.set_on_whatsapp(STRANGER, False)
    info = paired.client.create_group("New group", [build_jid(PEER), build_jid(other), build_jid(STRANGER)])
    gid = f"{info.JID.User}@g.us"
    assert info.JID.Server == "g.us" and info.GroupName.Name == "New group"
    got = {p.JID.User: (p.Error, p.IsAdmin, p.IsSuperAdmin) for p in info.Participants}
    assert got == {
        fake_wa.phone.phone: (0, True, True),
        PEER: (0, False, False),
        other: (0, False, False),
        STRANGER: (404, False, False),  # not on WhatsApp: listed with the error, not added
    }
    assert info.OwnerJID.User == fake_wa.phone.phone
    assert fake_wa.group_members(gid) == {fake_wa.phone.phone, PEER, other}
    assert fake_wa.group_admins(gid) == {fake_wa.phone.phone}
    group = fake_wa.group(gid)
    assert group.subject == "New group" and group.addressing_mode == "pn"
    ((_, subject, lids, refused),) = fake_wa.group_events(gid, "group-create")
    assert (subject, lids) == ("New group", [fake_wa.peer(PEER).lid, fake_wa.peer(other).lid])
    assert [(j.user, code) for j, code in refused] == [(STRANGER, 404)]
    joined = {g.JID.User: g.GroupName.Name for g in paired.client.get_joined_groups()}
    assert joined == {info.JID.User: "New group"}
    # the new members decrypt what the client writes into it
    sent = paired.client.send_message(_gjid(gid), "welcome")
    assert fake_wa.wait_group_text_from_client(gid, PEER) == (sent.ID, "welcome")
    assert fake_wa.wait_group_text_from_client(gid, other) == (sent.ID, "welcome")

    # a peer whose privacy settings refuse group adds gets an invitation instead
    shy = fake_wa.peer("15550008888")
    shy.refuse_group_adds()
    info = paired.client.create_group("Second", [build_jid(shy.phone)])
    (refused_p,) = [p for p in info.Participants if p.JID.User == shy.phone]
    assert refused_p.Error == 403 and len(refused_p.AddRequest.Code) == 22
    assert fake_wa.group_members(f"{info.JID.User}@g.us") == {fake_wa.phone.phone}


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["pn", "lid"])
def test_client_changes_participants(fake_wa: FakeWhatsApp, paired: BareClient, mode: str) -> None:
    other, third = "15550003333", "15550004444"
    fake_wa.set_on_whatsapp(STRANGER, False)
    gid = fake_wa.create_group("Managed", [PEER], addressing_mode=mode)
    g = _gjid(gid)
    server = "lid" if mode == "lid" else "s.whatsapp.net"

    def named(phone: str) -> str:
        return fake_wa.peer(phone).lid if mode == "lid" else phone

    added = paired.client.update_group_participants(
        g, [build_jid(other), build_jid(third), build_jid(PEER), build_jid(STRANGER)], ParticipantChange.ADD
    )
    assert [(p.JID.User, p.JID.Server, p.Error) for p in added] == [
        (named(other), server, 0),
        (named(third), server, 0),
        (PEER, "s.whatsapp.net", 409),  # already a member
        (STRANGER, "s.whatsapp.net", 404),  # not on WhatsApp
    ]
    assert fake_wa.group_members(gid) == {fake_wa.phone.phone, PEER, other, third}
    ((_, action, outcome),) = fake_wa.group_events(gid, "group-participants")
    assert action == "add" and [c for _, c in outcome] == [200, 200, 409, 404]
    # WhatsApp tells the client's devices what was done, naming the account as the actor
    own = fake_wa.phone.lid if mode == "lid" else fake_wa.phone.phone
    ev = paired.wait_event(GroupInfoEv, pred=lambda e: len(e.Join) > 0)
    assert {j.User for j in ev.Join} == {named(other), named(third)}
    assert (ev.JID.User, ev.Sender.User) == (g.User, own)

    promoted = paired.client.update_group_participants(g, [build_jid(other)], ParticipantChange.PROMOTE)
    assert [(p.JID.User, p.Error) for p in promoted] == [(named(other), 0)]
    assert fake_wa.group_admins(gid) == {fake_wa.phone.phone, other}
    demoted = paired.client.update_group_participants(g, [build_jid(other)], ParticipantChange.DEMOTE)
    assert [p.Error for p in demoted] == [0]
    assert fake_wa.group_admins(gid) == {fake_wa.phone.phone}
    removed = paired.client.update_group_participants(
        g, [build_jid(third), build_jid("15550005555")], ParticipantChange.REMOVE
    )
    assert [(p.JID.User, p.Error) for p in removed] == [(named(third), 0), ("15550005555", 404)]
    assert fake_wa.group_members(gid) == {fake_wa.phone.phone, PEER, other}
    ev = paired.wait_event(GroupInfoEv, pred=lambda e: len(e.Leave) > 0)
    assert [j.User for j in ev.Leave] == [named(third)]
    actions = [(a, [c for _, c in o]) for _, a, o in fake_wa.group_events(gid, "group-participants")]
    assert actions == [
        ("add", [200, 200, 409, 404]),
        ("promote", [200]),
        ("demote", [200]),
        ("remove", [200, 404]),
    ]

    # group info shows the new state; the client's next message reaches the new member only
    info = paired.client.get_group_info(g)
    assert {p.PhoneNumber.User for p in info.Participants} == {fake_wa.phone.phone, PEER, other}
    sent = paired.client.send_message(g, "after the changes")
    assert fake_wa.wait_group_text_from_client(gid, other) == (sent.ID, "after the changes")
    assert fake_wa.wait_group_text_from_client(gid, PEER) == (sent.ID, "after the changes")
    assert fake_wa.group_texts_received(gid, third) == []


@pytest.mark.e2e
def test_not_admin_is_refused(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    gid = fake_wa.create_group("Not mine", [PEER], admins=[PEER])
    fake_wa.set_group_admin(gid, False)
    g = _gjid(gid)
    for action in ParticipantChange:
        with pytest.raises(
            UpdateGroupParticipantsError, match=r"^info query returned status 401: not-authorized$"
        ):
            paired.client.update_group_participants(g, [build_jid(PEER)], action)
    with pytest.raises(
        GetGroupInviteLinkError, match="you don't have the permission to get the group's invite link"
    ):
        paired.client.get_group_invite_link(g)
    assert fake_wa.group_members(gid) == {fake_wa.phone.phone, PEER}
    assert fake_wa.group_admins(gid) == {PEER}
    refused = fake_wa.group_events(gid, "group-refused")
    assert [(tag, code) for _, tag, code in refused] == [
        ("add", 401),
        ("remove", 401),
        ("promote", 401),
        ("demote", 401),
        ("invite", 401),
    ]
    info = paired.client.get_group_info(g)
    me = [p for p in info.Participants if p.JID.User == fake_wa.phone.phone]
    assert [(p.IsAdmin, p.IsSuperAdmin) for p in me] == [(False, False)]
    fake_wa.set_group_admin(gid, True)
    assert paired.client.get_group_invite_link(g).startswith("https://chat.whatsapp.com/")
    with pytest.raises(UpdateGroupParticipantsError, match="status 404: item-not-found"):
        paired.client.update_group_participants(
            _gjid("120363000000000001@g.us"), [build_jid(PEER)], ParticipantChange.ADD
        )


@pytest.mark.e2e
def test_full_group(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    gid = fake_wa.create_group("Small", [PEER], size_limit=3)
    added = paired.client.update_group_participants(
        _gjid(gid), [build_jid("15550003333"), build_jid("15550004444")], ParticipantChange.ADD
    )
    assert [(p.JID.User, p.Error) for p in added] == [("15550003333", 0), ("15550004444", 500)]
    assert fake_wa.group_members(gid) == {fake_wa.phone.phone, PEER, "15550003333"}
    paired.client.update_group_participants(_gjid(gid), [build_jid(PEER)], ParticipantChange.REMOVE)
    added = paired.client.update_group_participants(
        _gjid(gid), [build_jid("15550004444")], ParticipantChange.ADD
    )
    assert [p.Error for p in added] == [0]


@pytest.mark.e2e
def test_client_leaves_group(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    gid = fake_wa.create_group("To leave", [PEER])
    stay = fake_wa.create_group("To stay", [PEER])
    paired.client.leave_group(_gjid(gid))
    assert not fake_wa.group(gid).account_member
    assert fake_wa.group_members(gid) == {PEER}
    assert fake_wa.group_events(gid, "group-leave") == [fake_wa.group(gid).jid]
    assert [g.JID.User for g in paired.client.get_joined_groups()] == [stay.split("@")[0]]
    ev = paired.wait_event(GroupInfoEv, pred=lambda e: len(e.Leave) > 0)
    assert [j.User for j in ev.Leave] == [fake_wa.phone.phone]
    with pytest.raises(GetGroupInfoError, match="you're not participating in that group"):
        paired.client.get_group_info(_gjid(gid))
    with pytest.raises(LeaveGroupError, match=r"^info query returned status 403: forbidden$"):
        paired.client.leave_group(_gjid(gid))
    with pytest.raises(LeaveGroupError, match=r"^info query returned status 404: item-not-found$"):
        paired.client.leave_group(_gjid("120363000000000001@g.us"))


@pytest.mark.e2e
def test_invite_link(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    gid = fake_wa.create_group("Invite", [PEER])
    link = paired.client.get_group_invite_link(_gjid(gid))
    code = link.removeprefix("https://chat.whatsapp.com/")
    assert link != code and len(code) == 22 and fake_wa.group(gid).invite_code == code
    assert paired.client.get_group_invite_link(_gjid(gid)) == link  # stable until revoked
    revoked = paired.client.get_group_invite_link(_gjid(gid), revoke=True)
    assert revoked != link and revoked.startswith("https://chat.whatsapp.com/")
    assert paired.client.get_group_invite_link(_gjid(gid)) == revoked
    other = fake_wa.create_group("Another", [PEER])
    assert paired.client.get_group_invite_link(_gjid(other)) != revoked
    with pytest.raises(GetGroupInviteLinkError, match="that group does not exist"):
        paired.client.get_group_invite_link(_gjid("120363000000000001@g.us"))
    paired.client.leave_group(_gjid(other))
    with pytest.raises(GetGroupInviteLinkError, match="you're not participating in that group"):
        paired.client.get_group_invite_link(_gjid(other))
    assert [(c, r) for _, c, r in fake_wa.group_events(gid, "group-invite")] == [
        (code, False),
        (code, False),
        (revoked.rsplit("/", 1)[1], True),
        (revoked.rsplit("/", 1)[1], False),
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["pn", "lid"])
def test_changes_by_others_reach_client(fake_wa: FakeWhatsApp, paired: BareClient, mode: str) -> None:
    other, newcomer = "15550003333", "15550004444"
    gid = fake_wa.create_group("Busy", [PEER, other], addressing_mode=mode, admins=[PEER])
    g = _gjid(gid)
    paired.client.get_group_info(g)  # the client caches the members

    def named(phone: str) -> tuple[str, str]:
        peer = fake_wa.peer(phone)
        return (peer.lid, "lid") if mode == "lid" else (phone, "s.whatsapp.net")

    nid = fake_wa.peer(other).leave_group(gid)
    ev = paired.wait_event(GroupInfoEv, pred=lambda e: len(e.Leave) > 0)
    assert [(j.User, j.Server) for j in ev.Leave] == [named(other)]
    assert (ev.Sender.User, ev.Sender.Server) == named(other)
    assert (ev.JID.User, ev.JID.Server) == (g.User, "g.us")
    assert ev.Notify == fake_wa.peer(other).user.push_name
    assert not ev.Join and not ev.Promote and not ev.Demote
    ack = fake_wa.wait_ack(nid)
    assert (ack.attrs["class"], ack.attrs["type"]) == ("notification", "w:gp2")
    assert fake_wa.group_members(gid) == {fake_wa.phone.phone, PEER}

    fake_wa.group_change(gid, "add", [newcomer], actor_phone=PEER)
    ev = paired.wait_event(GroupInfoEv, pred=lambda e: len(e.Join) > 0)
    assert [(j.User, j.Server) for j in ev.Join] == [named(newcomer)]
    assert (ev.Sender.User, ev.Sender.Server) == named(PEER)
    fake_wa.group_change(gid, "promote", [newcomer], actor_phone=PEER)
    ev = paired.wait_event(GroupInfoEv, pred=lambda e: len(e.Promote) > 0)
    assert [j.User for j in ev.Promote] == [named(newcomer)[0]]
    assert fake_wa.group_admins(gid) == {fake_wa.phone.phone, PEER, newcomer}
    fake_wa.group_change(gid, "demote", [PEER])  # the account, from its phone
    ev = paired.wait_event(GroupInfoEv, pred=lambda e: len(e.Demote) > 0)
    assert [j.User for j in ev.Demote] == [named(PEER)[0]]
    assert ev.Sender.User == (fake_wa.phone.lid if mode == "lid" else fake_wa.phone.phone)
    fake_wa.group_change(gid, "remove", [PEER], actor_phone=newcomer)
    ev = paired.wait_event(GroupInfoEv, pred=lambda e: len(e.Leave) > 0, count=2)
    assert [j.User for j in ev.Leave] == [named(PEER)[0]]
    assert fake_wa.group_members(gid) == {fake_wa.phone.phone, newcomer}
    notified = [
        (a, actor, [j.user for j in js])
        for _, a, actor, js, _ in fake_wa.group_events(gid, "group-notification")
    ]
    lid = {p: fake_wa.peer(p).lid for p in (PEER, other, newcomer)}
    assert notified == [
        ("remove", lid[other], [named(other)[0]]),
        ("add", lid[PEER], [named(newcomer)[0]]),
        ("promote", lid[PEER], [named(newcomer)[0]]),
        ("demote", fake_wa.phone.lid, [named(PEER)[0]]),
        ("remove", lid[newcomer], [named(PEER)[0]]),
    ]

    # the client's cache follows: its next message goes to the newcomer, not to those who left
    sent = paired.client.send_message(g, "who is here")
    assert fake_wa.wait_group_text_from_client(gid, newcomer) == (sent.ID, "who is here")
    assert fake_wa.group_texts_received(gid, other) == []
    assert fake_wa.group_texts_received(gid, PEER) == []

    with pytest.raises(ValueError, match="already a member"):
        fake_wa.group_change(gid, "add", [newcomer])
    with pytest.raises(ValueError, match="not a member"):
        fake_wa.group_change(gid, "remove", [other])
    with pytest.raises(ValueError, match="is not a member"):
        fake_wa.group_change(gid, "add", [other], actor_phone=PEER)
    with pytest.raises(ValueError, match="action is one of"):
        fake_wa.group_change(gid, "kick", [newcomer])


@pytest.mark.e2e
def test_group_notifications_tell_the_client_who_is_behind_a_lid(
    fake_wa: FakeWhatsApp, paired: BareClient
) -> None:
    """whatsmeow keeps the LID-number pairs a w:gp2 notification names (a LID group's
    participants carry ``phone_number``, a number group's ``lid``), before it emits the event."""
    leaver, hidden, other = (fake_wa.peer(p) for p in ("15550005555", "15550006666", "15550004444"))
    hidden.write_from_lid()
    lidded = fake_wa.create_group(
        "Passing through", [PEER, leaver.phone, hidden.phone], addressing_mode="lid"
    )
    numbered = fake_wa.create_group("Numbers", [PEER, other.phone])

    def pn_of(lid: str) -> str:
        return paired.client.get_pn_from_lid(build_jid(lid, "lid")).User

    def lid_of(phone: str) -> str:
        return paired.client.get_lid_from_pn(build_jid(phone, "s.whatsapp.net")).User

    assert (pn_of(leaver.lid), pn_of(hidden.lid), lid_of(other.phone)) == ("", "", "")
    for peer, gid in ((leaver, lidded), (hidden, lidded), (other, numbered)):
        fake_wa.wait_ack(peer.leave_group(gid))
    assert pn_of(leaver.lid) == leaver.phone
    assert pn_of(hidden.lid) == ""  # it left without its number
    assert lid_of(other.phone) == other.lid


@pytest.mark.e2e
def test_announcement_group_refuses_members_that_are_not_admins(
    fake_wa: FakeWhatsApp, paired: BareClient
) -> None:
    other = "15550003333"
    gid = fake_wa.create_group("News", [PEER, other], admins=[PEER], announce=True)
    g = _gjid(gid)
    assert paired.client.get_group_info(g).GroupAnnounce.IsAnnounce
    plain = _gjid(fake_wa.create_group("Chat", [PEER]))
    assert not paired.client.get_group_info(plain).GroupAnnounce.IsAnnounce
    allowed = paired.client.send_message(g, "as an admin")  # the account is an admin
    assert fake_wa.wait_group_text_from_client(gid, PEER) == (allowed.ID, "as an admin")

    fake_wa.set_group_admin(gid, False)
    with pytest.raises(SendMessageError, match=r"server returned error 420"):
        paired.client.send_message(g, "not allowed")
    (refused,) = fake_wa.group_events(gid, "group-send-refused")
    assert refused[2] == 420
    assert all(fake_wa.group_texts_received(gid, m) == ["as an admin"] for m in (PEER, other))
    with pytest.raises(ValueError, match="only admins may send"):
        fake_wa.peer(other).send_group_text(gid, "me neither")
    fake_wa.peer(PEER).send_group_text(gid, "an admin member may")
    paired.wait_event(MessageEv, pred=lambda e: e.Message.conversation == "an admin member may")

    fake_wa.set_group_announce(gid, False)
    again = paired.client.send_message(g, "everyone may again")
    assert fake_wa.wait_group_text_from_client(gid, PEER) == (again.ID, "everyone may again")
    got = [fake_wa.wait_group_text_from_client(gid, other)[1] for _ in range(2)]
    assert got == ["as an admin", "everyone may again"]


@pytest.mark.e2e
def test_client_image_to_group_reaches_every_member(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    members = [PEER, "15550003333"]
    gid = fake_wa.create_group("Photos", members, addressing_mode="lid")
    picture = png()
    sent = paired.client.send_message(_gjid(gid), paired.client.build_image_message(picture, caption="us"))
    for m in members:
        got = fake_wa.wait_group_media_from_client(gid, m, kind="image")
        assert (got.message_id, got.plaintext, got.caption) == (sent.ID, picture, "us")
        assert [r.plaintext for r in fake_wa.group_media_received(gid, m)] == [picture]
        assert fake_wa.group_texts_received(gid, m) == []
