"""Test session bootstrap and the fake WhatsApp fixtures.

The Go runtime inside neonize reads the process environment once, when the library is
loaded, from what the process was *started* with: assigning ``os.environ`` afterwards is
invisible to it. Tests run neonize in this process (pytest-qt tests of the window) and in
child processes, so the pytest process itself must start with the test environment:
``pytest_configure`` re-executes the same command line once with ``SSL_CERT_FILE`` pointing
at a throwaway test CA and without any proxy variables. The CA lives in a temporary
directory named by ``WADESK_TEST_PKI_DIR``, shared with child processes and removed at the end
of the session by the process that created it.

``tests/`` is on ``sys.path`` (rootdir conftest without ``__init__.py``), so the harness
imports as ``fakewa``. Nothing here imports neonize at import time.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fakewa.harness import FakeWhatsApp
    from fakewa.keys import SignKeyPair, TestPKI

BOOTSTRAP_ENV = "WADESK_TEST_BOOTSTRAPPED"
PKI_DIR_ENV = "WADESK_TEST_PKI_DIR"
PKI_OWNER_ENV = "WADESK_TEST_PKI_OWNER"  # pid of the process that removes the PKI directory
PROXY_VARS = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}


def _reexec_with_test_environment(config: pytest.Config) -> None:
    """Replace this process by the same pytest command line, started with the test environment."""
    from fakewa.keys import TestPKI

    pki_dir = tempfile.mkdtemp(prefix="wadesk-test-pki-")
    pki = TestPKI(pki_dir)
    env = {k: v for k, v in os.environ.items() if k.upper() not in PROXY_VARS}
    env.update(
        {
            BOOTSTRAP_ENV: "1",
            PKI_DIR_ENV: pki_dir,
            PKI_OWNER_ENV: str(os.getpid()),  # execve keeps the pid
            "SSL_CERT_FILE": pki.ca_file,
        }
    )
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()  # let the new process write to the real terminal
    sys.stdout.flush()
    sys.stderr.flush()
    # sys.orig_argv[1:] repeats the interpreter options and either "-m pytest ..." or the
    # path of the pytest script, so this works for both ways of starting pytest.
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)  # noqa: S606


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Restart once with the test environment (see the module docstring), then check it."""
    if os.environ.get(BOOTSTRAP_ENV) != "1":
        _reexec_with_test_environment(config)  # does not return
    pki_dir = os.environ.get(PKI_DIR_ENV, "")
    ca_file = os.path.join(pki_dir, "ca.pem")
    if not os.path.isfile(ca_file) or os.environ.get("SSL_CERT_FILE") != ca_file:
        raise pytest.UsageError(
            f"{BOOTSTRAP_ENV}=1 is set but {PKI_DIR_ENV}/SSL_CERT_FILE do not name a test CA; "
            f"unset {BOOTSTRAP_ENV} and run pytest again"
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the test CA directory in the process that created it (execve keeps the pid)."""
    pki_dir = os.environ.get(PKI_DIR_ENV)
    if pki_dir and os.environ.get(PKI_OWNER_ENV) == str(os.getpid()):
        shutil.rmtree(pki_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def fakewa_pki() -> TestPKI:
    """The session's test CA and web.whatsapp.com certificate (the one SSL_CERT_FILE trusts)."""
    from fakewa.keys import TestPKI

    return TestPKI(os.environ[PKI_DIR_ENV])


@pytest.fixture(scope="session")
def fakewa_root() -> SignKeyPair:
    """The session's fake WhatsApp root key, patched into this process's neonize library."""
    from fakewa.harness import install_process_root

    return install_process_root()


@pytest.fixture
def fake_wa(fakewa_pki: TestPKI, fakewa_root: SignKeyPair) -> Iterator[FakeWhatsApp]:
    """A fresh fake WhatsApp server on a free 127.0.0.1 port, closed after the test."""
    from fakewa.harness import FakeWhatsApp

    wa = FakeWhatsApp(fakewa_pki, fakewa_root)
    try:
        yield wa
    finally:
        wa.close()
