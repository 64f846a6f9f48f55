"""Build the wadesk desktop bundle (PyInstaller, one folder) for the system this runs on.

    python3 packaging/build.py            # Linux, macOS; `py packaging\\build.py` on Windows

1. creates (or reuses) a build environment in packaging/build/venv and installs wadesk
   with its desktop extra and PyInstaller into it;
2. runs packaging/wadesk.spec: the result is packaging/dist/wadesk/ (Linux, Windows) or
   packaging/dist/wadesk.app (macOS);
3. writes LICENSE and THIRD-PARTY-LICENSES (packaging/third_party_licenses.py, from the
   build environment's installed distributions) into the bundle, next to the program;
4. runs the bundle's own self-test in both modes (desktop with Qt offscreen, and headless,
   which must not load Qt) and prints the bundle's size.

Exit code 0 when the bundle was built and both self-tests passed. Standard library only.
Options: --fresh (recreate the build environment), --no-check (skip the self-tests).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
BUILD = PACKAGING / "build"
DIST = PACKAGING / "dist"
VENV = BUILD / "venv"
SPEC = PACKAGING / "wadesk.spec"
PYINSTALLER = "pyinstaller>=6.10,<7"
ICON_PNG = BUILD / "wadesk-256.png"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def bundle_dir() -> Path:
    return DIST / ("wadesk.app" if sys.platform == "darwin" else "wadesk")


def bundle_program() -> Path:
    """The console program of the bundle (the one that prints the self-test)."""
    if sys.platform == "darwin":
        return DIST / "wadesk.app" / "Contents" / "MacOS" / "wadesk"
    if sys.platform == "win32":
        return DIST / "wadesk" / "wadesk-cli.exe"
    return DIST / "wadesk" / "wadesk"


def run(cmd: list[str | Path], **kwargs: object) -> None:
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)  # type: ignore[call-overload]


def setup_environment(fresh: bool) -> None:
    if fresh and VENV.exists():
        shutil.rmtree(VENV)
    if not venv_python().exists():
        run([sys.executable, "-m", "venv", VENV])
    py = venv_python()
    run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([py, "-m", "pip", "install", "--quiet", f"{ROOT}[gui]", PYINSTALLER])
    # the tree may have changed since the last build at the same version number
    run([py, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(ROOT)])


def render_icon() -> None:
    """Windows and macOS want a bitmap icon for the program file: render the SVG with Qt."""
    if sys.platform not in ("win32", "darwin"):
        return
    script = (
        "import sys\n"
        "from PySide6.QtGui import QGuiApplication, QImage, QPainter\n"
        "from PySide6.QtSvg import QSvgRenderer\n"
        "app = QGuiApplication(['render'])\n"
        "image = QImage(256, 256, QImage.Format.Format_ARGB32)\n"
        "image.fill(0)\n"
        "painter = QPainter(image)\n"
        "QSvgRenderer(sys.argv[1]).render(painter)\n"
        "painter.end()\n"
        "sys.exit(0 if image.save(sys.argv[2]) else 1)\n"
    )
    ICON_PNG.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    run([venv_python(), "-c", script, ROOT / "resources" / "wadesk.svg", ICON_PNG], env=env)


def build() -> None:
    pyinstaller = [venv_python(), "-m", "PyInstaller"]
    run([*pyinstaller, "--noconfirm", "--distpath", DIST, "--workpath", BUILD / "work", SPEC], cwd=ROOT)


def licenses_dir() -> Path:
    """Where the bundle keeps LICENSE and THIRD-PARTY-LICENSES: next to the program."""
    if sys.platform == "darwin":
        return DIST / "wadesk.app" / "Contents" / "Resources"
    return DIST / "wadesk"


def write_licenses() -> None:
    target = licenses_dir()
    shutil.copyfile(ROOT / "LICENSE", target / "LICENSE")
    run(
        [
            venv_python(),
            PACKAGING / "third_party_licenses.py",
            "--runtime",
            "-o",
            target / "THIRD-PARTY-LICENSES",
            "wadesk[gui]",
        ]
    )


def check() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "PYTHON"))}
    env["QT_QPA_PLATFORM"] = "offscreen"
    program = bundle_program()
    for mode in (["--headless", "--self-test"], ["--self-test"]):
        run([program, *mode], env=env, timeout=120)


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true", help="recreate the build environment")
    parser.add_argument("--no-check", action="store_true", help="do not run the bundle's self-tests")
    args = parser.parse_args()
    start = time.monotonic()
    try:
        setup_environment(args.fresh)
        render_icon()
        build()
        write_licenses()
        if not args.no_check:
            check()
    except subprocess.CalledProcessError as exc:
        print(f"build.py: failed: {exc}", file=sys.stderr)
        return 1
    size = size_of(bundle_dir())
    print(
        f"bundle: {bundle_dir()} ({size / 1e6:.1f} MB), program {bundle_program()}, "
        f"built in {time.monotonic() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
