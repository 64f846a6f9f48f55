"""The WhatsApp messages the driver builds, read back as the driver reads incoming ones
(neonize's protobuf classes, no client)."""

from types import SimpleNamespace

import pytest
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as proto

from wadesk.core.driver import OutgoingMedia, build_media_message, mentions_of

UPLOAD = SimpleNamespace(
    url="https://mmg.example/x",
    DirectPath="/x",
    MediaKey=b"k" * 32,
    FileEncSHA256=b"e" * 32,
    FileSHA256=b"s" * 32,
    FileLength=3,
)


@pytest.mark.parametrize(("kind", "caption"), [("image", "look"), ("video", "look"), ("document", "plan")])
def test_a_captioned_media_message_carries_its_mentions_as_a_text_does(kind, caption):
    people = ("15550002222@s.whatsapp.net", "900003@lid")
    media = OutgoingMedia(kind=kind, data=b"abc", mimetype="x/y", caption=caption, mentions=people)
    message = build_media_message(proto, media, UPLOAD)
    assert mentions_of(message) == people  # what an incoming message's mentions are read from
    assert mentions_of(proto.Message.FromString(message.SerializeToString())) == people
    plain = build_media_message(proto, OutgoingMedia(kind=kind, data=b"abc", mimetype="x/y"), UPLOAD)
    assert mentions_of(plain) == ()
