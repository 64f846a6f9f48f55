"""The Debian package (packaging/build_deb.py), built from the desktop bundle and installed
with apt into a clean Debian container of the build machine's release: both self-tests, the
window on an X server (Xvfb) in that container, and ``apt remove`` leaving nothing behind but
the user's data folder.

Needs the bundle (skipped with the reason while it is not built; ``WADESK_BUILD_BUNDLE=1``
builds it first), a container engine, and a Debian base image (on machines without a
registry: ``../shared/container/setup debian:bookworm-slim``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_harness import ROOT, Engine, wait_until

import wadesk

pytestmark = [
    pytest.mark.container,
    pytest.mark.bundle,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Debian packages are built on Linux"),
]

DEB_TAG = os.environ.get("WADESK_TEST_DEB_IMAGE", "wadesk-deb:test")
PACKAGE_FILES = (
    "/opt/wadesk/wadesk",
    "/usr/bin/wadesk",
    "/usr/share/applications/wadesk.desktop",
    "/usr/share/icons/hicolor/scalable/apps/wadesk.svg",
    "/usr/share/icons/hicolor/48x48/apps/wadesk.png",
    "/usr/share/icons/hicolor/256x256/apps/wadesk.png",
    "/usr/share/metainfo/org.wadesk.wadesk.metainfo.xml",
    "/usr/share/doc/wadesk/copyright",
    "/usr/share/doc/wadesk/THIRD-PARTY-LICENSES",
    "/usr/lib/systemd/system/wadesk.service",
)


def debian_release() -> str | None:
    try:
        fields = dict(
            line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
        )
    except OSError:
        return None
    if fields.get("ID") != "debian":
        return None
    return fields.get("VERSION_CODENAME", "").strip('"') or None


@pytest.fixture(scope="module")
def deb(bundle: Path) -> Path:
    for tool in ("dpkg-deb", "objdump", "ldconfig"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (dpkg, binutils, libc-bin)")
    result = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build_deb.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    path = ROOT / "packaging" / "dist" / f"wadesk_{wadesk.__version__}_{arch}.deb"
    assert path.is_file(), result.stdout
    return path


def test_package_metadata_and_contents(deb: Path) -> None:
    info = subprocess.run(
        ["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(
        line.split(": ", 1) for line in info.splitlines() if ": " in line and not line.startswith(" ")
    )
    assert fields["Package"] == "wadesk" and fields["Version"] == wadesk.__version__
    depends = {d.split()[0] for d in fields["Depends"].split(", ")}
    # what Qt's X11 platform plugin and the window need, as the issue lists them
    assert {"libc6", "libegl1", "libgl1", "libdbus-1-3", "libxkbcommon-x11-0", "libxcb-cursor0"} <= depends
    listing = subprocess.run(
        ["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    paths = {line.split()[5].lstrip(".") for line in listing.splitlines()}
    for path in PACKAGE_FILES:
        assert path in paths, path
    owners = {line.split()[1] for line in listing.splitlines()}
    assert owners == {"root/root"}, owners


def test_package_icons_are_pngs_of_their_theme_size(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    hicolor = tmp_path / "usr" / "share" / "icons" / "hicolor"
    sizes = sorted(int(d.name.split("x")[0]) for d in hicolor.iterdir() if d.name != "scalable")
    assert {16, 32, 48, 64, 128, 256} <= set(sizes), sizes
    for size in sizes:
        header = (hicolor / f"{size}x{size}" / "apps" / "wadesk.png").read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        assert (int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")) == (size, size)
    assert (hicolor / "scalable" / "apps" / "wadesk.svg").read_bytes() == (
        ROOT / "resources" / "wadesk.svg"
    ).read_bytes()


@pytest.fixture(scope="module")
def installed(engine: Engine, deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running container of a clean Debian with the .deb installed by apt (in the image
    build, which has the network); Xvfb and xwininfo are installed after it, so that they
    cannot bring a library the package forgot to depend on before the self-tests ran."""
    release = debian_release()
    if release is None:
        pytest.skip(
            "the .deb is tested in a container of the build machine's Debian release; this is not Debian"
        )
    base = f"debian:{release}-slim"
    if not engine.has_image(base):
        engine.run("pull", base, check=False, timeout=300)
    if not engine.has_image(base):
        pytest.skip(f"no {base} image (on machines without a registry: ../shared/container/setup {base})")
    context = tmp_path_factory.mktemp("deb-image")
    shutil.copyfile(deb, context / "wadesk.deb")
    (context / "Dockerfile").write_text(
        f"FROM {base}\n"
        "COPY wadesk.deb /tmp/wadesk.deb\n"
        "ENV DEBIAN_FRONTEND=noninteractive\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends /tmp/wadesk.deb\n"
        "RUN QT_QPA_PLATFORM=offscreen wadesk --self-test && wadesk --headless --self-test\n"
        "RUN apt-get install -y --no-install-recommends xvfb x11-utils && rm -rf /var/lib/apt/lists/*\n",
        encoding="utf-8",
    )
    engine.build(DEB_TAG, context=context, timeout=900)
    name = f"wadesk-deb-test-{os.getpid()}"
    engine.run("run", "-d", "--name", name, "--network", "none", DEB_TAG, "sleep", "infinity")
    try:
        yield name
    finally:
        engine.run("rm", "-f", name, check=False, timeout=60)


