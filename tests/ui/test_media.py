"""Media in the window, on the real session with the fake driver: attaching (button, Ctrl+O,
drop, paste), the preview, sending with a caption, refusals, and the log's pictures and file
cards, opening and saving files."""

from __future__ import annotations

import io
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import QApplication

from wadesk.core import driver as drv
from wadesk.core.datadir import DataDir
from wadesk.ui import media as ui_media
from wadesk.ui.window import OPENED_FOLDER

from .rig import PEER_JID, Rig

RED = (200, 30, 60)
BLUE = (30, 120, 220)
PDF = b"%PDF-1.4\n1 0 obj<</Type /Catalog /Pages 2 0 R>>endobj\n2 0 obj<</Type /Pages /Kids [3 0 R] /Count 1>>endobj\n3 0 obj<</Type /Page /Parent 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"  # noqa: E501


def png(width: int = 320, height: int = 200, colour: tuple[int, int, int] = RED) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def close_to(colour: QColor, rgb: tuple[int, int, int], tolerance: int = 6) -> bool:
    return all(
        abs(a - b) <= tolerance
        for a, b in zip((colour.red(), colour.green(), colour.blue()), rgb, strict=True)
    )


def wait_picture(rig: Rig, message_id: str) -> QPixmap:
    entry = rig.window.model.entry(message_id)
    assert entry is not None and entry.media is not None
    rig.window.log_view.scrollTo(rig.row(message_id))
    rig.qtbot.waitUntil(lambda: isinstance(rig.window.thumbnails.peek(entry.media.id), QPixmap))
    return rig.window.thumbnails.peek(entry.media.id)


def grab_media(rig: Rig, message_id: str) -> tuple[QImage, Any]:
    """The conversation's pixels and where the message's picture or card is in them."""
    view = rig.window.log_view
    view.scrollTo(rig.row(message_id))
    rig.qtbot.wait(50)
    rect = view.bubbles.media_rect(rig.row(message_id))
    assert rect is not None
    return view.viewport().grab().toImage(), rect


def attach(rig: Rig, path: Path) -> None:
    """The file is attached in the open chat (the peer's, opened if none is)."""
    if rig.window.messenger.current_chat is None:
        rig.open(PEER_JID)
    rig.window.attach_file(path)
    rig.qtbot.waitUntil(lambda: rig.compose.attachment is not None)


@pytest.fixture
def picture(tmp_path: Path) -> tuple[Path, bytes]:
    data = png()
    path = tmp_path / "red square.png"
    path.write_bytes(data)
    return path, data


# ---- attaching and sending --------------------------------------------------------------------


