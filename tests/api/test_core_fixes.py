"""Shared code the gateway depends on, changed while building it: the session core and QR rendering."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
import segno
import zxingcpp
from fake_driver import FakeDriver
from headless_harness import FakeWorld, make_session, wait_until
from PIL import Image, ImageChops

from wadesk import qr
from wadesk.core import driver as drv
from wadesk.core.events import Status
from wadesk.core.session import TextError, validate_text


def test_text_with_a_lone_surrogate_is_refused_not_crashing_the_store(tmp_path: Path) -> None:
    # JSON can carry "\ud800"; SQLite cannot store it, so it must be refused as bad text
    with pytest.raises(TextError, match="not valid Unicode"):
        validate_text("broken \ud800 text")
    session = make_session(tmp_path, FakeWorld())
    with pytest.raises(TextError):
        session.send("+1 555 000 2222", "broken \ud800 text")
    assert session.store.outbox_depth() == 0


class SlowSendDriver(FakeDriver):
    """A send takes a moment; stopping the driver meanwhile fails it, as a real disconnect does."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.in_send = threading.Event()
        self.disconnected = threading.Event()

    def send_text(self, jid: str, text: str) -> drv.SendResult:
        self.in_send.set()
        if self.disconnected.wait(0.3):
            raise drv.DriverError("websocket disconnected")
        return super().send_text(jid, text)

    def stop(self, timeout: float = 3.0) -> bool:
        self.disconnected.set()
        return True


def test_stop_lets_a_send_in_flight_finish_instead_of_queueing_it_again(tmp_path: Path) -> None:
    # Cutting the connection under a send that WhatsApp may already have taken, then
    # queueing it again, would send it twice after a restart.
    world = FakeWorld()
    world.driver_class = SlowSendDriver
    drivers = world.drivers
    session = make_session(tmp_path, world)
    session.start()
    wait_until(lambda: session.state.status is Status.CONNECTED, 10, "connected")
    record, _ = session.send("+1 555 000 2222", "in flight at shutdown")
    assert drivers[-1].in_send.wait(10)  # type: ignore[attr-defined]
    started = time.monotonic()
    assert session.stop()
    assert time.monotonic() - started < 5
    assert session.store.get(record.id).status == "sent"  # type: ignore[union-attr]
    assert world.sent == [("15550002222@s.whatsapp.net", "in flight at shutdown")]


@pytest.mark.parametrize(
    "code",
    [
        "2@vQ9bNuX1Pz8k0f+0rWdK0SRkzA==,6wS0Bd3zWqcEphl1jv7pDq0pQk1ZBfaVq1TzNSaGPXk=,"
        "bTEgbDpUnCTcHPDU+DH6Vk0xPn6WTCOz1CC4R8nHSUE=,C4x4ox9Xn6aw1uG2Yjv2ZCLlswE3vdzI6Hvnq6F1sVE=,1",
        "wadesk",
        "x" * 300,
    ],
)
@pytest.mark.parametrize(("scale", "border"), [(8, 4), (1, 0), (3, 2)])
def test_qr_png_has_the_same_pixels_as_segno_draws(code: str, scale: int, border: int) -> None:
    mine = Image.open(io.BytesIO(qr.png(code, scale=scale, border=border)))
    reference = io.BytesIO()
    segno.make_qr(code, error="m").save(reference, kind="png", scale=scale, border=border)
    theirs = Image.open(reference)
    assert mine.size == theirs.size
    assert ImageChops.difference(mine.convert("L"), theirs.convert("L")).getbbox() is None
    if scale >= 3:
        assert [r.text for r in zxingcpp.read_barcodes(mine, formats=zxingcpp.BarcodeFormat.QRCode)] == [code]