def sh(engine: Engine, container: str, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return engine.run("exec", container, "sh", "-c", script, check=check, timeout=120)


def test_installed_package_runs_both_self_tests(engine: Engine, installed: str) -> None:
    assert sh(engine, installed, "readlink -f /usr/bin/wadesk").stdout.strip() == "/opt/wadesk/wadesk"
    headless = sh(engine, installed, "cd / && wadesk --headless --self-test")
    assert "self-test (headless) passed" in headless.stdout, headless.stdout
    assert "/opt/wadesk" in headless.stdout  # neonize's library from the installed bundle
    desktop = sh(engine, installed, "cd / && wadesk --self-test")
    assert "self-test (desktop) passed" in desktop.stdout, desktop.stdout


def test_installed_package_opens_its_window_under_xvfb(engine: Engine, installed: str) -> None:
    # the X11 platform plugin (xcb) and the libraries the package depends on, not offscreen
    sh(engine, installed, "(Xvfb :77 -screen 0 1280x800x24 -nolisten tcp >/tmp/xvfb.log 2>&1 &) ; sleep 0")
    wait_until(
        lambda: sh(engine, installed, "test -e /tmp/.X11-unix/X77", check=False).returncode == 0, 30, "Xvfb"
    )
    sh(
        engine,
        installed,
        "cd / && (DISPLAY=:77 QT_QPA_PLATFORM=xcb XDG_RUNTIME_DIR=/tmp wadesk >/tmp/window.log 2>&1 & "
        "echo $! > /tmp/window.pid)",
    )

    def window() -> bool:
        alive = sh(engine, installed, "kill -0 $(cat /tmp/window.pid)", check=False).returncode == 0
        assert alive, sh(engine, installed, "cat /tmp/window.log", check=False).stdout
        tree = sh(engine, installed, "xwininfo -root -tree -display :77", check=False).stdout
        return '"wadesk"' in tree

    wait_until(window, 60, "the wadesk window on the container's X display")
    stopped = sh(
        engine,
        installed,
        # gone, or a zombie: its parent (the exec's shell) is gone and PID 1 here is sleep
        "pid=$(cat /tmp/window.pid); kill -TERM $pid; for i in $(seq 50); do "
        "state=$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null || echo gone); "
        "case $state in gone|Z) exit 0;; esac; sleep 0.2; done; exit 1",
        check=False,
    )
    log = sh(engine, installed, "cat /tmp/window.log", check=False).stdout
    assert stopped.returncode == 0, log
    assert "qt.qpa" not in log, log
    sh(engine, installed, "pkill Xvfb || true", check=False)


def test_apt_remove_leaves_only_the_users_data(engine: Engine, installed: str) -> None:
    # the user's data folder, made by a first start of the gateway (no network here: it keeps
    # reconnecting until stopped): it is the user's, and stays
    sh(
        engine,
        installed,
        "cd / && timeout -s TERM 10 wadesk --headless --port 18080 >/tmp/headless.log 2>&1; true",
    )
    data = sh(engine, installed, "ls /root/.local/share/wadesk").stdout.split()
    assert "whatsapp.db" in data and "wadesk.db" in data, data
    listed = sh(engine, installed, "dpkg -L wadesk").stdout.split()
    for path in PACKAGE_FILES:
        assert path in listed, path
    # as an administrator would have it: the gateway's unit enabled (systemctl's link by hand:
    # a container has no systemd)
    wants = "/etc/systemd/system/multi-user.target.wants"
    sh(engine, installed, f"mkdir -p {wants} && ln -s /usr/lib/systemd/system/wadesk.service {wants}/")
    sh(engine, installed, "DEBIAN_FRONTEND=noninteractive apt-get remove -y wadesk")
    # no configuration files and no postrm: dpkg keeps no record of the package either
    status = sh(engine, installed, "dpkg-query -W -f='${db:Status-Status}' wadesk 2>/dev/null || true").stdout
    assert status.strip() in ("", "not-installed"), status
    left = sh(
        engine,
        installed,
        "find / -xdev \\( -path /proc -o -path /sys \\) -prune -o -iname '*wadesk*' -print",
    ).stdout.split()
    assert sorted(p for p in left if not p.startswith(("/root/.local/share/wadesk", "/tmp/wadesk.deb"))) == []
    assert "/root/.local/share/wadesk" in left
