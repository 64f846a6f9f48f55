"""The OpenAPI document as a whole, and the parts schemathesis does not reach: the
``webhooks`` section and the event schemas (checked against real events), the Server-Sent
Events of /events, /qr's media type per format and /metrics' two formats."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from flask.testing import FlaskClient
from headless_harness import AUTH, PEER_PHONE, TOKEN, FakeWorld, make_session, start_session
from openapi_spec_validator import OpenAPIV31SpecValidator
from polling import wait_until

from wadesk.api import models
from wadesk.api.app import create_app
from wadesk.api.openapi import document
from wadesk.core import driver as drv
from wadesk.core.events import Status
from wadesk.core.session import Session

SPEC = json.loads(json.dumps(document("test")))
PEER_JID = f"{PEER_PHONE}@s.whatsapp.net"
GROUP = "120363000000000001@g.us"


def _strict(spec: dict[str, Any]) -> dict[str, Any]:
    """The components with every declared object closed: a key the document does not name
    is an error (JSON Schema allows them by default)."""
    components = copy.deepcopy(spec["components"])
    for schema in components["schemas"].values():
        if schema.get("type") == "object" and "properties" in schema:
            schema["additionalProperties"] = False
    return components


COMPONENTS = _strict(SPEC)


def check(value: Any, schema: dict[str, Any]) -> None:
    """``value`` against ``schema`` (whose $refs point into the document's components)."""
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": COMPONENTS})
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(value)]
    assert not errors, (errors, value)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


# ---- the document ---------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1() -> None:
    errors = [str(e.message) for e in OpenAPIV31SpecValidator(SPEC).iter_errors()]
    assert errors == []
    assert SPEC["openapi"] == "3.1.0"


