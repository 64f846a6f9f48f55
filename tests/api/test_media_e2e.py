"""Media end to end: the real ``wadesk --headless`` process and the real neonize client
against the fake WhatsApp server and its media host. The fake peer downloads and decrypts
what the client uploads, byte for byte; what the peer sends is downloaded by the gateway and
served at ``/media/<id>``."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Callable

import pytest
from core.test_media import mp4, ogg_opus, pdf_pages
from fakewa.harness import FakeWhatsApp
from headless_harness import PEER_PHONE, Headless, Receiver, pair, wait_until
from PIL import Image
from test_headless_e2e import PEER

pytestmark = pytest.mark.e2e

FAST = {"WADESK_SEND_INTERVAL": "0"}


def photo(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 140, 90)).save(out, "JPEG", quality=90)
    return out.getvalue()


def send_file(gw: Headless, data: bytes, name: str, **form: str) -> str:
    answer = gw.post("/send", data={"to": PEER, **form}, files={"file": (name, data)})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def test_an_image_by_multipart_and_one_by_json_reach_the_peer_byte_for_byte(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env(**FAST)).start()
    pair(gw, fake_wa)
    first = photo()
    send_file(gw, first, "holiday.jpg", caption="the view")
    got = fake_wa.wait_media_from_client(PEER_PHONE, timeout=30, kind="image")
    assert got.plaintext == first
    assert hashlib.sha256(got.plaintext).digest() == bytes(got.fields.fileSHA256)
    assert (got.fields.caption, got.fields.mimetype) == ("the view", "image/jpeg")
    assert (got.fields.width, got.fields.height) == (640, 480)
    thumbnail = Image.open(io.BytesIO(bytes(got.fields.JPEGThumbnail)))
    assert thumbnail.format == "JPEG" and max(thumbnail.size) <= 100

    second = photo(200, 300)
    answer = gw.post("/send", json={"to": PEER, "media": {"data": base64.b64encode(second).decode()}})
    assert answer.status_code == 202, answer.text
    got = fake_wa.wait_media_from_client(PEER_PHONE, timeout=30, kind="image")
    assert got.plaintext == second and (got.fields.width, got.fields.height) == (200, 300)
    sent = wait_until(lambda: (m := gw.message(answer.json()["id"]))["status"] == "sent" and m, 20, "sent")
    assert sent["media"]["kind"] == "image" and sent["media"]["sha256"] == hashlib.sha256(second).hexdigest()
    assert gw.stop() == 0


def test_a_document_a_voice_note_and_a_video_arrive_as_a_phone_needs_them(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env(**FAST)).start()
    pair(gw, fake_wa)
    document = pdf_pages(3)
    send_file(gw, document, "Quarterly report.pdf")
    got = fake_wa.wait_media_from_client(PEER_PHONE, timeout=30, kind="document")
    assert got.plaintext == document
    assert (got.fields.fileName, got.fields.mimetype, got.fields.pageCount) == (
        "Quarterly report.pdf",
        "application/pdf",
        3,
    )

    voice = ogg_opus(seconds=3.2)
    send_file(gw, voice, "note.ogg")
    got = fake_wa.wait_media_from_client(PEER_PHONE, timeout=30, kind="audio")
    assert got.plaintext == voice
    assert got.fields.PTT is True
    assert got.fields.mimetype == "audio/ogg; codecs=opus"
    assert got.fields.seconds == 3

    video = mp4(seconds=4.0)
    send_file(gw, video, "clip.mp4", caption="watch")
    got = fake_wa.wait_media_from_client(PEER_PHONE, timeout=30, kind="video")
    assert got.plaintext == video and got.fields.seconds == 4 and got.fields.caption == "watch"
    assert gw.stop() == 0


def test_media_from_the_peer_reaches_the_webhook_and_is_served_identical(
    fake_wa: FakeWhatsApp,
    receiver: Receiver,
    hooked_gateway: Callable[..., Headless],
) -> None:
    gw = hooked_gateway(**FAST)
    peer = fake_wa.peer(PEER_PHONE)
    image, document = photo(320, 240), pdf_pages(2)
    peer.send_media("image", image, "image/jpeg", caption="from the phone", width=320, height=240)
    peer.send_media("document", document, "application/pdf", filename="contract.pdf")

    wait_until(lambda: len(receiver.payloads("message.received")) >= 2, 30, "two message webhooks")
    by_kind = {p["media"]["kind"]: p for p in receiver.payloads("message.received")}
    assert by_kind["image"]["text"] == "from the phone"
    assert by_kind["document"]["media"]["filename"] == "contract.pdf"
    for kind, original in (("image", image), ("document", document)):
        media = by_kind[kind]["media"]
        assert media["state"] == "stored" and "data" not in media  # a link, never the bytes inline
        served = gw.get(media["url"])
        assert served.status_code == 200 and served.content == original
    assert gw.get(by_kind["document"]["media"]["url"]).headers["Content-Type"] == "application/pdf"
    assert gw.stop() == 0


def test_kill_9_while_the_upload_runs_sends_the_file_once_and_retention_removes_it(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    env = gateway_env(WADESK_MEDIA_RETENTION_DAYS="0", **FAST)
    first = headless(env).start()
    pair(first, fake_wa)
    fake_wa.slow_media(upload=4.0)
    data = photo(100, 100)
    message_id = send_file(first, data, "once.jpg")
    fake_wa.wait_for(lambda kind, _data: kind == "media-upload", 30, "the upload to begin")
    first.kill()  # after the 202, before the upload finished
    fake_wa.slow_media()
    again = headless(env).start()
    again.wait_state("connected")
    got = fake_wa.wait_media_from_client(PEER_PHONE, timeout=60, kind="image")
    assert got.plaintext == data
    sent = wait_until(lambda: (m := again.message(message_id))["status"] == "sent" and m, 30, "sent")
    assert sent["possible_duplicate"] is True  # said honestly: the first attempt was cut short
    assert fake_wa.media_received(PEER_PHONE) == [got]  # once
    file = again.data_dir / "media" / hashlib.sha256(data).hexdigest()
    wait_until(lambda: not file.exists(), 30, "the file to be removed after its retention")
    assert again.message(message_id)["media"]["state"] == "deleted"
    assert os.listdir(again.data_dir / "media" / "tmp") == []
    assert again.stop() == 0
