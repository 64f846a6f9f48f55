"""The ``wadesk`` command: the desktop window by default, the HTTP gateway with --headless."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

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
    cfg.add_arguments(parser)
    return parser


def fail(message: str) -> int:
    print(f"wadesk: {message}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # everything we (and neonize) create is owner-only
    try:
        config = cfg.load(args, os.environ, headless=args.headless)
    except cfg.ConfigError as exc:
        return fail(str(exc))
    if args.self_test:
        from .selftest import run as self_test

        return self_test(config, gui=not args.headless)
    try:
        data = DataDir(config.data_dir).prepare()
    except DataDirError as exc:
        return fail(f"invalid WADESK_DATA_DIR: {exc}")
    if args.headless:
        from .api.server import run as run_headless

        return run_headless(config, data)
    try:
        from .ui.app import run as run_gui
    except ImportError as exc:
        missing = exc.name or "PySide6"
        return fail(
            f"the desktop window needs Qt ({missing} is missing): pip install 'wadesk[gui]', or --headless"
        )
    return run_gui(config, data)