def test_webhooks_describe_each_event_with_its_signature_headers() -> None:
    assert set(SPEC["webhooks"]) == set(models.EVENT_NAMES)
    operation_ids = set()
    for name, item in SPEC["webhooks"].items():
        op = item["post"]
        operation_ids.add(op["operationId"])
        headers = {p["name"]: p for p in op["parameters"] if p["in"] == "header"}
        assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(headers)
        assert all(headers[h]["required"] for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
        assert "v1," in headers["webhook-signature"]["description"]
        body = resolve(op["requestBody"]["content"]["application/json"]["schema"])
        assert body["properties"]["event"] == {"enum": [name]}
        assert set(body["required"]) == {"event", "id", "timestamp", "payload"}
        payload = resolve(body["properties"]["payload"])
        assert payload["type"] == "object" and payload["properties"]
        assert {"2XX", "5XX", "429"} <= set(op["responses"])
    assert len(operation_ids) == len(SPEC["webhooks"])
    # the envelope and a signature as a delivery has them
    check(
        "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
        SPEC["webhooks"]["qr"]["post"]["parameters"][2]["schema"],
    )


# ---- real events against their schemas --------------------------------------------------


@pytest.fixture
def qr_session(tmp_path: Path) -> Iterator[Session]:
    s = make_session(tmp_path / "qr", FakeWorld("qr"))
    yield s
    s.stop()


def every_event(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get("/events/history?limit=1000", headers=AUTH)
    assert response.status_code == 200, response.text
    page = response.get_json()
    check(page, ref("EventPage"))
    return page["events"]  # type: ignore[no-any-return]


def test_real_events_match_the_schemas_of_their_webhooks(
    client: FlaskClient, session: Session, world: FakeWorld
) -> None:
    sent = client.post("/send", json={"to": PEER_PHONE, "text": "hello"}, headers=AUTH).get_json()
    wait_until(lambda: getattr(session.message(sent["id"]), "status", None) == "sent", 10, "the send")
    wa_id = session.message(sent["id"]).wa_id
    world.driver.emit(drv.Receipt, wa_ids=(wa_id,), status="read", chat=PEER_JID, timestamp=time.time())
    world.driver.emit(
        drv.Incoming,
        wa_id="IN1",
        chat=PEER_JID,
        sender=PEER_JID,
        push_name="Peer",
        text="hi back",
        timestamp=time.time(),
        is_group=False,
    )
    world.driver.emit(
        drv.GroupChanged,
        group=GROUP,
        actor=PEER_JID,
        actor_name="Peer",
        timestamp=time.time(),
        joined=("15550003333@s.whatsapp.net", "900004@lid"),
    )
    world.driver.emit(drv.Disconnected)  # session.status: reconnecting, with its attempt
    wanted = {"session.status", "message.status", "message.received", "group.participants"}
    events = wait_until(
        lambda: (
            (found := every_event(client))
            and {e["event"] for e in found} >= wanted
            and [e for e in found if e["payload"].get("status") == "read"]
            and found
        ),
        10,
        "every kind of event",
    )
    statuses = {e["payload"]["status"] for e in events if e["event"] == "message.status"}
    assert statuses >= {"queued", "sent", "read"}
    states = [e["payload"] for e in events if e["event"] == "session.status"]
    assert states[0]["state"] == "reconnecting" and states[0]["previous"] == "connected"
    for event in events:
        webhook = SPEC["webhooks"][event["event"]]["post"]
        check(event, webhook["requestBody"]["content"]["application/json"]["schema"])


def test_qr_events_and_the_qr_formats_match_the_document(qr_session: Session) -> None:
    app = create_app(qr_session, token=TOKEN)
    client = app.test_client()
    start_session(qr_session, Status.WAITING_FOR_SCAN)
    events = wait_until(lambda: [e for e in every_event(client) if e["event"] == "qr"], 10, "a qr event")
    for event in events:
        check(event, SPEC["webhooks"]["qr"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    operation = SPEC["paths"]["/qr"]["get"]
    (fmt,) = operation["parameters"]
    assert sorted(fmt["schema"]["enum"]) == sorted(models.QR_FORMATS)
    content = operation["responses"]["200"]["content"]
    assert len(content) == len(models.QR_FORMATS)
    for name in models.QR_FORMATS:
        response = client.get(f"/qr?format={name}", headers=AUTH)
        assert response.status_code == 200
        assert response.mimetype in content, (name, response.mimetype)
        assert f"{name}: {response.mimetype}" in fmt["description"]
        schema = content[response.mimetype]["schema"]
        if response.mimetype == "application/json":
            check(response.get_json(), schema)
        elif response.mimetype == "image/png":
            assert schema["format"] == "binary" and response.data.startswith(b"\x89PNG")
        else:
            assert schema["type"] == "string" and response.text
        # the same code from the operation of this format, which has that one media type
        own = SPEC["paths"][f"/qr/{name}"]["get"]
        assert own["operationId"] == f"get_qr_{name}"
        assert list(own["responses"]["200"]["content"]) == [response.mimetype]
        alone = client.get(f"/qr/{name}", headers=AUTH)
        assert alone.status_code == 200 and alone.mimetype == response.mimetype
        if name != "json":  # (its PNG data: URL is made anew)
            assert alone.data == response.data
    app.extensions["wadesk"].close()


# ---- the event stream ---------------------------------------------------------------------


def sse_events(client: FlaskClient, url: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events of the stream at ``url``, each as {field: value}."""
    response = client.get(url, headers=AUTH, buffered=False)
    assert response.status_code == 200
    text = ""
    chunks = iter(response.response)
    deadline = time.monotonic() + 10
    while text.count("\n\n") - text.count(": keep-alive\n\n") < count:
        assert time.monotonic() < deadline, f"fewer than {count} events: {text!r}"
        text += next(chunks).decode()
    response.close()
    out = []
    for block in text.split("\n\n"):
        if not block or block.startswith(":"):
            continue
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            key, _, value = line.partition(": ")
            fields[key] = int(value) if key == "retry" else value
        out.append(fields)
    return out[:count]


def test_the_event_stream_matches_its_server_sent_event_schema(client: FlaskClient, session: Session) -> None:
    sent = client.post("/send", json={"to": PEER_PHONE, "text": "hello"}, headers=AUTH).get_json()
    wait_until(lambda: getattr(session.message(sent["id"]), "status", None) == "sent", 10, "the send")
    first = every_event(client)[0]["id"]
    stream = sse_events(client, f"/events?after={first}", 2)
    gap = sse_events(client, "/events?after=evt_000000000000000000000000", 2)
    variants = [resolve(s) for s in SPEC["components"]["schemas"]["ServerSentEvent"]["oneOf"]]
    by_name = {v["properties"]["event"]["const"]: v for v in variants}
    assert set(by_name) == {*models.EVENT_NAMES, "replay.gap", "error"}
    seen = []
    for event in stream + gap:
        check(event, ref("ServerSentEvent"))
        variant = by_name[event["event"]]
        check(json.loads(event["data"]), variant["properties"]["data"]["contentSchema"])
        seen.append(event["event"])
    assert seen == ["message.status", "session.status", "replay.gap", "message.status"]
    assert stream[0]["retry"] == 3000 and "id" in stream[0] and "id" not in stream[1]
    media = SPEC["paths"]["/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
    assert media["x-itemSchema"] == ref("ServerSentEvent")


# ---- /metrics -------------------------------------------------------------------------------


def test_metrics_offers_both_documented_formats(client: FlaskClient) -> None:
    content = SPEC["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    documented = {t.split(";")[0]: t for t in content}
    assert set(documented) == {"text/plain", "application/openmetrics-text"}
    for accept in (None, "application/openmetrics-text; version=1.0.0"):
        response = client.get("/metrics", headers={**AUTH, **({"Accept": accept} if accept else {})})
        assert response.status_code == 200
        declared = documented[response.mimetype]
        version = declared.partition("version=")[2]
        assert response.mimetype_params["version"] == version
