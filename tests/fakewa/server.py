"""The fake WhatsApp Web server.

It listens on 127.0.0.1 and acts as an HTTP CONNECT proxy: whatever host the client asks
for, the server answers the tunnel itself and terminates TLS with the test CA (see
:class:`~.keys.TestPKI`). A tunnel to a media host announced in ``media_conn`` is served by
:class:`~.media.MediaHost` (HTTPS uploads and downloads); any other tunnel is the chat
connection: the server accepts the WebSocket, runs the Noise XX handshake with a
certificate chain signed by a test root key (which whatsmeow accepts once its pinned root
was swapped, see ``inject/wa_root_patch.py``) and then exchanges binary XML nodes.

Everything that happens is recorded as ``(kind, data)`` tuples in :attr:`FakeWAServer.events`:

=========================  =====================================================
kind                       data
=========================  =====================================================
``proxy-connect``          the CONNECT target (``web.whatsapp.com:443``, ``mmg.whatsapp.net:443``)
``websocket``              the WebSocket request headers
``handshake``              the :class:`WAConnection` after the Noise handshake
``pair-device``            the list of QR refs just sent
``success`` / ``failure``  the connection that logged in / the failure attributes
``node``                   every node received from a client
``iq-result``/``iq-error`` replies of the client to the server's own iqs
``pair-device-sign``       the client accepted a ``pair-success``
``pair-code-requested``    the client asked for a pairing code (phone number login)
``device-removed-by-client``  the client sent remove-companion-device (logout)
``prekeys``                the client uploaded its Signal prekeys
``decrypted``              ``(recipient jid, message id, waE2E Message)``: a fake user
                           decrypted what the client sent
``decrypt-error``          ``(recipient jid, error)``
``group-info``/``group-list``  the client asked for a group's info / its joined groups
``group-create``           ``(group jid, subject, member LIDs, [(requested jid, error code)])``:
                           the client created a group; the list holds the refused participants
``group-participants``     ``(group jid, action, [(requested jid, code)])``: the client's
                           add/remove/promote/demote, 200 for each one done
``group-refused``          ``(group jid, request tag, code)``: a group iq refused as a whole
                           (401 not admin, 403 not a member, 404 unknown group)
``group-leave``            the group jid the account left
``group-invite``           ``(group jid, code, revoked)``: the invite code the client got
``group-notification``     ``(group jid, action, actor LID, [participant jids], notification id)``:
                           a ``w:gp2`` membership change sent to the client
``sender-key``             ``(group jid, member LID, groupId)``: a member took the client's sender key
``group-decrypted``        ``(group jid, member LID, message id, waE2E Message)``: a member
                           decrypted the client's group message (skmsg)
``group-decrypt-error``    ``(group jid, member LID, error)``
``group-send-refused``     ``(group jid, message id, error code)``: a group message the
                           server refused (420: only admins may send); nobody got it
``group-pairwise``         ``(group jid, member LID, Message)``: a pairwise part of a group
                           message that carried no sender key
``disconnect``             the connection that ended
``media-*``                media queries and HTTP requests, see :mod:`.media`
``error``                  an unexpected exception in a connection handler
=========================  =====================================================
"""

from __future__ import annotations

import base64
import contextlib
import logging
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from neonize.proto.waCert.WACert_pb2 import CertChain
from neonize.proto.waWa6.WAWebProtobufsWa6_pb2 import ClientPayload, HandshakeMessage

from .codec import JID, S_WHATSAPP_NET, BinaryCodec, Node
from .keys import SignKeyPair, TestPKI, x25519_pub
from .media import MediaHost
from .tokens import Tokens
from .transport import NoiseResponder, WSConn, noise_iv

log = logging.getLogger("fakewa")

Event = tuple[str, Any]
IqHandler = Callable[["WAConnection", Node], "list[Node] | None"]
NodeHook = Callable[["WAConnection", Node], bool]


