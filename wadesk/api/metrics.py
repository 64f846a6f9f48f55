"""Prometheus metrics for ``GET /metrics``, in a registry of their own (one per app).

The answer is in the OpenMetrics text format when the scraper asks for it (``Accept:
application/openmetrics-text``, as Prometheus does), else in the Prometheus text format:
prometheus_client's ``choose_encoder`` decides, after the Accept header's entries are put
in the order of their ``q`` values (those with ``q=0`` left out).

Counters count from process start (Prometheus' ``rate()`` copes with restarts); the
session state, outbox depth, webhook backlog and reconnect count are read when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, choose_encoder
from prometheus_client.process_collector import ProcessCollector

from .. import __version__
from ..core.events import (
    IncomingMessage,
    MessageFailed,
    MessageQueued,
    MessageReceipt,
    MessageSent,
    Status,
)
from .feed import Envelope

if TYPE_CHECKING:
    from ..core.session import Session

CONTENT_TYPE = CONTENT_TYPE_LATEST
MESSAGE_STATUSES = ("queued", "sent", "failed", "delivered", "read", "played")
# Any token is a valid HTTP method, and even a refused request is counted: other methods share
# one label value, or a client could add series without end.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, session: Session | None = None, *, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # no *_created series: they double the output and nobody graphs them
        self.registry = registry if registry is not None else CollectorRegistry()
        self.session = session
        self.webhook_backlog: Callable[[], dict[str, int]] | None = None
        r = self.registry
        self.http_requests = Counter(
            "wadesk_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "wadesk_http_request_duration_seconds",
            "HTTP request duration by route",
            ["route"],
            buckets=HTTP_BUCKETS,
            unit="seconds",
            registry=r,
        )
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[str, Any] = {}
        self.messages = Counter(
            "wadesk_messages", "outgoing messages by outcome since start", ["status"], registry=r
        )
        for status in MESSAGE_STATUSES:
            self.messages.labels(status)
        self.received = Counter("wadesk_messages_received", "incoming messages since start", registry=r)
        self.webhook_deliveries = Counter(
            "wadesk_webhook_deliveries", "webhook events delivered (2xx)", ["receiver"], registry=r
        )
        self.webhook_failures = Counter(
            "wadesk_webhook_failures",
            "failed webhook attempts: retry (will try again) or dropped (given up)",
            ["receiver", "outcome"],
            registry=r,
        )
        r.register(_StateCollector(self))
        ProcessCollector(registry=r)

    # -- feed listener --
    def observe(self, envelope: Envelope) -> None:
        event = envelope.source
        if isinstance(event, MessageQueued | MessageSent | MessageFailed | MessageReceipt):
            self.messages.labels(event.status).inc()
        elif isinstance(event, IncomingMessage):
            self.received.inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in HTTP_METHODS:
            method = "other"
        key = (method, route, status)
        counter = self._requests.get(key)
        if counter is None:  # the first request of its kind; later ones skip labels()
            counter = self._requests[key] = self.http_requests.labels(method, route, str(status))
        counter.inc()
        histogram = self._durations.get(route)
        if histogram is None:
            histogram = self._durations[route] = self.http_duration.labels(route)
        histogram.observe(seconds)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) for a scrape with this ``Accept`` header: OpenMetrics when
        asked for, the Prometheus text format otherwise."""
        encoder, content_type = choose_encoder(by_preference(accept or ""))
        return encoder(self.registry), content_type


def by_preference(accept: str) -> str:
    """The Accept header's entries, most preferred first (stable for equal ``q``), without
    those the client refuses (``q=0``) or that are malformed."""
    ranked: list[tuple[float, int, str]] = []
    for index, entry in enumerate(accept.split(",")):
        q = 1.0
        for param in entry.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if entry.strip() and 0 < q <= 1:
            ranked.append((-q, index, entry.strip()))
    return ",".join(entry for _, _, entry in sorted(ranked))


class _StateCollector:
    """Values read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def describe(self) -> Iterator[Any]:
        return iter(())  # values depend on the session; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        info = InfoMetricFamily("wadesk", "wadesk version")
        info.add_metric([], {"version": __version__})
        yield info
        session = self._m.session
        if session is not None:
            state = session.state
            gauge = GaugeMetricFamily(
                "wadesk_session_state", "1 for the current session state", labels=["state"]
            )
            for status in Status:
                gauge.add_metric([status.value], 1.0 if state.status is status else 0.0)
            yield gauge
            yield GaugeMetricFamily(
                "wadesk_session_state_since_seconds",
                "when the current state began (unix time)",
                state.since,
                unit="seconds",
            )
            yield CounterMetricFamily(
                "wadesk_reconnects", "reconnect attempts since start", value=session.reconnects
            )
            yield GaugeMetricFamily(
                "wadesk_uptime_seconds",
                "seconds since the session started",
                time.time() - session.started_at,
                unit="seconds",
            )
            yield GaugeMetricFamily(
                "wadesk_outbox_depth", "messages waiting to be sent", session.outbox_depth()
            )
            storage = session.storage
            yield GaugeMetricFamily(
                "wadesk_storage_available",
                "1 while the message store takes writes, 0 while it does not (locked, full, I/O error)",
                1.0 if storage.available else 0.0,
            )
            yield CounterMetricFamily(
                "wadesk_storage_errors",
                "store operations that failed (the outbox paused and retried) since start",
                value=storage.failures,
            )
            yield CounterMetricFamily(
                "wadesk_possible_duplicates",
                "messages whose send may have reached WhatsApp before an error or a crash, since start",
                value=session.possible_duplicates,
            )
            yield GaugeMetricFamily(
                "wadesk_threads_dead",
                "core threads that died (restart wadesk if not 0)",
                len(session.dead_threads),
            )
        if self._m.webhook_backlog is not None:
            backlog = GaugeMetricFamily(
                "wadesk_webhook_backlog", "webhook events waiting for delivery", labels=["receiver"]
            )
            for receiver, count in self._m.webhook_backlog().items():
                backlog.add_metric([receiver], count)
            yield backlog
