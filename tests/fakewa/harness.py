"""A friendly front end to the fake WhatsApp Web server for end-to-end tests.

:class:`FakeWhatsApp` bundles one :class:`~.server.FakeWAServer` (a fresh port on
127.0.0.1), the account's :class:`~.phone.FakePhone` and a :class:`~.phone.Directory` of fake
contacts. The client under test reaches it as an HTTP CONNECT proxy (:attr:`FakeWhatsApp.proxy_url`).

Two things must be in place for a real neonize client to accept the server:

* the process was started with ``SSL_CERT_FILE`` pointing at the test CA (the Go runtime
  only sees the environment the process started with; ``tests/conftest.py`` takes care of
  that for the pytest process, :meth:`FakeWhatsApp.child_env` for child processes);
* whatsmeow's pinned Noise root key was swapped for the fake root: :func:`install_process_root`
  in this process, ``inject/sitecustomize.py`` (via ``child_env``) in child processes.

Media (images, documents, ...) goes through the fake media host, :attr:`FakeWhatsApp.media`:
:meth:`FakePeer.send_media` uploads and announces an attachment to the client,
:meth:`FakeWhatsApp.wait_media_from_client` downloads, checks and decrypts what the client sent.

Groups: :meth:`FakeWhatsApp.create_group` makes a group of the account with fake peers
(PN- or LID-addressed); members decrypt the client's group messages
(:meth:`FakeWhatsApp.wait_group_text_from_client`) and write into it
(:meth:`FakePeer.send_group_text`). :meth:`FakePeer.write_from_lid` and
:meth:`FakePeer.reveal_phone_number` make a contact known by its LID only, then by number.
Group media sent by the client is fetched and decrypted per member
(:meth:`FakeWhatsApp.wait_group_media_from_client`).
The client's own group management (create, add/remove/promote/demote, leave, invite link)
changes the fake groups; refusals are switched with :meth:`FakeWhatsApp.set_group_admin`,
the group's ``size_limit`` and :meth:`FakePeer.refuse_group_adds`; in an announcement group
(:meth:`FakeWhatsApp.set_group_announce`) a message of an account that is not an admin is
refused. Changes made by others
reach the client as ``w:gp2`` notifications: :meth:`FakeWhatsApp.group_change`,
:meth:`FakePeer.leave_group`.

Every ``wait_*`` method raises :class:`TimeoutError` naming what it waited for and the last
server events.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContextInfo, ExtendedTextMessage, Message

from .codec import JID, Node
from .inject.wa_root_patch import patch_wa_cert_root
from .keys import SignKeyPair, TestPKI
from .media import (
    KINDS,
    MMS_TYPE,
    Blob,
    MediaError,
    MediaHost,
    build_media_message,
    decrypt_media,
    encrypt_media,
    media_of,
)
from .phone import (
    GROUP_SIZE_LIMIT,
    PARTICIPANT_ACTIONS,
    Directory,
    FakeGroup,
    FakePhone,
    FakeUser,
    message_text,
    qr_ref,
)
from .server import Event, FakeWAServer, WAConnection
from .tokens import Tokens

INJECT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inject")
ROOT_PUB_ENV = "FAKEWA_ROOT_PUB"
DEFAULT_PHONE = "15550001111"
DEFAULT_PHONE_LID = "99990001111"

_process_lock = threading.Lock()
_process_root: SignKeyPair | None = None
_process_tokens: Tokens | None = None


def install_process_root() -> SignKeyPair:
    """The fake Noise root key of this process, patched into the loaded neonize library.

    Created and patched on first call (loading neonize if needed); later calls return the
    same key, since the pinned key can only be swapped once per process.
    """
    global _process_root
    with _process_lock:
        if _process_root is None:
            import neonize.client  # noqa: F401  (loads the Go library)

            root = SignKeyPair()
            patch_wa_cert_root(root.pub)
            _process_root = root
        return _process_root


def library_tokens() -> Tokens:
    """whatsmeow's token tables, read once from the neonize library loaded in this process."""
    global _process_tokens
    with _process_lock:
        if _process_tokens is None:
            _process_tokens = Tokens.from_library()
        return _process_tokens