class IqError(Exception):
    """Raised by an iq handler: the server answers ``<iq type="error"><error code text/></iq>``."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code, self.text = code, text


class WAConnection:
    """One client connection: WA framing, Noise transport encryption and node dispatch."""

    def __init__(self, server: FakeWAServer, ws: WSConn) -> None:
        self.server = server
        self.ws = ws
        self.codec = BinaryCodec(server.tokens)
        self.pending = b""
        self.header: bytes | None = None
        self.read_key: AESGCM | None = None
        self.write_key: AESGCM | None = None
        self.rc = self.wc = 0
        self.client_payload: ClientPayload | None = None
        self.client_static: bytes | None = None
        self.ready = threading.Event()  # Noise handshake done, nodes can be sent
        self.logged_in = False  # the server sent <success> on this connection
        self.closed = threading.Event()
        self.wlock = threading.Lock()
        # nodes an iq handler wants sent right after its answer (on this connection's thread)
        self.after_reply: list[Node] = []

    def __repr__(self) -> str:
        if self.closed.is_set():
            state = "closed"
        elif self.logged_in:
            state = "logged-in"
        else:
            state = "ready" if self.ready.is_set() else "handshaking"
        key = self.client_static.hex()[:8] if self.client_static else "-"
        return f"<WAConnection client={key} {state}>"

    # -- framing --
    def _frames(self) -> Iterator[bytes]:
        while True:
            while True:
                if self.header is None and len(self.pending) >= 4:
                    self.header, self.pending = self.pending[:4], self.pending[4:]
                if self.header is not None and len(self.pending) >= 3:
                    n = int.from_bytes(self.pending[:3], "big")
                    if len(self.pending) >= 3 + n:
                        frame, self.pending = self.pending[3 : 3 + n], self.pending[3 + n :]
                        yield frame
                        continue
                break
            msg = self.ws.recv()
            if msg is None:
                return
            self.pending += msg

    def _send_frame(self, data: bytes) -> None:
        self.ws.send(len(data).to_bytes(3, "big") + data)

    # -- noise --
    def handshake(self, frames: Iterator[bytes]) -> None:
        hello = HandshakeMessage.FromString(next(frames))
        log.info("client hello: %s", hello)
        e_c = hello.clientHello.ephemeral
        assert self.header is not None
        ns = NoiseResponder(self.header)
        ns.mix_hash(e_c)
        e_s = X25519PrivateKey.generate()
        ns.mix_hash(x25519_pub(e_s))
        ns.mix_key(e_s.exchange(X25519PublicKey.from_public_bytes(e_c)))
        static_ct = ns.encrypt(x25519_pub(self.server.static_key))
        ns.mix_key(self.server.static_key.exchange(X25519PublicKey.from_public_bytes(e_c)))
        cert_ct = ns.encrypt(self.server.cert_chain)
        resp = HandshakeMessage()
        resp.serverHello.ephemeral = x25519_pub(e_s)
        resp.serverHello.static = static_ct
        resp.serverHello.payload = cert_ct
        self._send_frame(resp.SerializeToString())

        fin = HandshakeMessage.FromString(next(frames))
        self.client_static = ns.decrypt(fin.clientFinish.static)
        ns.mix_key(e_s.exchange(X25519PublicKey.from_public_bytes(self.client_static)))
        self.client_payload = ClientPayload.FromString(ns.decrypt(fin.clientFinish.payload))
        self.read_key, self.write_key = ns.split()
        log.info("noise handshake done; client payload: %s", self.client_payload)

    def send_node(self, node: Node) -> None:
        if self.write_key is None:
            raise RuntimeError("Noise handshake not finished on this connection")
        log.info(">> %r", node)
        data = self.codec.marshal(node)
        with self.wlock:
            ct = self.write_key.encrypt(noise_iv(self.wc), data, None)
            self.wc += 1
            self._send_frame(ct)

    def run(self) -> None:
        """Handshake, then dispatch nodes until the connection ends (runs on its own thread)."""
        frames = self._frames()
        try:
            self.handshake(frames)
            self.ready.set()
            self.server.on_connect(self)
            assert self.read_key is not None
            for ct in frames:
                pt = self.read_key.decrypt(noise_iv(self.rc), ct, None)
                self.rc += 1
                node = self.codec.unmarshal(pt)
                log.info("<< %r", node)
                self.server.on_node(self, node)
        except (ConnectionError, OSError, StopIteration) as e:
            log.info("connection ended: %r", e)
        finally:
            self.closed.set()
            self.server.on_disconnect(self)

    def drop(self) -> None:
        """Cut the connection without a WebSocket close frame (like a network failure)."""
        _shutdown(self.ws.sock)

    def close(self) -> None:
        """Send a WebSocket close frame and close the socket."""
        with contextlib.suppress(OSError):  # the client may already have hung up
            self.ws.send(struct.pack(">H", 1000), opcode=0x8)
        self.drop()
        self.ws.sock.close()


def bind_loopback() -> socket.socket:
    """A listening socket on a free 127.0.0.1 port."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def _shutdown(sock: socket.socket) -> None:
    """Shut a socket down in both directions; wakes up threads blocked on it."""
    with contextlib.suppress(OSError):  # not connected, already shut down or closed
        sock.shutdown(socket.SHUT_RDWR)


