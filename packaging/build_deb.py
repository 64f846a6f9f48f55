"""Build the Debian package (.deb) of wadesk from the Linux desktop bundle.

    python3 packaging/build.py && python3 packaging/build_deb.py     # or: build_deb.py --build

The result is packaging/dist/wadesk_<version>_<arch>.deb, with
- the bundle (packaging/dist/wadesk/) as /opt/wadesk, and /usr/bin/wadesk pointing at it;
- the desktop entry, the icon in the hicolor theme (scalable SVG, and PNGs rendered from it
  with Qt in 16 to 512 pixels), the AppStream metainfo;
- LICENSE, THIRD-PARTY-LICENSES and a Debian copyright file in /usr/share/doc/wadesk;
- the systemd unit of the headless gateway (deploy/systemd/wadesk.service), not enabled;
- Depends: the packages of this machine that provide the shared libraries the bundle's
  programs and libraries need and do not carry themselves (found with objdump, ldconfig and
  dpkg -S), so that `apt install ./wadesk_*.deb` brings them. Build it on the Debian or
  Ubuntu release it is for, as the bundle itself (PyInstaller does not cross-build).

Needs dpkg-deb, objdump (binutils) and ldconfig. The icon cache and the desktop database are
updated by their packages' triggers; the one maintainer script (prerm) stops and disables the
systemd unit when the package is removed. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build as bundle_build

ROOT = bundle_build.ROOT
BUNDLE = bundle_build.DIST / "wadesk"
STAGING = bundle_build.BUILD / "deb"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
METAINFO = "org.wadesk.wadesk.metainfo.xml"
# Needed by what the bundle loads at run time without being a NEEDED entry (Qt loads the X
# cursor library by name), or by a plugin whose libraries the build machine may lack.
ALWAYS = ("libxcb-cursor0", "libegl1", "libgl1", "libdbus-1-3", "libxkbcommon-x11-0")
# sonames that need no package: the dynamic loader and libraries of libc6, listed below
LIBC = re.compile(r"^(ld-linux.*|libc|libm|libdl|libpthread|librt|libutil|libresolv|libanl|libmvec)\.so")


def version() -> str:
    text = (ROOT / "wadesk" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not found:
        raise SystemExit("build_deb.py: no __version__ in wadesk/__init__.py")
    return found.group(1)


def output(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed_sonames(bundle: Path) -> set[str]:
    """Every soname an ELF file in the bundle needs that no file in the bundle provides."""
    elves = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p)]
    inside = {p.name for p in bundle.rglob("*")}
    needed: set[str] = set()
    for chunk in range(0, len(elves), 200):
        text = output(["objdump", "-p", *map(str, elves[chunk : chunk + 200])])
        needed.update(m.group(1) for m in re.finditer(r"^\s+NEEDED\s+(\S+)", text, re.M))
    return {n for n in needed if n not in inside}


def system_libraries() -> dict[str, str]:
    """soname -> path, from the dynamic loader's cache (this machine's architecture)."""
    arch = "x86-64" if os.uname().machine == "x86_64" else os.uname().machine
    found: dict[str, str] = {}
    for line in output(["ldconfig", "-p"]).splitlines():
        m = re.match(r"\s+(\S+) \((.*)\) => (\S+)", line)
        if m and (arch in m.group(2) or "x86-64" not in m.group(2)):
            found.setdefault(m.group(1), m.group(3))
    return found


def owning_packages(paths: list[str]) -> dict[str, str]:
    """path -> Debian package, with dpkg -S (tries the merged-/usr twin of each path too)."""
    owners: dict[str, str] = {}
    candidates: dict[str, str] = {}
    for path in paths:
        real = os.path.realpath(path)
        for variant in {path, real, *(p.replace("/usr/lib/", "/lib/", 1) for p in (path, real))}:
            candidates[variant] = path
    result = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        package, _, file = line.partition(": ")
        if file in candidates:
            owners.setdefault(candidates[file], package.split(":")[0].split(",")[0].strip())
    return owners


def depends(bundle: Path) -> tuple[list[str], list[str]]:
    """(the Depends list, sonames no installed package provides)."""
    sonames = needed_sonames(bundle)
    libraries = system_libraries()
    unresolved = sorted(s for s in sonames if s not in libraries and not LIBC.match(s))
    wanted = {s: libraries[s] for s in sonames if s in libraries and not LIBC.match(s)}
    owners = owning_packages(list(wanted.values()))
    unresolved += sorted(s for s, p in wanted.items() if p not in owners)
    packages = set(owners.values()) | set(ALWAYS)
    libc = output(["dpkg-query", "-W", "-f=${Version}", "libc6"]).split("-")[0]
    return [f"libc6 (>= {libc})", *sorted(packages - {"libc6"})], unresolved


def render_icons(target: Path) -> None:
    """PNGs of resources/wadesk.svg in the hicolor sizes, drawn by Qt (the build environment's)."""
    script = (
        "import sys\n"
        "from PySide6.QtCore import Qt\n"
        "from PySide6.QtGui import QGuiApplication, QImage, QPainter\n"
        "from PySide6.QtSvg import QSvgRenderer\n"
        "app = QGuiApplication(['render'])\n"
        "renderer = QSvgRenderer(sys.argv[1])\n"
        "for size in map(int, sys.argv[3:]):\n"
        "    image = QImage(size, size, QImage.Format.Format_ARGB32)\n"
        "    image.fill(Qt.GlobalColor.transparent)\n"
        "    painter = QPainter(image)\n"
        "    painter.setRenderHint(QPainter.RenderHint.Antialiasing)\n"
        "    renderer.render(painter)\n"
        "    painter.end()\n"
        "    path = f'{sys.argv[2]}/{size}x{size}/apps/wadesk.png'\n"
        "    import os; os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "    if not image.save(path):\n"
        "        sys.exit(f'cannot write {path}')\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    python = bundle_build.venv_python()
    if not python.exists():
        python = Path(sys.executable)
    subprocess.run(
        [
            str(python),
            "-c",
            script,
            str(ROOT / "resources" / "wadesk.svg"),
            str(target),
            *map(str, ICON_SIZES),
        ],
        env=env,
        check=True,
    )


COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: wadesk
Source: {source}

Files: *
Copyright: wadesk maintainers
License: Apache-2.0
 The full text is in /usr/share/doc/wadesk/LICENSE (and, on Debian,
 /usr/share/common-licenses/Apache-2.0).
Comment: /opt/wadesk is a PyInstaller bundle: it contains Python, Qt (LGPL-3.0),
 neonize with whatsmeow (MPL-2.0) and the other Python distributions wadesk uses,
 each under its own license, listed with their full texts in
 /usr/share/doc/wadesk/THIRD-PARTY-LICENSES.
"""


# The systemd unit is shipped, never enabled by the package; if the administrator enabled or
# started it, removing the package stops it and removes the enablement links first, so that
# nothing of the package is left (the state directory /var/lib/wadesk, the account's data,
# stays). No postrm: with one, dpkg would keep the package's record until a purge.
PRERM = """\
#!/bin/sh
set -e
if [ "$1" = remove ]; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl stop wadesk.service >/dev/null 2>&1 || true
    fi
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper purge wadesk.service >/dev/null 2>&1 || true
    fi
    rm -f /etc/systemd/system/multi-user.target.wants/wadesk.service
fi
"""


def stage(root: Path, arch: str, deps: list[str]) -> None:
    if root.exists():
        shutil.rmtree(root)
    opt = root / "opt" / "wadesk"
    shutil.copytree(BUNDLE, opt, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "wadesk").symlink_to("/opt/wadesk/wadesk")
    share = root / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    shutil.copyfile(ROOT / "resources" / "wadesk.desktop", share / "applications" / "wadesk.desktop")
    icons = share / "icons" / "hicolor"
    (icons / "scalable" / "apps").mkdir(parents=True)
    shutil.copyfile(ROOT / "resources" / "wadesk.svg", icons / "scalable" / "apps" / "wadesk.svg")
    render_icons(icons)
    (share / "metainfo").mkdir(parents=True)
    shutil.copyfile(ROOT / "resources" / METAINFO, share / "metainfo" / METAINFO)
    doc = share / "doc" / "wadesk"
    doc.mkdir(parents=True)
    for name in ("LICENSE", "THIRD-PARTY-LICENSES"):
        shutil.copyfile(opt / name, doc / name)
    source = bundle_build_source()
    (doc / "copyright").write_text(COPYRIGHT.format(source=source), encoding="utf-8")
    unit_dir = root / "usr" / "lib" / "systemd" / "system"
    unit_dir.mkdir(parents=True)
    shutil.copyfile(ROOT / "deploy" / "systemd" / "wadesk.service", unit_dir / "wadesk.service")
    for path in root.rglob("*"):
        if not path.is_symlink():
            mode = 0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644
            path.chmod(mode)
    size_kb = sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() or p.is_symlink()) // 1024
    control = root / "DEBIAN"
    control.mkdir()
    (control / "prerm").write_text(PRERM, encoding="utf-8")
    (control / "prerm").chmod(0o755)
    (control / "control").write_text(
        f"Package: wadesk\n"
        f"Version: {version()}\n"
        f"Architecture: {arch}\n"
        f"Maintainer: wadesk maintainers <maintainers@users.noreply.r-seed-52eadefe.example>\n"
        f"Installed-Size: {size_kb}\n"
        f"Depends: {', '.join(deps)}\n"
        f"Suggests: xdg-utils\n"
        f"Section: net\n"
        f"Priority: optional\n"
        f"Homepage: {source}\n"
        f"Description: WhatsApp desktop sender and headless HTTP gateway\n"
        f" wadesk sends WhatsApp messages from your own account: by hand from a small\n"
        f" desktop window, or from code through an HTTP API with `wadesk --headless`.\n"
        f" It is linked once by scanning a QR code, as WhatsApp Web is.\n"
        f" .\n"
        f" This package installs the self-contained program in /opt/wadesk.\n",
        encoding="utf-8",
    )


def bundle_build_source() -> str:
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["urls"]["Source"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="store_true", help="build the bundle first (packaging/build.py)")
    parser.add_argument("-o", "--output-dir", type=Path, default=bundle_build.DIST)
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("build_deb.py: Debian packages are built on Linux", file=sys.stderr)
        return 2
    if args.build and subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py")]).returncode:
        return 1
    program = BUNDLE / "wadesk"
    if not program.is_file() or not (BUNDLE / "THIRD-PARTY-LICENSES").is_file():
        print(f"build_deb.py: no bundle in {BUNDLE}: run python3 packaging/build.py first", file=sys.stderr)
        return 1
    arch = output(["dpkg", "--print-architecture"]).strip()
    deps, unresolved = depends(BUNDLE)
    if unresolved:
        # libraries only some optional Qt plugins use (e.g. Wayland's), absent on this machine
        print(f"build_deb.py: no package here provides {', '.join(unresolved)}", file=sys.stderr)
    root = STAGING / f"wadesk_{version()}_{arch}"
    stage(root, arch, deps)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    deb = args.output_dir / f"wadesk_{version()}_{arch}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", str(root), str(deb)], check=True
    )
    print(f"package: {deb} ({deb.stat().st_size / 1e6:.1f} MB)\nDepends: {', '.join(deps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