def _group_of(data: Any) -> JID | None:
    """The group JID a ``group-*`` event is about (its data, or the first item of it)."""
    first = data[0] if isinstance(data, tuple) and data else data
    return first if isinstance(first, JID) else None


@dataclass(frozen=True)
class ReceivedMedia:
    """An attachment the client sent to a fake peer, downloaded and decrypted by the peer."""

    message_id: str
    kind: str  # "image", "video", "audio", "document" or "sticker"
    fields: Any  # the ImageMessage, DocumentMessage, ... of the message
    plaintext: bytes
    message: Message  # the whole decrypted waE2E.Message
    blob: Blob  # what the client uploaded

    @property
    def mimetype(self) -> str:
        return str(self.fields.mimetype)

    @property
    def caption(self) -> str:
        return str(getattr(self.fields, "caption", ""))

    @property
    def file_name(self) -> str:
        return str(getattr(self.fields, "fileName", ""))


@dataclass(frozen=True)
class SentMedia:
    """An attachment a fake peer stored on the media host and announced to the client."""

    message_id: str
    kind: str
    message: Message  # the waE2E.Message the client received
    blob: Blob

    @property
    def fields(self) -> Any:
        """The ImageMessage, DocumentMessage, ... inside :attr:`message`."""
        found = media_of(self.message)
        assert found is not None
        return found[1]


