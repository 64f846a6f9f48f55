"""WhatsApp media: the encryption both ends use, and the fake media host (mmg.whatsapp.net).

Media travels outside the chat connection. A sender encrypts the file with a fresh 32-byte
``mediaKey`` (HKDF-SHA256 without salt, per-kind info, 112 bytes: IV, AES-256-CBC key, HMAC
key), uploads ``ciphertext + HMAC-SHA256(iv + ciphertext)[:10]`` by HTTPS POST and sends the
key, hashes and the returned ``directPath`` inside the Signal-encrypted message; the recipient
downloads the blob by GET and checks and decrypts it.

:class:`MediaHost` is the HTTPS side. The client learns its hostnames from the
``<media_conn>`` answer to ``<iq xmlns="w:m">`` and reaches it through the same CONNECT proxy
as the chat WebSocket (:class:`~.server.FakeWAServer` hands it the TLS socket of every tunnel
to an announced host). Blobs are kept in memory by path.

Events recorded on the server (``(kind, data)``, see :mod:`.server`):

==================  ==========================================================================
``media-conn``      ``{"auth", "hosts"}``: the server answered a ``media_conn`` query
``media-upload``    ``{"host", "method", "path", "status", "headers", "blob"}``: a POST
``media-download``  ``{"host", "method", "path", "status", "headers", "blob"}``: a GET
``media-delete``    ``{"host", "method", "path", "status", "headers", "blob"}``: a DELETE
``media-other``     the same for any other method (answered 405)
==================  ==========================================================================

HTTP events are recorded when the answer is ready (after any delay), so a test that saw one
knows the client is getting that answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

from .codec import Node
from .keys import MEDIA_HOST

log = logging.getLogger("fakewa")

MAC_LENGTH = 10

# HKDF info per kind of message (stickers use the image keys, as in whatsmeow).
KEY_INFO = {
    "image": b"WhatsApp Image Keys",
    "video": b"WhatsApp Video Keys",
    "audio": b"WhatsApp Audio Keys",
    "document": b"WhatsApp Document Keys",
    "sticker": b"WhatsApp Image Keys",
}
# The path segment of the upload URL (/mms/<type>/<token>) and the download's mms-type.
MMS_TYPE = {"image": "image", "video": "video", "audio": "audio", "document": "document", "sticker": "image"}
# waE2E.Message field holding each kind.
MESSAGE_FIELD = {
    "image": "imageMessage",
    "video": "videoMessage",
    "audio": "audioMessage",
    "document": "documentMessage",
    "sticker": "stickerMessage",
}
KINDS = tuple(KEY_INFO)

Recorder = Callable[[str, Any], None]


class MediaError(Exception):
    """A media blob that does not match its message (hash, MAC, padding) or cannot be found."""


def b64url(data: bytes) -> str:
    """URL-safe base64 with padding (the upload token and the download ``hash``)."""
    return base64.urlsafe_b64encode(data).decode()


def media_keys(media_key: bytes, kind: str) -> tuple[bytes, bytes, bytes]:
    """``(iv, cipher_key, mac_key)`` expanded from a 32-byte media key for ``kind``."""
    if kind not in KEY_INFO:
        raise ValueError(f"unknown media kind {kind!r}; one of {', '.join(KINDS)}")
    out = HKDF(algorithm=hashes.SHA256(), length=112, salt=None, info=KEY_INFO[kind]).derive(media_key)
    return out[:16], out[16:48], out[48:80]


def _mac(mac_key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    return hmac.new(mac_key, iv + ciphertext, hashlib.sha256).digest()[:MAC_LENGTH]


@dataclass(frozen=True)
class EncryptedMedia:
    """What a sender puts on the media host (``body``) and into its message (the rest)."""

    kind: str
    media_key: bytes
    body: bytes  # ciphertext + 10-byte MAC: the uploaded bytes
    file_sha256: bytes  # of the plaintext
    file_enc_sha256: bytes  # of body
    file_length: int  # of the plaintext


def encrypt_media(data: bytes, kind: str, media_key: bytes | None = None) -> EncryptedMedia:
    """Encrypt ``data`` as a ``kind`` attachment (a fresh random media key unless given)."""
    media_key = media_key if media_key is not None else secrets.token_bytes(32)
    iv, cipher_key, mac_key = media_keys(media_key, kind)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    enc = Cipher(algorithms.AES(cipher_key), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(padded) + enc.finalize()
    body = ciphertext + _mac(mac_key, iv, ciphertext)
    return EncryptedMedia(
        kind=kind,
        media_key=media_key,
        body=body,
        file_sha256=hashlib.sha256(data).digest(),
        file_enc_sha256=hashlib.sha256(body).digest(),
        file_length=len(data),
    )


def decrypt_media(
    body: bytes,
    media_key: bytes,
    kind: str,
    file_enc_sha256: bytes | None = None,
    file_sha256: bytes | None = None,
) -> bytes:
    """Check and decrypt a downloaded blob the way a recipient does; raises :class:`MediaError`.

    The checks, in whatsmeow's order: SHA-256 of the blob against ``file_enc_sha256``, the
    truncated HMAC, PKCS7 padding, SHA-256 of the plaintext against ``file_sha256``. A hash
    that is None is not checked.
    """
    if len(body) <= MAC_LENGTH:
        raise MediaError(f"blob of {len(body)} bytes is too short for a {MAC_LENGTH}-byte MAC")
    if file_enc_sha256 is not None and hashlib.sha256(body).digest() != file_enc_sha256:
        raise MediaError("the blob does not match fileEncSHA256")
    ciphertext, mac = body[:-MAC_LENGTH], body[-MAC_LENGTH:]
    iv, cipher_key, mac_key = media_keys(media_key, kind)
    if not hmac.compare_digest(_mac(mac_key, iv, ciphertext), mac):
        raise MediaError(f"bad MAC: the blob was not encrypted with this mediaKey for {kind!r}")
    if len(ciphertext) % 16:
        raise MediaError(f"ciphertext of {len(ciphertext)} bytes is not a multiple of the AES block")
    dec = Cipher(algorithms.AES(cipher_key), modes.CBC(iv)).decryptor()
    padded = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        data = unpadder.update(padded) + unpadder.finalize()
    except ValueError as e:
        raise MediaError(f"bad PKCS7 padding: {e}") from None
    if file_sha256 is not None and hashlib.sha256(data).digest() != file_sha256:
        raise MediaError("the decrypted file does not match fileSHA256")
    return data


@dataclass(frozen=True)
class Blob:
    """One stored upload."""

    direct_path: str  # what messages carry as directPath ("/v/...enc?ccb=...")
    url: str  # what messages carry as url (https://host + direct path + "&mms3=true")
    mms_type: str  # the upload URL's type segment ("image", "document", ...)
    body: bytes
    uploaded_by: str  # "client" (HTTP upload) or "peer" (stored by the harness)
    handle: str = field(default_factory=lambda: secrets.token_hex(16))
    object_id: str = field(default_factory=lambda: str(secrets.randbits(60)))

    @property
    def path(self) -> str:
        """The direct path without its query: the key the host stores the blob under."""
        return urlsplit(self.direct_path).path

    @property
    def enc_sha256(self) -> bytes:
        return hashlib.sha256(self.body).digest()

    def __repr__(self) -> str:
        return f"<Blob {self.mms_type} {self.path} {len(self.body)} bytes by {self.uploaded_by}>"


@dataclass
class _Fault:
    status: int
    left: int | None  # answers still to fail; None: until cleared


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes


class _HTTPReader:
    """Reads HTTP/1.1 requests (Content-Length or chunked bodies) from a connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("eof in a chunked body")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        """``n`` bytes of a body; large bodies are gathered in parts (linear, not quadratic)."""
        parts = [self.buf]
        have = len(self.buf)
        while have < n:
            chunk = self.sock.recv(min(1 << 20, max(65536, n - have)))
            if not chunk:
                raise ConnectionError(f"eof after {have} of {n} body bytes")
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        out, self.buf = data[:n], data[n:]
        return out

    def request(self) -> _Request | None:
        """The next request, or None when the client closed the connection between requests."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                if self.buf:
                    raise ConnectionError("eof in a request head")
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = {
            k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
        }
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int(self._line().split(b";", 1)[0], 16):
                body += self._exact(size)
                self._exact(2)
            while self._line():  # trailers up to the blank line
                pass
        else:
            body = self._exact(int(headers.get("content-length", "0")))
        return _Request(method, target, version, headers, body)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class MediaHost:
    """The fake media servers: the ``media_conn`` answer and HTTPS upload/download of blobs.

    ``hosts`` is what ``media_conn`` announces (whatsmeow uploads to the first and downloads
    from each in turn until one answers, a 403/404/410 being final); change it before the
    client first asks (it caches the answer for ``ttl`` seconds). Every announced name is
    served the same blobs. Failures and slowness are switched per direction with
    :meth:`fail_downloads`, :meth:`fail_uploads` and :attr:`download_delay` /
    :attr:`upload_delay`.
    """

    def __init__(self, record: Recorder, hosts: list[str] | None = None) -> None:
        self.record = record
        self.hosts: list[str] = list(hosts or [MEDIA_HOST])
        self.ttl = 300
        self.auth_ttl = 21600
        self.max_buckets = 12
        self.download_delay = 0.0  # seconds before a download is answered
        self.upload_delay = 0.0  # seconds before an upload is answered
        self.blobs: dict[str, Blob] = {}  # path without query -> blob
        self._auths: set[str] = set()
        self._announced: set[str] = set(self.hosts)
        self._faults: dict[str, _Fault] = {}  # "GET" / "POST" -> fault
        self._lock = threading.Lock()
        self._closed = threading.Event()

    # -- what the chat server needs --
    def serves(self, host: str) -> bool:
        """Whether a CONNECT to ``host`` is for the media host (an announced name)."""
        with self._lock:
            return host in self._announced or host in self.hosts

    def media_conn_iq(self, _conn: object, iq: Node) -> list[Node] | None:
        """The ``<iq xmlns="w:m">`` handler: announce the hosts with a fresh auth token."""
        if iq.child("media_conn") is None:
            return None
        auth = base64.b64encode(secrets.token_bytes(24)).decode()
        with self._lock:
            self._auths.add(auth)
            hosts = list(self.hosts)
            self._announced.update(hosts)
        self.record("media-conn", {"auth": auth, "hosts": hosts})
        return [
            Node(
                "media_conn",
                {
                    "auth": auth,
                    "ttl": str(self.ttl),
                    "auth_ttl": str(self.auth_ttl),
                    "max_buckets": str(self.max_buckets),
                },
                [Node("host", {"hostname": h}) for h in hosts],
            )
        ]

    def close(self) -> None:
        """Cut delays short (the server is shutting down)."""
        self._closed.set()

    # -- blobs --
    def store(self, body: bytes, mms_type: str, uploaded_by: str = "peer") -> Blob:
        """Keep ``body`` under a fresh direct path, as an upload would; returns the blob."""
        oe = format(int(time.time()) + 30 * 86400, "X")
        n = "_".join(str(secrets.randbits(50)) for _ in range(3))
        direct_path = (
            f"/v/t62.7118-24/{n}_n.enc?ccb=11-4&oh=01_{secrets.token_urlsafe(24)}&oe={oe}&_nc_sid=5e03e0"
        )
        blob = Blob(
            direct_path=direct_path,
            url=f"https://{self.hosts[0]}{direct_path}&mms3=true",
            mms_type=mms_type,
            body=body,
            uploaded_by=uploaded_by,
        )
        with self._lock:
            self.blobs[blob.path] = blob
        return blob

    def blob(self, path_or_url: str) -> Blob | None:
        """The blob a direct path or URL (query ignored) points to, if stored."""
        with self._lock:
            return self.blobs.get(urlsplit(path_or_url).path)

    def delete(self, path_or_url: str) -> bool:
        """Forget a blob (later downloads get 404); returns whether it existed."""
        with self._lock:
            return self.blobs.pop(urlsplit(path_or_url).path, None) is not None

    # -- failure switches --
    def fail_downloads(self, status: int | None, count: int | None = None) -> None:
        """Answer the next ``count`` downloads (every one if None) with HTTP ``status``
        instead of the blob; ``None`` clears.

        whatsmeow gives up at once on 403, 404 and 410; retries the same host on 429, 502,
        503 and 504 (5 attempts, 1 s, 2 s, ... apart); on other codes (500) it tries the next
        announced host, failing after the last one."""
        self._set_fault("GET", status, count)

    def fail_uploads(self, status: int | None, count: int | None = None) -> None:
        """Answer the next ``count`` uploads (every one if None) with HTTP ``status`` without
        storing them; ``None`` clears. whatsmeow's upload fails on any status but 200."""
        self._set_fault("POST", status, count)

    def _set_fault(self, method: str, status: int | None, count: int | None) -> None:
        with self._lock:
            if status is None:
                self._faults.pop(method, None)
            else:
                self._faults[method] = _Fault(status, count)

    def _take_fault(self, method: str) -> int | None:
        with self._lock:
            fault = self._faults.get(method)
            if fault is None:
                return None
            if fault.left is not None:
                fault.left -= 1
                if fault.left <= 0:
                    del self._faults[method]
            return fault.status

    # -- HTTP --
    def serve(self, sock: socket.socket, host: str) -> None:
        """Answer HTTP/1.1 requests on one (TLS) connection to ``host`` until it closes."""
        reader = _HTTPReader(sock)
        while (req := reader.request()) is not None:
            log.info("media %s %s %s", host, req.method, req.target)
            status, body, ctype = self._answer(host, req)
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            if req.headers.get("connection", "").lower() == "close" or req.version == "HTTP/1.0":
                return

    def _answer(self, host: str, req: _Request) -> tuple[int, bytes, str]:
        parts = urlsplit(req.target)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        info: dict[str, Any] = {
            "host": host,
            "method": req.method,
            "path": req.target,
            "headers": req.headers,
            "blob": None,
        }
        if req.method == "POST":
            kind, delay = "media-upload", self.upload_delay
            status, body, ctype = self._upload(parts.path, query, req.body, info)
        elif req.method == "GET":
            kind, delay = "media-download", self.download_delay
            status, body, ctype = self._download(parts.path, info)
        elif req.method == "DELETE":
            kind, delay = "media-delete", 0.0
            status, body, ctype = self._delete(query, info)
        else:
            kind, delay = "media-other", 0.0
            status, body, ctype = 405, b"", "text/plain"
        info["status"] = status
        if delay:
            self._closed.wait(delay)
        self.record(kind, info)
        return status, body, ctype

    def _upload(
        self, path: str, query: dict[str, str], body: bytes, info: dict[str, Any]
    ) -> tuple[int, bytes, str]:
        segments = path.strip("/").split("/")
        if len(segments) < 3 or segments[0] not in ("mms", "newsletter", "wa-msgr"):
            return 404, b"", "text/plain"
        mms_type, token = segments[-2], segments[-1]
        fault = self._take_fault("POST")
        if fault is not None:
            return fault, _json({"error": f"fake failure {fault}"}), "application/json"
        with self._lock:
            known_auth = query.get("auth") in self._auths
        if not known_auth:
            return 401, _json({"error": "unknown auth"}), "application/json"
        if token != b64url(hashlib.sha256(body).digest()) or query.get("token") != token:
            return 400, _json({"error": "token is not the SHA-256 of the body"}), "application/json"
        blob = self.store(body, mms_type, uploaded_by="client")
        info["blob"] = blob
        answer = {
            "url": blob.url,
            "direct_path": blob.direct_path,
            "handle": blob.handle,
            "object_id": blob.object_id,
        }
        return 200, _json(answer), "application/json"

    def _download(self, path: str, info: dict[str, Any]) -> tuple[int, bytes, str]:
        blob = self.blob(path)
        info["blob"] = blob
        fault = self._take_fault("GET")
        if fault is not None:
            return fault, b"", "text/plain"
        if blob is None:
            return 404, b"", "text/plain"
        return 200, blob.body, "application/octet-stream"

    def _delete(self, query: dict[str, str], info: dict[str, Any]) -> tuple[int, bytes, str]:
        d_md = query.get("d_md", "")
        try:
            path = base64.urlsafe_b64decode(d_md + "=" * (-len(d_md) % 4)).decode()
        except ValueError:
            return 400, b"", "text/plain"
        info["blob"] = self.blob(path)
        return (200 if self.delete(path) else 404), b"", "text/plain"


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# -- media messages --

