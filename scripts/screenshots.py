"""Screenshots of the real wadesk window for the README, taken under Xvfb.

    python scripts/screenshots.py [--out docs] [--font Cantarell]

Starts a virtual X server (Debian: xvfb, plus the xcb libraries Qt's xcb platform needs),
runs the real window with the real WhatsApp client against the project's fake WhatsApp
server (tests/fakewa), and saves what the X server shows:

* ``screenshot-pairing.png``: waiting for the QR code to be scanned;
* ``screenshot-connected.png``: linked, with a short conversation.

The QR code is read back from the screen and scanned by the fake phone, the messages are
typed into the form and sent with the Send button, the replies come from a fake contact.
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
SIZE = (980, 700)
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
        ["Xvfb", f":{n}", "-screen", "0", "1280x900x24", "-nolisten", "tcp", "-dpi", "96"],
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

    try:
        wait("the QR code", lambda: window.pairing.qr.code is not None)
        pump(1.2)  # the countdown has ticked once: a live window, not a first frame
        shot = screenshot("screenshot-pairing.png")
        codes = [r.text for r in zxingcpp.read_barcodes(shot)]
        if codes != [window.pairing.qr.code]:
            raise SystemExit(f"the QR code on screen does not decode to the current code: {codes!r}")
        fake.scan(codes[0])
        wait("the connection", lambda: session.state.status is Status.CONNECTED)

        peer = fake.peer("15550002222")
        peer.user.push_name = "Sam Carter"
        form = window.compose

        def send(text: str) -> str:
            """Type and send ``text``; its WhatsApp id once the window shows it sent."""
            form.message.setPlainText(text)
            pump(0.1)
            form.send_button.click()
            wait("the message in the log", lambda: any(e.text == text for e in window.model.entries()))
            mid, received = fake.wait_text_from_client("15550002222", timeout=20)
            assert received == text, received
            wait("sent", lambda: all(e.status != "queued" for e in window.model.entries()))
            return mid

        form.recipient.setText("+1 555 000 2222")
        first = send("Hi Sam! Your order #1042 is ready. We're open until 6 pm today.")
        fake.send_receipt(first, "15550002222", type="read")
        peer.send_text("Great, thanks! I'll come by around 5.")
        wait("the reply", lambda: any(not e.outgoing for e in window.model.entries()))
        second = send("Perfect, see you then. It's at the front desk.")
        fake.send_receipt(second, "15550002222", type=None)
        wait(
            "the receipts",
            lambda: [e.status for e in window.model.entries() if e.outgoing] == ["read", "delivered"],
        )
        form.message.setPlainText("")
        form.message.setFocus()
        window.log_view.clearSelection()
        pump(0.3)
        screenshot("screenshot-connected.png")
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
