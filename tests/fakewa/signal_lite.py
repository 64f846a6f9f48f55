"""Minimal libsignal (v3) pairwise sessions: X3DH and the Double Ratchet, enough for a fake peer.

Written from the Signal specifications (X3DH, Double Ratchet) and libsignal's wire format.
Not covered: skipped message keys (out-of-order delivery), sender keys (groups).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION_BYTE = 0x33


class IdentityKey(Protocol):
    pub: bytes
    dh: X25519PrivateKey


# ---- tiny protobuf codec (varint and length-delimited fields only) ----
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_encode(fields: list[tuple[int, int | bytes | None]]) -> bytes:
    out = bytearray()
    for num, val in fields:
        if val is None:
            continue
        if isinstance(val, int):
            out += _varint(num << 3) + _varint(val)
        else:
            out += _varint(num << 3 | 2) + _varint(len(val)) + val
    return bytes(out)


def pb_decode(data: bytes) -> dict[int, Any]:
    i, out = 0, {}

    def read_varint() -> int:
        nonlocal i
        shift = val = 0
        while True:
            b = data[i]
            i += 1
            val |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return val

    while i < len(data):
        key = read_varint()
        num, wire_type = key >> 3, key & 7
        if wire_type == 0:
            out[num] = read_varint()
        elif wire_type == 2:
            n = read_varint()
            out[num] = data[i : i + n]
            i += n
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return out


# ---- primitives ----
def _pub(k: X25519PrivateKey) -> bytes:
    return k.public_key().public_bytes_raw()


def _dh(priv: X25519PrivateKey, pub: bytes) -> bytes:
    return priv.exchange(X25519PublicKey.from_public_bytes(pub[-32:]))


def _kdf(ikm: bytes, salt: bytes | None, info: bytes, n: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt, info=info).derive(ikm)


def djb(pub: bytes) -> bytes:
    """A Curve25519 public key in libsignal's serialized form (type byte 5)."""
    return b"\x05" + pub


class Chain:
    """A symmetric-key ratchet chain."""

    def __init__(self, key: bytes, index: int = 0) -> None:
        self.key, self.index = key, index

    def message_keys(self) -> tuple[bytes, bytes, bytes]:
        """(cipher key, MAC key, IV) for the current index."""
        seed = hmac.new(self.key, b"\x01", hashlib.sha256).digest()
        m = _kdf(seed, None, b"WhisperMessageKeys", 80)
        return m[:32], m[32:64], m[64:80]

    def advance(self) -> None:
        self.key = hmac.new(self.key, b"\x02", hashlib.sha256).digest()
        self.index += 1


def _create_chain(root: bytes, their_ratchet: bytes, our_ratchet: X25519PrivateKey) -> tuple[bytes, Chain]:
    d = _kdf(_dh(our_ratchet, their_ratchet), root, b"WhisperRatchet", 64)
    return d[:32], Chain(d[32:])


def _aes_cbc(key: bytes, iv: bytes, data: bytes, enc: bool) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    if enc:
        p = padding.PKCS7(128).padder()
        e = c.encryptor()
        return e.update(p.update(data) + p.finalize()) + e.finalize()
    d = c.decryptor()
    u = padding.PKCS7(128).unpadder()
    return u.update(d.update(data) + d.finalize()) + u.finalize()


