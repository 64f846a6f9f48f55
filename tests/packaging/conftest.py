"""Fixtures for the packaging tests: the container engine, the image, the desktop bundle.

Container tests need a Docker-compatible engine, named by ``WADESK_DOCKER`` (default
``docker``). Where none answers they are skipped with the reason. The image is built once
per test session from the checkout (the build itself is a test: a failing build fails).

The desktop bundle is built by ``python3 packaging/build.py`` (a minute or two). Its tests
use ``packaging/dist/wadesk`` when it exists and are skipped with the reason when it does
not; ``WADESK_BUILD_BUNDLE=1`` builds it first, in the test run.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from container_harness import ROOT, Containers, Engine, EngineUnavailable

IMAGE_TAG = os.environ.get("WADESK_TEST_IMAGE", "wadesk:test")
BUILD_BUNDLE_ENV = "WADESK_BUILD_BUNDLE"
BUNDLE_DIR = ROOT / "packaging" / "dist" / "wadesk"


def bundle_program() -> Path:
    if sys.platform == "darwin":
        return ROOT / "packaging" / "dist" / "wadesk.app" / "Contents" / "MacOS" / "wadesk"
    if sys.platform == "win32":
        return BUNDLE_DIR / "wadesk-cli.exe"
    return BUNDLE_DIR / "wadesk"


@pytest.fixture(scope="session")
def engine() -> Engine:
    try:
        return Engine.from_environment()
    except EngineUnavailable as exc:
        pytest.skip(
            f"no container engine answers ({exc}); set WADESK_DOCKER to a docker-compatible command "
            "(on machines without Docker: ../shared/container/setup, then "
            "WADESK_DOCKER=../shared/container/docker)"
        )


@pytest.fixture(scope="session")
def image(engine: Engine) -> str:
    """The image built from this checkout's Dockerfile (fails the tests that use it if the build fails)."""
    engine.build(IMAGE_TAG, build_args=image_build_args())
    return IMAGE_TAG


def image_build_args() -> dict[str, str]:
    """The build arguments packaging/build_image.py passes (the OCI labels' values)."""
    return dict(load_packaging_module("build_image").build_args())


def load_packaging_module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "packaging" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def containers(engine: Engine, image: str, request: pytest.FixtureRequest) -> Iterator[Containers]:
    made = Containers(engine, image)
    yield made
    report: Any = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for name in made.names:
            logs = engine.run("logs", name, check=False)
            print(f"---- logs of {name} ----\n{(logs.stdout + logs.stderr)[-20000:]}")
    made.cleanup()


@pytest.fixture(scope="session")
def bundle() -> Path:
    """The frozen program of the desktop bundle; built first when WADESK_BUILD_BUNDLE=1."""
    if os.environ.get(BUILD_BUNDLE_ENV) == "1":
        result = subprocess.run(
            [sys.executable, str(ROOT / "packaging" / "build.py"), "--no-check"],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"packaging/build.py failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    program = bundle_program()
    if not program.is_file():
        pytest.skip(
            f"the desktop bundle is not built ({program.relative_to(ROOT)} is missing): run "
            f"`python3 packaging/build.py`, or set {BUILD_BUNDLE_ENV}=1 to build it in this test run"
        )
    return program


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)  # lets fixtures see whether the test failed
    return report