def test_attach_button_shows_a_preview_and_send_queues_the_file_with_its_caption(
    qtbot: Any, rig: Rig, picture: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = picture
    asked: list[str] = []

    def choose(parent: Any, title: str, folder: str, filters: str) -> tuple[str, str]:
        asked.append(title)
        return str(path), ""

    monkeypatch.setattr("wadesk.ui.window.QFileDialog.getOpenFileName", choose)
    rig.connect()
    compose = rig.compose
    qtbot.mouseClick(compose.attach_button, Qt.MouseButton.LeftButton)
    assert asked == ["Attach a file"]
    qtbot.waitUntil(lambda: compose.attachment is not None)
    card = compose.card
    assert card.isVisible()
    assert card.full_name == "red square.png"
    assert card.detail.text() == f"Photo · PNG · 320 × 200 · {ui_media.human_size(len(data))}"
    thumb = card.thumb.pixmap()
    assert not thumb.isNull() and max(thumb.width(), thumb.height()) <= 56 * card.devicePixelRatioF()
    assert close_to(thumb.toImage().pixelColor(thumb.width() // 2, thumb.height() // 2), RED)
    assert compose.message_label.text() == "&Caption"
    assert compose.message.accessibleName() == "Caption"
    assert compose.send_button.isEnabled()  # a caption is optional

    qtbot.keyClicks(compose.message, "the red one")
    qtbot.mouseClick(compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not card.isVisible())
    assert compose.message.toPlainText() == ""
    assert rig.window.messenger.current_chat == PEER_JID  # the chat stays open for the next message
    qtbot.waitUntil(lambda: len(rig.factory.media_sent) == 1)
    [(jid, sent)] = rig.factory.media_sent
    assert jid == PEER_JID and sent.data == data and sent.caption == "the red one"
    [record] = rig.queued()
    assert record.media.kind == "image" and record.media.filename == "red square.png"
    assert rig.session.media_path(record.media).read_bytes() == data
    entry = rig.window.model.entry(record.id)
    assert entry.media is not None and entry.text == "the red one"
    qtbot.waitUntil(lambda: rig.window.model.entry(record.id).status == "sent")
    # the log shows the sent picture, decoded from the stored file
    wait_picture(rig, record.id)
    pixels, rect = grab_media(rig, record.id)
    assert (round(rect.width()), round(rect.height())) == (240, 150)
    assert close_to(pixels.pixelColor(rect.center().toPoint()), RED)


def test_ctrl_o_attaches_from_anywhere_in_the_window(
    qtbot: Any, rig: Rig, picture: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _data = picture
    monkeypatch.setattr("wadesk.ui.window.QFileDialog.getOpenFileName", lambda *a: (str(path), ""))
    rig.connect()
    assert rig.window.attach_action.isEnabled()
    rig.window.log_view.setFocus()
    qtbot.keyClick(rig.window.log_view, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: rig.compose.attachment is not None)
    assert rig.compose.attachment.name == "red square.png"


def test_a_file_dropped_on_the_window_is_attached(qtbot: Any, rig: Rig, tmp_path: Path) -> None:
    rig.connect()
    path = tmp_path / "invoice-1042.pdf"
    path.write_bytes(PDF)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = rig.window.log_view.mapTo(rig.window, QPoint(40, 40))
    enter = QDragEnterEvent(
        pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(rig.window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(pos),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(rig.window, drop)
    assert drop.isAccepted()
    qtbot.waitUntil(lambda: rig.compose.attachment is not None)
    attachment = rig.compose.attachment
    assert (attachment.name, attachment.kind, attachment.pages) == ("invoice-1042.pdf", "document", 1)
    assert rig.compose.card.thumb.text() == "PDF"
    assert rig.compose.card.detail.text() == f"Document · PDF · 1 page · {ui_media.human_size(len(PDF))}"


def test_a_web_link_dragged_in_is_not_taken(rig: Rig) -> None:
    rig.connect()
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/picture.png")])
    enter = QDragEnterEvent(
        QPoint(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(rig.window, enter)
    assert not enter.isAccepted()
    assert not rig.compose.has_attachment


def test_a_file_dropped_on_the_message_field_is_attached_not_typed(
    qtbot: Any, rig: Rig, picture: tuple[Path, bytes]
) -> None:
    path, _data = picture
    rig.connect()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    mime.setText(str(path))  # file managers add the path as text
    rig.compose.message.insertFromMimeData(mime)  # what a drop (or a paste) on the field does
    qtbot.waitUntil(lambda: rig.compose.attachment is not None)
    assert rig.compose.message.toPlainText() == ""
    assert rig.compose.attachment.kind == "image"


def test_a_pasted_image_is_attached_as_png(qtbot: Any, rig: Rig) -> None:
    rig.connect()
    image = QImage(120, 80, QImage.Format.Format_RGB32)
    image.fill(QColor(*BLUE))
    QApplication.clipboard().setImage(image)
    rig.compose.message.setFocus()
    qtbot.keyClick(rig.compose.message, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: rig.compose.attachment is not None)
    attachment = rig.compose.attachment
    assert (attachment.name, attachment.kind, attachment.content_type) == (
        "Pasted image",
        "image",
        "image/png",
    )
    assert rig.compose.card.detail.text().startswith("Photo · PNG · 120 × 80 · ")
    qtbot.mouseClick(rig.compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(rig.queued()) == 1)
    [record] = rig.queued()
    stored = Image.open(io.BytesIO(rig.session.media_path(record.media).read_bytes()))
    assert stored.format == "PNG" and stored.size == (120, 80)
    assert stored.convert("RGB").getpixel((60, 40)) == BLUE
    assert record.text == "" and record.media.caption is None


def test_pasted_text_stays_text(qtbot: Any, rig: Rig) -> None:
    rig.connect()
    QApplication.clipboard().setText("just words")
    rig.compose.message.setFocus()
    qtbot.keyClick(rig.compose.message, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert rig.compose.message.toPlainText() == "just words"
    assert not rig.compose.has_attachment


def test_escape_and_the_remove_button_take_the_file_away(
    qtbot: Any, rig: Rig, picture: tuple[Path, bytes]
) -> None:
    path, _data = picture
    rig.connect()
    attach(rig, path)
    rig.compose.message.setFocus()
    rig.compose.message.setPlainText("caption or message")
    qtbot.keyClick(rig.compose.message, Qt.Key.Key_Escape)
    assert not rig.compose.has_attachment and not rig.compose.card.isVisible()
    assert rig.compose.message_label.text() == "&Message"
    assert rig.compose.message.toPlainText() == "caption or message"  # the text stays
    attach(rig, path)
    assert rig.compose.card.remove_button.accessibleName() == "Remove attachment"
    qtbot.mouseClick(rig.compose.card.remove_button, Qt.MouseButton.LeftButton)
    assert not rig.compose.has_attachment
    qtbot.mouseClick(rig.compose.send_button, Qt.MouseButton.LeftButton)  # a text message now
    qtbot.waitUntil(lambda: len(rig.queued()) == 1)
    [record] = rig.queued()
    assert record.media is None and record.text == "caption or message"
    assert rig.media_files() == []


def test_a_file_removed_while_it_is_read_is_not_shown(
    qtbot: Any, rig: Rig, picture: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _data = picture
    rig.connect()
    gate = threading.Event()
    real = ui_media.load_file

    def slow(*args: Any) -> Any:
        gate.wait(5)
        return real(*args)

    monkeypatch.setattr("wadesk.ui.window.load_file", slow)
    rig.window.attach_file(path)
    assert rig.compose.has_attachment and rig.compose.card.detail.text() == "Reading the file…"
    assert not rig.compose.send_button.isEnabled()
    qtbot.keyClick(rig.compose.message, Qt.Key.Key_Escape)
    gate.set()
    assert rig.window.jobs.wait(5)
    qtbot.wait(50)
    assert not rig.compose.has_attachment and not rig.compose.card.isVisible()


def test_the_name_refines_generic_content_but_never_contradicts_it(
    qtbot: Any, rig: Rig, tmp_path: Path
) -> None:
    rig.connect()
    csv = tmp_path / "prices.csv"
    csv.write_bytes(b"item,price\nsign,40\n")
    attach(rig, csv)
    assert (rig.compose.attachment.content_type, rig.compose.attachment.mimetype) == ("text/csv", "text/csv")
    qtbot.mouseClick(rig.compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(rig.queued()) == 1)
    assert rig.queued()[0].media.mimetype == "text/csv"
    misnamed = tmp_path / "photo.jpg"
    misnamed.write_bytes(PDF)
    attach(rig, misnamed)
    attachment = rig.compose.attachment
    assert (attachment.kind, attachment.content_type, attachment.mimetype) == (
        "document",
        "application/pdf",
        None,
    )
    qtbot.mouseClick(rig.compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(rig.queued()) == 2)
    newest = max(rig.queued(), key=lambda r: r.seq)
    assert (newest.media.kind, newest.media.mimetype, newest.media.filename) == (
        "document",
        "application/pdf",
        "photo.jpg",
    )


# ---- refusals -------------------------------------------------------------------------------------


def refused(qtbot: Any, rig: Rig, path: Path, reason: str) -> None:
    """The file is shown with the reason, Send stays off, and nothing is queued or stored."""
    attach(rig, path)
    attachment = rig.compose.attachment
    assert attachment.error == reason and not attachment.ok
    assert rig.compose.text_status.text() == reason
    assert rig.compose.text_status.objectName() == "error"
    assert not rig.compose.send_button.isEnabled()
    rig.compose.message.setPlainText("with a caption")
    qtbot.keyClick(rig.compose.message, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert rig.window.jobs.wait(5)
    qtbot.wait(20)
    assert rig.queued() == [] and rig.session.outbox_depth() == 0
    assert rig.media_files() == []
    assert list(rig.session.media_files.tmp.iterdir()) == []


def test_an_empty_file_is_refused(qtbot: Any, rig: Rig, tmp_path: Path) -> None:
    rig.connect()
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    refused(qtbot, rig, path, "The file is empty")


def test_a_file_over_the_limit_is_refused(qtbot: Any, make_rig: Callable[..., Rig], tmp_path: Path) -> None:
    rig = make_rig(max_media_bytes=1024 * 1024)
    rig.connect()
    path = tmp_path / "big.bin"
    path.write_bytes(b"\0" * (1024 * 1024 + 1))
    refused(qtbot, rig, path, "The file is larger than 1 MB")
    assert rig.compose.card.detail.text() == "1.0 MB"


def test_a_folder_is_refused(qtbot: Any, rig: Rig, tmp_path: Path) -> None:
    rig.connect()
    folder = tmp_path / "photos"
    folder.mkdir()
    refused(qtbot, rig, folder, "A folder cannot be sent: choose a file")


def test_a_file_that_is_gone_says_so_without_a_traceback(qtbot: Any, rig: Rig, tmp_path: Path) -> None:
    rig.connect()
    refused(qtbot, rig, tmp_path / "gone.pdf", "The file cannot be read: No such file or directory")


def test_a_file_changed_after_attaching_is_refused_when_sent(
    qtbot: Any, rig: Rig, picture: tuple[Path, bytes]
) -> None:
    """The message is what the preview showed: a picture replaced by a PDF is refused by
    the core's check (kind image), and the reason is shown; nothing is queued."""
    path, _data = picture
    rig.connect()
    attach(rig, path)
    assert rig.compose.attachment.kind == "image"
    path.write_bytes(PDF)
    qtbot.mouseClick(rig.compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.compose.text_status.objectName() == "error")
    assert rig.compose.text_status.text() == (
        "An image must be a JPEG, PNG, GIF or WebP picture (this is a PDF document)"
    )
    assert rig.compose.attachment is not None  # still there: remove it or attach another
    assert rig.compose.send_button.isEnabled()
    path.unlink()
    qtbot.mouseClick(rig.compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "No such file" in rig.compose.text_status.text())
    assert rig.compose.text_status.text() == "The file cannot be read: No such file or directory"
    assert rig.queued() == [] and rig.media_files() == []
    assert list(rig.session.media_files.tmp.iterdir()) == []


def test_a_caption_over_the_limit_keeps_send_off(rig: Rig, picture: tuple[Path, bytes]) -> None:
    from wadesk.core.session import MAX_TEXT

    path, _data = picture
    rig.connect()
    attach(rig, path)
    rig.compose.message.setPlainText("x" * (MAX_TEXT + 1))
    assert not rig.compose.send_button.isEnabled()
    assert (
        rig.compose.text_status.text()
        == f"The caption is {MAX_TEXT + 1} characters long; the limit is {MAX_TEXT}"
    )
    assert rig.compose.text_status.objectName() == "error"


# ---- the log ----------------------------------------------------------------------------------------


def test_an_incoming_image_shows_its_picture(qtbot: Any, rig: Rig) -> None:
    rig.connect()
    data = png(800, 600, BLUE)
    mid = rig.receive(data, "image", "image/png", width=800, height=600, caption="our new sign")
    entry = rig.window.model.entry(mid)
    assert entry.media.kind == "image" and entry.media.stored
    assert entry.text == "our new sign"
    pixmap = wait_picture(rig, mid)
    assert max(pixmap.width(), pixmap.height()) == round(240 * pixmap.devicePixelRatio())  # a scaled decode
    pixels, rect = grab_media(rig, mid)
    assert (round(rect.width()), round(rect.height())) == (240, 180)
    for point in (rect.center(), rect.topLeft() + QPointF(20, 20), rect.bottomRight() - QPointF(20, 20)):
        assert close_to(pixels.pixelColor(point.toPoint()), BLUE), point
    outside = rect.topLeft() - QPointF(0, 30)  # the bubble's heading, not the picture
    assert not close_to(pixels.pixelColor(outside.toPoint()), BLUE)
    described = rig.row(mid).data(Qt.ItemDataRole.AccessibleTextRole)
    assert "Photo" in described and "our new sign" in described


def test_a_picture_of_unknown_size_takes_its_own_shape(qtbot: Any, rig: Rig) -> None:
    rig.connect()
    mid = rig.receive(png(100, 300, RED), "image", "image/png")  # the message gave no size
    wait_picture(rig, mid)
    qtbot.waitUntil(lambda: round(rig.window.log_view.bubbles.media_rect(rig.row(mid)).height()) == 240)
    pixels, rect = grab_media(rig, mid)
    assert round(rect.width()) == 80
    assert close_to(pixels.pixelColor(rect.center().toPoint()), RED)


def test_a_document_card_shows_name_size_and_pages(qtbot: Any, rig: Rig) -> None:
    rig.connect()
    mid = rig.receive(PDF, "document", "application/pdf", filename="invoice-1042.pdf", pages=1)
    entry = rig.window.model.entry(mid)
    assert entry.media.title == "invoice-1042.pdf"
    assert entry.media.details == f"{ui_media.human_size(len(PDF))} · 1 page"
    assert entry.media.badge == "PDF"
    described = rig.row(mid).data(Qt.ItemDataRole.AccessibleTextRole)
    assert f"Document invoice-1042.pdf, {len(PDF)} bytes · 1 page" in described
    pixels, rect = grab_media(rig, mid)
    icon = rect.topLeft() + QPointF(12, 12)  # the type icon, in the accent colour
    assert pixels.pixelColor(icon.toPoint()).name().upper() == rig.window.theme.accent


def test_voice_and_video_cards_show_their_duration(rig: Rig) -> None:
    rig.connect()
    voice = rig.receive(b"OggS" + b"\1" * 2000, "voice", "audio/ogg; codecs=opus", seconds=7)
    video = rig.receive(b"\0\0\0\x18ftypmp42" + b"\2" * 5000, "video", "video/mp4", seconds=754)
    assert rig.window.model.entry(voice).media.title == "Voice message"
    assert rig.window.model.entry(voice).media.details == "2.0 KB · 0:07"
    assert rig.window.model.entry(video).media.details == "4.9 KB · 12:34"
    assert rig.window.log_view.bubbles.media_rect(rig.row(video)).height() < 100  # a card, not a picture


def test_a_file_that_could_not_be_downloaded_shows_why(
    qtbot: Any, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[QUrl] = []
    monkeypatch.setattr("wadesk.ui.window.QDesktopServices.openUrl", lambda url: opened.append(url) or True)
    rig.connect()
    gone = drv.DownloadFailed("download failed with status code 410", final=True)
    mid = rig.receive(PDF, "document", "application/pdf", download=gone, filename="old.pdf")
    entry = rig.window.model.entry(mid)
    assert entry.media.state == "unavailable"
    assert entry.media.state_text == "not downloaded: download failed with status code 410"
    assert "not downloaded: download failed with status code 410" in rig.row(mid).data(
        Qt.ItemDataRole.AccessibleTextRole
    )
    rig.window.log_view.setCurrentIndex(rig.row(mid))
    rig.window.open_media(entry)
    qtbot.waitUntil(lambda: "is not on this computer" in rig.window.statusBar().currentMessage())
    assert rig.window.statusBar().currentMessage() == (
        "old.pdf is not on this computer: not downloaded: download failed with status code 410."
    )
    assert opened == []


def test_an_image_not_downloaded_shows_its_thumbnail_and_state(qtbot: Any, rig: Rig) -> None:
    rig.connect()
    thumbnail = io.BytesIO()
    Image.new("RGB", (60, 40), RED).save(thumbnail, "JPEG")
    mid = rig.receive(
        png(600, 400, RED),
        download=drv.DownloadFailed("the media link expired", final=True),
        width=600,
        height=400,
        thumbnail=thumbnail.getvalue(),
    )
    wait_picture(rig, mid)
    pixels, rect = grab_media(rig, mid)
    assert close_to(pixels.pixelColor(rect.center().toPoint()), RED, tolerance=12)
    assert rig.window.model.entry(mid).media.state_text == "not downloaded: the media link expired"


def test_double_click_opens_a_stored_file_under_its_name(
    qtbot: Any, rig: Rig, data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []
    monkeypatch.setattr(
        "wadesk.ui.window.QDesktopServices.openUrl",
        lambda url: opened.append(Path(url.toLocalFile())) or True,
    )
    rig.connect()
    mid = rig.receive(PDF, "document", "application/pdf", filename="invoice-1042.pdf")
    view = rig.window.log_view
    _pixels, rect = grab_media(rig, mid)
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    qtbot.waitUntil(lambda: len(opened) == 1)
    [path] = opened
    assert path.name == "invoice-1042.pdf"
    assert path.read_bytes() == PDF
    assert path.is_relative_to(data.path / OPENED_FOLDER)
    stored = rig.session.media_path(rig.session.media(rig.window.model.entry(mid).media.id))
    assert stored is not None and not path.samefile(stored)  # a copy: a viewer cannot change the stored file
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert QApplication.focusWidget() is not rig.compose.message  # it opens, it does not answer
    # Space on the current message opens it too
    view.setFocus()
    view.setCurrentIndex(rig.row(mid))
    qtbot.keyClick(view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(opened) == 2)
    assert opened[1] == path


def test_a_photo_without_a_name_opens_with_an_extension(
    qtbot: Any, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []
    monkeypatch.setattr(
        "wadesk.ui.window.QDesktopServices.openUrl",
        lambda url: opened.append(Path(url.toLocalFile())) or True,
    )
    rig.connect()
    data = png(50, 50)
    mid = rig.receive(data, "image", "image/png")
    rig.window.open_media(rig.window.model.entry(mid))
    qtbot.waitUntil(lambda: len(opened) == 1)
    assert opened[0].suffix == ".png" and opened[0].read_bytes() == data


def test_the_copies_made_to_open_files_go_at_the_next_start(
    qtbot: Any, make_rig: Callable[..., Rig], data: DataDir
) -> None:
    folder = data.path / OPENED_FOLDER / "med_x"
    folder.mkdir(parents=True)
    (folder / "left.pdf").write_bytes(PDF)
    rig = make_rig()
    assert not (data.path / OPENED_FOLDER).exists()
    assert rig.window.jobs.wait(5)
    assert list(data.path.glob(f"{OPENED_FOLDER}*")) == []


def test_save_as_from_the_context_menu_copies_the_file(
    qtbot: Any, rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    target = tmp_path / "saved" / "copy.pdf"
    target.parent.mkdir()

    def save_as(parent: Any, title: str, suggested: str) -> tuple[str, str]:
        asked.append(suggested)
        return str(target), ""

    monkeypatch.setattr("wadesk.ui.window.QFileDialog.getSaveFileName", save_as)
    shown: list[list[str]] = []

    def popup(menu: Any, at: Any) -> None:
        shown.append([a.text() for a in menu.actions() if not a.isSeparator()])
        next(a for a in menu.actions() if a.text() == "&Save as…").trigger()

    monkeypatch.setattr(rig.window.log_view, "popup", popup)
    rig.connect()
    mid = rig.receive(PDF, "document", "application/pdf", filename="invoice-1042.pdf", caption="the invoice")
    view = rig.window.log_view
    _pixels, rect = grab_media(rig, mid)
    from PySide6.QtGui import QContextMenuEvent

    point = rect.center().toPoint()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, point, view.viewport().mapToGlobal(point))
    QApplication.sendEvent(view.viewport(), event)
    assert shown == [["&Open", "&Save as…", "&Copy text", "&Reply"]]
    qtbot.waitUntil(lambda: target.exists())
    assert target.read_bytes() == PDF
    assert Path(asked[0]).name == "invoice-1042.pdf"
    qtbot.waitUntil(lambda: rig.window.statusBar().currentMessage().startswith("Saved invoice-1042.pdf"))
    assert rig.window.settings.value("media/save_folder") == str(target.parent)


def test_ctrl_s_saves_and_a_text_message_has_no_file_actions(
    qtbot: Any, rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "photo.png"
    monkeypatch.setattr("wadesk.ui.window.QFileDialog.getSaveFileName", lambda *a: (str(target), ""))
    shown: list[list[str]] = []
    monkeypatch.setattr(
        rig.window.log_view,
        "popup",
        lambda menu, at: shown.append([a.text() for a in menu.actions() if not a.isSeparator()]),
    )
    rig.connect()
    data = png(30, 30)
    mid = rig.receive(data)
    view = rig.window.log_view
    view.setFocus()
    view.setCurrentIndex(rig.row(mid))
    qtbot.keyClick(view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(target.exists)
    assert target.read_bytes() == data
    rig.session.send("+15550002222", "plain text")
    qtbot.waitUntil(lambda: any(e.text == "plain text" for e in rig.window.model.entries()))
    [text_entry] = [e for e in rig.window.model.entries() if e.text == "plain text"]
    view.setCurrentIndex(rig.row(text_entry.id))
    from PySide6.QtGui import QContextMenuEvent

    event = QContextMenuEvent(
        QContextMenuEvent.Reason.Keyboard, QPoint(5, 5), view.viewport().mapToGlobal(QPoint(5, 5))
    )  # the Menu key
    QApplication.sendEvent(view.viewport(), event)
    assert shown == [["&Copy text", "&Reply"]]


def test_the_log_with_media_survives_a_restart(
    qtbot: Any, make_rig: Callable[..., Rig], data: DataDir, picture: tuple[Path, bytes]
) -> None:
    path, pic = picture
    first = make_rig()
    attach(first, path)
    first.compose.message.setPlainText("before the restart")
    qtbot.mouseClick(first.compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(first.queued()) == 1)
    first.session.send_media("+15550002222", PDF, filename="terms.pdf")
    first.window.shutdown()
    assert first.window.wait_stopped(5)
    first.session.store.close()

    again = make_rig()
    again.open(PEER_JID)
    photo, document = again.window.model.entries()  # read from the data folder before connecting
    again.connect(open_chat=None)
    assert (photo.media.kind, photo.media.filename, photo.text) == (
        "image",
        "red square.png",
        "before the restart",
    )
    assert (document.media.kind, document.media.filename) == ("document", "terms.pdf")
    wait_picture(again, photo.id)
    pixels, rect = grab_media(again, photo.id)
    assert close_to(pixels.pixelColor(rect.center().toPoint()), RED)
    assert again.session.media_path(again.session.media(photo.media.id)).read_bytes() == pic


def test_pictures_are_decoded_off_the_gui_thread(
    qtbot: Any, rig: Rig, picture: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded_in: list[int] = []
    real = ui_media.scaled_image

    def recording(*args: Any) -> Any:
        decoded_in.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(ui_media, "scaled_image", recording)
    rig.connect()
    path, _data = picture
    attach(rig, path)  # the preview
    mid = rig.receive(png(64, 64, BLUE))  # the log
    wait_picture(rig, mid)
    assert len(decoded_in) >= 2
    assert threading.get_ident() not in decoded_in
    # the model itself only holds facts: no picture in any role
    index = rig.row(mid)
    for role in range(0, 300):
        assert not isinstance(index.data(role), QPixmap | QImage)


def test_keyboard_and_accessible_names(qtbot: Any, rig: Rig, picture: tuple[Path, bytes]) -> None:
    window = rig.window
    file_menu = window.menuBar().actions()[0].menu()
    assert [a.text() for a in file_menu.actions() if a.text()] == ["&Attach file…", "&Quit"]
    assert window.attach_action.shortcut().toString() == "Ctrl+O"
    assert not window.attach_action.isEnabled()  # not on the pairing page
    rig.connect()
    compose = rig.compose
    assert compose.attach_button.accessibleName() == "Attach a file"
    assert "Ctrl+O" in compose.attach_button.toolTip()
    path, _data = picture
    attach(rig, path)
    assert compose.card.accessibleName() == "Attachment"
    assert compose.card.accessibleDescription().startswith("red square.png, Photo · PNG · 320 × 200")
    assert compose.send_button.accessibleName() == "Send file"
    window.log_view.setFocus()
    visited = [QApplication.focusWidget()]
    for _ in range(4):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        visited.append(QApplication.focusWidget())
    assert visited == [
        window.log_view,
        compose.card.remove_button,
        compose.message,
        compose.attach_button,
        compose.send_button,
    ]
    qtbot.keyClick(compose.card.remove_button, Qt.Key.Key_Escape)  # Escape from anywhere in the form
    assert not compose.has_attachment
    assert compose.send_button.accessibleName() == "Send message"
