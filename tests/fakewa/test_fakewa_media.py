"""Tests of the fake's media host: the crypto, the HTTPS host, and the real client uploading
to it and downloading from it (clients from the ``paired`` fixture, ``conftest.py``)."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import ssl
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from neonize.events import MessageEv
from neonize.exc import DownloadError, UploadError
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ImageMessage, Message
from neonize.utils import build_jid
from neonize.utils.enum import MediaType

from fakewa.bare_client import BareClient
from fakewa.codec import Node
from fakewa.harness import FakeWhatsApp
from fakewa.keys import MEDIA_HOST, TestPKI
from fakewa.media import MediaError, b64url, decrypt_media, encrypt_media, media_keys, media_of

PEER = "15550002222"
ORIGIN = "https://web.whatsapp.com"


def png(width: int = 64, height: int = 48) -> bytes:
    """A PNG of random pixels (incompressible, so every test file is distinct)."""
    from PIL import Image

    img = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def media_events(fake: FakeWhatsApp, kind: str) -> list[dict[str, Any]]:
    return [data for k, data in fake.events if k == kind]


# ---- pieces without a client ----


def test_media_crypto_round_trip_and_checks() -> None:
    data = os.urandom(1000)
    enc = encrypt_media(data, "document")
    assert len(enc.media_key) == 32
    assert enc.file_sha256 == hashlib.sha256(data).digest()
    assert enc.file_enc_sha256 == hashlib.sha256(enc.body).digest()
    assert enc.file_length == 1000
    assert len(enc.body) == 1008 + 10  # PKCS7 to 1008 bytes, then the 10-byte MAC
    assert decrypt_media(enc.body, enc.media_key, "document", enc.file_enc_sha256, enc.file_sha256) == data

    iv, key, mac_key = media_keys(enc.media_key, "document")
    assert (len(iv), len(key), len(mac_key)) == (16, 32, 32)
    assert media_keys(enc.media_key, "sticker") == media_keys(enc.media_key, "image")
    assert media_keys(enc.media_key, "image") != (iv, key, mac_key)

    with pytest.raises(MediaError, match="fileEncSHA256"):
        decrypt_media(enc.body[:-1] + b"\x00", enc.media_key, "document", enc.file_enc_sha256)
    with pytest.raises(MediaError, match="bad MAC"):
        decrypt_media(enc.body[:-1] + bytes([enc.body[-1] ^ 1]), enc.media_key, "document")
    with pytest.raises(MediaError, match="bad MAC"):
        decrypt_media(enc.body, enc.media_key, "image")  # the keys depend on the kind
    with pytest.raises(MediaError, match="fileSHA256"):
        decrypt_media(enc.body, enc.media_key, "document", None, hashlib.sha256(b"other").digest())
    with pytest.raises(ValueError, match="unknown media kind"):
        encrypt_media(data, "hologram")


def test_media_of_looks_through_wrappers() -> None:
    inner = Message(imageMessage=ImageMessage(caption="wrapped"))
    msg = Message()
    msg.viewOnceMessageV2.message.CopyFrom(inner)
    found = media_of(msg)
    assert found is not None and found[0] == "image" and found[1].caption == "wrapped"
    assert media_of(Message(conversation="just text")) is None


class MediaSession:
    """HTTPS requests to the fake media host through the fake's CONNECT proxy, one connection."""

    def __init__(self, fake: FakeWhatsApp, pki: TestPKI, host: str = MEDIA_HOST) -> None:
        ctx = ssl.create_default_context(cafile=pki.ca_file)
        self.conn = http.client.HTTPSConnection("127.0.0.1", fake.port, context=ctx, timeout=10)
        self.conn.set_tunnel(host, 443)

    def request(self, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        self.conn.request(method, target, body=body, headers={"Origin": ORIGIN})
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()


def test_media_host_over_the_proxy(fake_wa: FakeWhatsApp, fakewa_pki: TestPKI) -> None:
    answer = fake_wa.media.media_conn_iq(None, Node("iq", {"xmlns": "w:m"}, [Node("media_conn")]))
    assert answer is not None
    mc = answer[0]
    assert mc.tag == "media_conn" and int(mc.attrs["ttl"]) > 0
    assert [h.attrs["hostname"] for h in mc.children()] == [MEDIA_HOST]
    auth = mc.attrs["auth"]

    body = encrypt_media(b"over https", "image").body
    token = b64url(hashlib.sha256(body).digest())
    assert token.endswith("=")  # 32 bytes: URL-safe base64 keeps its padding
    session = MediaSession(fake_wa, fakewa_pki)
    try:
        upload = f"/mms/image/{token}?" + urlencode({"auth": auth, "token": token})
        wrong_auth = f"/mms/image/{token}?" + urlencode({"auth": "wrong", "token": token})
        status, _ = session.request("POST", wrong_auth, body)
        assert status == 401
        status, _ = session.request("POST", upload, body + b"x")
        assert status == 400  # the token is not the hash of this body
        status, raw = session.request("POST", upload, body)
        assert status == 200
        uploaded = json.loads(raw)
        assert set(uploaded) == {"url", "direct_path", "handle", "object_id"}
        direct_path = uploaded["direct_path"]
        assert direct_path.startswith("/") and "?" in direct_path
        assert uploaded["url"].startswith(f"https://{MEDIA_HOST}{direct_path}")

        get = f"{direct_path}&hash={token}&mms-type=image&__wa-mms="
        assert session.request("GET", get) == (200, body)  # same connection: keep-alive
        assert session.request("GET", "/v/t62.7118-24/unknown.enc?ccb=11-4&hash=x")[0] == 404

        fake_wa.fail_media_downloads(410, count=1)
        assert session.request("GET", get)[0] == 410
        assert session.request("GET", get) == (200, body)  # the switch was for one answer
        fake_wa.fail_media_downloads(500)
        assert [session.request("GET", get)[0] for _ in range(2)] == [500, 500]
        fake_wa.fail_media_downloads(None)
        assert session.request("GET", get)[0] == 200
    finally:
        session.close()

    blob = fake_wa.media.blob(direct_path)
    assert blob is not None and blob.body == body and blob.uploaded_by == "client"
    uploads = media_events(fake_wa, "media-upload")
    assert [u["status"] for u in uploads] == [401, 400, 200]
    assert uploads[-1]["blob"] == blob and uploads[-1]["headers"]["origin"] == ORIGIN
    downloads = media_events(fake_wa, "media-download")
    assert [d["status"] for d in downloads] == [200, 404, 410, 200, 500, 500, 200]
    assert ("proxy-connect", f"{MEDIA_HOST}:443") in fake_wa.events
    assert fake_wa.connection_count == 0  # media tunnels are not chat connections


def test_unannounced_hosts_stay_chat_connections(fake_wa: FakeWhatsApp, fakewa_pki: TestPKI) -> None:
    session = MediaSession(fake_wa, fakewa_pki, host="other.whatsapp.net")
    try:
        with pytest.raises((ConnectionError, http.client.HTTPException)):  # no WebSocket upgrade
            session.request("GET", "/v/anything")
    finally:
        session.close()
    assert fake_wa.media.serves(MEDIA_HOST) and not fake_wa.media.serves("other.whatsapp.net")
    assert ("proxy-connect", "other.whatsapp.net:443") in fake_wa.events
    assert not media_events(fake_wa, "media-download")


# ---- the real client in this process ----


@pytest.mark.e2e
def test_client_image_reaches_the_peer(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    picture = png()
    msg = paired.client.build_image_message(picture, caption="a picture")
    resp = paired.client.send_message(build_jid(PEER), msg)

    got = fake_wa.wait_media_from_client(PEER, kind="image")
    assert got.message_id == resp.ID
    assert got.plaintext == picture
    assert (got.kind, got.caption, got.mimetype) == ("image", "a picture", "image/png")
    assert got.fields.fileLength == len(picture)
    assert got.blob.uploaded_by == "client" and got.blob.mms_type == "image"
    assert fake_wa.texts_received(PEER) == []  # a media message is not a text

    (upload,) = media_events(fake_wa, "media-upload")
    assert upload["host"] == MEDIA_HOST and upload["status"] == 200
    assert upload["path"].startswith("/mms/image/")
    assert upload["headers"]["origin"] == ORIGIN
    assert ("proxy-connect", f"{MEDIA_HOST}:443") in fake_wa.events  # through the proxy


@pytest.mark.e2e
def test_client_document_and_raw_upload(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    data = os.urandom(5000)
    up = paired.client.upload(data, MediaType.MediaDocument)
    blob = fake_wa.media.blob(up.DirectPath)
    assert blob is not None
    assert decrypt_media(blob.body, up.MediaKey, "document", up.FileEncSHA256, up.FileSHA256) == data
    assert media_events(fake_wa, "media-upload")[0]["path"].startswith("/mms/document/")

    report = b"%PDF-1.4 fake report " + os.urandom(300)
    msg = paired.client.build_document_message(
        report, filename="report.pdf", mimetype="application/pdf", caption="see attached"
    )
    resp = paired.client.send_message(build_jid(PEER), msg)
    got = fake_wa.peer(PEER).wait_media(kind="document")
    assert (got.message_id, got.plaintext) == (resp.ID, report)
    assert (got.file_name, got.mimetype, got.caption) == ("report.pdf", "application/pdf", "see attached")
    assert [m.message_id for m in fake_wa.media_received(PEER)] == [resp.ID]
    # whatsmeow asks for the media hosts once and reuses them
    assert len(media_events(fake_wa, "media-conn")) == 1


@pytest.mark.e2e
def test_peer_checks_what_the_client_announces(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    data = png()
    up = paired.client.upload(data, MediaType.MediaImage)
    lying = Message(
        imageMessage=ImageMessage(
            URL=up.url,
            directPath=up.DirectPath,
            mediaKey=up.MediaKey,
            fileEncSHA256=up.FileEncSHA256,
            fileSHA256=hashlib.sha256(b"another file").digest(),
            fileLength=up.FileLength,
            mimetype="image/png",
        )
    )
    paired.client.send_message(build_jid(PEER), lying)
    with pytest.raises(MediaError, match="fileSHA256"):
        fake_wa.wait_media_from_client(PEER)


@pytest.mark.e2e
def test_peer_document_downloads_in_the_client(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    data = b"%PDF-1.4 " + os.urandom(20000)
    sent = fake_wa.peer(PEER).send_media(
        "document", data, "application/pdf", filename="invoice.pdf", caption="your invoice"
    )
    ev = paired.wait_event(MessageEv, pred=lambda e: sent.message_id == e.Info.ID)
    doc = ev.Message.documentMessage
    assert (doc.fileName, doc.mimetype, doc.caption) == ("invoice.pdf", "application/pdf", "your invoice")
    assert doc.fileLength == len(data) and doc.directPath == sent.blob.direct_path

    assert paired.client.download_any(ev.Message) == data

    (download,) = media_events(fake_wa, "media-download")
    assert download["status"] == 200 and download["blob"] == sent.blob
    assert download["headers"]["origin"] == ORIGIN
    query = parse_qs(urlsplit(download["path"]).query, keep_blank_values=True)
    assert query["hash"] == [b64url(sent.fields.fileEncSHA256)]
    assert query["mms-type"] == ["document"]
    assert "__wa-mms" in query


@pytest.mark.e2e
def test_peer_media_of_each_kind(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    peer = fake_wa.peer(PEER)
    cases = [
        ("image", png(), {"caption": "look", "width": 64, "height": 48, "thumbnail": b"\xff\xd8thumb"}),
        ("video", os.urandom(3000), {"caption": "watch", "seconds": 3}),
        ("audio", os.urandom(2000), {"seconds": 2, "ptt": True}),
        ("sticker", os.urandom(1500), {"width": 512, "height": 512}),
    ]
    for kind, data, options in cases:
        sent = peer.send_media(kind, data, **options)
        ev = paired.wait_event(MessageEv, pred=lambda e, mid=sent.message_id: mid == e.Info.ID)
        found = media_of(ev.Message)
        assert found is not None and found[0] == kind
        assert paired.client.download_any(ev.Message) == data, kind
    last = media_events(fake_wa, "media-download")
    assert [urlsplit(d["path"]).query.split("mms-type=")[1].split("&")[0] for d in last] == [
        "image",
        "video",
        "audio",
        "image",  # stickers are image media
    ]
    image = media_of(paired.wait_event(MessageEv, pred=lambda e: e.Message.HasField("imageMessage")).Message)
    assert image is not None
    assert (image[1].caption, image[1].width, image[1].JPEGThumbnail) == ("look", 64, b"\xff\xd8thumb")
    audio = media_of(paired.wait_event(MessageEv, pred=lambda e: e.Message.HasField("audioMessage")).Message)
    assert audio is not None and (audio[1].PTT, audio[1].seconds) == (True, 2)
    with pytest.raises(ValueError, match="no fileName"):
        peer.send_media("image", b"x", filename="not for images")


@pytest.mark.e2e
@pytest.mark.parametrize("status", [404, 410, 403])
def test_final_download_failures(fake_wa: FakeWhatsApp, paired: BareClient, status: int) -> None:
    data = png()
    sent = fake_wa.peer(PEER).send_media("image", data)
    ev = paired.wait_event(MessageEv, pred=lambda e: sent.message_id == e.Info.ID)
    fake_wa.fail_media_downloads(status)
    with pytest.raises(DownloadError, match=str(status)):
        paired.client.download_any(ev.Message)
    assert [d["status"] for d in media_events(fake_wa, "media-download")] == [status]  # not retried
    fake_wa.fail_media_downloads(None)
    assert paired.client.download_any(ev.Message) == data


@pytest.mark.e2e
def test_download_retried_while_unavailable(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    data = png()
    sent = fake_wa.peer(PEER).send_media("image", data)
    ev = paired.wait_event(MessageEv, pred=lambda e: sent.message_id == e.Info.ID)
    fake_wa.fail_media_downloads(503, count=1)
    assert paired.client.download_any(ev.Message) == data
    downloads = media_events(fake_wa, "media-download")
    assert [(d["host"], d["status"]) for d in downloads] == [(MEDIA_HOST, 503), (MEDIA_HOST, 200)]


@pytest.mark.e2e
def test_server_error_moves_to_the_next_host(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    fallback = "mmg-fallback.whatsapp.net"
    fake_wa.media.hosts = [MEDIA_HOST, fallback]  # before the client first asks for them
    data = os.urandom(3000)
    sent = fake_wa.peer(PEER).send_media("document", data, filename="twice.bin")
    ev = paired.wait_event(MessageEv, pred=lambda e: sent.message_id == e.Info.ID)
    fake_wa.fail_media_downloads(500, count=1)
    assert paired.client.download_any(ev.Message) == data
    downloads = media_events(fake_wa, "media-download")
    assert [(d["host"], d["status"]) for d in downloads] == [(MEDIA_HOST, 500), (fallback, 200)]

    fake_wa.fail_media_downloads(500)  # every host fails
    with pytest.raises(DownloadError, match=r"last host.*500"):
        paired.client.download_any(ev.Message)
    assert [d["host"] for d in media_events(fake_wa, "media-download")[2:]] == [MEDIA_HOST, fallback]


@pytest.mark.e2e
def test_deleted_blob_is_not_found(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    sent = fake_wa.peer(PEER).send_media("document", b"short-lived", filename="gone.txt")
    ev = paired.wait_event(MessageEv, pred=lambda e: sent.message_id == e.Info.ID)
    assert fake_wa.media.delete(sent.blob.direct_path)
    with pytest.raises(DownloadError, match="404"):
        paired.client.download_any(ev.Message)


@pytest.mark.e2e
def test_upload_failure_and_slow_download(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    fake_wa.fail_media_uploads(500)
    with pytest.raises(UploadError, match="500"):
        paired.client.upload(b"refused", MediaType.MediaDocument)
    assert not fake_wa.media.blobs
    fake_wa.fail_media_uploads(None)
    assert fake_wa.media.blob(paired.client.upload(b"accepted", MediaType.MediaDocument).DirectPath)

    data = os.urandom(4000)
    sent = fake_wa.peer(PEER).send_media("document", data, filename="slow.bin")
    ev = paired.wait_event(MessageEv, pred=lambda e: sent.message_id == e.Info.ID)
    fake_wa.slow_media(download=1.5)
    start = time.monotonic()
    assert paired.client.download_any(ev.Message) == data
    assert time.monotonic() - start >= 1.5
