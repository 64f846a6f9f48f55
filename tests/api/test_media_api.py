"""Media through the HTTP API (a real Session on the fake driver, the real Flask app):
multipart and JSON sends, every refusal (4xx naming the field, nothing queued, no file left)
and GET /media/<id> for sent and received files."""

from __future__ import annotations

import base64
import hashlib
import io
import time
from pathlib import Path

import pytest
from headless_harness import TOKEN, FakeWorld, make_session, start_session, wait_until
from PIL import Image

from wadesk.api.app import create_app
from wadesk.core import driver as drv

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PEER = "+1 555 000 2222"
PEER_JID = "15550002222@s.whatsapp.net"
PDF = b"%PDF-1.4\n1 0 obj<</Type /Page>>endobj\n2 0 obj<</Type /Page>>endobj\ntrailer<<>>\n%%EOF\n"


def png(width: int = 120, height: int = 80) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def gateway(tmp_path: Path):  # type: ignore[no-untyped-def]
    world = FakeWorld("connected")
    session = make_session(tmp_path / "data", world)
    session.max_media_bytes = 200_000
    start_session(session)
    client = create_app(session, token=TOKEN).test_client()
    yield session, world, client
    session.stop()


def nothing_left(session) -> None:  # type: ignore[no-untyped-def]
    assert session.outbox_depth() == 0
    assert [p for p in session.media_files.folder.iterdir() if p.is_file()] == []
    assert list(session.media_files.tmp.iterdir()) == []


def test_an_image_by_multipart_is_sent_with_identical_bytes(gateway) -> None:  # type: ignore[no-untyped-def]
    _session, world, client = gateway
    data = png()
    answer = client.post(
        "/send",
        data={"to": PEER, "caption": "blue", "file": (io.BytesIO(data), "photo.png", "image/png")},
        headers=AUTH,
        content_type="multipart/form-data",
    )
    assert answer.status_code == 202, answer.get_json()
    message_id = answer.get_json()["id"]
    wait_until(lambda: world.media_sent, 10, "the media send")
    [(jid, media)] = world.media_sent
    assert jid == PEER_JID and media.data == data and media.kind == "image"
    assert (media.width, media.height, media.caption) == (120, 80, "blue")
    shown = client.get(f"/messages/{message_id}", headers=AUTH).get_json()
    assert shown["media"]["kind"] == "image" and shown["media"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert shown["media"]["filename"] == "photo.png" and shown["media"]["size"] == len(data)
    served = client.get(shown["media"]["url"], headers=AUTH)
    assert served.status_code == 200 and served.data == data
    assert served.mimetype == "image/png"
    assert served.headers["Content-Disposition"] == "inline; filename=photo.png"
    part = client.get(shown["media"]["url"], headers={**AUTH, "Range": "bytes=0-9"})
    assert part.status_code == 206 and part.data == data[:10]


def test_a_document_by_json_keeps_its_name_and_type(gateway) -> None:  # type: ignore[no-untyped-def]
    _session, world, client = gateway
    body = {
        "to": PEER,
        "media": {
            "data": base64.b64encode(PDF).decode(),
            "filename": "../../etc/report.pdf",
            "caption": "Q3",
        },
    }
    answer = client.post("/send", json=body, headers=AUTH)
    assert answer.status_code == 202, answer.get_json()
    wait_until(lambda: world.media_sent, 10, "the media send")
    media = world.media_sent[0][1]
    assert (media.kind, media.mimetype, media.filename, media.pages) == (
        "document",
        "application/pdf",
        "report.pdf",
        2,
    )
    assert media.data == PDF


@pytest.mark.parametrize(
    ("form", "field", "status"),
    [
        ({"to": PEER, "file": (io.BytesIO(b""), "empty.bin")}, "file", 400),
        ({"to": PEER, "kind": "sticker", "file": (io.BytesIO(png()), "s.png")}, "kind", 400),
        ({"to": PEER, "kind": "voice", "file": (io.BytesIO(png()), "v.png")}, "kind", 400),
        ({"to": PEER, "kind": "hologram", "file": (io.BytesIO(png()), "x.png")}, "kind", 400),
        ({"to": PEER, "file": (io.BytesIO(PDF), "a.pdf", "image/png")}, "mimetype", 400),
        ({"to": PEER, "colour": "red", "file": (io.BytesIO(png()), "x.png")}, "colour", 400),
        ({"to": PEER}, "file", 400),
        ({"file": (io.BytesIO(png()), "x.png")}, "to", 400),
        ({"to": "not a number", "file": (io.BytesIO(png()), "x.png")}, "to", 400),
        ({"to": PEER, "file": (io.BytesIO(b"x" * 300_000), "big.bin")}, "file", 413),
    ],
)
def test_a_refused_multipart_send_names_the_field_and_leaves_nothing(gateway, form, field, status) -> None:  # type: ignore[no-untyped-def]
    session, world, client = gateway
    answer = client.post("/send", data=form, headers=AUTH, content_type="multipart/form-data")
    assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["field"] == field
    nothing_left(session)
    assert world.media_sent == []


@pytest.mark.parametrize(
    ("media", "field"),
    [
        ({"data": "not base64!"}, "media.data"),
        ({"data": base64.b64encode(png()).decode(), "kind": "sticker"}, "media.kind"),
        ({"data": base64.b64encode(PDF).decode(), "mimetype": "video/mp4"}, "media.mimetype"),
        ({"data": base64.b64encode(png()).decode(), "size": 3}, "media"),
    ],
)
def test_a_refused_json_media_send_names_the_field_and_leaves_nothing(gateway, media, field) -> None:  # type: ignore[no-untyped-def]
    session, _world, client = gateway
    answer = client.post("/send", json={"to": PEER, "media": media}, headers=AUTH)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["field"] == field
    nothing_left(session)


def test_received_media_is_served_and_its_states_answered(gateway) -> None:  # type: ignore[no-untyped-def]
    _session, world, client = gateway
    data = png(40, 30)
    world.downloads[b"src-ok"] = data
    world.downloads[b"src-gone"] = drv.DownloadFailed("download failed with status code 410", final=True)
    for wa_id, source, content in (("A", b"src-ok", data), ("B", b"src-gone", b"gone")):
        world.driver.emit(
            drv.Incoming,
            wa_id=wa_id,
            chat=PEER_JID,
            sender=PEER_JID,
            push_name="Bob",
            text="",
            timestamp=time.time(),
            is_group=False,
            media=drv.IncomingMedia(
                kind="image",
                mimetype="image/png",
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                source=source,
            ),
        )

    def received() -> list[dict]:
        found = client.get("/messages?direction=in", headers=AUTH).get_json()["messages"]
        return [m for m in found if m["media"]["state"] != "pending"]

    wait_until(lambda: len(received()) == 2, 10, "both handled")
    by_wa = {m["wa_id"]: m for m in received()}
    ok = client.get(by_wa["A"]["media"]["url"], headers=AUTH)
    assert ok.status_code == 200 and ok.data == data
    gone = client.get(by_wa["B"]["media"]["url"], headers=AUTH)
    assert gone.status_code == 410 and gone.get_json()["error"] == "media_unavailable"
    assert client.get("/media/med_nothing", headers=AUTH).status_code == 404
    assert client.get(by_wa["A"]["media"]["url"]).status_code == 401  # the token is needed
