"""Clients generated from /openapi.json by the tools integrators use: a Python client by
openapi-python-client (PyPI), which then calls a running gateway (fake driver), and
TypeScript types by openapi-typescript (npm), which typescript's tsc compiles (and refuses
when they are misused). The tools are installed into a temporary folder in the run; each
part skips with the reason when its tool cannot be installed (no network)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from headless_harness import PEER_PHONE, TOKEN, FakeWorld, make_session, serving, start_session

from wadesk.api.app import create_app
from wadesk.core.events import Status
from wadesk.core.session import Session

pytestmark = pytest.mark.e2e

INSTALL_TIMEOUT = 600


def run(
    args: list[str], cwd: Path | None = None, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


def last_lines(result: subprocess.CompletedProcess[str], n: int = 5) -> str:
    return " | ".join((result.stdout + result.stderr).strip().splitlines()[-n:])


@pytest.fixture
def gateway(session: Session) -> Iterator[str]:
    start_session(session)
    app = create_app(session, token=TOKEN)
    with serving(app) as url:
        yield url
    app.extensions["wadesk"].close()


@pytest.fixture
def spec_file(gateway: str, tmp_path: Path) -> Path:
    import requests

    response = requests.get(
        gateway + "/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(response.json(), indent=1), encoding="utf-8")
    return path


# ---- Python: openapi-python-client -----------------------------------------------------

CALLS = f"""
import sys
from wadesk_client import AuthenticatedClient
from wadesk_client.api.session import get_status
from wadesk_client.api.events import create_event_ticket, list_events
from wadesk_client.api.messages import send_message
from wadesk_client.models import SendRequest, SessionStatus, EventTicket

client = AuthenticatedClient(base_url=sys.argv[1], token=sys.argv[2])
status = get_status.sync(client=client)
assert status.state == SessionStatus.CONNECTED, status
ticket = create_event_ticket.sync(client=client)
assert isinstance(ticket, EventTicket) and ticket.ticket.startswith("tkt_"), ticket
accepted = send_message.sync(client=client, body=SendRequest(to={PEER_PHONE!r}, text="generated"))
assert accepted.status == "queued", accepted
page = list_events.sync(client=client)
kinds = [type(e).__name__ for e in page.events]
assert "MessageStatusEvent" in kinds, kinds
queued = [e for e in page.events if type(e).__name__ == "MessageStatusEvent"][0]
assert queued.payload.id == accepted.id, queued
print("ok", status.state, kinds)
"""

QR_CALLS = """
import sys
from wadesk_client import AuthenticatedClient
from wadesk_client.api.session import get_qr_json, get_qr_png
from wadesk_client.types import File

client = AuthenticatedClient(base_url=sys.argv[1], token=sys.argv[2])
png = get_qr_png.sync(client=client)
assert isinstance(png, File), png
data = png.payload.read()
assert data.startswith(b"\\x89PNG\\r\\n"), data[:16]
code = get_qr_json.sync(client=client)
assert code.qr and code.image.startswith("data:image/png;base64,"), code
print("ok", len(data))
"""

# openapi-python-client treats only some media types as files or text: told how to read these
CLIENT_CONFIG = """
content_type_overrides:
  image/png: application/octet-stream
  image/svg+xml: text/plain
