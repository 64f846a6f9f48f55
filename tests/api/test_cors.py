"""CORS for browser dashboards (WADESK_CORS_ORIGINS) and the single-use tickets that let a
browser's EventSource open /events without an Authorization header."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from headless_harness import AUTH, TOKEN, start_session

from wadesk import config as cfg
from wadesk.api.app import create_app
from wadesk.api.auth import TicketBook
from wadesk.core.session import Session

DASHBOARD = "http://dash.example:3000"
OTHER = "http://evil.example"


# ---- the setting ----------------------------------------------------------------------------


def test_cors_origins_are_normalised_as_a_browser_sends_them() -> None:
    config = cfg.load(
        {},
        {"WADESK_CORS_ORIGINS": " HTTPS://Dash.Example.com:443, http://localhost:3000,http://[::1]:8000 ,"},
    )
    assert config.cors_origins == ("https://dash.example.com", "http://localhost:3000", "http://[::1]:8000")
    assert cfg.load({}, {}).cors_origins == ()
    assert cfg.load(
        {"cors_origins": "http://a.example"}, {"WADESK_CORS_ORIGINS": "http://b.example"}
    ).cors_origins == ("http://a.example",)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("*", "exactly"),
        ("null", "exactly"),
        ("https://dash.example/", "without a path"),
        ("https://dash.example/app", "without a path"),
        ("https://dash.example?x=1", "without a path"),
        ("dash.example", "is not an origin"),
        ("ftp://dash.example", "is not an origin"),
        ("https://*.example.com", "is not an origin"),
        ("https://user:pw@dash.example", "user name or password"),
        ("https://dash.example:99999", "invalid port"),
        ("https://dash.example, https://b\u00fccher.example", "punycode"),
    ],
)
def test_bad_cors_origins_name_the_setting(value: str, problem: str) -> None:
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load({}, {"WADESK_CORS_ORIGINS": value})
    message = str(info.value)
    assert message.startswith("invalid WADESK_CORS_ORIGINS")
    assert problem in message
    assert "pw@" not in message


# ---- the app -------------------------------------------------------------------------------


@pytest.fixture
def cors_app(session: Session) -> Flask:
    start_session(session)
    return create_app(session, token=TOKEN, sse_heartbeat=0.2, cors_origins=(DASHBOARD,))


@pytest.fixture
def cors(cors_app: Flask) -> FlaskClient:
    return cors_app.test_client()


def preflight(
    client: FlaskClient, path: str, origin: str, method: str = "POST", headers: str = "authorization"
):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def test_preflight_from_an_allowed_origin_is_answered_without_the_token(cors: FlaskClient) -> None:
    response = preflight(cors, "/events/ticket", DASHBOARD, headers="authorization, content-type")
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert response.headers["Access-Control-Allow-Methods"].split(", ") == ["POST"]
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "last-event-id", "x-api-key", "idempotency-key"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    # a path with GET and HEAD
    methods = preflight(cors, "/events", DASHBOARD, method="GET").headers["Access-Control-Allow-Methods"]
    assert set(methods.split(", ")) == {"GET", "HEAD"}
    # a path with two methods on two views
    methods = preflight(cors, "/groups", DASHBOARD).headers["Access-Control-Allow-Methods"]
    assert set(methods.split(", ")) == {"GET", "HEAD", "POST"}


def test_preflight_from_another_origin_gets_no_cors_and_needs_the_token(cors: FlaskClient) -> None:
    response = preflight(cors, "/events/ticket", OTHER)
    assert response.status_code == 401
    assert not [h for h in response.headers if h[0].lower().startswith("access-control-")]
    assert "Origin" in response.headers["Vary"]
    # an OPTIONS that is not a preflight is not answered before authentication either
    assert cors.options("/status", headers={"Origin": DASHBOARD}).status_code == 401


def test_responses_to_an_allowed_origin_can_be_read_by_its_page(cors: FlaskClient) -> None:
    response = cors.get("/status", headers={**AUTH, "Origin": DASHBOARD})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == DASHBOARD
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "Retry-After", "Idempotent-Replayed", "WWW-Authenticate"} <= exposed
    assert "Origin" in response.headers["Vary"]
    # errors too, so that the page can read why
    refused = cors.get("/status", headers={"Origin": DASHBOARD})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == DASHBOARD
    # Vary keeps what the view said
    metrics = cors.get("/metrics", headers={**AUTH, "Origin": DASHBOARD})
    assert {v.strip() for v in metrics.headers["Vary"].split(",")} == {"Accept", "Origin"}


def test_responses_to_other_origins_carry_no_cors(cors: FlaskClient) -> None:
    for headers in ({**AUTH, "Origin": OTHER}, AUTH, {**AUTH, "Origin": DASHBOARD + "/"}):
        response = cors.get("/status", headers=headers)
        assert response.status_code == 200
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Expose-Headers" not in response.headers


def test_without_the_setting_there_is_no_cors_at_all(client: FlaskClient) -> None:
    response = preflight(client, "/events/ticket", DASHBOARD)
    assert response.status_code == 401
    response = client.get("/status", headers={**AUTH, "Origin": DASHBOARD})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Origin" not in response.headers.get("Vary", "")


# ---- tickets -------------------------------------------------------------------------------


def ticket(client: FlaskClient) -> str:
    response = client.post("/events/ticket", headers=AUTH)
    assert response.status_code == 201, response.text
    body = response.get_json()
    assert body["expires_in"] == 60
    assert body["expires_at"] == pytest.approx(time.time() + 60, abs=5)
    assert response.headers["Cache-Control"] == "no-store"
    return str(body["ticket"])


def first_block(response) -> str:
    chunks = response.response
    text = ""
    while "\n\n" not in text:
        text += next(chunks).decode()
    response.close()
    return text


def test_a_ticket_opens_the_event_stream_once(client: FlaskClient) -> None:
    assert client.post("/events/ticket").status_code == 401  # the token is needed for one
    value = ticket(client)
    assert value.startswith("tkt_") and len(value) >= 40
    stream = client.get(f"/events?ticket={value}", buffered=False)
    assert stream.status_code == 200
    assert stream.mimetype == "text/event-stream"
    assert "event: session.status" in first_block(stream)
    again = client.get(f"/events?ticket={value}")
    assert again.status_code == 401
    assert again.get_json()["error"] == "invalid_ticket"
    assert again.mimetype == "application/json"


def test_unknown_or_foreign_tickets_are_refused(client: FlaskClient) -> None:
    for bad in ("tkt_nope", "", TOKEN, "t\u00e9"):
        response = client.get("/events", query_string={"ticket": bad})
        assert response.status_code == 401, bad
        assert response.get_json()["error"] == "invalid_ticket"
    # a ticket is for /events only
    value = ticket(client)
    assert client.get("/status", query_string={"ticket": value}).status_code == 401
    # and the token in the query string is refused as before
    assert client.get("/events", query_string={"token": TOKEN}).status_code == 401


def test_tickets_expire_and_are_kept_hashed(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("wadesk.api.auth.time.monotonic", lambda: now[0])
    book = TicketBook(ttl=60, limit=3)
    first, seconds = book.issue()
    assert seconds == 60
    assert first not in repr(book.__dict__)  # only digests are kept
    now[0] += 59.9
    second, _ = book.issue()
    assert book.redeem(first)
    now[0] += 0.2
    third, _ = book.issue()
    now[0] += 59.9
    assert not book.redeem(second)  # expired
    assert book.redeem(third)
    assert len(book) == 0
    # past the limit the oldest goes
    tickets = [book.issue()[0] for _ in range(4)]
    assert not book.redeem(tickets[0])
    assert all(book.redeem(t) for t in tickets[1:])


def test_an_expired_ticket_gets_401(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    value = ticket(client)
    later = time.monotonic() + 61
    monkeypatch.setattr("wadesk.api.auth.time.monotonic", lambda: later)
    response = client.get("/events", query_string={"ticket": value})
    assert response.status_code == 401
    assert "expired" in response.get_json()["message"]


def test_a_ticket_never_reaches_the_access_log(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    value = ticket(client)
    with caplog.at_level("INFO", logger="wadesk.http"):
        response = client.get(f"/events?ticket={value}", buffered=False)
        first_block(response)
    assert any("/events" in r.getMessage() for r in caplog.records)
    assert value not in caplog.text


def test_wadesk_headless_takes_the_origins_from_its_configuration(tmp_path, world) -> None:  # type: ignore[no-untyped-def]
    from headless_harness import make_session

    from wadesk.api.server import Gateway
    from wadesk.core.datadir import DataDir

    data = DataDir(tmp_path / "gw").prepare()
    env = {"WADESK_DATA_DIR": str(data.path), "WADESK_CORS_ORIGINS": DASHBOARD + "," + DASHBOARD}
    config = cfg.load({}, env, headless=True)
    session = make_session(data.path, world)
    gateway = Gateway(config, data, token=TOKEN, session=session)
    try:
        client = gateway.app.test_client()
        assert preflight(client, "/events/ticket", DASHBOARD).status_code == 204
        assert preflight(client, "/events/ticket", OTHER).status_code == 401
    finally:
        gateway.ctx.close()
        gateway.feed.close()
        session.store.close()