class FakePeer:
    """A fake contact of the account (one phone number, one device)."""

    def __init__(self, wa: FakeWhatsApp, user: FakeUser) -> None:
        self._wa = wa
        self.user = user

    def __repr__(self) -> str:
        return f"<FakePeer {self.phone} lid={self.lid}>"

    @property
    def phone(self) -> str:
        return self.user.pn

    @property
    def lid(self) -> str:
        return self.user.lid

    def send_text(self, text: str, timeout: float = 10) -> str:
        """Deliver a Signal-encrypted text message to the logged-in client; returns its message id."""
        conn = self._wa.wait_connected(timeout)
        return self._wa.directory.send_text(conn, self.user, text, timeout)

    def send_group_text(
        self, group_jid: str | JID, text: str, timeout: float = 10, *, mentions: Sequence[str] = ()
    ) -> str:
        """Write ``text`` into the group (sender-key encrypted, with this peer's key
        distribution); returns the message id. The peer must be a member. ``mentions``
        (JIDs, e.g. ``"<lid>@lid"``) make it an extended text that mentions them, as
        WhatsApp's clients send a text with @-mentions."""
        conn = self._wa.wait_connected(timeout)
        group = self._wa.directory.group(group_jid)
        message = (
            Message(
                extendedTextMessage=ExtendedTextMessage(
                    text=text, contextInfo=ContextInfo(mentionedJID=list(mentions))
                )
            )
            if mentions
            else Message(conversation=text)
        )
        return self._wa.directory.send_group_message(conn, group, self.user, message, timeout)

    def write_from_lid(self, hide_phone: bool = True) -> None:
        """Send the next direct messages from this peer's LID (``from=…@lid``); with
        ``hide_phone`` they carry no ``sender_pn`` and LID groups list the peer without
        ``phone_number``, so the client knows the LID only."""
        self.user.writes_as_lid = True
        self.user.hide_pn = hide_phone

    def reveal_phone_number(self) -> None:
        """From now on, messages from the LID carry the phone number (``sender_pn`` in direct
        messages, ``participant_pn`` in LID groups, ``phone_number`` in group info)."""
        self.user.hide_pn = False

    def leave_group(self, group_jid: str | JID, timeout: float = 10) -> str:
        """The peer leaves the group: the client gets a ``w:gp2`` ``<remove>`` notification
        from the peer naming the peer (GroupInfo with Leave); returns the notification id."""
        return self._wa.group_change(group_jid, "remove", [self.phone], self.phone, timeout)

    def refuse_group_adds(self, refuse: bool = True) -> None:
        """The peer's privacy settings: adding it to a group (the client's create or add)
        gives error 403 with an ``<add_request code expiration>`` instead."""
        self.user.refuses_group_adds = refuse

    def group_texts_received(self, group_jid: str | JID) -> list[str]:
        """See :meth:`FakeWhatsApp.group_texts_received`."""
        return self._wa.group_texts_received(group_jid, self.phone)

    def send_media(
        self,
        kind: str,
        data: bytes,
        mimetype: str | None = None,
        *,
        caption: str | None = None,
        filename: str | None = None,
        seconds: int | None = None,
        ptt: bool = False,
        width: int | None = None,
        height: int | None = None,
        thumbnail: bytes | None = None,
        timeout: float = 10,
        **fields: Any,
    ) -> SentMedia:
        """Send the client an attachment: ``data`` is encrypted with a fresh media key, stored
        on the media host and announced in a Signal-encrypted message.

        ``kind`` is "image", "video", "audio", "document" or "sticker"; the keyword arguments
        fill the message as :func:`~.media.build_media_message` describes (``mimetype``
        defaults per kind). The client fetches the blob with neonize's ``download_any``.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown media kind {kind!r}; one of {', '.join(KINDS)}")
        if isinstance(data, str):
            raise TypeError("send_media takes the file's bytes, not a str")
        conn = self._wa.wait_connected(timeout)
        enc = encrypt_media(bytes(data), kind)
        blob = self._wa.media.store(enc.body, MMS_TYPE[kind], uploaded_by=f"peer {self.phone}")
        msg = build_media_message(
            enc,
            blob,
            mimetype,
            caption=caption,
            filename=filename,
            seconds=seconds,
            ptt=ptt,
            width=width,
            height=height,
            thumbnail=thumbnail,
            **fields,
        )
        media_type = "sticker" if kind == "sticker" else MMS_TYPE[kind]
        mid = self._wa.directory.send_message(conn, self.user, msg, timeout, media_type=media_type)
        return SentMedia(mid, kind, msg, blob)

    def wait_media(self, timeout: float = 10, kind: str | None = None) -> ReceivedMedia:
        """See :meth:`FakeWhatsApp.wait_media_from_client`."""
        return self._wa.wait_media_from_client(self.phone, timeout, kind)

    def media_received(self) -> list[ReceivedMedia]:
        """See :meth:`FakeWhatsApp.media_received`."""
        return self._wa.media_received(self.phone)

    def texts_received(self) -> list[str]:
        """Every text this peer decrypted from the client so far, in order."""
        return self._wa.texts_received(self.phone)

    def wait_text(
        self, timeout: float = 10, predicate: Callable[[str], bool] | None = None
    ) -> tuple[str, str]:
        """See :meth:`FakeWhatsApp.wait_text_from_client`."""
        return self._wa.wait_text_from_client(self.phone, timeout, predicate)


class FakeWhatsApp:
    """One fake WhatsApp Web server with its account phone and fake contacts.

    ``root`` must be the key patched into the client's library (:func:`install_process_root`
    in this process; child processes get it through :meth:`child_env`).
    """

    def __init__(
        self,
        pki: TestPKI,
        root: SignKeyPair,
        tokens: Tokens | None = None,
        phone: str = DEFAULT_PHONE,
        phone_lid: str = DEFAULT_PHONE_LID,
    ) -> None:
        self.pki = pki
        self.root = root
        self.server = FakeWAServer(pki, tokens or library_tokens(), root)
        self.directory = Directory(self.server)
        self.phone = FakePhone(phone, phone_lid)
        self._peers: dict[str, FakePeer] = {}
        self._peers_lock = threading.Lock()
        self._returned: dict[str, set[str]] = {}  # peer phone -> message ids already returned by a wait

    def __enter__(self) -> FakeWhatsApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FakeWhatsApp {self.proxy_url} connections={self.connection_count}>"

    # -- addressing --
    @property
    def port(self) -> int:
        return self.server.port

    @property
    def proxy_url(self) -> str:
        """``http://127.0.0.1:PORT``: the HTTP CONNECT proxy through which the client reaches the server."""
        return self.server.proxy_url

    def child_env(self, **extra: str) -> dict[str, str]:
        """A complete environment for a child process that runs a neonize client against this server.

        A copy of ``os.environ`` plus ``SSL_CERT_FILE`` (the test CA), ``FAKEWA_ROOT_PUB`` and
        ``PYTHONPATH`` starting with ``inject/`` (its ``sitecustomize`` patches the root key at
        start-up), then ``extra``. The proxy is not set: pass ``HTTPS_PROXY=fake.proxy_url`` or
        configure the application's own proxy setting.
        """
        env = dict(os.environ)
        env["SSL_CERT_FILE"] = self.pki.ca_file
        env[ROOT_PUB_ENV] = self.root.pub.hex()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (INJECT_DIR, env.get("PYTHONPATH")) if p)
        env.update(extra)
        return env

    # -- QR codes and pairing --
    @property
    def qr_refs(self) -> list[str]:
        """The refs of the latest ``<pair-device>``; the client shows the first one."""
        return list(self.server.qr_refs)

    @property
    def sent_qr_refs(self) -> list[str]:
        """Every ref this server has sent so far."""
        return [ref for kind, refs in self.server.events if kind == "pair-device" for ref in refs]

    def is_own_qr(self, qr: str) -> bool:
        """Whether ``qr`` (the string encoded in the QR code) carries a ref sent by this server."""
        return qr_ref(qr) in self.sent_qr_refs

    def wait_qr_ref(self, timeout: float = 10) -> str:
        """Wait until the server asked a client to show QR codes; returns the ref shown first."""
        self.wait_for(lambda k, d: k == "pair-device", timeout, what="<pair-device> sent to a client")
        return self.qr_refs[0]

    def rotate_qr(self, timeout: float = 10) -> list[str]:
        """Send fresh refs to the unpaired client; it shows a QR code with the first one at once."""
        conn = self._wait_connection(
            lambda c: not c.logged_in and self._is_pairing(c), timeout, "a live unpaired connection"
        )
        refs = [base64.b64encode(secrets.token_bytes(12)).decode() for _ in range(6)]
        self.server.send_pair_device(conn, refs)
        return refs

    def scan(self, qr: str) -> None:
        """The account's phone scans ``qr`` (the exact string the application shows) and links
        that client; wait for :meth:`wait_connected` (or the client's Connected event) after it."""
        if not self.is_own_qr(qr):
            raise ValueError(f"QR ref {qr_ref(qr)!r} was not sent by this server ({self.proxy_url}): {qr!r}")
        self.phone.scan(self.server, qr, directory=self.directory)

    # -- contacts and messages --
    def peer(self, phone: str) -> FakePeer:
        """The fake contact with this phone number (digits only), created on first use."""
        with self._peers_lock:
            if phone not in self._peers:
                self._peers[phone] = FakePeer(self, self.directory.get(JID(phone, "s.whatsapp.net")))
            return self._peers[phone]

    # -- groups --
    def create_group(
        self,
        name: str,
        peers: list[str],
        addressing_mode: str = "pn",
        admins: Sequence[str] = (),
        size_limit: int = GROUP_SIZE_LIMIT,
        announce: bool = False,
    ) -> str:
        """A group of the account (creator, super admin) with these peers (phone numbers);
        returns its JID (``120363…@g.us``). ``addressing_mode="lid"`` makes a LID group: the
        participants are listed by LID and the client writes as its own LID. ``admins``: the
        peers (phone numbers, among ``peers``) that are admins. ``size_limit``: participants,
        the account included, beyond which adding gives error 500 (WhatsApp: 1024).
        ``announce``: only admins may send (see :meth:`set_group_announce`)."""
        members = [self.peer(p).user for p in peers]
        if not set(admins) <= set(peers):
            raise ValueError(f"admins {sorted(set(admins) - set(peers))} are not among the peers")
        g = self.directory.create_group(name, self.phone.phone, self.phone.lid, members, addressing_mode)
        g.admins = {self.peer(p).lid for p in admins}
        g.size_limit = size_limit
        g.announce = announce
        return str(g.jid)

    def group(self, group_jid: str | JID) -> FakeGroup:
        """The fake group (subject, members, addressing mode, ``admins`` as member LIDs,
        ``account_member``, ``account_admin``, ``size_limit``, ``invite_code``)."""
        return self.directory.group(group_jid)

    def group_members(self, group_jid: str | JID) -> set[str]:
        """The phone numbers of the group's members (the account's while it is in it)."""
        g = self.group(group_jid)
        return {m.pn for m in g.members} | ({g.owner_pn} if g.account_member else set())

    def group_admins(self, group_jid: str | JID) -> set[str]:
        """The phone numbers of the group's admins (the account's while it is an admin member)."""
        g = self.group(group_jid)
        own = {g.owner_pn} if g.account_member and g.account_admin else set()
        return {m.pn for m in g.members if m.lid in g.admins} | own

    def set_group_admin(self, group_jid: str | JID, admin: bool = True) -> None:
        """Whether the account is an admin of the group. Not an admin, the client's
        add/remove/promote/demote and invite link requests are refused as a whole with
        ``401 not-authorized``, and in an announcement group its messages with error 420.
        The client is not notified (see :meth:`group_change`)."""
        self.group(group_jid).account_admin = admin

    def set_group_announce(self, group_jid: str | JID, announce: bool = True) -> None:
        """Whether only admins may send in the group ("announcement" mode; the group info
        shows ``<announcement/>``, neonize's ``GroupAnnounce.IsAnnounce``). A message the
        client sends there while the account is not an admin is refused in the server's ack
        with error 420 (whatsmeow: "server returned error 420") and reaches nobody (event
        ``group-send-refused``); :meth:`FakePeer.send_group_text` of a member that is not an
        admin raises ValueError. The client is not notified: it sees the setting in the next
        group info it asks for."""
        self.group(group_jid).announce = announce

    def group_change(
        self,
        group_jid: str | JID,
        action: str,
        phones: Sequence[str],
        actor_phone: str | None = None,
        timeout: float = 10,
    ) -> str:
        """Somebody changes the group's members and the client is told with a ``w:gp2``
        notification (neonize: GroupInfoEv with Join/Leave/Promote/Demote); returns its id.

        ``action`` is "add", "remove", "promote" or "demote"; ``phones`` are peers' numbers
        (the account's own number changes the account: removed, promoted, demoted).
        ``actor_phone`` must be an admin member, except when removing only itself (leaving);
        None is the account itself, on its phone. Raises ValueError for a change that cannot
        be made (adding a member, removing a non-member, ...)."""
        if action not in PARTICIPANT_ACTIONS:
            raise ValueError(f"action is one of {', '.join(PARTICIPANT_ACTIONS)}, not {action!r}")
        group = self.group(group_jid)
        users = [self.peer(p).user for p in phones]
        actor = self.peer(actor_phone).user if actor_phone is not None else None
        conn = self.wait_connected(timeout)
        return self.directory.change_members(conn, group, action, users, actor)

    def group_events(self, group_jid: str | JID, kind: str | None = None) -> list[Any]:
        """The data of the recorded ``group-*`` events about this group (of ``kind``), in order."""
        jid = self.group(group_jid).jid
        with self.server.cond:
            events = list(self.server.events)
        return [
            d
            for k, d in events
            if k.startswith("group-") and (kind is None or k == kind) and _group_of(d) == jid
        ]

    def wait_ack(self, node_id: str, timeout: float = 10) -> Node:
        """Wait until the client acked the node (a notification) with this id; returns the ``<ack>``."""
        _, ack = self.wait_for(
            lambda k, d: k == "node" and d.tag == "ack" and d.attrs.get("id") == node_id,
            timeout,
            what=f"<ack> of {node_id} from the client",
        )
        return ack

    def _group_decrypted(self, group_jid: str | JID, peer_phone: str) -> list[tuple[str, Message]]:
        group, user = self.group(group_jid), self.peer(peer_phone).user
        with self.server.cond:
            got = [d for k, d in self.server.events if k == "group-decrypted"]
        return [(mid, msg) for jid, lid, mid, msg in got if jid == group.jid and lid == user.lid]

    def group_messages_received(self, group_jid: str | JID, peer_phone: str) -> list[tuple[str, Message]]:
        """Every message (id, decrypted waE2E.Message) the member decrypted from the client's
        messages to the group, in order: to look at more than the text (mentions, context)."""
        return self._group_decrypted(group_jid, peer_phone)

    def group_texts_received(self, group_jid: str | JID, peer_phone: str) -> list[str]:
        """Every text the member decrypted from the client's messages to the group, in order."""
        return [
            message_text(m) for _, m in self._group_decrypted(group_jid, peer_phone) if media_of(m) is None
        ]

    def wait_group_text_from_client(
        self, group_jid: str | JID, peer_phone: str, timeout: float = 10
    ) -> tuple[str, str]:
        """Wait until the member decrypted a group text from the client that no earlier call
        returned; returns (message id, text)."""
        group, user = self.group(group_jid), self.peer(peer_phone).user
        returned = self._returned.setdefault(f"{group.jid.user}/{peer_phone}", set())

        def matches(kind: str, data: Any) -> bool:
            if kind != "group-decrypted":
                return False
            jid, lid, mid, msg = data
            return jid == group.jid and lid == user.lid and mid not in returned and media_of(msg) is None

        try:
            _, (_, _, mid, msg) = self.wait_for(
                matches, timeout, what=f"group text from the client decrypted by {peer_phone} in {group.jid}"
            )
        except TimeoutError as e:
            got = self.group_texts_received(group_jid, peer_phone)
            raise TimeoutError(f"{e}\ngroup texts received by {peer_phone}: {got!r}") from None
        returned.add(mid)
        return mid, message_text(msg)

    def group_media_received(self, group_jid: str | JID, peer_phone: str) -> list[ReceivedMedia]:
        """Every attachment the member decrypted from the client's group messages, in order,
        downloaded from the media host, checked and decrypted (see :meth:`media_received`)."""
        return [
            self._open_media(mid, m) for mid, m in self._group_decrypted(group_jid, peer_phone) if media_of(m)
        ]

    def wait_group_media_from_client(
        self, group_jid: str | JID, peer_phone: str, timeout: float = 10, kind: str | None = None
    ) -> ReceivedMedia:
        """Wait until the member decrypted a group message with an attachment (of ``kind``,
        if given) from the client that no earlier call returned; returns it fetched from the
        media host, checked and decrypted, as :meth:`wait_media_from_client` does."""
        group, user = self.group(group_jid), self.peer(peer_phone).user
        returned = self._returned.setdefault(f"{group.jid.user}/{peer_phone}/media", set())

        def matches(ev_kind: str, data: Any) -> bool:
            if ev_kind != "group-decrypted":
                return False
            jid, lid, mid, msg = data
            found = media_of(msg)
            return (
                jid == group.jid
                and lid == user.lid
                and mid not in returned
                and found is not None
                and (kind is None or found[0] == kind)
            )

        what = f"{kind or 'media'} group message from the client decrypted by {peer_phone} in {group.jid}"
        _, (_, _, mid, msg) = self.wait_for(matches, timeout, what=what)
        returned.add(mid)
        return self._open_media(mid, msg)

    def set_on_whatsapp(self, phone: str, registered: bool = True) -> None:
        """Whether IsOnWhatsApp (a usync contact query) reports ``phone`` as on WhatsApp.

        Every number is on WhatsApp unless marked here with ``registered=False``.
        """
        if registered:
            self.peer(phone)
            self.directory.unregistered.discard(phone)
        else:
            self.directory.unregistered.add(phone)

    def _decrypted_by(self, peer_phone: str) -> list[tuple[str, Message]]:
        user = self.peer(peer_phone).user
        with self.server.cond:
            decrypted = [data for kind, data in self.server.events if kind == "decrypted"]
        return [(mid, msg) for jid, mid, msg in decrypted if user.is_addressed_by(jid)]

    def texts_received(self, peer_phone: str) -> list[str]:
        """Every text the fake peer decrypted from the client so far, in order (for exactly-once checks).

        Media messages are not listed (see :meth:`media_received`)."""
        return [message_text(msg) for _, msg in self._decrypted_by(peer_phone) if media_of(msg) is None]

    def wait_text_from_client(
        self, peer_phone: str, timeout: float = 10, predicate: Callable[[str], bool] | None = None
    ) -> tuple[str, str]:
        """Wait until the fake peer decrypted a text message from the client; returns (message id, text).

        Returns the earliest message (already received or arriving within ``timeout``) that
        satisfies ``predicate`` and was not returned by an earlier call for this peer, so
        successive calls step through the messages. Media messages are skipped.
        """
        user = self.peer(peer_phone).user
        returned = self._returned.setdefault(peer_phone, set())

        def matches(kind: str, data: Any) -> bool:
            if kind != "decrypted":
                return False
            jid, mid, msg = data
            if not user.is_addressed_by(jid) or mid in returned or media_of(msg) is not None:
                return False
            return predicate is None or predicate(message_text(msg))

        what = f"message from the client decrypted by fake peer {peer_phone}"
        if predicate is not None:
            what += " matching the predicate"
        try:
            _, (_, mid, msg) = self.wait_for(matches, timeout, what=what)
        except TimeoutError as e:
            raise TimeoutError(
                f"{e}\ntexts received by {peer_phone}: {self.texts_received(peer_phone)!r}"
            ) from None
        returned.add(mid)
        return mid, message_text(msg)

    # -- media --
    @property
    def media(self) -> MediaHost:
        """The fake media host: stored blobs, announced hostnames, failure switches."""
        return self.server.media

    def _open_media(self, mid: str, msg: Message) -> ReceivedMedia:
        found = media_of(msg)
        if found is None:
            raise MediaError(f"message {mid} carries no media")
        kind, fields = found
        blob = self.media.blob(fields.directPath or fields.URL)
        if blob is None:
            raise MediaError(
                f"message {mid}: no blob stored at directPath {fields.directPath!r} / url {fields.URL!r}"
            )
        try:
            plaintext = decrypt_media(
                blob.body, fields.mediaKey, kind, fields.fileEncSHA256, fields.fileSHA256
            )
        except MediaError as e:
            raise MediaError(f"message {mid} ({kind}): {e}") from None
        if fields.fileLength != len(plaintext):
            raise MediaError(
                f"message {mid} ({kind}): fileLength {fields.fileLength}, "
                f"but the file has {len(plaintext)} bytes"
            )
        return ReceivedMedia(mid, kind, fields, plaintext, msg, blob)

    def media_received(self, peer_phone: str) -> list[ReceivedMedia]:
        """Every attachment the fake peer got from the client so far, decrypted, in order.

        Raises :class:`~.media.MediaError` if one of them does not download or decrypt."""
        return [
            self._open_media(mid, msg)
            for mid, msg in self._decrypted_by(peer_phone)
            if media_of(msg) is not None
        ]

    def wait_media_from_client(
        self, peer_phone: str, timeout: float = 10, kind: str | None = None
    ) -> ReceivedMedia:
        """Wait until the fake peer got an attachment (of ``kind``, if given) from the client;
        returns it fetched from the media host, checked and decrypted.

        Steps through the attachments like :meth:`wait_text_from_client`. Raises
        :class:`~.media.MediaError` if the blob is missing or does not match the message
        (fileEncSHA256, MAC, fileSHA256, fileLength).
        """
        user = self.peer(peer_phone).user
        returned = self._returned.setdefault(peer_phone, set())

        def matches(ev_kind: str, data: Any) -> bool:
            if ev_kind != "decrypted":
                return False
            jid, mid, msg = data
            found = media_of(msg)
            return (
                user.is_addressed_by(jid)
                and mid not in returned
                and found is not None
                and (kind is None or found[0] == kind)
            )

        what = f"{kind or 'media'} message from the client decrypted by fake peer {peer_phone}"
        _, (_, mid, msg) = self.wait_for(matches, timeout, what=what)
        returned.add(mid)
        return self._open_media(mid, msg)

    def fail_media_downloads(self, status: int | None, count: int | None = None) -> None:
        """See :meth:`~.media.MediaHost.fail_downloads`."""
        self.media.fail_downloads(status, count)

    def fail_media_uploads(self, status: int | None, count: int | None = None) -> None:
        """See :meth:`~.media.MediaHost.fail_uploads`."""
        self.media.fail_uploads(status, count)

    def slow_media(self, download: float = 0.0, upload: float = 0.0) -> None:
        """Delay every media download / upload answer by this many seconds (0: no delay)."""
        self.media.download_delay = download
        self.media.upload_delay = upload

    def send_receipt(self, message_id: str, peer_phone: str, type: str | None = "read") -> None:
        """Deliver a receipt from the fake peer for a message the client sent to it.

        ``type="read"`` is a read receipt, ``None`` a delivery receipt.
        """
        user = self.peer(peer_phone).user
        conn = self.wait_connected()
        conn.send_node(
            Node(
                "receipt",
                {"from": JID(user.lid, "lid"), "id": message_id, "t": str(int(time.time())), "type": type},
            )
        )

    def set_message_error(self, peer_phone: str, code: str | None) -> None:
        """Make the server reject messages to this peer with ``code`` (e.g. "463", reach-out
        timelock): the client's send raises. ``None`` clears it.

        The fake peer still decrypts a rejected message before the server answers with the
        error, so it shows up in :meth:`texts_received`.
        """
        user = self.peer(peer_phone).user
        for key in (user.pn, user.lid):
            if code is None:
                self.server.message_errors.pop(key, None)
            else:
                self.server.message_errors[key] = code

    # -- connection control --
    @property
    def connection_count(self) -> int:
        """How many WebSocket connections the server accepted so far."""
        return len(self.server.connections)

    def live_connection(self, timeout: float = 10) -> WAConnection:
        """The newest open connection (past the Noise handshake)."""
        return self._wait_connection(lambda c: True, timeout, "a live connection")

    def wait_connected(self, timeout: float = 15) -> WAConnection:
        """Wait until a logged-in connection exists (the server sent ``<success>``); returns it."""
        return self._wait_connection(lambda c: c.logged_in, timeout, "a logged-in connection")

    def drop_connection(self, timeout: float = 10) -> None:
        """Cut the newest live connection like a network failure; the client reconnects on its own."""
        conn = self.live_connection(timeout)
        conn.drop()
        if not conn.closed.wait(timeout):
            raise TimeoutError(f"connection {conn!r} did not end within {timeout:g}s after the drop")

    def drop_before_ack(self, count: int = 1, *, unreachable_for: float = 0.0) -> None:
        """The next ``count`` messages the client sends reach their peers (they are decrypted),
        but each time the connection is cut before the server's ack: the client cannot know
        whether WhatsApp took the message (the one fault that makes a send uncertain).

        whatsmeow reconnects and resends the same frame (same id, delivered once) if it can
        within 5 s; ``unreachable_for`` refuses new connections that long after the cut."""
        left = [count]

        def hook(conn: WAConnection, node: Node) -> bool:
            if node.tag != "message" or node.child("participants") is None or left[0] <= 0:
                return False
            left[0] -= 1
            if left[0] <= 0:
                self.server.node_hooks.remove(hook)
            self.server.record("dropped-before-ack", node.attrs.get("id"))
            if unreachable_for:
                self.server.refuse_until = time.monotonic() + unreachable_for
            conn.drop()
            return True  # no ack

        self.server.node_hooks.append(hook)  # after the peers' hook: decrypted first

    def remove_device(self, timeout: float = 10) -> None:
        """The phone unlinks this device: the client gets LoggedOut and forgets its session."""
        self.server.remove_device(self.wait_connected(timeout))

    def replace_stream(self, timeout: float = 10) -> None:
        """Another client took over the session: the client gets StreamReplaced."""
        self.server.replace_stream(self.wait_connected(timeout))

    def set_login_failure(self, code: str | None) -> None:
        """Make the next logins fail with ``code`` ("402" temporary ban, "405" client outdated,
        "401" logged out); ``None`` lets logins succeed again. Takes effect on the next
        connection, e.g. after :meth:`drop_connection`."""
        self.server.login_failure = code

    # -- events --
    @property
    def events(self) -> list[Event]:
        """Everything the server recorded, as ``(kind, data)`` (see :mod:`.server`)."""
        return self.server.events

    def wait_for(
        self, pred: Callable[[str, Any], bool], timeout: float = 10, what: str = "a matching server event"
    ) -> Event:
        """Return the first server event, past or future, for which ``pred(kind, data)`` holds."""
        return self.server.wait_for(pred, timeout, what)

    def close(self) -> None:
        """Close the listening socket and every connection, and wait for the server threads."""
        self.server.close()

    # -- helpers --
    @staticmethod
    def _is_pairing(conn: WAConnection) -> bool:
        payload = conn.client_payload
        return payload is not None and payload.HasField("devicePairingData")

    def _wait_connection(
        self, pred: Callable[[WAConnection], bool], timeout: float, what: str
    ) -> WAConnection:
        found: list[WAConnection] = []

        def check(_kind: str, _data: Any) -> bool:
            live = [c for c in self.server.live_connections() if pred(c)]
            if live:
                found.append(live[-1])
            return bool(live)

        # Connection state changes are recorded as events, so re-checking on each event suffices;
        # the extra first check covers a state reached before any event is recorded.
        if check("", None):
            return found[-1]
        self.wait_for(check, timeout, what=what)
        return found[-1]
