"""Screenshots of the real wadesk window for the README, taken under Xvfb.

    python scripts/screenshots.py [--out docs] [--font Cantarell]

Starts a virtual X server (Debian: xvfb, plus the xcb libraries Qt's xcb platform needs, and
fonts-noto-color-emoji for the 📷 and 📄 of the chat list),
runs the real window with the real WhatsApp client against the project's fake WhatsApp
server (tests/fakewa), and saves what the X server shows:

* ``screenshot-pairing.png``: waiting for the QR code to be scanned;
* ``screenshot-connected.png``: linked: the chat list (people, a group, unread counts, a
  draft) and one conversation;
* ``screenshot-dark.png``: the same in the dark colour scheme;
* ``screenshot-narrow.png`` and ``screenshot-narrow-dark.png``: a narrow window, one pane at
  a time (the conversation with its Back button; the chat list in dark);
* ``screenshot-search.png``: a search finding a chat and a message;
* ``screenshot-media.png``: a photo sent and a document received, another file attached.

The QR code is read back from the screen and scanned by the fake phone; the chat is started
with New chat (WhatsApp is asked whether the number has an account), the messages are typed
into the form and sent with the Send button, the files attached as the Attach button does;
the replies come from fake contacts, one of them in a group the account is in.
Like the tests, the Go runtime inside neonize must start with the fake server's CA in its
environment: the script re-executes itself with that environment.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHILD = "WADESK_SCREENSHOTS_CHILD"
SIZE = (1040, 700)
NARROW_SIZE = (520, 700)
MEDIA_HEIGHT = 860
SAM, LEA, ASK = "15550002222", "15550003333", "15550004444"
X11_SOCKETS = Path("/tmp/.X11-unix")  # noqa: S108 (where every X server puts its socket)


def free_display() -> int:
    for n in range(90, 200):
        if not (X11_SOCKETS / f"X{n}").exists() and not (X11_SOCKETS.parent / f".X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    if shutil.which("Xvfb") is None:
        raise SystemExit("Xvfb is missing: apt-get install xvfb (and Qt's xcb libraries, see the README)")
    n = free_display()
    proc = subprocess.Popen(
        ["Xvfb", f":{n}", "-screen", "0", "1280x960x24", "-nolisten", "tcp", "-dpi", "96"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not (X11_SOCKETS / f"X{n}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("Xvfb did not start")
        time.sleep(0.05)
    return proc, f":{n}"


def parent(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from fakewa.keys import TestPKI

    pki_dir = tempfile.mkdtemp(prefix="wadesk-shots-pki-")
    xvfb = None
    try:
        pki = TestPKI(pki_dir)
        xvfb, display = start_xvfb()
        env = {
            k: v for k, v in os.environ.items() if k.upper() not in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
        }
        runtime = tempfile.mkdtemp(prefix="wadesk-shots-xdg-")
        env.update(
            {
                CHILD: pki_dir,
                "SSL_CERT_FILE": pki.ca_file,
                "DISPLAY": display,
                "QT_QPA_PLATFORM": "xcb",
                "XDG_RUNTIME_DIR": runtime,
                "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "tests"), env.get("PYTHONPATH")) if p),
            }
        )
        return subprocess.call([sys.executable, __file__, *sys.argv[1:]], env=env)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                xvfb.wait(5)
        shutil.rmtree(pki_dir, ignore_errors=True)


def shop_photo() -> bytes:
    """A made-up photo (a shop front at dusk) as JPEG."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    width, height = 960, 640
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):  # the sky, orange to violet
        t = y / height
        draw.line([(0, y), (width, y)], fill=(int(250 - 120 * t), int(150 - 90 * t), int(90 + 80 * t)))
    draw.ellipse([650, 90, 790, 230], fill=(255, 214, 120))
    draw.polygon(
        [(0, 470), (220, 360), (430, 450), (640, 340), (960, 470), (960, 640), (0, 640)], fill=(62, 44, 92)
    )
    draw.rectangle([250, 300, 710, 600], fill=(236, 228, 214))
    draw.rectangle([230, 270, 730, 320], fill=(15, 123, 108))
    draw.text((480, 295), "OPEN", fill=(255, 255, 255), font=ImageFont.load_default(size=34), anchor="mm")
    for x in (285, 505):
        draw.rectangle([x, 360, x + 170, 520], fill=(255, 226, 150))
    draw.rectangle([455, 420, 505, 600], fill=(120, 70, 40))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def receipt_pdf(pages: int = 2) -> bytes:
    """A small valid PDF with ``pages`` empty pages."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>")
    objects += ["<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"] * pages
    body, offsets = b"%PDF-1.4\n", []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n{obj}\nendobj\n".encode()
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    body += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    body += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return body + b"\n" + b"%" * 180_000  # padding: a file of a plausible size


def child(args: argparse.Namespace) -> int:
    import zxingcpp
    from fakewa.harness import FakeWhatsApp, install_process_root
    from fakewa.keys import TestPKI
    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice
    from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication

    from wadesk import logs
    from wadesk.config import Config
    from wadesk.core import open_session
    from wadesk.core.datadir import DataDir
    from wadesk.core.events import Status
    from wadesk.ui import theme
    from wadesk.ui.app import application
    from wadesk.ui.window import MainWindow

    logs.setup("WARNING", "text")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = application()
    if args.font and args.font in QFontDatabase.families():
        font = QFont(args.font)
        font.setPointSizeF(10.5)
        app.setFont(font)
    theme.apply(app)

    fake = FakeWhatsApp(TestPKI(os.environ[CHILD]), install_process_root())
    data = DataDir(Path(tempfile.mkdtemp(prefix="wadesk-shots-data-"))).prepare()
    config = Config(data_dir=data.path, proxy=fake.proxy_url, send_interval=0, device_name="wadesk")
    session = open_session(config, data)
    window = MainWindow(session, data, config, use_tray=False)
    window.resize(*SIZE)
    window.move(40, 40)
    window.show()
    session.start()

    def pump(seconds: float = 0.05) -> None:
        end = time.monotonic() + seconds
        while True:
            app.processEvents()
            if time.monotonic() >= end:
                return
            time.sleep(0.01)

    def wait(what: str, condition: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            pump()

    def screenshot(name: str) -> Image.Image:
        pump(0.4)  # let the compositor-less X server catch up with the last paint
        screen = QGuiApplication.primaryScreen()
        geometry = window.frameGeometry()
        pixmap = screen.grabWindow(0, geometry.x(), geometry.y(), geometry.width(), geometry.height())
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        pixmap.save(buffer, "PNG")
        path = out / name
        path.write_bytes(bytes(buffer.data()))
        print(f"saved {path} ({pixmap.width()}x{pixmap.height()})")
        return Image.open(path)

    def settle(seconds: float = 0.3) -> None:
        window.log_view.clearSelection()
        pump(seconds)

    try:
        sam, lea, asker = fake.peer(SAM), fake.peer(LEA), fake.peer(ASK)
        sam.user.push_name, lea.user.push_name, asker.user.push_name = "Sam Carter", "Lea Novak", ""
        group = fake.create_group("Shop team", [SAM, LEA])  # listed once the phone is linked
        wait("the QR code", lambda: window.pairing.qr.code is not None)
        pump(1.2)  # the countdown has ticked once: a live window, not a first frame
        shot = screenshot("screenshot-pairing.png")
        codes = [r.text for r in zxingcpp.read_barcodes(shot)]
        if codes != [window.pairing.qr.code]:
            raise SystemExit(f"the QR code on screen does not decode to the current code: {codes!r}")
        fake.scan(codes[0])
        wait("the connection", lambda: session.state.status is Status.CONNECTED)
        wait("the joined group", lambda: window.chat_model.chat(group) is not None)
        messenger = window.messenger
        form = window.compose

        # others write first: a number without a name, Lea in the group and to us
        asker.send_text("Hello, is the shop open on Sunday?")
        wait("the question", lambda: window.chat_model.chat(f"{ASK}@s.whatsapp.net") is not None)
        lea.send_group_text(group, "Who closes today? I can stay until 7.")
        lea.send_text("Do you have the blue jacket in size M?")
        wait("Lea's message", lambda: window.chat_model.chat(f"{LEA}@s.whatsapp.net") is not None)
        wait("the group's message", lambda: window.chat_model.chat(group).unread == 1)
        # an answer to the question, not sent yet: a draft
        messenger.open_chat(f"{ASK}@s.whatsapp.net")
        wait("the question's chat", lambda: not window.model.loading and window.model.rowCount() == 1)
        form.message.setPlainText("Yes, from 10 to 4.")
        pump(0.1)

        # a new chat with Sam: New chat, the number, Start chat
        dialog = window.new_chat()
        assert dialog is not None
        dialog.number.setText("+1 555 000 2222")
        pump(0.1)
        dialog.submit()
        wait("Sam's chat", lambda: messenger.current_chat == f"{SAM}@s.whatsapp.net")

        def send(text: str) -> str:
            """Type and send ``text``; its WhatsApp id once the window shows it sent."""
            form.message.setPlainText(text)
            pump(0.1)
            form.send_button.click()
            wait("the message in the chat", lambda: any(e.text == text for e in window.model.entries()))
            mid, received = fake.wait_text_from_client(SAM, timeout=20)
            assert received == text, received
            wait("sent", lambda: all(e.status != "queued" for e in window.model.entries()))
            return mid

        first = send("Hi Sam! Your order #1042 is ready. We're open until 6 pm today.")
        fake.send_receipt(first, SAM, type="read")
        sam.send_text("Great, thanks! I'll come by around 5.")
        wait("the reply", lambda: any(not e.outgoing for e in window.model.entries()))
        second = send("Perfect, see you then. It's at the front desk.")
        fake.send_receipt(second, SAM, type=None)
        wait(
            "the receipts",
            lambda: [e.status for e in window.model.entries() if e.outgoing] == ["read", "delivered"],
        )
        form.message.setPlainText("")
        form.message.setFocus()
        settle()
        screenshot("screenshot-connected.png")

        window.apply_theme(theme.DARK)
        settle()
        screenshot("screenshot-dark.png")

        window.resize(*NARROW_SIZE)
        wait("the narrow layout", lambda: messenger.narrow)
        window.apply_theme(theme.LIGHT)
        settle()
        screenshot("screenshot-narrow.png")  # the conversation, with Back
        messenger.show_list()
        window.apply_theme(theme.DARK)
        settle()
        screenshot("screenshot-narrow-dark.png")  # the chat list
        window.apply_theme(theme.LIGHT)
        window.resize(*SIZE)
        wait("the wide layout", lambda: not messenger.narrow)

        window.search.setText("shop")  # the group's name, and a word in the question
        wait("the search", lambda: messenger.search_model.query == "shop")
        wait("a chat and a message", lambda: messenger.search_model.chats() and messenger.search_model.hits())
        settle()
        screenshot("screenshot-search.png")
        window.search.clear()
        messenger.open_chat(f"{SAM}@s.whatsapp.net")

        # a photo with a caption, the contact's receipt as a PDF and a voice note, and the next
        # file attached (a taller window: the form shows the attachment)
        window.resize(SIZE[0], MEDIA_HEIGHT)
        files = Path(tempfile.mkdtemp(prefix="wadesk-shots-files-"))
        photo = files / "shop-front.jpg"
        photo.write_bytes(shop_photo())
        window.attach_file(photo)
        wait("the photo in the form", lambda: form.attachment is not None and form.attachment.ok)
        form.message.setPlainText("This is us. The door is on the left.")
        pump(0.1)
        form.send_button.click()
        wait("the photo in the chat", lambda: any(e.media is not None for e in window.model.entries()))
        fake.wait_media_from_client(SAM, kind="image", timeout=20)
        wait("sent", lambda: all(e.status != "queued" for e in window.model.entries()))
        sam.send_media(
            "document",
            receipt_pdf(),
            "application/pdf",
            filename="receipt-1042.pdf",
            caption="Receipt attached.",
            pageCount=2,
        )
        sam.send_media("audio", b"OggS" + os.urandom(9_000), "audio/ogg; codecs=opus", seconds=7, ptt=True)
        wait(
            "the document and the voice note",
            lambda: sum(e.media is not None for e in window.model.entries()) == 3,
        )
        brochure = files / "opening hours.pdf"
        brochure.write_bytes(receipt_pdf(1))
        window.attach_file(brochure)
        wait("the attachment", lambda: form.attachment is not None and form.attachment.ok)
        wait("the photo", lambda: window.thumbnails.loading == 0)
        form.message.setFocus()
        settle(0.5)
        screenshot("screenshot-media.png")
        shutil.rmtree(files, ignore_errors=True)
    finally:
        window.shutdown()
        window.wait_stopped()
        fake.close()
        session.store.close()
        shutil.rmtree(data.path, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNG files (default: docs/)")
    parser.add_argument(
        "--font",
        default="Cantarell",
        help="UI font for the pictures, if installed (default: Cantarell, GNOME's; the app itself uses the "
        "desktop's font)",
    )
    args = parser.parse_args()
    if os.environ.get(CHILD):
        return child(args)
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
