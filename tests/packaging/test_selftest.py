"""``wadesk --self-test`` as a user runs it: a fresh process, its output, its exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

PYTHON = sys.executable


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without test hooks (no fake-server injection) and with Qt offscreen."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "FAKEWA_ROOT_PUB", "MAGIC") and not k.startswith("QT_")
    }
    env.update(extra)
    return env


def self_test(*args: str, prefix: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, PYTHON, "-m", "wadesk", *args, "--self-test"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(**env),
        check=False,
    )


def lines_by_check(output: str) -> dict[str, str]:
    """{check name: 'ok ...' or 'FAIL ...'} from the self-test's table."""
    found = {}
    for line in output.splitlines():
        status, _, rest = line.partition("  ")
        if status.strip() in ("ok", "FAIL") and rest.strip():
            name = rest.strip().split("  ")[0].strip()
            found[name] = f"{status.strip()} {rest.strip()[len(name) :].strip()}"
    return found


def run_patched(patch: str, *, gui: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the self-test in a fresh interpreter after ``patch`` (Python source) was applied to
    ``wadesk.selftest``; prints which of neonize's modules were imported afterwards."""
    code = textwrap.dedent(
        f"""
        import sys
        from wadesk import selftest
        {patch}
        rc = selftest.run(None, gui={gui!r})
        print("imported:", sorted(m for m in sys.modules if m == "neonize" or m.startswith("neonize.")))
        sys.exit(rc)
        """
    )
    return subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, timeout=120, env=clean_env(**env), check=False
    )


def test_headless_self_test_loads_everything_and_no_qt() -> None:
    result = self_test("--headless")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = lines_by_check(result.stdout)
    for name in ("sqlite", "qr renderer", "neonize library", "libmagic", "neonize", "http gateway", "no qt"):
        assert checks.get(name, "").startswith("ok"), f"{name}: {checks.get(name)}\n{result.stdout}"
    assert "goneonize 0.5.2" in checks["neonize library"]
    assert "self-test (headless) passed" in result.stdout.splitlines()[-1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="network namespaces are Linux only")
def test_self_test_needs_no_network() -> None:
    """In a network namespace with no interface at all (nothing could be downloaded), it still passes."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare(1) is not installed")
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.strip()}")
    result = self_test("--headless", prefix=(unshare, "--net"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test (headless) passed" in result.stdout


def test_desktop_self_test_loads_qt_offscreen() -> None:
    pytest.importorskip("PySide6", reason="the desktop extra (PySide6) is not installed")
    result = self_test()
    assert result.returncode == 0, result.stdout + result.stderr
    checks = lines_by_check(result.stdout)
    assert "platform offscreen" in checks["qt"]
    for name in ("keyring", "icon", "desktop window"):
        assert checks[name].startswith("ok"), f"{name}: {checks[name]}"
    assert "no qt" not in checks
    assert "self-test (desktop) passed" in result.stdout.splitlines()[-1]


def test_missing_go_library_fails_clearly_and_neonize_is_never_imported() -> None:
    """A missing library must be reported, not 'repaired' by neonize's download at import."""
    result = run_patched(
        "from wadesk.core import neonize_compat; "
        "neonize_compat.library_file = lambda: 'neonize-nowhere-amd64.so'"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    checks = lines_by_check(result.stdout)
    assert checks["neonize library"].startswith("FAIL")
    assert "neonize-nowhere-amd64.so is missing" in checks["neonize library"]
    assert "download" in checks["neonize library"]
    assert checks["neonize"] == "FAIL skipped: needs neonize library"
    assert "imported: []" in result.stdout, "neonize was imported although its library is missing"
    summary = [line for line in result.stdout.splitlines() if line.startswith("self-test")]
    assert summary == [summary[0]] and "FAILED" in summary[0] and "neonize library" in summary[0]


def test_library_of_another_version_fails_clearly_and_neonize_is_never_imported() -> None:
    result = run_patched(
        "from wadesk.core import neonize_compat; "
        "neonize_compat.expected_library_version = lambda directory=None: '9.9.9'"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    checks = lines_by_check(result.stdout)
    assert "is version 0.5.2, neonize 9.9.9 needs its own" in checks["neonize library"]
    assert "imported: []" in result.stdout


def test_missing_magic_database_fails_clearly() -> None:
    result = self_test("--headless", MAGIC="/nonexistent/magic.mgc")
    assert result.returncode == 1, result.stdout + result.stderr
    checks = lines_by_check(result.stdout)
    assert checks["libmagic"].startswith("FAIL"), checks["libmagic"]
    assert checks["neonize"] == "FAIL skipped: needs libmagic"
    assert "self-test (headless) FAILED" in result.stdout