class Session:
    """One side of a pairwise session."""

    def __init__(self, identity: IdentityKey, remote_identity: bytes, reg_id: int) -> None:
        self.identity, self.remote_identity, self.reg_id = identity, remote_identity, reg_id
        self.root = b""
        self.send_ratchet: X25519PrivateKey | None = None
        self.send_chain: Chain | None = None
        self.prev_counter = 0
        self.recv_chains: dict[bytes, Chain] = {}
        self.pending_prekey: dict[str, Any] | None = None  # set while we initiated and got no answer

    @classmethod
    def initiate(cls, identity: IdentityKey, reg_id: int, bundle: dict[str, Any]) -> Session:
        """X3DH, initiator side, from the other party's prekey bundle.

        ``bundle``: identity, spk, spk_id and optionally opk, opk_id (raw 32-byte keys).
        """
        s = cls(identity, bundle["identity"], reg_id)
        base = X25519PrivateKey.generate()
        secret = (
            b"\xff" * 32
            + _dh(identity.dh, bundle["spk"])
            + _dh(base, bundle["identity"])
            + _dh(base, bundle["spk"])
        )
        if bundle.get("opk"):
            secret += _dh(base, bundle["opk"])
        d = _kdf(secret, None, b"WhisperText", 64)
        s.recv_chains[bundle["spk"]] = Chain(d[32:])
        s.send_ratchet = X25519PrivateKey.generate()
        s.root, s.send_chain = _create_chain(d[:32], bundle["spk"], s.send_ratchet)
        s.pending_prekey = {"base": _pub(base), "spk_id": bundle["spk_id"], "opk_id": bundle.get("opk_id")}
        return s

    @classmethod
    def respond(
        cls,
        identity: IdentityKey,
        reg_id: int,
        pkmsg: dict[int, Any],
        spk: X25519PrivateKey,
        opk: X25519PrivateKey | None,
    ) -> Session:
        """X3DH, responder side, from an incoming PreKeySignalMessage (see :func:`parse_pkmsg`)."""
        their_ik, base = pkmsg[3][-32:], pkmsg[2][-32:]
        s = cls(identity, their_ik, reg_id)
        secret = b"\xff" * 32 + _dh(spk, their_ik) + _dh(identity.dh, base) + _dh(spk, base)
        if opk is not None:
            secret += _dh(opk, base)
        d = _kdf(secret, None, b"WhisperText", 64)
        s.root, s.send_ratchet, s.send_chain = d[:32], spk, Chain(d[32:])
        return s

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        """Returns (``"pkmsg"`` or ``"msg"``, ciphertext)."""
        assert self.send_chain is not None and self.send_ratchet is not None
        ck, mk, iv = self.send_chain.message_keys()
        body = pb_encode(
            [
                (1, djb(_pub(self.send_ratchet))),
                (2, self.send_chain.index),
                (3, self.prev_counter),
                (4, _aes_cbc(ck, iv, plaintext, True)),
            ]
        )
        signed = bytes((VERSION_BYTE,)) + body
        mac = hmac.new(mk, djb(self.identity.pub) + djb(self.remote_identity) + signed, hashlib.sha256)
        msg = signed + mac.digest()[:8]
        self.send_chain.advance()
        if self.pending_prekey is None:
            return "msg", msg
        p = self.pending_prekey
        return "pkmsg", bytes((VERSION_BYTE,)) + pb_encode(
            [
                (1, p["opk_id"]),
                (2, djb(p["base"])),
                (3, djb(self.identity.pub)),
                (4, msg),
                (5, self.reg_id),
                (6, p["spk_id"]),
            ]
        )

    def decrypt_signal_message(self, data: bytes) -> bytes:
        signed, mac = data[:-8], data[-8:]
        f = pb_decode(signed[1:])
        their_ratchet, counter, ct = f[1][-32:], f.get(2, 0), f[4]
        chain = self.recv_chains.get(their_ratchet)
        if chain is None:  # DH ratchet step
            assert self.send_ratchet is not None
            self.root, chain = _create_chain(self.root, their_ratchet, self.send_ratchet)
            self.recv_chains[their_ratchet] = chain
            self.prev_counter = max(self.send_chain.index - 1, 0) if self.send_chain else 0
            self.send_ratchet = X25519PrivateKey.generate()
            self.root, self.send_chain = _create_chain(self.root, their_ratchet, self.send_ratchet)
        while chain.index < counter:  # skipped message keys are dropped (no out-of-order delivery)
            chain.advance()
        ck, mk, iv = chain.message_keys()
        exp = hmac.new(mk, djb(self.remote_identity) + djb(self.identity.pub) + signed, hashlib.sha256)
        if not hmac.compare_digest(exp.digest()[:8], mac):
            raise ValueError("bad MAC")
        chain.advance()
        self.pending_prekey = None  # we heard back: stop sending prekey messages
        return _aes_cbc(ck, iv, ct, False)


def parse_pkmsg(data: bytes) -> dict[int, Any]:
    """Fields of a PreKeySignalMessage (field 4 is the inner SignalMessage)."""
    if data[0] != VERSION_BYTE:
        raise ValueError(f"unsupported Signal message version byte {data[0]:#x}")
    return pb_decode(data[1:])


def wa_pad(pt: bytes) -> bytes:
    """WhatsApp's random padding of plaintext before Signal encryption."""
    n = (os.urandom(1)[0] & 0x0F) or 0x0F
    return pt + bytes((n,)) * n


def wa_unpad(pt: bytes) -> bytes:
    return pt[: -pt[-1]]
