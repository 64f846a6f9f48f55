"""Media through the session, on the fake driver: sending (checked, stored durably, sent
with what the phone needs), refusals (nothing queued, no file left), receiving (downloaded,
verified, announced once), and the removal of sent files after their retention time."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import time

import pytest
from PIL import Image

from wadesk.core import driver as drv
from wadesk.core.events import IncomingMessage, MessageSent, StateChanged, Status
from wadesk.core.media import MediaError

PEER = "15550002222"
PEER_JID = f"{PEER}@s.whatsapp.net"


def png(width: int = 320, height: int = 200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 60)).save(out, "PNG")
    return out.getvalue()


def connect(factory, log):
    mark = log.mark()
    factory.current.emit(
        drv.Connected, jid="15550001111:1@s.whatsapp.net", phone="15550001111", push_name="A"
    )
    log.wait(lambda e: isinstance(e, StateChanged) and e.state.status is Status.CONNECTED, after=mark)


def media_files(session) -> list[str]:
    return sorted(p.name for p in session.media_files.folder.iterdir() if p.is_file())


def test_an_image_is_stored_durably_then_sent_with_its_size_and_thumbnail(make_session):
    session, factory, log = make_session()
    data = png()
    record, created = session.send_media(PEER, data, caption="a red picture")
    assert created and record.media is not None
    sha = hashlib.sha256(data).hexdigest()
    assert (record.media.kind, record.media.mimetype, record.media.sha256) == ("image", "image/png", sha)
    assert (record.media.width, record.media.height, record.media.size) == (320, 200, len(data))
    path = session.media_files.path(sha)
    assert path.read_bytes() == data and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    connect(factory, log)
    sent = log.wait(lambda e: isinstance(e, MessageSent) and e.id == record.id)
    assert sent.media["kind"] == "image" and sent.media["caption"] == "a red picture"
    [(jid, media)] = factory.media_sent
    assert jid == PEER_JID and media.data == data and media.caption == "a red picture"
    assert (media.width, media.height) == (320, 200)
    thumb = Image.open(io.BytesIO(media.thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) <= 100
    assert session.message(record.id).media.url == f"/media/{record.media.id}"


@pytest.mark.parametrize(
    ("content", "kind", "mimetype", "field"),
    [
        (b"", None, None, "file"),
        (png(), "sticker", None, "kind"),  # a sticker must be WebP
        (png(), "voice", None, "kind"),  # a voice note must be OGG/Opus
        (b"%PDF-1.4\n%%EOF\n", None, "image/png", "mimetype"),  # the content says otherwise
        (png(), "hologram", None, "kind"),
    ],
)
def test_a_refused_file_queues_nothing_and_leaves_no_file(make_session, content, kind, mimetype, field):
    session, _factory, _log = make_session()
    with pytest.raises(MediaError) as refused:
        session.send_media(PEER, content, kind=kind, mimetype=mimetype)
    assert refused.value.field == field
    assert session.outbox_depth() == 0
    assert media_files(session) == []
    assert list(session.media_files.tmp.iterdir()) == []


def test_a_file_over_the_limit_is_refused_while_it_arrives(make_session):
    from wadesk.core.mediafiles import TooLarge

    session, _factory, _log = make_session(max_media_bytes=1000)
    incoming = session.begin_media()
    with pytest.raises(TooLarge):
        for _ in range(10):
            incoming.write(b"x" * 200)
    assert list(session.media_files.tmp.iterdir()) == []
    assert session.outbox_depth() == 0


def test_the_same_content_twice_is_one_file(make_session):
    session, _factory, _log = make_session()
    data = png()
    session.send_media(PEER, data)
    session.send_media("15550003333", data)
    assert media_files(session) == [hashlib.sha256(data).hexdigest()]


def incoming(factory, wa_id: str, source: bytes, data: bytes, kind: str = "image", **more):
    media = drv.IncomingMedia(
        kind=kind,
        mimetype=more.pop("mimetype", "image/png"),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        source=source,
        **more,
    )
    factory.current.emit(
        drv.Incoming,
        wa_id=wa_id,
        chat=PEER_JID,
        sender=PEER_JID,
        push_name="Bob",
        text=media.caption or "",
        timestamp=time.time(),
        is_group=False,
        media=media,
    )


def test_received_media_is_downloaded_verified_and_announced_once(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    data = png(64, 48)
    factory.downloads[b"source-1"] = data
    incoming(factory, "IN1", b"source-1", data, caption="look", width=64, height=48)
    event = log.wait(lambda e: isinstance(e, IncomingMessage))
    assert event.media["state"] == "stored" and event.media["url"].startswith("/media/med_")
    assert event.text == "look"
    media = session.media(event.media["id"])
    assert session.media_path(media).read_bytes() == data
    factory.current.emit(  # redelivered after a reconnect: stored once, announced once
        drv.Incoming,
        wa_id="IN1",
        chat=PEER_JID,
        sender=PEER_JID,
        push_name="Bob",
        text="look",
        timestamp=time.time(),
        is_group=False,
        media=None,
    )
    assert session.sync()
    assert len(log.of(IncomingMessage)) == 1


def test_media_whatsapp_no_longer_has_is_marked_unavailable_and_the_message_kept(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    factory.downloads[b"gone"] = drv.DownloadFailed("download failed with status code 410", final=True)
    incoming(
        factory, "IN2", b"gone", b"whatever", kind="document", mimetype="application/pdf", filename="r.pdf"
    )
    event = log.wait(lambda e: isinstance(e, IncomingMessage))
    assert event.media["state"] == "unavailable" and "410" in event.media["reason"]
    assert event.media["filename"] == "r.pdf"
    assert session.message(event.id) is not None


def test_a_file_that_does_not_match_its_hash_is_not_kept(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    factory.downloads[b"bad"] = b"other bytes"
    incoming(factory, "IN3", b"bad", b"announced bytes")
    event = log.wait(lambda e: isinstance(e, IncomingMessage))
    assert event.media["state"] == "unavailable" and "hash" in event.media["reason"]
    assert media_files(session) == []


def test_kinds_not_to_download_are_skipped(make_session):
    _session, factory, log = make_session(media_download=frozenset({"document"}))
    connect(factory, log)
    incoming(factory, "IN4", b"src", b"img")
    event = log.wait(lambda e: isinstance(e, IncomingMessage))
    assert event.media["state"] == "skipped"


def test_a_transient_download_failure_is_retried(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    data = png(10, 10)
    factory.downloads[b"flaky"] = drv.DownloadFailed("download failed with status code 503", final=False)
    incoming(factory, "IN5", b"flaky", data)
    event = log.wait(lambda e: isinstance(e, IncomingMessage))
    assert event.media["state"] == "pending"  # announced after the first attempt, retried
    factory.downloads[b"flaky"] = data
    deadline = time.monotonic() + 10
    while session.media(event.media["id"]).state != "stored":
        assert time.monotonic() < deadline, "not downloaded on retry"
        session._wake_downloads()
        time.sleep(0.05)


def test_sent_files_are_removed_after_their_retention_time(make_session):
    session, factory, log = make_session(media_retention=0.0)
    record, _ = session.send_media(PEER, png())
    waiting, _ = session.send_media("15550004444", b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n", filename="a.pdf")
    session._remove_old_media()
    assert len(media_files(session)) == 2  # not sent yet: kept
    connect(factory, log)
    log.wait(lambda e: isinstance(e, MessageSent) and e.id == waiting.id)
    time.sleep(0.01)
    session._remove_old_media()
    assert media_files(session) == []
    assert session.message(record.id).media.state == "deleted"
