"""GET /metrics: OpenMetrics when the scraper asks for it, the Prometheus text format otherwise."""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient
from headless_harness import AUTH, PEER_PHONE, wait_until
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from wadesk.api.metrics import Metrics, by_preference
from wadesk.core.session import Session

# what Prometheus 3 sends when it scrapes (scrape_protocols left at their default)
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=underscores;q=0.3,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def scrape(client: FlaskClient, accept: str | None = None) -> tuple[str, str]:
    headers = dict(AUTH)
    if accept is not None:
        headers["Accept"] = accept
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["Vary"] == "Accept"
    return answer.headers["Content-Type"], answer.get_data(as_text=True)


def samples(families: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families  # type: ignore[attr-defined]
        for s in family.samples
    }


@pytest.fixture
def busy(client: FlaskClient, session: Session) -> FlaskClient:
    """A client whose app has counted a send and a few requests."""
    answer = client.post("/send", json={"to": f"+{PEER_PHONE}", "text": "counted"}, headers=AUTH)
    assert answer.status_code == 202
    message_id = answer.get_json()["id"]
    wait_until(lambda: getattr(session.message(message_id), "status", None) == "sent", 10, "the send")
    client.get("/status", headers=AUTH).close()
    return client


def test_without_accept_the_answer_is_the_prometheus_text_format(busy: FlaskClient) -> None:
    content_type, text = scrape(busy)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert "# EOF" not in text and "# UNIT" not in text
    values = samples(parse_prometheus(text))
    assert values[("wadesk_messages_total", (("status", "sent"),))] == 1
    assert ("wadesk_reconnects_total", ()) in values
    for accept in ("text/plain", "*/*", "application/json", "text/plain;version=0.0.4"):
        assert scrape(busy, accept)[0].startswith("text/plain; version=")


def test_a_scraper_asking_for_openmetrics_gets_it_and_the_strict_parser_takes_it(busy: FlaskClient) -> None:
    content_type, text = scrape(busy, PROMETHEUS_ACCEPT)
    assert content_type.startswith(OPENMETRICS)  # prometheus_client adds the escaping it used
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    families = {f.name: f for f in parse_openmetrics(text)}  # raises on anything not OpenMetrics
    # counters are named without _total and typed; their samples end in _total
    for name in ("wadesk_messages", "wadesk_http_requests", "wadesk_reconnects", "wadesk_storage_errors"):
        assert families[name].type == "counter", name
        assert {s.name for s in families[name].samples} == {f"{name}_total"}, name
    assert '# TYPE wadesk_messages counter\nwadesk_messages_total{status="queued"} 1.0' in text
    sent = [s for s in families["wadesk_messages"].samples if s.labels == {"status": "sent"}]
    assert [s.value for s in sent] == [1.0]
    duration = families["wadesk_http_request_duration_seconds"]
    assert (duration.type, duration.unit) == ("histogram", "seconds")
    assert "# UNIT wadesk_http_request_duration_seconds seconds" in text
    assert (families["wadesk_uptime_seconds"].type, families["wadesk_uptime_seconds"].unit) == (
        "gauge",
        "seconds",
    )
    assert families["wadesk"].type == "info"
    assert [s.labels["version"] for s in families["wadesk"].samples if s.name == "wadesk_info"]
    state = {s.labels["state"]: s.value for s in families["wadesk_session_state"].samples}
    assert state["connected"] == 1 and sum(state.values()) == 1
    assert not any(name.endswith("_created") for name in families)


def test_openmetrics_without_a_version_is_answered_with_version_1_0_0(busy: FlaskClient) -> None:
    content_type, text = scrape(busy, "application/openmetrics-text")
    assert content_type == OPENMETRICS
    assert text.endswith("# EOF\n")
    list(parse_openmetrics(text))


def test_both_formats_report_the_same_values(busy: FlaskClient) -> None:
    plain = samples(parse_prometheus(scrape(busy)[1]))
    open_ = samples(parse_openmetrics(scrape(busy, PROMETHEUS_ACCEPT)[1]))
    steady = [key for key in plain if key[0].startswith(("wadesk_messages", "wadesk_session_state"))]
    assert steady and all(plain[key] == open_[key] for key in steady)


def test_q_values_decide_and_q_0_refuses() -> None:
    assert by_preference("text/plain;q=0.5, application/openmetrics-text;q=0.9") == (
        "application/openmetrics-text;q=0.9,text/plain;q=0.5"
    )
    assert by_preference("application/openmetrics-text;q=0, text/plain") == "text/plain"
    assert by_preference("application/openmetrics-text;q=x") == ""
    assert by_preference("") == ""
    metrics = Metrics()
    assert metrics.exposition("application/openmetrics-text;q=0,text/plain")[1].startswith("text/plain")
    assert metrics.exposition("text/plain;q=0.1,application/openmetrics-text")[1] == OPENMETRICS
    assert metrics.exposition(None)[1].startswith("text/plain")
    started = time.monotonic()
    metrics.exposition("a/b;q=0.5," * 2000)  # a long header costs nothing much
    assert time.monotonic() - started < 1
