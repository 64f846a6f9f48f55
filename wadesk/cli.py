"""The ``wadesk`` command: the desktop window by default, the HTTP gateway with --headless."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from . import __version__
from . import config as cfg
from .core.datadir import DataDir, DataDirError

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    rows = "\n".join(
        f"  {env:<22} {flag or '-':<18} {default or '-'}" for env, flag, default, _ in cfg.settings_table()
    )
    parser = argparse.ArgumentParser(
        prog="wadesk",
        description="Send WhatsApp messages from a desktop window, or from code through an HTTP API "
        "(--headless). Pair once by scanning a QR code with your phone.",
        epilog="Every setting is read as flag, then environment variable, then default:\n"
        f"  {'environment':<22} {'flag':<18} default\n{rows}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wadesk {__version__}")
    parser.add_argument(
        "--headless",
        action="store_true",
        help="run the HTTP API gateway without a window (no Qt is imported)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="load every component (Qt unless --headless, neonize's library, libmagic, keyring), "
        "print what was found and exit, without touching the network",
    )
    parser.add_argument(
        "--reset-store",
        action="store_true",
        help="if a database in the data folder is damaged or has vanished, move what is left of it "
        "aside (renamed *.damaged-<time>, never deleted) and start with a new one; without this "
        "flag wadesk refuses to start on it",
    )
    cfg.add_arguments(parser)
    return parser


def fail(message: str) -> int:
    print(f"wadesk: {message}", file=sys.stderr)
    return EXIT_CONFIG


# Qt platforms that need a display server, and the variable that names it
DISPLAY_PLATFORMS = {"xcb": "DISPLAY", "wayland": "WAYLAND_DISPLAY", "wayland-egl": "WAYLAND_DISPLAY"}
NO_DISPLAY = "no display found: the window needs a desktop session; for a server run wadesk --headless"


def display_missing(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """True where the window cannot open: a Linux (X11/Wayland) system with neither display,
    unless QT_QPA_PLATFORM picks a platform that needs none (offscreen, minimal, vnc, ...).
    Qt itself would print a few lines and abort with a core dump."""
    if platform in ("win32", "cygwin", "darwin"):
        return False
    wanted = [p.split(":", 1)[0].strip().lower() for p in environ.get("QT_QPA_PLATFORM", "").split(";")]
    wanted = [p for p in wanted if p]
    if not wanted:
        return not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    for name in wanted:  # Qt tries them in order
        needs = DISPLAY_PLATFORMS.get(name)
        if needs is None or environ.get(needs):
            return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # everything we (and neonize) create is owner-only
    try:
        config = cfg.load(args, os.environ, headless=args.headless, reset_store=args.reset_store)
    except cfg.ConfigError as exc:
        return fail(str(exc))
    if args.self_test:
        from .selftest import run as self_test

        return self_test(config, gui=not args.headless)
    data = DataDir(config.data_dir)
    if args.headless:
        try:
            data.open("headless", reset_store=config.reset_store)  # held until the process ends
        except DataDirError as exc:
            return fail(exc.one_line())
        from .api.server import run as run_headless

        code = run_headless(config, data)
        data.remember()  # what the databases hold now, for the next start's check
        return code
    if display_missing(os.environ):
        return fail(NO_DISPLAY)
    try:
        from .ui.app import run as run_gui
    except ImportError as exc:
        missing = exc.name or "PySide6"
        return fail(
            f"the desktop window needs Qt ({missing} is missing): pip install 'wadesk[gui]', or --headless"
        )
    return run_gui(config, data)  # checks for a running window first, then opens the data folder
