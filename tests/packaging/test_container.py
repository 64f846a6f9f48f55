"""The Docker image, built from this checkout and run for real.

No WhatsApp is reachable from these containers (the session keeps RECONNECTING); pairing
and sending through the container are in test_container_e2e.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from container_harness import BASE_IMAGE, ROOT, Containers, Engine, wait_until

import wadesk

pytestmark = pytest.mark.container

TOKEN = "container-test-token-0123456789"
OWN_LAYERS_LIMIT = 130e6  # bytes: the image minus its base image


def test_image_is_built_as_specified(engine: Engine, image: str) -> None:
    data = engine.inspect("image", image)
    config = data["Config"]
    assert config["User"] in ("1001:1001", "1001")
    assert "/app/session" in (config.get("Volumes") or {})
    assert "8080/tcp" in (config.get("ExposedPorts") or {})
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["WADESK_DATA_DIR"] == "/app/session"
    assert env["HOST"] == "0.0.0.0"
    assert env["PYTHON_KEYRING_BACKEND"] == "keyring.backends.null.Keyring"
    entrypoint = config["Entrypoint"]
    assert entrypoint[-2:] == ["wadesk", "--headless"], entrypoint
    assert not any(part in ("sh", "/bin/sh", "bash") for part in entrypoint), "no shell wrapper as PID 1"
    health = config.get("Healthcheck") or data.get("Healthcheck") or {}  # docker | podman
    assert health.get("Test", [None])[0] == "CMD", health
    assert "/health" in " ".join(health["Test"]) and "curl" not in " ".join(health["Test"])


def test_image_carries_oci_labels_from_the_build(engine: Engine, image: str) -> None:
    labels = engine.inspect("image", image)["Config"]["Labels"]
    prefix = "org.opencontainers.image."
    assert labels[prefix + "version"] == wadesk.__version__
    assert labels[prefix + "licenses"] == "Apache-2.0"
    assert labels[prefix + "source"].startswith("https://"), labels
    revision = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    if revision:  # a checkout with git: the label names its commit
        assert labels[prefix + "revision"].removesuffix("-dirty") == revision, labels
    created = datetime.strptime(labels[prefix + "created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 3 * 3600, labels


def test_image_ships_its_license_and_the_third_party_licenses(engine: Engine, image: str) -> None:
    script = (
        "import pathlib\n"
        "doc = pathlib.Path('/usr/share/doc/wadesk')\n"
        "print((doc / 'LICENSE').read_text().split('\\n')[1].strip())\n"
        "print((doc / 'THIRD-PARTY-LICENSES').read_text())\n"
    )
    result = engine.run("run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", script)
    first, _, listing = result.stdout.partition("\n")
    assert first == "Apache License", first
    summary = listing.split("\n=====", 1)[0]
    for line in ("neonize 0.5.2", "Flask ", "waitress ", "whatsmeow", "MPL-2.0"):
        assert line in summary, summary
    # what the image does not contain is not listed: no Qt, no keyring, no pip
    for absent in ("PySide6", "Qt 6", "keyring", "\n  pip "):
        assert absent not in summary, summary
    assert "Mozilla Public License Version 2.0" in listing  # whatsmeow's license, in full


def test_image_own_layers_are_small(engine: Engine, image: str) -> None:
    own = engine.image_size(image) - engine.image_size(BASE_IMAGE)
    assert own <= OWN_LAYERS_LIMIT, f"the image's own layers are {own / 1e6:.1f} MB"


def test_runtime_has_no_compilers_no_qt_and_a_read_only_go_library(engine: Engine, image: str) -> None:
    script = (
        "import importlib.util, os, shutil, sys\n"
        "tools = [t for t in ('gcc', 'cc', 'g++', 'make', 'curl', 'wget') if shutil.which(t)]\n"
        "qt = [m for m in ('PySide6', 'shiboken6', 'keyring') if importlib.util.find_spec(m)]\n"
        "spec = importlib.util.find_spec('neonize')\n"
        "lib = os.path.join(spec.submodule_search_locations[0], 'neonize-linux-amd64.so')\n"
        "st = os.stat(lib)\n"
        "print(tools, qt, st.st_uid, os.access(lib, os.W_OK), os.access(os.path.dirname(lib), os.W_OK))\n"
    )
    result = engine.run("run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", script)
    # no build tools, no Qt or keyring (the desktop extra is not installed), and the Go library
    # belongs to root: the app's user could not replace it by a download even if neonize tried
    assert result.stdout.split() == ["[]", "[]", "0", "False", "False"], result.stdout


def test_self_test_in_the_image_passes_offline(engine: Engine, image: str) -> None:
    result = engine.run("run", "--rm", "--network", "none", image, "--self-test", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    no qt" in result.stdout
    assert "goneonize 0.5.2" in result.stdout
    assert "self-test (headless) passed" in result.stdout


def test_serves_health_within_10_s_as_uid_1001(containers: Containers) -> None:
    c = containers.start(env={"WADESK_API_TOKEN": TOKEN}, token=TOKEN)
    waited = c.wait_healthy(timeout=10)
    body = c.get("/health").json()
    assert body["status"] == "ok", body
    # every process in the container runs as 1001:1001 (PID 1 included)
    uids = c.exec(
        "python",
        "-I",
        "-c",
        "import os\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n"
        "        lines = open(f'/proc/{pid}/status').read().splitlines()\n"
        "    except OSError:\n"
        "        continue\n"
        "    f = {l.split(':')[0]: l.split()[1] for l in lines if l.startswith(('Uid', 'Gid'))}\n"
        "    print(pid, f['Uid'], f['Gid'])\n",
    ).stdout.split("\n")
    rows = [row.split() for row in uids if row.strip()]
    assert rows and all(uid == "1001" and gid == "1001" for _, uid, gid in rows), rows
    assert any(pid == "1" for pid, _, _ in rows)
    assert waited <= 10


def test_qr_needs_the_token_and_says_why_there_is_none(containers: Containers) -> None:
    """Without WhatsApp the session reconnects: /qr answers JSON saying so, never an image."""
    c = containers.start(env={"WADESK_API_TOKEN": TOKEN}, token=TOKEN)
    c.wait_healthy()
    assert c.get("/qr", token="wrong-token-0123456789").status_code == 401
    c.wait_state("reconnecting", timeout=30)
    response = c.get("/qr")
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["state"] == "reconnecting"


def test_starting_does_not_download_the_go_library(containers: Containers) -> None:
    """With no network at all, the container still loads neonize and runs the session loop."""
    c = containers.start(env={"WADESK_API_TOKEN": TOKEN}, options=["--network", "none"], publish=False)

    def reconnecting() -> bool:
        assert c.running(), c.logs()
        return "session reconnecting" in c.logs()

    wait_until(reconnecting, 30, "the session to try WhatsApp and back off")
    health = c.exec(
        "python",
        "-I",
        "-c",
        "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/health').status)",
    )
    assert health.stdout.strip() == "200"
    logs = c.logs().lower()
    assert "download" not in logs, c.logs()


def test_docker_stop_exits_0_within_10_s(containers: Containers) -> None:
    c = containers.start(env={"WADESK_API_TOKEN": TOKEN}, token=TOKEN)
    c.wait_healthy()
    took = c.stop(timeout=10)
    assert c.exit_code() == 0, c.logs()
    assert took < 10, f"docker stop took {took:.1f} s"
    assert "shutting down (SIGTERM)" in c.logs()


def test_bad_setting_exits_non_zero_with_one_clear_line(containers: Containers) -> None:
    c = containers.start(env={"PORT": "99999"}, publish=False)
    assert c.wait_exit(timeout=60) == 2
    lines = [line for line in c.logs().splitlines() if line.strip()]
    assert lines == ["wadesk: invalid PORT '99999': must be a whole number from 1 to 65535"], lines


def test_fresh_named_volume_is_owned_by_the_app(containers: Containers) -> None:
    volume = containers.volume()
    c = containers.start(
        env={"WADESK_API_TOKEN": TOKEN}, options=["-v", f"{volume}:/app/session"], token=TOKEN
    )
    c.wait_healthy()
    listing = c.exec("ls", "-lan", "/app/session").stdout.splitlines()
    entries = {line.split()[-1]: line.split() for line in listing if line.split()[-1] not in ("..",)}
    assert entries["."][0] == "drwx------" and entries["."][2:4] == ["1001", "1001"], listing
    for name in ("whatsapp.db", "wadesk.db"):
        assert entries[name][0] == "-rw-------" and entries[name][2:4] == ["1001", "1001"], listing


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="needs root to chown a folder to 1001"
)
def test_bind_mount_owned_by_1001_works_and_one_owned_by_root_is_refused(
    containers: Containers, tmp_path: Path
) -> None:
    data = tmp_path / "session"
    data.mkdir(mode=0o700)
    os.chown(data, 1001, 1001)
    c = containers.start(env={"WADESK_API_TOKEN": TOKEN}, options=["-v", f"{data}:/app/session"], token=TOKEN)
    c.wait_healthy()
    files = {p.name: p.stat() for p in data.iterdir()}
    assert {"whatsapp.db", "wadesk.db"} <= set(files), sorted(files)
    for name in ("whatsapp.db", "wadesk.db"):
        assert (files[name].st_uid, files[name].st_gid) == (1001, 1001)
        assert stat.S_IMODE(files[name].st_mode) == 0o600

    foreign = tmp_path / "root-owned"
    foreign.mkdir(mode=0o755)
    refused = containers.start(options=["-v", f"{foreign}:/app/session"], publish=False)
    assert refused.wait_exit(timeout=60) == 2
    lines = [line for line in refused.logs().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("wadesk: invalid WADESK_DATA_DIR"), lines
    assert "/app/session" in lines[0]
    assert "Permission denied" in lines[0] or "Operation not permitted" in lines[0], lines[0]
