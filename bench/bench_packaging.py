"""Packaging benchmark: the Docker image's own size, the desktop bundle's size, and how fast each
answers /health from a cold start. One command, every number measured in this run:

    WADESK_DOCKER=../shared/container/docker python bench/bench_packaging.py [--build-bundle]

- image: builds the image from this checkout (cached layers make a rebuild quick), then
  reports its size minus the base image's (python:3.13-slim): the layers wadesk adds.
  Stand-in base images differ in size from the official ones; the difference does not.
  Also the container's start to the first 200 from /health, and its memory after 10 s idle.
- bundle: packaging/dist/wadesk as built by packaging/build.py (``--build-bundle`` builds it
  first); its size on disk (file sizes, symlinks not followed) and its start to /health.

Targets: 130 MB of own layers; 180 MB for the one-folder bundle (MB = 10^6 bytes).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "packaging"), str(ROOT / "tests")]  # the harness and its helpers

from container_harness import BASE_IMAGE, Containers, Engine, EngineUnavailable, free_port, wait_until  # noqa: E402

IMAGE_TAG = "wadesk:bench"
IMAGE_TARGET = 130e6
BUNDLE_TARGET = 180e6
BUNDLE = ROOT / "packaging" / "dist" / "wadesk"
TOKEN = "bench-token-0123456789abcdef"  # noqa: S105  (a throwaway token for the benchmark)


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def row(name: str, value: str, target: str = "", ratio: str = "") -> None:
    print(f"{name:<38} {value:>12} {target:>12} {ratio:>8}")


def parse_memory(text: str) -> float | None:
    """'41.2MiB / 256MiB' or '41.2MB' -> bytes of the first number."""
    found = re.match(r"\s*([\d.]+)\s*([kKMG]i?B|B)", text)
    if not found:
        return None
    unit = found.group(2)
    scale = {"B": 1, "kB": 1e3, "KB": 1e3, "KiB": 1024, "MB": 1e6, "MiB": 2**20, "GB": 1e9, "GiB": 2**30}
    return float(found.group(1)) * scale.get(unit, 1)


def bench_image() -> None:
    try:
        engine = Engine.from_environment()
    except EngineUnavailable as exc:
        row("image", f"skipped: {exc}")
        return
    start = time.monotonic()
    engine.build(IMAGE_TAG)
    build_s = time.monotonic() - start
    total = engine.image_size(IMAGE_TAG)
    base = engine.image_size(BASE_IMAGE)
    own = total - base
    row("image build (with layer cache)", f"{build_s:.1f} s")
    row("image total / base", f"{mb(total)} / {mb(base)}")
    row("image own layers (total - base)", mb(own), mb(IMAGE_TARGET), f"{own / IMAGE_TARGET:.2f}")
    history = engine.run("history", IMAGE_TAG, "--format", "{{.Size}}\t{{.CreatedBy}}").stdout
    for line in history.splitlines():
        size, _, created = line.partition("\t")
        if size.strip() not in ("0B", "0 B") and "ADD file" not in created:
            row(f"  layer {created.strip()[:30]}", size.strip())

    containers = Containers(engine, IMAGE_TAG, prefix="wadesk-bench")
    try:
        started = time.monotonic()
        c = containers.start(env={"WADESK_API_TOKEN": TOKEN}, token=TOKEN)
        c.wait_healthy(timeout=60)
        row("container start to first /health 200", f"{time.monotonic() - started:.2f} s")
        time.sleep(10)
        stats = engine.run("stats", "--no-stream", "--format", "{{.MemUsage}}", c.name, check=False)
        memory = parse_memory(stats.stdout) if stats.returncode == 0 else None
        row("container memory after 10 s idle", mb(memory) if memory else "n/a (no stats)")
        took = c.stop(timeout=10)
        row("docker stop (SIGTERM to exit)", f"{took:.2f} s", "10 s", f"{took / 10:.2f}")
    finally:
        containers.cleanup()


def bench_bundle(build: bool) -> None:
    if build:
        start = time.monotonic()
        subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--no-check"], check=True)
        row("bundle build", f"{time.monotonic() - start:.0f} s")
    program = BUNDLE / "wadesk"
    if not program.is_file():
        row("bundle", "not built (python3 packaging/build.py, or --build-bundle)")
        return
    size = sum(f.stat().st_size for f in BUNDLE.rglob("*") if f.is_file() and not f.is_symlink())
    row("bundle one-folder size", mb(size), mb(BUNDLE_TARGET), f"{size / BUNDLE_TARGET:.2f}")
    with tempfile.TemporaryDirectory(prefix="wadesk-bench-") as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QT_", "WADESK_"))}
        env.update(PORT=str(port), WADESK_DATA_DIR=f"{tmp}/data", WADESK_API_TOKEN=TOKEN, HOME=tmp)
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(program), "--headless"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        http = requests.Session()
        http.trust_env = False
        try:
            wait_until(
                lambda: http.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200,
                60,
                "the bundle's /health",
                interval=0.02,
            )
            row("bundle start to first /health 200", f"{time.monotonic() - started:.2f} s")
        finally:
            proc.terminate()
            proc.wait(15)
            http.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-bundle", action="store_true", help="build the desktop bundle first")
    parser.add_argument("--skip-image", action="store_true", help="do not build or run the image")
    args = parser.parse_args()
    row("measure", "value", "target", "ratio")
    if not args.skip_image:
        bench_image()
    bench_bundle(args.build_bundle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
