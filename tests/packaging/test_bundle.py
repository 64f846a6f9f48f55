"""The frozen desktop bundle (packaging/dist, built by packaging/build.py), run as a user would.

Skipped with the reason when the bundle was not built; ``WADESK_BUILD_BUNDLE=1`` builds it
first (see conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from container_harness import free_port, wait_until

pytestmark = pytest.mark.bundle

BUNDLE_LIMIT = 180e6  # bytes, the one-folder bundle


def bundle_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A plain user environment: no Python or Qt variables from the test run, no display."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "QT_", "WADESK_", "FAKEWA_"))
        and k not in ("MAGIC", "DISPLAY", "WAYLAND_DISPLAY", "VIRTUAL_ENV")
    }
    env.update({"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg"), **extra})
    return env


def run_bundle(program: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(program), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=bundle_env(tmp_path),
        cwd=tmp_path,
        check=False,
    )


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def test_bundle_size(bundle: Path) -> None:
    folder = bundle.parent if sys.platform != "darwin" else bundle.parents[2]
    size = folder_size(folder)
    assert size <= BUNDLE_LIMIT, f"the bundle is {size / 1e6:.1f} MB"


def test_bundle_carries_what_neonize_needs(bundle: Path) -> None:
    internal = bundle.parent / "_internal"
    if not internal.is_dir():
        pytest.skip("not a Linux/Windows one-folder layout")
    assert list((internal / "neonize").glob("neonize-*")), "neonize's Go library is not in the bundle"
    if sys.platform.startswith("linux"):
        assert (internal / "libmagic" / "magic.mgc").is_file()
    assert not (internal / "PySide6" / "Qt" / "translations").exists(), "Qt translations were bundled"
    assert not list(internal.rglob("libQt6Qml*")), "QtQml was bundled"


def test_bundle_ships_its_license_and_the_third_party_licenses(bundle: Path) -> None:
    folder = bundle.parent if sys.platform != "darwin" else bundle.parents[1] / "Resources"
    assert "Apache License" in (folder / "LICENSE").read_text(encoding="utf-8")
    listing = (folder / "THIRD-PARTY-LICENSES").read_text(encoding="utf-8")
    summary = listing.split("\n=====", 1)[0]
    for name in ("neonize 0.5.2", "PySide6_Essentials ", "Flask ", "whatsmeow", "Qt 6", "Python 3."):
        assert name in summary, name
    assert "pyinstaller" not in summary.lower(), "a build tool is listed as shipped"
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in listing


def test_headless_self_test_in_the_bundle(bundle: Path, tmp_path: Path) -> None:
    result = run_bundle(bundle, tmp_path, "--headless", "--self-test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(frozen bundle)" in result.stdout
    assert "ok    no qt" in result.stdout
    assert str(bundle.parent) in result.stdout, "neonize's library was not loaded from the bundle"
    assert "self-test (headless) passed" in result.stdout


def test_desktop_self_test_in_the_bundle(bundle: Path, tmp_path: Path) -> None:
    result = run_bundle(bundle, tmp_path, "--self-test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "platform offscreen" in result.stdout
    assert "self-test (desktop) passed" in result.stdout


def x_windows(display: str) -> list[tuple[str, int, int]]:
    """(title, width, height) of every window on ``display``."""
    out = subprocess.run(
        ["xwininfo", "-root", "-tree", "-display", display], capture_output=True, text=True, timeout=10
    ).stdout
    found = []
    for title, width, height in re.findall(r'"([^"]*)":.*?\s(\d+)x(\d+)[+-]', out):
        found.append((title, int(width), int(height)))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 under Xvfb is Linux only")
def test_desktop_bundle_opens_its_window_on_a_real_x_display(bundle: Path, tmp_path: Path) -> None:
    """The bundle's own Qt platform plugin (xcb) and its libraries, not offscreen: a window
    appears on an X server, and SIGTERM closes it."""
    if not (shutil.which("Xvfb") and shutil.which("xwininfo")):
        pytest.skip("Xvfb and xwininfo (packages xvfb, x11-utils) are not installed")
    display_number = next(n for n in range(91, 199) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    display = f":{display_number}"
    xvfb = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    app = None
    log = tmp_path / "window.log"
    try:
        wait_until(lambda: Path(f"/tmp/.X11-unix/X{display_number}").exists(), 30, "Xvfb to start")
        env = bundle_env(tmp_path, DISPLAY=display, WADESK_DATA_DIR=str(tmp_path / "data"))
        env["XDG_RUNTIME_DIR"] = str(tmp_path)
        with open(log, "wb") as out:
            app = subprocess.Popen(
                [str(bundle)], env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL, cwd=tmp_path
            )

        def main_window() -> bool:
            assert app.poll() is None, log.read_text(errors="replace")
            return any(t == "wadesk" and w >= 300 and h >= 300 for t, w, h in x_windows(display))

        wait_until(main_window, 30, "the wadesk window on the X display")
        app.terminate()
        assert app.wait(timeout=10) == 0, log.read_text(errors="replace")
    finally:
        if app is not None and app.poll() is None:
            app.kill()
            app.wait(10)
        xvfb.terminate()
        xvfb.wait(10)
    assert "qt.qpa" not in log.read_text(errors="replace"), log.read_text(errors="replace")


def test_headless_bundle_answers_health_and_stops_on_sigterm(bundle: Path, tmp_path: Path) -> None:
    port = free_port()
    env = bundle_env(
        tmp_path,
        PORT=str(port),
        WADESK_DATA_DIR=str(tmp_path / "data"),
        WADESK_API_TOKEN="bundle-test-token-0123456789",
    )
    log = tmp_path / "wadesk.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(bundle), "--headless"],
            env=env,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            cwd=tmp_path,
        )
    http = requests.Session()
    http.trust_env = False
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                return http.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 30, "the bundle's GET /health to answer 200")
        assert http.get(f"http://127.0.0.1:{port}/status", timeout=5).status_code == 401
        proc.terminate()
        assert proc.wait(timeout=15) == 0, log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        http.close()
    assert (tmp_path / "data" / "whatsapp.db").is_file()