DEFAULT_MIMETYPE = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/ogg; codecs=opus",
    "document": "application/octet-stream",
    "sticker": "image/webp",
}
_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
)


def media_of(msg: Message) -> tuple[str, Any] | None:
    """``(kind, the ImageMessage/DocumentMessage/... inside)`` of a media message, else None.

    Looks through the wrappers WhatsApp puts around media (ephemeral, view once, document
    with caption)."""
    for _ in range(4):
        wrapper = next((w for w in _WRAPPERS if msg.HasField(w)), None)
        if wrapper is None:
            break
        msg = getattr(msg, wrapper).message
    for kind, name in MESSAGE_FIELD.items():
        if msg.HasField(name):
            return kind, getattr(msg, name)
    return None


def build_media_message(
    enc: EncryptedMedia,
    blob: Blob,
    mimetype: str | None = None,
    *,
    caption: str | None = None,
    filename: str | None = None,
    seconds: int | None = None,
    ptt: bool = False,
    width: int | None = None,
    height: int | None = None,
    thumbnail: bytes | None = None,
    **fields: Any,
) -> Message:
    """The ``waE2E.Message`` announcing an uploaded attachment, as a phone would build it.

    ``caption`` applies to images, videos and documents, ``filename`` to documents (it is also
    their title), ``seconds`` to audio and video, ``ptt`` (voice note) to audio, ``width``,
    ``height`` to images, videos and stickers, ``thumbnail`` (JPEG bytes) to images, videos and
    documents. ``fields`` sets further fields of the inner message by their protobuf names.
    """
    kind = enc.kind
    msg = Message()
    inner = getattr(msg, MESSAGE_FIELD[kind])
    inner.URL = blob.url
    inner.directPath = blob.direct_path
    inner.mediaKey = enc.media_key
    inner.fileSHA256 = enc.file_sha256
    inner.fileEncSHA256 = enc.file_enc_sha256
    inner.fileLength = enc.file_length
    inner.mimetype = mimetype or DEFAULT_MIMETYPE[kind]
    inner.mediaKeyTimestamp = int(time.time())
    options = [  # (argument, field, value); a document's file name is also its title
        ("caption", "caption", caption),
        ("filename", "fileName", filename),
        ("filename", "title", filename),
        ("seconds", "seconds", seconds),
        ("ptt", "PTT", ptt or None),
        ("width", "width", width),
        ("height", "height", height),
        ("thumbnail", "JPEGThumbnail", thumbnail),
    ]
    allowed = {f.name for f in inner.DESCRIPTOR.fields}
    for arg, name, value in options:
        if value is None or (name == "title" and name not in allowed):
            continue
        if name not in allowed:
            raise ValueError(f"a {kind} message has no {name} field (the {arg} argument)")
        setattr(inner, name, value)
    for name, value in fields.items():
        if name not in allowed:
            raise ValueError(f"{type(inner).__name__} has no field {name!r}")
        setattr(inner, name, value)
    return msg