def _short(data: Any, limit: int = 160) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FakeWAServer:
    """WhatsApp Web server (and the HTTP CONNECT proxy in front of it) on 127.0.0.1.

    ``root`` is the key that signs the Noise certificate chain; the client must have it
    patched in as its pinned WhatsApp root. Protocol behaviour is extended through
    :attr:`iq_handlers` (by xmlns; a handler raises :class:`IqError` for an error answer)
    and :attr:`node_hooks` (return True to consume a node); a handler may queue nodes on
    :attr:`WAConnection.after_reply` to be sent right after its answer.
    """

    def __init__(
        self,
        pki: TestPKI,
        tokens: Tokens,
        root: SignKeyPair | None = None,
        listen_sock: socket.socket | None = None,
    ) -> None:
        self.pki = pki
        self.tokens = tokens
        self.root = root or SignKeyPair()
        self.intermediate = SignKeyPair()
        self.static_key = X25519PrivateKey.generate()
        self.cert_chain = self._make_cert_chain()

        self.ssl_ctx = pki.server_context()
        self.sock = listen_sock or bind_loopback()
        self.port: int = self.sock.getsockname()[1]
        self.proxy_url = f"http://127.0.0.1:{self.port}"
        self.connections: list[WAConnection] = []
        self.events: list[Event] = []
        self.cond = threading.Condition()
        self.media = MediaHost(self.record)
        self.iq_handlers: dict[str, IqHandler] = {"md": self._md_iq, "w:m": self.media.media_conn_iq}
        self.node_hooks: list[NodeHook] = []
        self.refuse_until = 0.0  # time.monotonic() before which new connections are closed at once
        self.qr_refs = [base64.b64encode(secrets.token_bytes(12)).decode() for _ in range(6)]
        self.paired_devices: dict[bytes, dict[str, Any]] = {}  # client noise key -> jid, lid, identity
        self.login_failure: str | None = None  # next logins fail with this reason ("402", "405", ...)
        self.message_errors: dict[str, str] = {}  # recipient user (phone or LID) -> ack error code
        self._id = 0
        self._id_lock = threading.Lock()
        self._lock = threading.Lock()  # guards _stop and _sockets
        self._stop = False
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._timers: list[threading.Timer] = []
        self.accept_thread = threading.Thread(target=self._accept_loop, daemon=True, name="fakewa-accept")
        self.accept_thread.start()

    def _make_cert_chain(self) -> bytes:
        now = int(time.time())
        chain = CertChain()
        inter = CertChain.NoiseCertificate.Details(
            serial=7, issuerSerial=0, key=self.intermediate.pub, notBefore=now - 3600, notAfter=now + 86400
        )
        leaf = CertChain.NoiseCertificate.Details(
            serial=8,
            issuerSerial=7,
            key=x25519_pub(self.static_key),
            notBefore=now - 3600,
            notAfter=now + 86400,
        )
        chain.intermediate.details = inter.SerializeToString()
        chain.intermediate.signature = self.root.sign(chain.intermediate.details)
        chain.leaf.details = leaf.SerializeToString()
        chain.leaf.signature = self.intermediate.sign(chain.leaf.details)
        return chain.SerializeToString()

    # -- bookkeeping --
    def record(self, kind: str, data: Any = None) -> None:
        """Append an event and wake up waiters."""
        with self.cond:
            self.events.append((kind, data))
            self.cond.notify_all()

    def describe_events(self, last: int = 8) -> str:
        with self.cond:
            tail = self.events[-last:]
        return "\n".join(f"  {kind}: {_short(data)}" for kind, data in tail) or "  (no events)"

    def wait_for(
        self, pred: Callable[[str, Any], bool], timeout: float = 30, what: str = "a matching server event"
    ) -> Event:
        """Return the first event (past or future) for which ``pred(kind, data)`` is true.

        Conditions that do not depend on an event (a socket closing) are re-evaluated whenever
        a new event is recorded. Raises TimeoutError naming ``what`` and the last events.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            seen = 0
            while True:
                for ev in self.events[seen:]:
                    if pred(*ev):
                        return ev
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"fake WhatsApp server: no {what} within {timeout:g}s; last events:\n"
                        + self.describe_events()
                    )
                self.cond.wait(left)

    def next_id(self) -> str:
        with self._id_lock:
            self._id += 1
            return f"fake.{self._id}"

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` seconds unless the server is closed first."""
        t = threading.Timer(delay, fn)
        t.daemon = True
        self._timers.append(t)
        t.start()

    def live_connections(self) -> list[WAConnection]:
        """Connections past the Noise handshake and not closed, newest last."""
        return [c for c in self.connections if c.ready.is_set() and not c.closed.is_set()]

    # -- network --
    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._handle, args=(s,), daemon=True, name="fakewa-conn")
            self._threads.append(t)
            t.start()

    def _handle(self, raw: socket.socket) -> None:
        sock = raw  # the socket to close at the end: raw TCP, then the TLS socket wrapping it
        self._track(None, sock)
        try:
            if time.monotonic() < self.refuse_until:  # WhatsApp unreachable for a while
                self.record("refused", None)
                return
            pre = WSConn(raw)
            req = pre.read_http_head().decode("latin-1")
            line = req.split("\r\n", 1)[0]
            log.info("proxy request: %s", line)
            if not line.startswith("CONNECT "):
                raw.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            target = line.split()[1]
            self.record("proxy-connect", target)
            raw.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            tls = self.ssl_ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            self._track(sock, tls)  # tls took over the file descriptor of raw
            sock = tls
            tls.do_handshake()
            host = target.rsplit(":", 1)[0]
            if self.media.serves(host):
                self.media.serve(tls, host)
                return
            ws = WSConn(tls)
            self.record("websocket", ws.accept())
            conn = WAConnection(self, ws)
            self.connections.append(conn)
            conn.run()
        except (ConnectionError, OSError) as e:
            log.info("connection failed before the WebSocket was up: %r", e)
        except Exception as e:
            log.exception("connection handler failed")
            self.record("error", repr(e))
        finally:
            self._track(sock, None)
            sock.close()

    def _track(self, old: socket.socket | None, new: socket.socket | None) -> None:
        """Keep the set of open connection sockets that close() must shut down."""
        with self._lock:
            self._sockets.discard(old)  # type: ignore[arg-type]
            if new is not None:
                self._sockets.add(new)
                if self._stop:  # close() already ran: do not let this socket outlive the server
                    _shutdown(new)

    def close(self, timeout: float = 5) -> None:
        """Stop accepting, close every connection and wait for the server threads to end."""
        with self._lock:
            self._stop = True
            sockets = list(self._sockets)
        for t in self._timers:
            t.cancel()
        self.media.close()
        _shutdown(self.sock)  # wakes up accept()
        self.sock.close()
        for c in list(self.connections):
            c.close()
        for s in sockets:
            _shutdown(s)
        self.accept_thread.join(timeout)
        for t in list(self._threads):
            t.join(timeout)

    # -- protocol --
    def on_connect(self, conn: WAConnection) -> None:
        p = conn.client_payload
        assert p is not None
        self.record("handshake", conn)
        if p.HasField("devicePairingData"):
            self.send_pair_device(conn)  # unpaired device: ask it to show QR codes
            return
        # login of a paired device
        dev = self.paired_devices.get(conn.client_static or b"")
        if dev is None:
            attrs = {"reason": "401", "location": "fake"}
        elif self.login_failure:  # "402" temporary ban, "405" client outdated, "401" logged out
            attrs = {"reason": self.login_failure, "location": "fake"}
            if self.login_failure == "402":
                attrs.update(code="101", expire="3600")
        else:
            # state and event first: a client reacting to <success> must find them in place
            conn.logged_in = True
            self.record("success", conn)
            conn.send_node(
                Node(
                    "success",
                    {
                        "t": str(int(time.time())),
                        "props": "1",
                        "abprops": "1",
                        "location": "fake",
                        "lid": dev["lid"],
                        "display_name": "",
                    },
                )
            )
            return
        self.record("failure", attrs)
        conn.send_node(Node("failure", attrs))

    def send_pair_device(self, conn: WAConnection, refs: list[str] | None = None) -> None:
        """(Re)send QR refs to an unpaired client.

        whatsmeow shows the first ref at once and rotates through the rest on its own timer
        (60 s, then 20 s each); sending a new pair-device rotates immediately.
        """
        if refs is not None:
            self.qr_refs = refs
        refs = list(self.qr_refs)
        self.record("pair-device", refs)  # before sending: the client may show the QR at once
        conn.send_node(
            Node(
                "iq",
                {"from": S_WHATSAPP_NET, "type": "set", "id": self.next_id(), "xmlns": "md"},
                [Node("pair-device", {}, [Node("ref", {}, r.encode()) for r in refs])],
            )
        )

    def _md_iq(self, conn: WAConnection, iq: Node) -> list[Node] | None:
        """Pairing by phone number: answer the code registration with a pairing ref, so the
        client's PairPhone returns its 8-character code (the phone side is not simulated)."""
        reg = iq.child("link_code_companion_reg")
        if reg is not None and reg.attrs.get("stage") == "companion_hello":
            self.record("pair-code-requested", reg.attrs.get("jid"))
            return [
                Node(
                    "link_code_companion_reg",
                    {},
                    [Node("link_code_pairing_ref", {}, secrets.token_bytes(16))],
                )
            ]
        if iq.child("remove-companion-device") is not None:
            self.record("device-removed-by-client", iq)
        return None

    def remove_device(self, conn: WAConnection) -> None:
        """The phone unlinks this device (Settings > Linked devices > Log out): whatsmeow
        emits LoggedOut and deletes its session."""
        self.paired_devices.pop(conn.client_static or b"", None)
        conn.send_node(Node("stream:error", {"code": "401"}, [Node("conflict", {"type": "device_removed"})]))

    def replace_stream(self, conn: WAConnection) -> None:
        """Another client took over this session: whatsmeow emits StreamReplaced."""
        conn.send_node(Node("stream:error", {}, [Node("conflict", {"type": "replaced"})]))

    def on_disconnect(self, conn: WAConnection) -> None:
        self.record("disconnect", conn)

    def on_node(self, conn: WAConnection, node: Node) -> None:
        self.record("node", node)
        for hook in list(self.node_hooks):
            if hook(conn, node):
                return
        if node.tag == "iq":
            typ = node.attrs.get("type")
            if typ in ("result", "error"):
                self.record("iq-" + typ, node)
                return
            handler = self.iq_handlers.get(node.attrs.get("xmlns", ""))
            head = {"from": S_WHATSAPP_NET, "id": node.attrs["id"]}
            try:
                content = handler(conn, node) if handler else None
                reply = Node("iq", {**head, "type": "result"}, content)
            except IqError as e:
                error = Node("error", {"code": str(e.code), "text": e.text})
                reply = Node("iq", {**head, "type": "error"}, [error])
            conn.send_node(reply)
            follow, conn.after_reply = conn.after_reply, []
            for n in follow:
                conn.send_node(n)
        elif node.tag in ("message", "receipt", "notification", "call"):
            to = node.attrs.get("to")
            error = None
            if node.tag == "message" and isinstance(to, JID) and to.user in self.message_errors:
                error = self.message_errors[to.user]  # e.g. "463": reach-out timelock
            self.ack(conn, node, error)

    def ack(self, conn: WAConnection, node: Node, error: str | None = None) -> None:
        """Acknowledge a client's message, receipt, notification or call; an ``error`` code
        on a message's ack says the server refused it (whatsmeow: "server returned error N")."""
        attrs = {
            "id": node.attrs.get("id"),
            "class": node.tag,
            "from": node.attrs.get("to", S_WHATSAPP_NET),
            "t": str(int(time.time())),
        }
        if error is not None:
            attrs["error"] = error
        if node.tag == "receipt" and node.attrs.get("type"):
            attrs["type"] = node.attrs["type"]
        conn.send_node(Node("ack", attrs))
