"""``wadesk --self-test``: load every component wadesk needs, print what was found, exit.

It checks an installation, a container image or a frozen desktop bundle without a phone
and without the network: nothing here opens a network connection (the desktop keyring
check may ask the session's D-Bus, a local socket, which backend is there).
``wadesk --headless --self-test`` checks what the HTTP gateway needs and proves that Qt was
not imported; ``wadesk --self-test`` also loads Qt (on the offscreen platform, so no
display is needed) and the desktop window's code.

One line per component on stdout, ``ok`` or ``FAIL``, then a summary line. Exit code 0
when everything loaded, 1 otherwise (the failing line says what is missing).

neonize downloads its Go library from the internet when the library file is missing or
has another version. The check below looks for the file and asks the library for its
version *before* neonize is imported, and skips the import if that fails, so a broken
installation is reported instead of being "repaired" over the network.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .config import Config

EXIT_OK = 0
EXIT_FAILED = 1
QT_PACKAGES = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "PySide2")
SAMPLE_PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
# Where Go's crypto/x509 looks for CA certificates on Linux (besides SSL_CERT_FILE/SSL_CERT_DIR).
GO_CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


class CheckFailed(Exception):
    """A component is missing or broken; ``str(err)`` says which and what to do."""


class Skipped(Exception):
    """A check could not run because an earlier one failed."""


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    seconds: float


# ---- the checks ------------------------------------------------------------------------------


def check_python() -> str:
    frozen = " (frozen bundle)" if getattr(sys, "frozen", False) else ""
    return (
        f"wadesk {__version__} on {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}{frozen}"
    )


def check_sqlite() -> str:
    import sqlite3

    from .core.store import Store

    with tempfile.TemporaryDirectory(prefix="wadesk-self-test-") as tmp:
        store = Store(Path(tmp) / "self-test.db")
        try:
            mode = store.query("PRAGMA journal_mode")[0][0]
            record, created = store.enqueue("15550001111@s.whatsapp.net", "self-test")
            if not created or store.get(record.id) is None:
                raise CheckFailed("a message written to the outbox could not be read back")
        finally:
            store.close()
    if str(mode).lower() != "wal":
        raise CheckFailed(f"SQLite refused write-ahead logging (journal_mode={mode})")
    return f"SQLite {sqlite3.sqlite_version}, outbox database in WAL mode"


def check_qr() -> str:
    import segno

    from . import qr

    data = "2@wadesk-self-test,AAAA,BBBB,CCCC"
    image = qr.png(data)
    if not image.startswith(b"\x89PNG\r\n\x1a\n"):
        raise CheckFailed("the QR renderer did not produce a PNG")
    size = len(qr.matrix(data))
    return f"segno {segno.__version__}: {size}x{size} modules, PNG {len(image)} bytes"


def check_ca_certificates() -> str:
    """whatsmeow (Go) verifies WhatsApp's TLS certificate against the system's CA bundle."""
    if sys.platform != "linux":
        return "the operating system's certificate store"
    for var in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        value = os.environ.get(var)
        if value:
            if not os.path.exists(value.split(os.pathsep)[0]):
                raise CheckFailed(f"{var}={value} does not exist")
            return f"{var}={value}"
    for path in GO_CA_FILES:
        if os.path.isfile(path):
            return path
    raise CheckFailed(
        "no CA certificate bundle found (WhatsApp's TLS certificate cannot be verified): "
        "install the ca-certificates package"
    )


def check_neonize_library() -> str:
    from .core.neonize_compat import LibraryProblem, check_library

    try:
        path, found = check_library()  # without importing neonize (which would download)
    except LibraryProblem as exc:
        raise CheckFailed(str(exc)) from None
    size = path.stat().st_size / 1e6
    return f"{path} (goneonize {found}, {size:.1f} MB)"


def check_neonize() -> str:
    from .core.neonize_compat import load_neonize, versions

    load_neonize()  # imports neonize.client the way a session does: Go runtime, protobufs, PIL, ...
    neonize_version, protobuf_version = versions()
    return f"neonize {neonize_version} imported, protobuf {protobuf_version}"


def check_libmagic() -> str:
    import magic

    from . import qr

    database = os.environ.get("MAGIC") or "built-in path"
    try:
        detector = magic.Magic(mime=True)
    except Exception as exc:  # noqa: BLE001  (python-magic raises its own MagicException)
        message = exc.args[0] if exc.args else exc
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        raise CheckFailed(f"libmagic cannot load its database ({database}): {message}") from None
    found = {
        "image/png": detector.from_buffer(qr.png("wadesk")),
        "application/pdf": detector.from_buffer(SAMPLE_PDF),
    }
    wrong = {want: got for want, got in found.items() if got != want}
    if wrong:
        raise CheckFailed(
            "libmagic loaded but misidentifies files (is its database missing?): "
            + ", ".join(f"{want} seen as {got}" for want, got in wrong.items())
        )
    lib = getattr(getattr(magic, "libmagic", None), "_name", "libmagic")
    version = ""
    version_of = getattr(magic, "version", None)
    if callable(version_of):
        try:
            raw = int(version_of())
            version = f" {raw // 100}.{raw % 100:02d}"
        except Exception:  # noqa: BLE001  (an old libmagic without magic_version)
            version = ""
    return f"libmagic{version} ({lib}), database {database}"


def check_keyring(gui: bool) -> str:
    try:
        import keyring
    except ImportError:
        if gui:
            raise CheckFailed(
                "keyring is not installed; the desktop window needs it: pip install 'wadesk[gui]'"
            ) from None
        return "not installed (the gateway keeps its token in the data folder)"
    if gui and sys.platform.startswith("linux"):
        # what keyring's Secret Service backend (GNOME Keyring, KWallet 6, KeePassXC) needs
        try:
            import secretstorage  # noqa: F401
        except ImportError as exc:
            raise CheckFailed(f"the Secret Service keyring backend cannot load: {exc}") from None
    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    try:
        priority = float(backend.priority)
    except Exception:  # noqa: BLE001  (a backend that cannot be used says so by raising)
        priority = 0.0
    insecure = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")
    backends = getattr(backend, "backends", None)
    if name.startswith(insecure) or priority <= 0 or (backends is not None and not backends):
        return f"{name}: no secure keyring here, tokens stay in the data folder (0600)"
    return f"{name} (priority {priority:g})"


def check_gateway() -> str:
    server = importlib.import_module("wadesk.api.server")
    import flask
    import waitress

    if not callable(getattr(server, "run", None)):
        raise CheckFailed("wadesk.api.server has no run()")
    flask_version = _dist_version("flask", flask)
    return f"wadesk.api.server, Flask {flask_version}, waitress {_dist_version('waitress', waitress)}"


def check_qt() -> str:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no display needed, nothing shown
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import QLibraryInfo, qVersion
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["wadesk-self-test"])
    assert isinstance(app, QApplication)
    image = QImage(64, 64, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.fillRect(8, 8, 16, 16, QColor("black"))
    painter.end()
    if QColor(image.pixel(10, 10)) != QColor("black"):
        raise CheckFailed("Qt loaded but cannot paint")
    plugins = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
    if not os.path.isdir(plugins):
        raise CheckFailed(f"Qt's plugin folder {plugins} does not exist")
    return f"PySide6 {pyside_version}, Qt {qVersion()}, platform {app.platformName()}, plugins {plugins}"


def check_icon() -> str:
    from PySide6.QtGui import QIcon

    path = _icon_path()
    if path is None:
        raise CheckFailed("the application icon wadesk.svg is missing")
    icon = QIcon(str(path))
    pixmap = icon.pixmap(64, 64)
    if icon.isNull() or pixmap.isNull():
        raise CheckFailed(f"the icon {path} does not render (is Qt's SVG plugin missing?)")
    return f"{path} renders at {pixmap.width()}x{pixmap.height()}"


def _icon_path() -> Path | None:
    here = Path(__file__).resolve().parent
    bases = [here / "resources", here.parent / "resources"]
    if getattr(sys, "frozen", False):
        bases.insert(0, Path(getattr(sys, "_MEIPASS", here)) / "resources")
    for base in bases:
        if (base / "wadesk.svg").is_file():
            return base / "wadesk.svg"
    return None


def check_window() -> str:
    app_module = importlib.import_module("wadesk.ui.app")
    if not callable(getattr(app_module, "run", None)):
        raise CheckFailed("wadesk.ui.app has no run()")
    return "wadesk.ui.app imported"


def check_no_qt() -> str:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in QT_PACKAGES)
    if loaded:
        raise CheckFailed(f"Qt was imported in headless mode: {', '.join(loaded[:5])}")
    return "no Qt module imported"


def _dist_version(dist: str, module: object) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return str(getattr(module, "__version__", "?"))


# ---- running them ----------------------------------------------------------------------------


def plan(gui: bool) -> list[tuple[str, Callable[[], str], tuple[str, ...]]]:
    """(name, check, names it depends on), in order."""
    steps: list[tuple[str, Callable[[], str], tuple[str, ...]]] = [
        ("python", check_python, ()),
        ("sqlite", check_sqlite, ()),
        ("qr renderer", check_qr, ()),
        ("ca certificates", check_ca_certificates, ()),
        ("neonize library", check_neonize_library, ()),
        ("libmagic", check_libmagic, ()),
        ("neonize", check_neonize, ("neonize library", "libmagic")),
        ("keyring", lambda: check_keyring(gui), ()),
    ]
    if gui:
        steps += [
            ("qt", check_qt, ()),
            ("icon", check_icon, ("qt",)),
            ("desktop window", check_window, ("qt", "neonize")),
        ]
    else:
        steps += [
            ("http gateway", check_gateway, ("neonize",)),
            ("no qt", check_no_qt, ()),
        ]
    return steps


def run_checks(gui: bool) -> list[Result]:
    results: list[Result] = []
    failed: set[str] = set()
    for name, check, needs in plan(gui):
        start = time.perf_counter()
        try:
            missing = [n for n in needs if n in failed]
            if missing:
                raise Skipped(f"skipped: needs {', '.join(missing)}")
            detail, ok = check(), True
        except (CheckFailed, Skipped) as exc:
            detail, ok = str(exc), False
        except ImportError as exc:
            detail, ok = f"cannot import {exc.name or exc}: {exc}", False
        except Exception as exc:  # noqa: BLE001  (report any breakage as one line)
            detail, ok = f"{type(exc).__name__}: {exc}", False
        if not ok:
            failed.add(name)
        results.append(Result(name, ok, " ".join(detail.split()), time.perf_counter() - start))
    return results


def run(config: Config, gui: bool) -> int:
    """Run every check for the mode, print one line each and a summary; 0 if all passed."""
    mode = "desktop" if gui else "headless"
    results = run_checks(gui)
    width = max(len(r.name) for r in results)
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'}  {r.name:<{width}}  {r.detail}", flush=True)
    failures = [r for r in results if not r.ok]
    total = sum(r.seconds for r in results)
    if failures:
        print(
            f"self-test ({mode}) FAILED: {len(failures)} of {len(results)} checks; first: "
            f"{failures[0].name}: {failures[0].detail}",
            flush=True,
        )
        return EXIT_FAILED
    print(f"self-test ({mode}) passed: {len(results)} checks in {total:.2f} s", flush=True)
    return EXIT_OK
