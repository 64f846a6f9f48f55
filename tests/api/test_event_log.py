"""The event log: /events replays from Last-Event-ID, /events/history pages (real Session, fake driver)."""

from __future__ import annotations

import json
import time

from flask import Flask
from flask.testing import FlaskClient
from headless_harness import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PEER = "15550002222@s.whatsapp.net"


def history(client: FlaskClient, query: str = "") -> dict:  # type: ignore[type-arg]
    r = client.get(f"/events/history{query}", headers=AUTH)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def queue_messages(client: FlaskClient, n: int) -> None:
    for i in range(n):
        assert client.post("/send", json={"to": PEER, "text": f"m{i}"}, headers=AUTH).status_code == 202
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        statuses = [
            e["payload"]["status"] for e in history(client, "?limit=1000&events=message.status")["events"]
        ]
        if statuses.count("sent") >= n:
            return
        time.sleep(0.05)
    raise AssertionError("the messages were not sent")


def test_history_pages_through_the_logged_events_in_order(client: FlaskClient) -> None:
    queue_messages(client, 3)
    everything = history(client, "?limit=1000")
    ids = [e["id"] for e in everything["events"]]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) and everything["gap"] is False
    first = history(client, "?limit=2")
    second = history(client, f"?limit=2&after={first['next_after']}")
    assert [e["id"] for e in first["events"] + second["events"]] == ids[:4]
    only = history(client, "?events=message.status&limit=1000")["events"]
    assert only and {e["event"] for e in only} == {"message.status"}
    unknown = history(client, "?after=evt_000000000000deadbeef0000")
    assert unknown["gap"] is True and [e["id"] for e in unknown["events"]] == ids[:50]
    bad = client.get("/events/history?after=%20", headers=AUTH)
    assert bad.status_code == 400 and bad.get_json()["field"] == "after"


def test_a_reconnecting_stream_gets_what_it_missed_first(app: Flask, client: FlaskClient) -> None:
    queue_messages(client, 2)
    ids = [e["id"] for e in history(client, "?limit=1000")["events"]]
    response = client.get("/events", headers={**AUTH, "Last-Event-ID": ids[0]}, buffered=False)
    text = ""
    for chunk in response.response:
        text += chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.count("\n\n") >= len(ids):
            break
    response.close()
    blocks = [b for b in text.split("\n\n") if b and not b.startswith(":")]
    replayed = [dict(line.split(": ", 1) for line in b.splitlines()) for b in blocks[: len(ids) - 1]]
    assert replayed[0]["retry"] == "3000"
    assert [r["id"] for r in replayed] == ids[1:]  # everything after the last one seen, in order
    assert all(json.loads(r["data"])["id"] == r["id"] for r in replayed)
    current = dict(line.split(": ", 1) for line in blocks[len(ids) - 1].splitlines())
    assert current["event"] == "session.status" and "id" not in current


def test_a_stream_after_an_id_no_longer_logged_says_so_first(client: FlaskClient) -> None:
    response = client.get("/events?after=evt_000000000000deadbeef0000", headers=AUTH, buffered=False)
    first = next(iter(response.response))
    response.close()
    first = first.decode() if isinstance(first, bytes) else first
    head = dict(line.split(": ", 1) for line in first.split("\n\n")[0].splitlines())
    assert head["event"] == "replay.gap" and json.loads(head["data"])["error"] == "replay_incomplete"


def test_event_ids_sort_in_the_order_they_were_made() -> None:
    import re

    from wadesk.api.feed import new_event_id

    now = time.time()
    same_millisecond = [new_event_id(now) for _ in range(500)]
    clock_stepped_back = [new_event_id(now - 5) for _ in range(5)]
    later = new_event_id(now + 1)
    made = [*same_millisecond, *clock_stepped_back, later]
    assert all(re.fullmatch(r"evt_[0-9a-f]{24}", i) for i in made)
    assert made == sorted(made) and len(set(made)) == len(made)
    assert later[4:16] == f"{int((now + 1) * 1000):012x}"  # the time part is the time


def test_events_added_while_a_full_queue_is_written_are_all_kept(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    from wadesk.api import eventlog
    from wadesk.api.feed import Envelope

    monkeypatch.setattr(eventlog, "MAX_PENDING", 3)
    written: list[str] = []
    entered, release = threading.Event(), threading.Event()

    class SlowTable:  # a write that takes a while: events keep arriving meanwhile
        def append(self, rows: list[tuple[str, str, bytes, float]]) -> None:
            entered.set()
            release.wait(5)
            written.extend(row[0] for row in rows)

        def prune(self, *args: object, **kwargs: object) -> int:
            return 0

    def envelope(event_id: str) -> Envelope:
        return Envelope("session.status", event_id, 1.0, {}, b"{}", None)  # type: ignore[arg-type]

    log = eventlog.EventLog(SlowTable())  # type: ignore[arg-type]
    try:
        log.add(envelope("evt_a"))
        log.add(envelope("evt_b"))
        assert entered.wait(5)  # the log's thread writes a and b (or a alone, then b)
        for name in ("evt_c", "evt_d", "evt_e"):  # the queue is full: the oldest waiting goes
            log.add(envelope(name))
        release.set()
        deadline = time.monotonic() + 5
        while "evt_e" not in written and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        release.set()
        log.stop()
    assert written[-3:] == ["evt_c", "evt_d", "evt_e"]  # none of the newest three was lost
