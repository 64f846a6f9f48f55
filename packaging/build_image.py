"""Build the container image with its OCI labels filled in.

    python3 packaging/build_image.py [-t wadesk:0.1.0] [--engine podman] [-- extra build options]

Runs ``docker build`` (or the engine named by --engine or WADESK_DOCKER) on the checkout with
the build arguments the Dockerfile's labels read: VERSION (wadesk/__init__.py), REVISION (the
git commit, with ``-dirty`` when the tree has changes), CREATED (now, RFC 3339 UTC) and SOURCE
(the Source URL in pyproject.toml). Standard library only; exit code that of the build.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def version() -> str:
    text = (ROOT / "wadesk" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not found:
        raise SystemExit("build_image.py: no __version__ in wadesk/__init__.py")
    return found.group(1)


def revision() -> str:
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)

    try:
        head = git("rev-parse", "HEAD")
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def source() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["urls"]["Source"])


def build_args(now: datetime | None = None) -> dict[str, str]:
    created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"VERSION": version(), "REVISION": revision(), "CREATED": created, "SOURCE": source()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-t", "--tag", help="image tag (default: wadesk:<version>)")
    parser.add_argument("--engine", default=os.environ.get("WADESK_DOCKER", "docker"))
    parser.add_argument("extra", nargs="*", help="more options for the build (after --)")
    args = parser.parse_args(argv)
    cmd = [*shlex.split(args.engine), "build", "-t", args.tag or f"wadesk:{version()}"]
    for key, value in build_args().items():
        cmd += ["--build-arg", f"{key}={value}"]
    cmd += [*args.extra, str(ROOT)]
    print("+ " + shlex.join(cmd), flush=True)
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
