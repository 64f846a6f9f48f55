"""Transport layers below the binary XML: a minimal WebSocket server side and WhatsApp's Noise.

The WebSocket part implements just what whatsmeow needs from RFC 6455 (binary messages,
fragmentation, ping/pong, close; no extensions). The Noise part is the responder side of
``Noise_XX_25519_AESGCM_SHA256`` as WhatsApp uses it (the WA header is the prologue).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import struct
import threading

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def noise_iv(n: int) -> bytes:
    """AES-GCM nonce for message counter ``n``."""
    return b"\x00" * 8 + struct.pack(">I", n)


def _hkdf2(salt: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    out = HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=None).derive(ikm)
    return out[:32], out[32:]


class NoiseResponder:
    """Symmetric state of the responder during the Noise XX handshake."""

    NAME = b"Noise_XX_25519_AESGCM_SHA256\x00\x00\x00\x00"

    def __init__(self, prologue: bytes) -> None:
        self.h = self.NAME
        self.ck = self.NAME
        self.aead = AESGCM(self.NAME)
        self.n = 0
        self.mix_hash(prologue)

    def mix_hash(self, d: bytes) -> None:
        self.h = hashlib.sha256(self.h + d).digest()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, k = _hkdf2(self.ck, ikm)
        self.aead, self.n = AESGCM(k), 0

    def encrypt(self, pt: bytes) -> bytes:
        ct = self.aead.encrypt(noise_iv(self.n), pt, self.h)
        self.n += 1
        self.mix_hash(ct)
        return ct

    def decrypt(self, ct: bytes) -> bytes:
        pt = self.aead.decrypt(noise_iv(self.n), ct, self.h)
        self.n += 1
        self.mix_hash(ct)
        return pt

    def split(self) -> tuple[AESGCM, AESGCM]:
        """Transport keys: (read = the client's write key, write = the client's read key)."""
        k1, k2 = _hkdf2(self.ck, b"")
        return AESGCM(k1), AESGCM(k2)


class WSConn:
    """Server side of one WebSocket connection over an already connected (TLS) socket."""

    GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.wlock = threading.Lock()

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("eof")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_http_head(self) -> bytes:
        """Read up to the blank line ending an HTTP request head; the rest stays buffered."""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("eof in http head")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head

    def accept(self) -> dict[str, str]:
        """Answer the opening handshake; returns the request headers (lower-case names)."""
        head = self.read_http_head().decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:] if ":" in line)
        }
        key = headers["sec-websocket-key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + self.GUID, usedforsecurity=False).digest()).decode()
        self.sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        headers[":request-line"] = head[0]
        return headers

    def recv(self) -> bytes | None:
        """Next binary message, or None once the peer sent a close frame."""
        msg = b""
        while True:
            b0, b1 = self._read_exact(2)
            fin, op, masked, ln = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            if ln == 126:
                ln = struct.unpack(">H", self._read_exact(2))[0]
            elif ln == 127:
                ln = struct.unpack(">Q", self._read_exact(8))[0]
            mask = self._read_exact(4) if masked else b"\x00\x00\x00\x00"
            payload = self._read_exact(ln)
            if masked:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            if op == 0x8:  # close: echo it and report end of stream
                with contextlib.suppress(OSError):  # the peer may already be gone
                    self.send(payload[:2], opcode=0x8)
                return None
            if op == 0x9:  # ping
                self.send(payload, opcode=0xA)
                continue
            if op == 0xA:  # pong
                continue
            msg += payload
            if fin:
                return msg

    def send(self, data: bytes, opcode: int = 0x2) -> None:
        n = len(data)
        if n < 126:
            length = bytes((n,))
        elif n < 65536:
            length = bytes((126,)) + struct.pack(">H", n)
        else:
            length = bytes((127,)) + struct.pack(">Q", n)
        with self.wlock:
            self.sock.sendall(bytes((0x80 | opcode,)) + length + data)
