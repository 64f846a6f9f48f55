"""Key material for the fake server: XEdDSA-compatible signing keys and a throwaway TLS PKI."""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

WA_HOST = "web.whatsapp.com"
MEDIA_HOST = "mmg.whatsapp.net"
# Names the server certificate covers: the chat host and any one-label media host
# (mmg.whatsapp.net, or others a test announces in media_conn).
SERVER_NAMES = (WA_HOST, "*.whatsapp.net")

# Curve25519 keys that can also make libsignal/XEdDSA-verifiable signatures.
#
# libsignal verifies by mapping the Montgomery u coordinate to the Edwards y coordinate and
# takes the sign bit from sig[63]. A plain Ed25519 signature (top bit of sig[63] is 0) therefore
# verifies if and only if the Ed25519 public key has sign bit 0. So: pick Ed25519 keys with sign
# bit 0, publish the Montgomery form and sign with plain Ed25519. The matching X25519 private
# scalar is the (clamped) first half of SHA512(seed), so the same key also works for DH.
_P = 2**255 - 19


def _ed_to_mont(edpub: bytes) -> bytes:
    y = int.from_bytes(edpub, "little") & ((1 << 255) - 1)
    return ((1 + y) * pow(1 - y, _P - 2, _P) % _P).to_bytes(32, "little")


class SignKeyPair:
    """A Curve25519 key usable both for X25519 (``dh``) and for XEdDSA-compatible ``sign``."""

    def __init__(self) -> None:
        while True:
            sk = Ed25519PrivateKey.generate()
            edpub = sk.public_key().public_bytes_raw()
            if not edpub[31] & 0x80:
                break
        self._sk = sk
        self.pub: bytes = _ed_to_mont(edpub)
        scalar = hashlib.sha512(sk.private_bytes_raw()).digest()[:32]
        self.dh = X25519PrivateKey.from_private_bytes(scalar)
        assert self.dh.public_key().public_bytes_raw() == self.pub

    def sign(self, msg: bytes) -> bytes:
        return self._sk.sign(msg)


def x25519_pub(k: X25519PrivateKey) -> bytes:
    return k.public_key().public_bytes_raw()


class TestPKI:
    """Throwaway CA plus one server certificate for ``hostnames``, stored in ``directory``.

    The certificate covers web.whatsapp.com and ``*.whatsapp.net`` (the media hosts) by default.

    Clients trust it through ``SSL_CERT_FILE=<ca_file>`` (Go's crypto/x509 and Python's ssl
    both honour it). If the directory already holds a key, the existing files are reused, so
    a re-executed process and its children share one CA.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, directory: str, hostnames: tuple[str, ...] = SERVER_NAMES) -> None:
        self.directory = directory
        self.ca_file = os.path.join(directory, "ca.pem")
        self.cert_file = os.path.join(directory, "server.pem")
        self.key_file = os.path.join(directory, "server.key")
        if os.path.exists(self.key_file):
            return
        now = datetime.datetime.now(datetime.UTC)
        validity = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-wa test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        with open(self.ca_file, "wb") as f:
            f.write(ca.public_bytes(pem))
        with open(self.cert_file, "wb") as f:
            f.write(cert.public_bytes(pem) + ca.public_bytes(pem))
        with open(self.key_file, "wb") as f:
            f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx
