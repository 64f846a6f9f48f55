"""Minimal libsignal (v3) pairwise sessions: X3DH and the Double Ratchet, enough for a fake peer.

Written from the Signal specifications (X3DH, Double Ratchet) and libsignal's wire format.
Groups use libsignal's sender keys (:class:`SenderKey`). Not covered: skipped message keys
(out-of-order delivery) in pairwise sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION_BYTE = 0x33


class IdentityKey(Protocol):
    pub: bytes
    dh: X25519PrivateKey


class SigningKey(Protocol):
    pub: bytes

    def sign(self, msg: bytes) -> bytes: ...


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


_P = 2**255 - 19


def xeddsa_verify(mont_pub: bytes, msg: bytes, sig: bytes) -> bool:
    """Verify a Curve25519 (XEdDSA) signature as libsignal does: the Edwards key comes from
    the Montgomery key, its sign bit from the top bit of the signature's last byte."""
    u = int.from_bytes(mont_pub[-32:], "little") % _P
    if (u + 1) % _P == 0:
        return False
    y = (u - 1) * pow(u + 1, _P - 2, _P) % _P
    ed = bytearray(y.to_bytes(32, "little"))
    ed[31] |= sig[63] & 0x80
    fixed = sig[:63] + bytes((sig[63] & 0x7F,))
    try:
        Ed25519PublicKey.from_public_bytes(bytes(ed)).verify(fixed, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


class SenderKey:
    """One sender's key in one group (libsignal's sender key state).

    The chain key ratchets with HMAC-SHA256 (0x01: message key seed, 0x02: next chain key);
    a message key is HKDF(seed, info "WhisperGroup") = 16-byte IV + 32-byte AES-CBC key.
    The sender signs every message with its signing key; receivers know only its public half.
    """

    def __init__(
        self,
        key_id: int,
        iteration: int,
        chain_key: bytes,
        signing_pub: bytes,
        signing: SigningKey | None = None,
    ) -> None:
        self.key_id, self.iteration, self.chain_key = key_id, iteration, chain_key
        self.signing_pub, self.signing = signing_pub[-32:], signing

    @classmethod
    def generate(cls, signing: SigningKey) -> SenderKey:
        """A fresh own sender key (random id and chain key), signed with ``signing``."""
        return cls(int.from_bytes(os.urandom(4), "big") >> 1, 0, os.urandom(32), signing.pub, signing)

    @classmethod
    def from_distribution(cls, data: bytes) -> SenderKey:
        """The receiving side of a serialized SenderKeyDistributionMessage."""
        if data[0] != VERSION_BYTE:
            raise ValueError(f"unsupported sender key distribution version byte {data[0]:#x}")
        f = pb_decode(data[1:])
        return cls(f.get(1, 0), f.get(2, 0), f[3], f[4])

    def distribution(self) -> bytes:
        """The serialized SenderKeyDistributionMessage for the current chain state."""
        return bytes((VERSION_BYTE,)) + pb_encode(
            [(1, self.key_id), (2, self.iteration), (3, self.chain_key), (4, djb(self.signing_pub))]
        )

    def _message_key(self, iteration: int) -> tuple[bytes, bytes]:
        if iteration < self.iteration:
            raise ValueError(f"sender key message {iteration} is older than the chain ({self.iteration})")
        while self.iteration < iteration:
            self._advance()
        seed = hmac.new(self.chain_key, b"\x01", hashlib.sha256).digest()
        d = _kdf(seed, None, b"WhisperGroup", 48)
        self._advance()
        return d[:16], d[16:48]

    def _advance(self) -> None:
        self.chain_key = hmac.new(self.chain_key, b"\x02", hashlib.sha256).digest()
        self.iteration += 1

    def encrypt(self, plaintext: bytes) -> bytes:
        """A signed SenderKeyMessage (the content of ``<enc type="skmsg">``)."""
        if self.signing is None:
            raise ValueError("only the owner of a sender key can encrypt with it")
        iteration = self.iteration
        iv, key = self._message_key(iteration)
        body = bytes((VERSION_BYTE,)) + pb_encode(
            [(1, self.key_id), (2, iteration), (3, _aes_cbc(key, iv, plaintext, True))]
        )
        return body + self.signing.sign(body)

    def decrypt(self, data: bytes) -> bytes:
        """Check the signature of a SenderKeyMessage and decrypt it."""
        body, sig = data[:-64], data[-64:]
        if body[0] != VERSION_BYTE:
            raise ValueError(f"unsupported sender key message version byte {body[0]:#x}")
        if not xeddsa_verify(self.signing_pub, body, sig):
            raise ValueError("bad sender key message signature")
        f = pb_decode(body[1:])
        if f.get(1, 0) != self.key_id:
            raise ValueError(f"sender key id {f.get(1, 0)} is not the distributed {self.key_id}")
        iv, key = self._message_key(f.get(2, 0))
        return _aes_cbc(key, iv, f[3], False)


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
