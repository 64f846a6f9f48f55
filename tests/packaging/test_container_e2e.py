"""The container end to end: the image's real neonize client pairs with the fake WhatsApp
server (``fake_wa``, on this host's loopback, so the container uses the host's network),
sends a message the fake peer decrypts, is removed, and a new container on the same volume
comes back connected without a new QR code.

The container gets what ``fake_wa.child_env()`` gives a child process, with paths inside the
container: the test CA (SSL_CERT_FILE), the fake root key (FAKEWA_ROOT_PUB) and the injection
hook (tests/fakewa/inject mounted read-only at /inject, PYTHONPATH=/inject). The API token is
a file mounted where Docker puts secrets, as docker-compose.yml does.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from container_harness import ROOT, Container, Containers, free_port, wait_until

if TYPE_CHECKING:
    from fakewa.harness import FakeWhatsApp

pytestmark = [
    pytest.mark.container,
    pytest.mark.e2e,
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="host networking and the fake root patch are Linux only"
    ),
]

TOKEN = "container-e2e-token-0123456789abcdef"
PEER_PHONE = "15550002222"
PEER = "+1 555 000 2222"
INJECT = ROOT / "tests" / "fakewa" / "inject"
CA_IN_CONTAINER = "/run/fakewa/ca.pem"
TOKEN_IN_CONTAINER = "/run/secrets/wadesk_api_token"


def decode_qr_png(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1, f"expected one QR code in the PNG, found {len(results)}"
    return str(results[0].text)


def readable_copy(src: str | Path, dst: Path) -> Path:
    """A copy the container's user (1001) can read through a bind mount."""
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    return dst


def start_gateway(containers: Containers, fake_wa: FakeWhatsApp, volume: str, tmp_path: Path) -> Container:
    ca = readable_copy(fake_wa.pki.ca_file, tmp_path / "ca.pem")
    token = tmp_path / "wadesk_api_token"
    token.write_text(TOKEN)
    os.chmod(token, 0o644)
    port = free_port()
    child = fake_wa.child_env()
    env = {
        "FAKEWA_ROOT_PUB": child["FAKEWA_ROOT_PUB"],
        "SSL_CERT_FILE": CA_IN_CONTAINER,
        "PYTHONPATH": "/inject",
        "WADESK_PROXY": fake_wa.proxy_url,
        "WADESK_SEND_INTERVAL": "0",
        "WADESK_API_TOKEN_FILE": TOKEN_IN_CONTAINER,
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    options = [
        "--network",
        "host",
        "-v",
        f"{volume}:/app/session",
        "-v",
        f"{INJECT}:/inject:ro",
        "-v",
        f"{ca}:{CA_IN_CONTAINER}:ro",
        "-v",
        f"{token}:{TOKEN_IN_CONTAINER}:ro",
        # as docker-compose.yml runs it
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--memory",
        "256m",
    ]
    c = containers.start(env=env, options=options, publish=False, token=TOKEN)
    c.port = port
    c.wait_healthy(timeout=30)
    return c


def test_container_pairs_sends_and_a_new_container_resumes_the_session(
    containers: Containers, fake_wa: FakeWhatsApp, tmp_path: Path
) -> None:
    volume = containers.volume()
    first = start_gateway(containers, fake_wa, volume, tmp_path)

    # pair: the QR code the API serves, decoded from the PNG, scanned by the fake phone
    assert first.get("/qr", token="not-the-token-0123456789").status_code == 401
    response = wait_until(
        lambda: (r := first.get("/qr")).status_code == 200 and r, 60, "GET /qr to serve the PNG", interval=0.2
    )
    assert response.headers["Content-Type"] == "image/png"
    code = decode_qr_png(response.content)
    assert fake_wa.is_own_qr(code)
    fake_wa.scan(code)
    status = first.wait_state("connected", timeout=60)
    assert status["account"]["phone"].endswith(fake_wa.phone.phone), status

    # send: the fake peer decrypts exactly the text
    sent = first.post("/send", json={"to": PEER, "text": "hello from the container"})
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]
    _, text = fake_wa.wait_text_from_client(PEER_PHONE, timeout=60)
    assert text == "hello from the container"
    wait_until(
        lambda: first.get(f"/messages/{message_id}").json()["status"] == "sent",
        30,
        "the message to be reported sent",
        interval=0.2,
    )

    # replace the container; the session is in the volume
    qr_codes_sent = len(fake_wa.sent_qr_refs)
    assert first.stop(timeout=10) < 10
    assert first.exit_code() == 0, first.logs()
    first.remove()

    second = start_gateway(containers, fake_wa, volume, tmp_path)
    status = second.wait_state("connected", timeout=60)
    assert status["account"]["phone"].endswith(fake_wa.phone.phone), status
    assert second.get("/qr").status_code == 409
    assert len(fake_wa.sent_qr_refs) == qr_codes_sent, "the new container asked for a new QR code"
    sent = second.post("/send", json={"to": PEER, "text": "and from its successor"})
    assert sent.status_code == 202, sent.text
    _, text = fake_wa.wait_text_from_client(PEER_PHONE, timeout=60)
    assert text == "and from its successor"
    assert fake_wa.texts_received(PEER_PHONE) == ["hello from the container", "and from its successor"]
