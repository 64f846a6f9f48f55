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
from collections.abc import Sequence
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


def _invite_code() -> str:
    """A 22-character code like WhatsApp's group invite and add-request codes."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(22))


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
        self.refuses_group_adds = False  # privacy: adding it to a group gives 403 and an add request
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


# Per-participant result codes of group changes, as WhatsApp answers them
# (whatsmeow passes them on as GroupParticipant.Error)
PARTICIPANT_OK = 200
PARTICIPANT_ADD_REQUEST = 403  # their privacy settings: an invitation (<add_request code>) instead
PARTICIPANT_NOT_FOUND = 404  # not on WhatsApp, or (remove/promote/demote) not a member
PARTICIPANT_EXISTS = 409  # already a member
PARTICIPANT_GROUP_FULL = 500  # the group reached its size limit
PARTICIPANT_ACTIONS = ("add", "remove", "promote", "demote")
GROUP_SIZE_LIMIT = 1024  # WhatsApp's limit, the account included
# The error code of the message ack when a member who is not an admin writes into a group in
# which only admins may send ("announcement" mode): the server takes nothing, and whatsmeow's
# SendMessage returns ErrServerReturnedError, "server returned error 420"
ANNOUNCE_REFUSED = 420
ADD_REQUEST_TTL = 3 * 24 * 3600  # how long an add request's invitation code is valid


@dataclass
class FakeGroup:
    """A group: the account (its creator, super admin unless :attr:`account_admin` was
    switched off) and fake members. With :attr:`announce` only admins may send: a message
    of the account while it is not an admin is refused with :data:`ANNOUNCE_REFUSED`."""

    jid: JID
    subject: str
    owner_pn: str  # the account's phone number and LID
    owner_lid: str
    members: list[FakeUser]
    addressing_mode: str = "pn"  # "pn" or "lid": how participants and senders are addressed
    creation: int = field(default_factory=lambda: int(time.time()))
    admins: set[str] = field(default_factory=set)  # LIDs of members that are admins
    account_member: bool = True  # the account is in the group (False once it left or was removed)
    account_admin: bool = True  # the account may add, remove, promote, demote and get the invite link
    size_limit: int = GROUP_SIZE_LIMIT  # participants, the account included
    invite_code: str | None = None  # made on the first invite link request, replaced on revoke
    version: int = 1  # participant list version, raised by every membership change (p_v_id)
    announce: bool = False  # only admins may send (group info shows <announcement/>)

    def __post_init__(self) -> None:
        if self.addressing_mode not in ("pn", "lid"):
            raise ValueError(f"addressing_mode is 'pn' or 'lid', not {self.addressing_mode!r}")

    @property
    def lid_mode(self) -> bool:
        return self.addressing_mode == "lid"

    @property
    def size(self) -> int:
        """Participants, the account included while it is a member."""
        return len(self.members) + (1 if self.account_member else 0)

    def address(self, pn: str, lid: str) -> JID:
        """How the group names a user: by LID in a LID group, else by phone number."""
        return JID(lid, "lid") if self.lid_mode else JID(pn, "s.whatsapp.net")

    def has_member(self, user: FakeUser) -> bool:
        return any(m is user for m in self.members)

    def is_account(self, jid: JID) -> bool:
        return jid.user == (self.owner_lid if jid.server == "lid" else self.owner_pn)

    def may_send(self, user: FakeUser | None) -> bool:
        """Whether a member (None: the account) may write into the group: in an announcement
        group only admins may."""
        if not self.announce:
            return True
        return self.account_admin if user is None else user.lid in self.admins

    def node(self, extra: Sequence[Node] = ()) -> Node:
        """The ``<group>`` of a group info answer, as whatsmeow's parseGroupNode reads it;
        ``extra``: more ``<participant>`` nodes (refused ones in a create answer)."""
        owner = self.address(self.owner_pn, self.owner_lid)
        parts = []
        if self.account_member:
            typ = "superadmin" if self.account_admin else None
            parts.append(self._participant(self.owner_pn, self.owner_lid, typ, False))
        for m in self.members:
            parts.append(self.participant_node(m))
        settings = [Node("announcement", {})] if self.announce else []
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
                "p_v_id": str(self.version),
            },
            settings + parts + list(extra),
        )

    def participant_node(self, user: FakeUser, with_type: bool = True) -> Node:
        """``<participant>`` for a member (``type="admin"`` for an admin unless not ``with_type``)."""
        typ = "admin" if with_type and user.lid in self.admins else None
        return self._participant(user.pn, user.lid, typ, user.hide_pn)

    def account_node(self) -> Node:
        return self._participant(self.owner_pn, self.owner_lid, None, False)

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
        self.created_addressing_mode = "pn"  # how groups the client creates are addressed
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
        asked = query.child("contact") if query else None
        by_lid = asked is not None and asked.attrs.get("addressing_mode") == "lid"
        users = us.child("list")
        out = []
        for u in users.children() if users else []:
            jid = u.attrs.get("jid")
            contact = u.child("contact")
            if not isinstance(jid, JID) and contact is not None:  # lookup by phone number
                out.append(self._contact_user(contact, wanted, by_lid))
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

    def _contact_user(self, contact: Node, wanted: list[str], by_lid: bool = False) -> Node:
        """The answer to one ``<user><contact>+PHONE@c.us</contact></user>`` (IsOnWhatsApp):
        ``type="in"`` unless the number was marked unregistered (see :meth:`is_registered`);
        like the rest of the fake world, a number nobody mentioned before is somebody's.

        Asked with ``<contact addressing_mode="lid"/>`` (whatsmeow's IsOnWhatsApp), the user is
        named by LID with its number, ``<user jid=LID pn_jid=PN>``, and a number without an
        account by ``pn_jid`` alone, the two forms whatsmeow's parser reads (it stores the
        pair in its LID store); else by number, ``<user jid=PN>``."""
        query = contact.content.decode() if isinstance(contact.content, bytes) else str(contact.content)
        digits = query.split("@", 1)[0].lstrip("+")
        with self._lock:
            fu = self.get(JID(digits, "s.whatsapp.net")) if self.is_registered(digits) else None
        kids = [Node("contact", {"type": "in" if fu else "out"}, query.encode())]
        if fu is not None and "lid" in wanted:
            kids.append(Node("lid", {"val": JID(fu.lid, "lid")}))
        pn = JID(digits, "s.whatsapp.net")
        if not by_lid:
            return Node("user", {"jid": pn}, kids)
        if fu is None:
            return Node("user", {"pn_jid": pn}, kids)
        return Node("user", {"jid": JID(fu.lid, "lid"), "pn_jid": pn}, kids)

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
        """Answer a ``w:g2`` iq: group info (``<query>`` to the group), the joined groups
        (``<participating>``), ``<create>`` and ``<leave>`` (to ``@g.us``), participant changes
        (``<add|remove|promote|demote>``) and the invite link (``<invite/>``) of a group.

        A group iq is refused as a whole (``<error code text>``) with 404 item-not-found for
        an unknown group, 403 forbidden once the account is not a member (whatsmeow: "you're
        not participating in that group") and, for changes and the invite link, 401
        not-authorized when the account is not an admin."""
        kids = iq.children()
        op, typ, to = (kids[0] if kids else None), iq.attrs.get("type"), iq.attrs.get("to")
        if op is None:
            return None
        if op.tag == "participating":
            with self._lock:
                groups = [g for g in self.groups.values() if g.account_member]
            self.server.record("group-list", len(groups))
            return [Node("groups", {}, [g.node() for g in groups])]
        if op.tag == "create" and typ == "set":
            return self._create_iq(conn, op)
        if op.tag == "leave" and typ == "set":
            return self._leave_iq(conn, op)
        if not isinstance(to, JID) or to.server != "g.us" or not to.user:
            return None
        if op.tag == "query":
            group = self._group_for(to, op.tag, need_admin=False)
            self.server.record("group-info", to)
            return [group.node()]
        if op.tag in PARTICIPANT_ACTIONS and typ == "set":
            return self._participants_iq(conn, self._group_for(to, op.tag, need_admin=True), op)
        if op.tag == "invite" and "code" not in op.attrs:
            return self._invite_iq(self._group_for(to, op.tag, need_admin=True), revoke=typ == "set")
        return None

    def _group_for(self, jid: JID, request: str, need_admin: bool) -> FakeGroup:
        """The group an iq is about, or the whole-iq refusal (recorded as ``group-refused``)."""
        with self._lock:
            group = self.groups.get(jid.user)
        if group is None:
            code, text = 404, "item-not-found"
        elif not group.account_member:
            code, text = 403, "forbidden"
        elif need_admin and not group.account_admin:
            code, text = 401, "not-authorized"
        else:
            return group
        self.server.record("group-refused", (jid, request, code))
        raise IqError(code, text)

    def _resolve(self, p: Node) -> FakeUser | None:
        """The user a ``<participant jid=… [phone_number=…]>`` names; None when its number is
        not on WhatsApp (see :meth:`is_registered`). Known users are not created again."""
        jid, pn = p.attrs.get("jid"), p.attrs.get("phone_number")
        if not isinstance(jid, JID):
            return None
        with self._lock:
            if jid.server == "lid":
                user = self.by_lid.get(jid.user)
                if user is None and isinstance(pn, JID):
                    user = self.by_pn.get(pn.user) or self.add(pn.user, jid.user)
                user = user or self.get(jid)
            elif not self.is_registered(jid.user):
                return None
            else:
                user = self.get(jid)
            return user if self.is_registered(user.pn) else None

    def _refused(self, jid: Any, code: int) -> Node:
        """A ``<participant jid error=CODE>`` result; a 403 carries the add request."""
        kids = []
        if code == PARTICIPANT_ADD_REQUEST:
            expiration = int(time.time()) + ADD_REQUEST_TTL
            kids.append(Node("add_request", {"code": _invite_code(), "expiration": str(expiration)}))
        return Node("participant", {"jid": jid, "error": str(code)}, kids or None)

    def _add_one(self, group: FakeGroup, p: Node) -> tuple[int, Node]:
        """Add one requested participant: (result code, its ``<participant>`` answer)."""
        user = self._resolve(p)
        if user is None:
            return PARTICIPANT_NOT_FOUND, self._refused(p.attrs.get("jid"), PARTICIPANT_NOT_FOUND)
        if group.has_member(user) or (user.lid == group.owner_lid and group.account_member):
            return PARTICIPANT_EXISTS, self._refused(p.attrs.get("jid"), PARTICIPANT_EXISTS)
        if user.refuses_group_adds:
            return PARTICIPANT_ADD_REQUEST, self._refused(p.attrs.get("jid"), PARTICIPANT_ADD_REQUEST)
        if group.size >= group.size_limit:
            return PARTICIPANT_GROUP_FULL, self._refused(p.attrs.get("jid"), PARTICIPANT_GROUP_FULL)
        if user.lid == group.owner_lid:
            group.account_member = True
            return PARTICIPANT_OK, group.account_node()
        group.members.append(user)
        return PARTICIPANT_OK, group.participant_node(user, with_type=False)

    def _create_iq(self, conn: WAConnection, op: Node) -> list[Node]:
        """``<create subject [key]><participant jid/>…</create>``: a new group of the account
        (creator, super admin) with the requested users that can be added; the others are
        listed in the answer with their error code (404: not on WhatsApp, 403 with an add
        request: their privacy settings, 500: beyond the size limit)."""
        dev = self.server.paired_devices.get(conn.client_static or b"")
        if dev is None:
            raise IqError(401, "not-authorized")
        subject = str(op.attrs.get("subject", ""))
        group = self.create_group(subject, dev["jid"].user, dev["lid"].user, [], self.created_addressing_mode)
        refused: list[Node] = []
        outcome: list[tuple[Any, int]] = []
        with self._lock:
            for p in op.children():
                if p.tag != "participant" or not isinstance(p.attrs.get("jid"), JID):
                    continue
                if group.is_account(p.attrs["jid"]):
                    continue  # the server adds the creator itself
                code, node = self._add_one(group, p)
                if code not in (PARTICIPANT_OK, PARTICIPANT_EXISTS):
                    refused.append(node)
                outcome.append((p.attrs["jid"], code))
        self.server.record(
            "group-create",
            (group.jid, subject, [m.lid for m in group.members], [(j, c) for j, c in outcome if c != 200]),
        )
        return [group.node(extra=refused)]

    def _participants_iq(self, conn: WAConnection, group: FakeGroup, op: Node) -> list[Node]:
        """``<add|remove|promote|demote><participant jid/>…</…>`` from an admin account:
        per-participant results (see :data:`PARTICIPANT_OK` and the other codes); what was
        done is also announced to the client as a ``w:gp2`` notification, as WhatsApp
        tells every device of the group."""
        action = op.tag
        answer: list[Node] = []
        done: list[Node] = []
        outcome: list[tuple[Any, int]] = []
        with self._lock:
            for p in op.children():
                jid = p.attrs.get("jid")
                if p.tag != "participant" or not isinstance(jid, JID):
                    continue
                if action == "add":
                    code, node = self._add_one(group, p)
                else:
                    code, node = self._change_one(group, action, jid)
                answer.append(node)
                outcome.append((jid, code))
                if code == PARTICIPANT_OK:
                    done.append(node)
            if done:
                group.version += 1
        self.server.record("group-participants", (group.jid, action, outcome))
        if done:
            conn.after_reply.append(self._change_notification(group, action, None, done))
        return [Node(action, {}, answer)]

    def _change_one(self, group: FakeGroup, action: str, jid: JID) -> tuple[int, Node]:
        """Remove, promote or demote one member (or the account itself); 404 for a non-member."""
        if group.is_account(jid):
            if action == "remove":
                group.account_member = False
            else:
                group.account_admin = action == "promote"
            return PARTICIPANT_OK, group.account_node()
        with self._lock:
            user = (self.by_lid if jid.server == "lid" else self.by_pn).get(jid.user)
        if user is None or not group.has_member(user):
            return PARTICIPANT_NOT_FOUND, self._refused(jid, PARTICIPANT_NOT_FOUND)
        self._apply(group, action, user)
        return PARTICIPANT_OK, group.participant_node(user, with_type=False)

    def _apply(self, group: FakeGroup, action: str, user: FakeUser) -> None:
        """Change the group's state for one user (a member, or the account's own user)."""
        if user.lid == group.owner_lid:
            if action in ("add", "remove"):
                group.account_member = action == "add"
            else:
                group.account_admin = action == "promote"
        elif action == "add":
            if not group.has_member(user):
                group.members.append(user)
        elif action == "remove":
            group.members = [m for m in group.members if m is not user]
            group.admins.discard(user.lid)
        elif action == "promote":
            group.admins.add(user.lid)
        else:
            group.admins.discard(user.lid)

    def _leave_iq(self, conn: WAConnection, op: Node) -> list[Node]:
        """``<leave><group id=GROUP/></leave>``: the account leaves the group (it is no longer
        listed in ``<participating>``; group info is refused with 403)."""
        answer = []
        for g in op.children():
            gid = g.attrs.get("id")
            jid = gid if isinstance(gid, JID) else JID.parse(str(gid))
            group = self._group_for(jid, "leave", need_admin=False)
            with self._lock:
                group.account_member = False
                group.version += 1
            self.server.record("group-leave", group.jid)
            conn.after_reply.append(self._change_notification(group, "remove", None, [group.account_node()]))
            answer.append(Node("group", {"id": group.jid}))
        return [Node("leave", {}, answer)]

    def _invite_iq(self, group: FakeGroup, revoke: bool) -> list[Node]:
        """``<invite/>``: the group's invite code (the same until revoked); ``type="set"``
        revokes it and answers a new one."""
        with self._lock:
            if revoke or group.invite_code is None:
                group.invite_code = _invite_code()
            code = group.invite_code
        self.server.record("group-invite", (group.jid, code, revoke))
        return [Node("invite", {"code": code})]

    def change_members(
        self,
        conn: WAConnection,
        group: FakeGroup,
        action: str,
        users: Sequence[FakeUser],
        actor: FakeUser | None = None,
    ) -> str:
        """Somebody else changes the group: ``actor`` (a member; None: the account on its
        phone) adds, removes, promotes or demotes ``users``; a member removing itself leaves.
        The group's state changes and the client gets the ``w:gp2`` notification; returns
        its id. ``users`` may include the account's own user (its phone number)."""
        if action not in PARTICIPANT_ACTIONS:
            raise ValueError(f"action is one of {', '.join(PARTICIPANT_ACTIONS)}, not {action!r}")
        with self._lock:
            if actor is not None:
                if not group.has_member(actor):
                    raise ValueError(f"{actor} is not a member of {group.jid}")
                leaving = action == "remove" and list(users) == [actor]
                if not leaving and actor.lid not in group.admins:
                    raise ValueError(f"{actor} is not an admin of {group.jid}")
            for u in users:
                is_in = group.account_member if u.lid == group.owner_lid else group.has_member(u)
                if is_in == (action == "add"):
                    state = "already" if is_in else "not"
                    raise ValueError(f"{u} is {state} a member of {group.jid}: cannot {action}")
            # named in the group's addressing, without their role
            nodes = [
                group.account_node() if u.lid == group.owner_lid else group.participant_node(u, False)
                for u in users
            ]
            for u in users:
                self._apply(group, action, u)
            group.version += 1
        notification = self._change_notification(group, action, actor, nodes)
        conn.send_node(notification)
        return str(notification.attrs["id"])

    def _change_notification(
        self, group: FakeGroup, action: str, actor: FakeUser | None, participants: list[Node]
    ) -> Node:
        """``<notification type="w:gp2" from=GROUP participant=ACTOR><ACTION><participant…/>``
        as whatsmeow's parseGroupChange reads it (GroupInfo Join/Leave/Promote/Demote);
        recorded as ``group-notification``."""
        nid = self.server.next_id()
        if actor is None:  # the account itself, from its phone or this client
            pn, lid, hide, notify = group.owner_pn, group.owner_lid, False, None
        else:
            pn, lid, hide, notify = actor.pn, actor.lid, actor.hide_pn, actor.push_name
        attrs: dict[str, Any] = {
            "from": group.jid,
            "type": "w:gp2",
            "id": nid,
            "t": str(int(time.time())),
            "participant": group.address(pn, lid),
            "addressing_mode": group.addressing_mode,
        }
        if group.lid_mode and not hide:
            attrs["participant_pn"] = JID(pn, "s.whatsapp.net")
        if notify:
            attrs["notify"] = notify
        change = Node(action, {"prev_v_id": str(group.version - 1), "v_id": str(group.version)}, participants)
        named = [p.attrs["jid"] for p in participants]
        self.server.record("group-notification", (group.jid, action, lid, named, nid))
        return Node("notification", attrs, [change])

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
        if node.tag != "message":
            return False
        to_jid = node.attrs.get("to")
        group = self.groups.get(to_jid.user) if isinstance(to_jid, JID) and to_jid.server == "g.us" else None
        if group is not None and not group.may_send(None):
            # only admins may send: WhatsApp refuses the message in its ack and delivers nothing
            self.server.record("group-send-refused", (group.jid, node.attrs.get("id"), ANNOUNCE_REFUSED))
            self.server.ack(conn, node, str(ANNOUNCE_REFUSED))
            return True
        participants = node.child("participants")
        if participants is None:
            return False
        # WhatsApp delivers a message id once: whatsmeow resends the same frame (same id)
        # when the connection dropped before the ack, and the recipient gets one copy
        key_id = (conn.client_static or b"", node.attrs.get("id"))
        if key_id in self.delivered_ids:
            self.server.record("duplicate-id", node.attrs.get("id"))
            return False  # acked, not delivered again
        self.delivered_ids.add(key_id)
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
        if not group.may_send(sender):
            raise ValueError(f"{sender} is not an admin of {group.jid}, where only admins may send")
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
