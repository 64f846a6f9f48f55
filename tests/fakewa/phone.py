"""The account's primary phone and the fake contacts around it.

* :class:`FakePhone` scans a QR code and pairs the client (``pair-success``, then the
  ``stream:error 515`` restart after which the client logs in with its new identity).
* :class:`Directory` answers device-list and contact queries (usync) and prekey requests
  for fake users, decrypts what the client sends them and delivers Signal-encrypted
  messages from them to the client. It also keeps the fake groups (:class:`FakeGroup`):
  it answers the client's group info queries (``w:g2``), decrypts the client's group
  messages (sender keys) for every member and sends members' group messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from neonize.proto.waAdv.WAAdv_pb2 import (
    ADVDeviceIdentity,
    ADVSignedDeviceIdentity,
    ADVSignedDeviceIdentityHMAC,
)
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message, SenderKeyDistributionMessage

from . import signal_lite as sl
from .codec import JID, S_WHATSAPP_NET, Node
from .keys import SignKeyPair, x25519_pub
from .server import FakeWAServer, IqError, WAConnection

log = logging.getLogger("fakewa")


def message_text(msg: Message) -> str:
    """The text of a plain or extended text message ("" for anything else)."""
    return msg.conversation or msg.extendedTextMessage.text


def qr_ref(qr: str) -> str:
    """The server ref inside a WhatsApp QR string (``https://wa.me/...#ref,noise,identity,adv,6``)."""
    return qr.split("#", 1)[-1].split(",", 1)[0]


class FakePhone:
    """The primary phone of the account the client links to."""

    def __init__(self, phone: str = "15550001111", lid: str = "99990001111") -> None:
        self.phone = phone
        self.lid = lid
        self.account = SignKeyPair()

    def scan(
        self, server: FakeWAServer, qr: str, device: int = 1, directory: Directory | None = None
    ) -> None:
        """Scan ``qr`` and link the client showing it as ``device`` of this account.

        Sends an ADV-signed ``pair-success`` to the newest live connection; once the client
        confirms, the server restarts the stream (515) and the client logs in.
        """
        ref, noise_b64, ident_b64, adv_b64 = qr.split("#", 1)[-1].split(",")[:4]
        noise_pub, ident_pub, adv = (base64.b64decode(x) for x in (noise_b64, ident_b64, adv_b64))
        details = ADVDeviceIdentity(
            rawID=1234, timestamp=int(time.time()), keyIndex=1, accountType=0, deviceType=0
        ).SerializeToString()
        signed = ADVSignedDeviceIdentity(
            details=details,
            accountSignatureKey=self.account.pub,
            accountSignature=self.account.sign(b"\x06\x00" + details + ident_pub),
        ).SerializeToString()
        container = ADVSignedDeviceIdentityHMAC(
            details=signed, HMAC=hmac.new(adv, signed, hashlib.sha256).digest(), accountType=0
        )
        jid = JID(self.phone, "s.whatsapp.net", device)
        lid = JID(self.lid, "lid", device)
        server.paired_devices[noise_pub] = {"jid": jid, "lid": lid, "identity": ident_pub}
        if directory is not None:  # the phone's own Signal identity is its account key
            directory.add(self.phone, self.lid, self.account)
        live = [c for c in server.live_connections() if c.client_static == noise_pub]
        if not live:
            raise RuntimeError(f"no live connection of the client that showed QR ref {ref!r}")
        conn = live[-1]
        pair_id = server.next_id()

        def on_sign(c: WAConnection, node: Node) -> bool:
            if node.tag == "iq" and node.attrs.get("id") == pair_id and node.attrs.get("type") == "result":
                server.node_hooks.remove(on_sign)
                server.record("pair-device-sign", node)
                # as the real server: restart the stream so the client logs in with its new identity
                c.send_node(Node("stream:error", {"code": "515"}))
                # Let the client hang up itself: closing right away races with the client
                # processing the 515 frame (it then never reconnects). Close later as a fallback.
                server.call_later(3.0, c.close)
                return True
            return False

        server.node_hooks.append(on_sign)
        conn.send_node(
            Node(
                "iq",
                {
                    "from": S_WHATSAPP_NET,
                    "type": "set",
                    "id": pair_id,
                    "xmlns": "md",
                    "t": str(int(time.time())),
                },
                [
                    Node(
                        "pair-success",
                        {},
                        [
                            Node("device-identity", {}, container.SerializeToString()),
                            Node("platform", {"name": "android"}),
                            Node("device", {"jid": jid, "lid": lid}),
                            Node("biz", {}),
                        ],
                    )
                ],
            )
        )


class FakeUser:
    """A WhatsApp user with one device (0) and a Signal identity, signed prekey and one-time prekey."""

    def __init__(self, pn: str, lid: str, identity: SignKeyPair | None = None) -> None:
        self.pn, self.lid = pn, lid
        self.push_name = f"Fake {pn}"  # the name its messages carry ("notify")
        self.writes_as_lid = False  # direct messages come from the LID (addressing_mode="lid")
        self.hide_pn = False  # messages from the LID do not reveal the phone number (no sender_pn)
        self.identity = identity or SignKeyPair()
        self.reg_id = secrets.randbelow(16380) + 1
        self.spk, self.spk_id = X25519PrivateKey.generate(), 1
        self.spk_sig = self.identity.sign(b"\x05" + x25519_pub(self.spk))
        self.opk, self.opk_id = X25519PrivateKey.generate(), 1

    def __repr__(self) -> str:
        return f"<FakeUser {self.pn} lid={self.lid}>"

    def is_addressed_by(self, jid: JID) -> bool:
        return jid.user == (self.lid if jid.server == "lid" else self.pn)

    def bundle_node(self, jid: JID) -> Node:
        return Node(
            "user",
            {"jid": jid},
            [
                Node("registration", {}, self.reg_id.to_bytes(4, "big")),
                Node("type", {}, b"\x05"),
                Node("identity", {}, self.identity.pub),
                Node(
                    "skey",
                    {},
                    [
                        Node("id", {}, self.spk_id.to_bytes(3, "big")),
                        Node("value", {}, x25519_pub(self.spk)),
                        Node("signature", {}, self.spk_sig),
                    ],
                ),
                Node(
                    "key",
                    {},
                    [Node("id", {}, self.opk_id.to_bytes(3, "big")), Node("value", {}, x25519_pub(self.opk))],
                ),
            ],
        )


@dataclass
class FakeGroup:
    """A group: the account (its creator and super admin) and fake members."""

    jid: JID
    subject: str
    owner_pn: str  # the account's phone number and LID
    owner_lid: str
    members: list[FakeUser]
    addressing_mode: str = "pn"  # "pn" or "lid": how participants and senders are addressed
    creation: int = field(default_factory=lambda: int(time.time()))
    admins: set[str] = field(default_factory=set)  # LIDs of members that are admins

    def __post_init__(self) -> None:
        if self.addressing_mode not in ("pn", "lid"):
            raise ValueError(f"addressing_mode is 'pn' or 'lid', not {self.addressing_mode!r}")

    @property
    def lid_mode(self) -> bool:
        return self.addressing_mode == "lid"

    def address(self, pn: str, lid: str) -> JID:
        """How the group names a user: by LID in a LID group, else by phone number."""
        return JID(lid, "lid") if self.lid_mode else JID(pn, "s.whatsapp.net")

    def has_member(self, user: FakeUser) -> bool:
        return any(m is user for m in self.members)

    def node(self) -> Node:
        """The ``<group>`` of a group info answer, as whatsmeow's parseGroupNode reads it."""
        owner = self.address(self.owner_pn, self.owner_lid)
        parts = [self._participant(self.owner_pn, self.owner_lid, "superadmin", False)]
        for m in self.members:
            parts.append(self._participant(m.pn, m.lid, "admin" if m.lid in self.admins else None, m.hide_pn))
        return Node(
            "group",
            {
                "id": self.jid.user,
                "subject": self.subject,
                "s_t": str(self.creation),
                "s_o": owner,
                "creation": str(self.creation),
                "creator": owner,
                "size": str(len(parts)),
                "addressing_mode": self.addressing_mode,
                "p_v_id": str(self.creation),
            },
            parts,
        )

    def _participant(self, pn: str, lid: str, typ: str | None, hide_pn: bool) -> Node:
        if self.lid_mode:
            attrs: dict[str, Any] = {"jid": JID(lid, "lid")}
            if not hide_pn:
                attrs["phone_number"] = JID(pn, "s.whatsapp.net")
        else:
            attrs = {"jid": JID(pn, "s.whatsapp.net"), "lid": JID(lid, "lid")}
        if typ:
            attrs["type"] = typ
        return Node("participant", attrs)


class Directory:
    """Fake contacts: usync device lists, prekey bundles, and Signal sessions with the client.

    Users are created on first use: an unknown phone number gets a made-up LID and vice versa.
    """

    def __init__(self, server: FakeWAServer) -> None:
        self.server = server
        self.by_pn: dict[str, FakeUser] = {}
        self.by_lid: dict[str, FakeUser] = {}
        self.sessions: dict[tuple[str, bytes], sl.Session] = {}  # (user LID, client noise key) -> session
        self.client_keys: dict[bytes, dict[str, Any]] = {}  # client noise key -> uploaded prekeys
        self.delivered_ids: set[tuple[bytes, Any]] = set()  # (client noise key, message id)
        self.unregistered: set[str] = set()  # phone numbers IsOnWhatsApp reports as not on WhatsApp
        self.groups: dict[str, FakeGroup] = {}  # group user part -> group
        # sender keys: (member LID, group user, client noise key) -> the client's key as the member
        # holds it; (member LID, group user) -> the member's own key
        self.client_sender_keys: dict[tuple[str, str, bytes], sl.SenderKey] = {}
        self.own_sender_keys: dict[tuple[str, str], sl.SenderKey] = {}
        self._lock = threading.RLock()  # users are created from server threads and from tests
        server.iq_handlers["usync"] = self._usync
        server.iq_handlers["encrypt"] = self._encrypt
        server.iq_handlers["w:g2"] = self._groups_iq
        server.node_hooks.append(self._on_message)

    def add(self, pn: str, lid: str, identity: SignKeyPair | None = None) -> FakeUser:
        u = FakeUser(pn, lid, identity)
        with self._lock:
            self.by_pn[pn], self.by_lid[lid] = u, u
        return u

    def get(self, jid: JID) -> FakeUser:
        """The user a phone-number or LID JID points to, created on first use."""
        with self._lock:
            if jid.server == "lid":
                return self.by_lid.get(jid.user) or self.add("1555" + jid.user[-7:], jid.user)
            return self.by_pn.get(jid.user) or self.add(jid.user, str(90000000000 + len(self.by_pn)))

    def _usync(self, conn: WAConnection, iq: Node) -> list[Node]:
        us = iq.child("usync")
        assert us is not None
        query = us.child("query")
        wanted = [q.tag for q in query.children()] if query else []
        users = us.child("list")
        out = []
        for u in users.children() if users else []:
            jid = u.attrs.get("jid")
            contact = u.child("contact")
            if not isinstance(jid, JID) and contact is not None:  # lookup by phone number
                out.append(self._contact_user(contact, wanted))
                continue
            if not isinstance(jid, JID):
                continue
            fu, kids = self.get(jid), []
            if "devices" in wanted:
                kids.append(Node("devices", {}, [Node("device-list", {}, [Node("device", {"id": "0"})])]))
            if "lid" in wanted:
                kids.append(Node("lid", {"val": JID(fu.lid, "lid")}))
            out.append(Node("user", {"jid": jid}, kids))
        return [Node("usync", dict(us.attrs), [Node("list", {}, out)])]

    def _contact_user(self, contact: Node, wanted: list[str]) -> Node:
        """The answer to one ``<user><contact>+PHONE@c.us</contact></user>`` (IsOnWhatsApp):
        ``type="in"`` unless the number was marked unregistered (see :meth:`is_registered`);
        like the rest of the fake world, a number nobody mentioned before is somebody's."""
        query = contact.content.decode() if isinstance(contact.content, bytes) else str(contact.content)
        digits = query.split("@", 1)[0].lstrip("+")
        with self._lock:
            fu = self.get(JID(digits, "s.whatsapp.net")) if self.is_registered(digits) else None
        kids = [Node("contact", {"type": "in" if fu else "out"}, query.encode())]
        if fu is not None and "lid" in wanted:
            kids.append(Node("lid", {"val": JID(fu.lid, "lid")}))
        return Node("user", {"jid": JID(digits, "s.whatsapp.net")}, kids)

    def is_registered(self, pn: str) -> bool:
        """Whether the phone number has an account: every number not marked unregistered."""
        with self._lock:
            return pn not in self.unregistered

    def create_group(
        self,
        subject: str,
        owner_pn: str,
        owner_lid: str,
        members: list[FakeUser],
        addressing_mode: str = "pn",
    ) -> FakeGroup:
        with self._lock:
            while True:
                user = "120363" + str(secrets.randbelow(10**12)).zfill(12)
                if user not in self.groups:
                    break
            g = FakeGroup(JID(user, "g.us"), subject, owner_pn, owner_lid, list(members), addressing_mode)
            self.groups[user] = g
        return g

    def group(self, jid: JID | str) -> FakeGroup:
        user = (JID.parse(jid) if isinstance(jid, str) else jid).user
        try:
            return self.groups[user]
        except KeyError:
            raise KeyError(f"no fake group {jid}") from None

    def _groups_iq(self, conn: WAConnection, iq: Node) -> list[Node] | None:
        """Group info (``<query request="interactive"/>`` to the group) and the joined groups
        (``<participating>`` to ``@g.us``); an unknown group is a 404 error."""
        if iq.child("participating") is not None:
            with self._lock:
                groups = list(self.groups.values())
            self.server.record("group-list", len(groups))
            return [Node("groups", {}, [g.node() for g in groups])]
        to = iq.attrs.get("to")
        if iq.child("query") is not None and isinstance(to, JID):
            if to.user not in self.groups:
                raise IqError(404, "item-not-found")
            self.server.record("group-info", to)
            return [self.groups[to.user].node()]
        return None

    def _encrypt(self, conn: WAConnection, iq: Node) -> list[Node] | None:
        if iq.child("count") is not None:
            return [Node("count", {"value": "812"})]
        key = iq.child("key")
        if key is not None:
            return [
                Node(
                    "list", {}, [self.get(u.attrs["jid"]).bundle_node(u.attrs["jid"]) for u in key.children()]
                )
            ]
        identity, reg, sk, keys = (iq.child(t) for t in ("identity", "registration", "skey", "list"))
        if iq.attrs.get("type") == "set" and identity and reg and sk and keys:  # prekey upload
            sk_id, sk_value = sk.child("id"), sk.child("value")
            assert sk_id is not None and sk_value is not None
            opks = []
            for k in keys.children():
                k_id, k_value = k.child("id"), k.child("value")
                assert k_id is not None and k_value is not None
                opks.append((int.from_bytes(k_id.content, "big"), k_value.content))
            self.client_keys[conn.client_static or b""] = {
                "identity": identity.content,
                "reg_id": int.from_bytes(reg.content, "big"),
                "spk_id": int.from_bytes(sk_id.content, "big"),
                "spk": sk_value.content,
                "opks": opks,
            }
            self.server.record("prekeys", conn.client_static)
        return None

    def _on_message(self, conn: WAConnection, node: Node) -> bool:
        participants = node.child("participants") if node.tag == "message" else None
        if participants is None:
            return False
        # WhatsApp delivers a message id once: whatsmeow resends the same frame (same id)
        # when the connection dropped before the ack, and the recipient gets one copy
        key_id = (conn.client_static or b"", node.attrs.get("id"))
        if key_id in self.delivered_ids:
            self.server.record("duplicate-id", node.attrs.get("id"))
            return False  # acked, not delivered again
        self.delivered_ids.add(key_id)
        to_jid = node.attrs.get("to")
        group = self.groups.get(to_jid.user) if isinstance(to_jid, JID) and to_jid.server == "g.us" else None
        for to in participants.children():
            enc = to.child("enc")
            if enc is None:
                continue
            user = self.get(to.attrs["jid"])
            key = (user.lid, conn.client_static or b"")
            try:
                if enc.attrs["type"] == "pkmsg":
                    pk = sl.parse_pkmsg(enc.content)
                    self.sessions[key] = sl.Session.respond(
                        user.identity, user.reg_id, pk, user.spk, user.opk if 1 in pk else None
                    )
                    inner = pk[4]
                else:
                    inner = enc.content
                msg = Message.FromString(sl.wa_unpad(self.sessions[key].decrypt_signal_message(inner)))
                if group is None:
                    self.server.record("decrypted", (to.attrs["jid"], node.attrs.get("id"), msg))
                else:
                    self._take_sender_key(group, user, key[1], msg)
            except Exception as e:
                log.exception("failed to decrypt for %s", to.attrs["jid"])
                self.server.record("decrypt-error", (to.attrs["jid"], repr(e)))
        skmsg = next((c for c in node.children() if c.tag == "enc" and c.attrs.get("type") == "skmsg"), None)
        if group is not None and skmsg is not None:
            self._decrypt_group_message(group, conn.client_static or b"", node.attrs.get("id"), skmsg.content)
        return False  # let the default handler ack it

    def _group_users(self, group: FakeGroup) -> list[FakeUser]:
        """The members and, once the phone is paired, the account's own phone."""
        own = self.by_lid.get(group.owner_lid)
        return group.members + ([own] if own is not None else [])

    def _take_sender_key(self, group: FakeGroup, user: FakeUser, client: bytes, msg: Message) -> None:
        skdm = msg.senderKeyDistributionMessage
        if not skdm.axolotlSenderKeyDistributionMessage:
            self.server.record("group-pairwise", (group.jid, user.lid, msg))
            return
        got = sl.SenderKey.from_distribution(skdm.axolotlSenderKeyDistributionMessage)
        key = (user.lid, group.jid.user, client)
        have = self.client_sender_keys.get(key)
        if have is None or have.key_id != got.key_id:
            self.client_sender_keys[key] = got
        self.server.record("sender-key", (group.jid, user.lid, skdm.groupID))

    def _decrypt_group_message(self, group: FakeGroup, client: bytes, mid: Any, data: bytes) -> None:
        for user in self._group_users(group):
            sk = self.client_sender_keys.get((user.lid, group.jid.user, client))
            if sk is None:
                self.server.record("group-decrypt-error", (group.jid, user.lid, "no sender key"))
                continue
            try:
                msg = Message.FromString(sl.wa_unpad(sk.decrypt(data)))
            except Exception as e:
                log.exception("failed to decrypt the group message for %s", user)
                self.server.record("group-decrypt-error", (group.jid, user.lid, repr(e)))
                continue
            self.server.record("group-decrypted", (group.jid, user.lid, mid, msg))

    def send_text(self, conn: WAConnection, sender: FakeUser, text: str, timeout: float = 10) -> str:
        """Deliver a Signal-encrypted text message from ``sender`` to the client; returns its id."""
        return self.send_message(conn, sender, Message(conversation=text), timeout)

    def send_message(
        self,
        conn: WAConnection,
        sender: FakeUser,
        msg: Message,
        timeout: float = 10,
        media_type: str | None = None,
    ) -> str:
        """Deliver a Signal-encrypted ``waE2E.Message`` from ``sender`` to the client; returns its id.

        ``media_type`` ("image", "document", ...) marks a media message (``type="media"`` and
        the ``mediatype`` of ``<enc>``). The first message to a client starts a session from
        the client's uploaded prekeys; waits up to ``timeout`` for that upload if it has not
        arrived yet.
        """
        typ, ct = self._pairwise_encrypt(conn, sender, msg.SerializeToString(), timeout)
        msg_id = "FAKE" + secrets.token_hex(8).upper()
        enc_attrs = {"v": "2", "type": typ}
        if media_type:
            enc_attrs["mediatype"] = media_type
        attrs: dict[str, Any] = {
            "id": msg_id,
            "t": str(int(time.time())),
            "type": "media" if media_type else "text",
            "notify": sender.push_name,
        }
        if sender.writes_as_lid:  # a LID-addressed chat: the number only if revealed
            attrs.update({"from": JID(sender.lid, "lid"), "addressing_mode": "lid"})
            if not sender.hide_pn:
                attrs["sender_pn"] = JID(sender.pn, "s.whatsapp.net")
        else:
            attrs.update({"from": JID(sender.pn, "s.whatsapp.net"), "sender_lid": JID(sender.lid, "lid")})
        conn.send_node(Node("message", attrs, [Node("enc", enc_attrs, ct)]))
        return msg_id

    def send_group_message(
        self, conn: WAConnection, group: FakeGroup, sender: FakeUser, msg: Message, timeout: float = 10
    ) -> str:
        """Deliver a group message from the member ``sender`` to the client; returns its id.

        Like whatsmeow, the sender's key distribution goes with every message: pairwise
        (Signal-encrypted ``senderKeyDistributionMessage``), then the ``skmsg`` itself.
        """
        if not group.has_member(sender):
            raise ValueError(f"{sender} is not a member of {group.jid}")
        own = self.own_sender_keys.get((sender.lid, group.jid.user))
        if own is None:
            own = self.own_sender_keys[(sender.lid, group.jid.user)] = sl.SenderKey.generate(SignKeyPair())
        skdm = Message(
            senderKeyDistributionMessage=SenderKeyDistributionMessage(
                groupID=str(group.jid), axolotlSenderKeyDistributionMessage=own.distribution()
            )
        )
        typ, ct = self._pairwise_encrypt(conn, sender, skdm.SerializeToString(), timeout)
        group_ct = own.encrypt(sl.wa_pad(msg.SerializeToString()))
        msg_id = "FAKE" + secrets.token_hex(8).upper()
        attrs: dict[str, Any] = {
            "from": group.jid,
            "participant": group.address(sender.pn, sender.lid),
            "addressing_mode": group.addressing_mode,
            "id": msg_id,
            "t": str(int(time.time())),
            "type": "text",
            "notify": sender.push_name,
        }
        if group.lid_mode:
            if not sender.hide_pn:
                attrs["participant_pn"] = JID(sender.pn, "s.whatsapp.net")
        else:
            attrs["participant_lid"] = JID(sender.lid, "lid")
        conn.send_node(
            Node(
                "message",
                attrs,
                [
                    Node("enc", {"v": "2", "type": typ}, ct),
                    Node("enc", {"v": "2", "type": "skmsg"}, group_ct),
                ],
            )
        )
        return msg_id

    def _pairwise_encrypt(
        self, conn: WAConnection, sender: FakeUser, plaintext: bytes, timeout: float
    ) -> tuple[str, bytes]:
        """Signal-encrypt (padded) ``plaintext`` from ``sender`` to the client: (type, ciphertext)."""
        client = conn.client_static or b""
        key = (sender.lid, client)
        sess = self.sessions.get(key)
        if sess is None:
            self.server.wait_for(
                lambda k, d: k == "prekeys" and d == client, timeout, what="prekey upload by the client"
            )
            ck = self.client_keys[client]
            opk_id, opk = ck["opks"].pop(0)
            bundle = {
                "identity": ck["identity"],
                "spk": ck["spk"],
                "spk_id": ck["spk_id"],
                "opk": opk,
                "opk_id": opk_id,
            }
            sess = self.sessions[key] = sl.Session.initiate(sender.identity, sender.reg_id, bundle)
        return sess.encrypt(sl.wa_pad(plaintext))