"""


@pytest.fixture
def qr_gateway(tmp_path: Path) -> Iterator[str]:
    """A second gateway, waiting for a QR code to be scanned."""
    session = make_session(tmp_path / "qr", FakeWorld("qr"))
    start_session(session, Status.WAITING_FOR_SCAN)
    app = create_app(session, token=TOKEN)
    with serving(app) as url:
        yield url
    app.extensions["wadesk"].close()
    session.stop()


def test_a_generated_python_client_calls_the_gateway(
    gateway: str, qr_gateway: str, spec_file: Path, tmp_path: Path
) -> None:
    tool = tmp_path / "tool"
    made = run([sys.executable, "-m", "venv", str(tool)])
    assert made.returncode == 0, last_lines(made)
    python = tool / "bin" / "python"
    installed = run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "openapi-python-client"],
        timeout=INSTALL_TIMEOUT,
    )
    if installed.returncode != 0:
        pytest.skip(f"openapi-python-client cannot be installed: {last_lines(installed, 2)}")
    out = tmp_path / "gen" / "wadesk_client"
    generate = [str(tool / "bin" / "openapi-python-client"), "generate", "--path", str(spec_file)]
    config = tmp_path / "client.yml"
    config.write_text(CLIENT_CONFIG, encoding="utf-8")
    generate += ["--config", str(config)]
    generated = run([*generate, "--output-path", str(out), "--meta", "none"], cwd=tmp_path)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert (out / "api" / "session" / "get_status.py").is_file(), generated.stdout
    compiled = run([str(python), "-m", "compileall", "-q", str(out)])
    assert compiled.returncode == 0, last_lines(compiled)
    called = run([str(python), "-c", CALLS, gateway, TOKEN], PYTHONPATH=str(out.parent))
    assert called.returncode == 0, called.stdout + called.stderr
    assert called.stdout.startswith("ok")
    called = run([str(python), "-c", QR_CALLS, qr_gateway, TOKEN], PYTHONPATH=str(out.parent))
    assert called.returncode == 0, called.stdout + called.stderr
    assert called.stdout.startswith("ok")


# ---- TypeScript: openapi-typescript and tsc -----------------------------------------------

USE = """
import type { components, paths, webhooks } from "./schema";

type Ticket = paths["/events/ticket"]["post"]["responses"][201]["content"]["application/json"];
type Received = webhooks["message.received"]["post"]["requestBody"]["content"]["application/json"];
type StreamEvent = components["schemas"]["ServerSentEvent"];

export const ticket: Ticket = { ticket: "tkt_x", expires_in: 60, expires_at: 1767225600 };
export function describe(event: Received): string {
  const media = event.payload.media ? ` (${event.payload.media.kind})` : "";
  return `${event.payload.sender_phone ?? event.payload.sender}: ${event.payload.text}${media}`;
}
export function name(event: StreamEvent): string {
  return event.event;
}
export type Qr = paths["/qr"]["get"]["responses"][200]["content"]["image/png"];
"""

MISUSE = """
import type { paths, webhooks } from "./schema";
type Ticket = paths["/events/ticket"]["post"]["responses"][201]["content"]["application/json"];
export const ticket: Ticket = { ticket: 1, expires_in: "soon", expires_at: 0 };
type Status = webhooks["message.status"]["post"]["requestBody"]["content"]["application/json"];
export const status: Status["payload"]["status"] = "teleported";
"""


def test_generated_typescript_types_compile(spec_file: Path, tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("no npm on PATH (Debian: apt-get install npm)")
    work = tmp_path / "ts"
    work.mkdir()
    installed = run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(work),
            "openapi-typescript",
            "typescript",
        ],
        timeout=INSTALL_TIMEOUT,
    )
    if installed.returncode != 0:
        pytest.skip(f"openapi-typescript or typescript cannot be installed: {last_lines(installed, 2)}")
    bin_dir = work / "node_modules" / ".bin"
    generated = run([str(bin_dir / "openapi-typescript"), str(spec_file), "-o", str(work / "schema.d.ts")])
    assert generated.returncode == 0, generated.stdout + generated.stderr
    schema = (work / "schema.d.ts").read_text(encoding="utf-8")
    assert "export interface webhooks" in schema and '"message.received"' in schema
    (work / "use.ts").write_text(USE, encoding="utf-8")
    (work / "misuse.ts").write_text(MISUSE, encoding="utf-8")
    tsc = [str(bin_dir / "tsc"), "--noEmit", "--strict", "--target", "es2022", "--module", "es2022"]
    tsc += ["--moduleResolution", "bundler"]
    compiled = run([*tsc, "use.ts"], cwd=work)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    refused = run([*tsc, "misuse.ts"], cwd=work)
    assert refused.returncode != 0
    errors = refused.stdout
    assert "misuse.ts(4," in errors and "misuse.ts(6," in errors, errors
