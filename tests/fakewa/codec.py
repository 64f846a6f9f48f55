"""WhatsApp's binary XML: nodes, JIDs and the token-compressed wire encoding."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from .tokens import Tokens

LIST_EMPTY = 0
DICT0 = 236
INTEROP_JID = 245
FB_JID = 246
AD_JID = 247
LIST8 = 248
LIST16 = 249
JID_PAIR = 250
HEX8 = 251
BIN8 = 252
BIN20 = 253
BIN32 = 254
NIBBLE8 = 255

_AGENT_SERVER = {0: "s.whatsapp.net", 1: "lid", 128: "hosted", 129: "hosted.lid"}
_SERVER_AGENT = {v: k for k, v in _AGENT_SERVER.items()}


@dataclass(frozen=True)
class JID:
    user: str
    server: str
    device: int = 0
    agent: int = 0

    @classmethod
    def parse(cls, s: str) -> JID:
        user, _, server = s.rpartition("@")
        dev = 0
        if ":" in user:
            user, d = user.split(":", 1)
            dev = int(d)
        return cls(user, server, dev)

    def __str__(self) -> str:
        u = self.user + (f":{self.device}" if self.device else "")
        return f"{u}@{self.server}" if u else self.server


S_WHATSAPP_NET = JID("", "s.whatsapp.net")


@dataclass
class Node:
    """One binary XML element. ``content`` is None, bytes, str or a list of child nodes."""

    tag: str
    attrs: dict[str, Any] = field(default_factory=dict)
    content: Any = None

    def child(self, tag: str) -> Node | None:
        if isinstance(self.content, list):
            for c in self.content:
                if c.tag == tag:
                    return c
        return None

    def children(self) -> list[Node]:
        return self.content if isinstance(self.content, list) else []

    def __repr__(self) -> str:
        a = "".join(f' {k}="{v}"' for k, v in self.attrs.items())
        if self.content is None:
            return f"<{self.tag}{a}/>"
        if isinstance(self.content, list):
            inner = "".join(repr(c) for c in self.content)
        elif isinstance(self.content, bytes):
            inner = f"<!-- {len(self.content)} bytes -->"
        else:
            inner = str(self.content)
        return f"<{self.tag}{a}>{inner}</{self.tag}>"


class BinaryCodec:
    """Encoder/decoder for one connection (decoding keeps per-call state on the instance)."""

    def __init__(self, tokens: Tokens) -> None:
        self.t = tokens
        self._d = b""
        self._i = 0

    # ---- encode ----
    def marshal(self, node: Node) -> bytes:
        out = bytearray(b"\x00")
        self._node(out, node)
        return bytes(out)

    def _list_start(self, out: bytearray, n: int) -> None:
        if n == 0:
            out.append(LIST_EMPTY)
        elif n < 256:
            out += bytes((LIST8, n))
        else:
            out += bytes((LIST16,)) + struct.pack(">H", n)

    def _node(self, out: bytearray, n: Node) -> None:
        attrs = {k: v for k, v in n.attrs.items() if v is not None and v != ""}
        self._list_start(out, 2 * len(attrs) + 1 + (n.content is not None))
        self._str(out, n.tag)
        for k, v in attrs.items():
            self._str(out, k)
            self._val(out, v)
        if n.content is not None:
            self._val(out, n.content)

    def _val(self, out: bytearray, v: Any) -> None:
        if isinstance(v, JID):
            self._jid(out, v)
        elif isinstance(v, (bytes, bytearray)):
            self._bytes(out, bytes(v))
        elif isinstance(v, list):
            self._list_start(out, len(v))
            for c in v:
                self._node(out, c)
        elif isinstance(v, bool):
            self._str(out, "true" if v else "false")
        else:
            self._str(out, str(v))

    def _bytes(self, out: bytearray, b: bytes) -> None:
        if len(b) < 256:
            out += bytes((BIN8, len(b)))
        elif len(b) < 1 << 20:
            out += bytes((BIN20, (len(b) >> 16) & 0x0F, (len(b) >> 8) & 0xFF, len(b) & 0xFF))
        else:
            out += bytes((BIN32,)) + struct.pack(">I", len(b))
        out += b

    def _str(self, out: bytearray, s: str) -> None:
        if s in self.t.single_idx:
            out.append(self.t.single_idx[s])
        elif s in self.t.double_idx:
            d, i = self.t.double_idx[s]
            out += bytes((DICT0 + d, i))
        else:
            self._bytes(out, s.encode())  # raw string; nibble/hex packing is optional

    def _jid(self, out: bytearray, j: JID) -> None:
        if (j.server in ("s.whatsapp.net", "lid") and j.device) or j.server in ("hosted", "hosted.lid"):
            out += bytes((AD_JID, _SERVER_AGENT[j.server], j.device))
            self._str(out, j.user)
        else:
            out.append(JID_PAIR)
            if j.user:
                self._str(out, j.user)
            else:
                out.append(LIST_EMPTY)
            self._str(out, j.server)

    # ---- decode ----
    def unmarshal(self, data: bytes) -> Node:
        flags, data = data[0], data[1:]
        if flags & 2:
            data = zlib.decompress(data)
        self._d, self._i = data, 0
        return self._read_node()

    def _byte(self) -> int:
        b = self._d[self._i]
        self._i += 1
        return b

    def _raw(self, n: int) -> bytes:
        b = self._d[self._i : self._i + n]
        if len(b) != n:
            raise EOFError("truncated binary node")
        self._i += n
        return b

    def _list_size(self, tag: int) -> int:
        if tag == LIST_EMPTY:
            return 0
        if tag == LIST8:
            return self._byte()
        if tag == LIST16:
            return struct.unpack(">H", self._raw(2))[0]
        raise ValueError(f"bad list tag {tag}")

    def _read_node(self) -> Node:
        size = self._list_size(self._byte())
        tag = self._read(True)
        attrs = {}
        for _ in range((size - 1) >> 1):
            k = self._read(True)
            attrs[k] = self._read(True)
        content = None if size % 2 == 1 else self._read(False)
        return Node(tag, attrs, content)

    def _packed(self, tag: int) -> str:
        start = self._byte()
        chars = []
        for _ in range(start & 127):
            b = self._byte()
            for nib in (b >> 4, b & 0x0F):
                if tag == NIBBLE8:
                    chars.append("0123456789-."[nib] if nib < 12 else ("\x00" if nib == 15 else "?"))
                else:
                    chars.append("0123456789ABCDEF"[nib])
        s = "".join(chars)
        return s[:-1] if start >> 7 else s

    def _read(self, as_str: bool) -> Any:
        tag = self._byte()
        if tag == LIST_EMPTY:
            return None
        if tag in (LIST8, LIST16):
            return [self._read_node() for _ in range(self._list_size(tag))]
        if tag in (BIN8, BIN20, BIN32):
            if tag == BIN8:
                n = self._byte()
            elif tag == BIN20:
                b = self._raw(3)
                n = ((b[0] & 0x0F) << 16) | (b[1] << 8) | b[2]
            else:
                n = struct.unpack(">I", self._raw(4))[0]
            raw = self._raw(n)
            return raw.decode("utf-8", "replace") if as_str else raw
        if DICT0 <= tag <= DICT0 + 3:
            return self.t.double[tag - DICT0][self._byte()]
        if tag == JID_PAIR:
            user = self._read(True)
            server = self._read(True)
            return JID(user or "", server)
        if tag == AD_JID:
            agent, dev = self._byte(), self._byte()
            user = self._read(True)
            server = _AGENT_SERVER.get(agent, "s.whatsapp.net")
            return JID(user, server, dev, 0 if agent in _AGENT_SERVER else agent)
        if tag == FB_JID:
            user = self._read(True)
            dev = struct.unpack(">H", self._raw(2))[0]
            return JID(user, self._read(True), dev)
        if tag == INTEROP_JID:
            user = self._read(True)
            dev, _integrator = struct.unpack(">HH", self._raw(4))
            return JID(user, self._read(True), dev)
        if tag in (NIBBLE8, HEX8):
            return self._packed(tag)
        return self.t.single[tag]
