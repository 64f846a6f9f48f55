"""``wadesk --headless`` under faults, end to end: the real process and the real neonize
client against the fake WhatsApp server, every copy of every message counted at the peer.

What must hold (see the README's "What is guaranteed"): nothing accepted is lost; the only
message ever repeated is the one in flight at a crash or a lost connection, at most once
per such fault, and it is marked ``possible_duplicate``; with ``WADESK_UNCERTAIN=fail`` it
is failed instead of repeated.
"""

from __future__ import annotations

import collections
import sqlite3
import time
from collections.abc import Callable

import pytest
from fakewa.harness import FakeWhatsApp
from headless_harness import PEER_PHONE, Headless, wait_until
from test_headless_e2e import PEER, metric, pair

pytestmark = pytest.mark.e2e

FAST = {"WADESK_SEND_INTERVAL": "0"}


def copies(fake_wa: FakeWhatsApp) -> collections.Counter[str]:
    return collections.Counter(fake_wa.texts_received(PEER_PHONE))


def check_delivery(gw: Headless, fake_wa: FakeWhatsApp, sent: dict[str, str], faults: int) -> set[str]:
    """Every accepted text arrived at least once and at most twice; the repeated ones are
    marked possible_duplicate, and no more were marked than there were faults. Returns
    the marked texts."""
    wait_until(lambda: set(copies(fake_wa)) >= set(sent.values()), 120, "every accepted text at the peer")
    wait_until(lambda: gw.status()["outbox_depth"] == 0, 30, "an empty outbox")
    counted = copies(fake_wa)
    assert set(counted) == set(sent.values())
    assert max(counted.values()) <= 2, {t: n for t, n in counted.items() if n > 2}
    records = {text: gw.message(mid) for mid, text in sent.items()}
    assert all(r["status"] == "sent" for r in records.values())
    marked = {text for text, r in records.items() if r["possible_duplicate"]}
    repeated = {text for text, n in counted.items() if n == 2}
    assert repeated <= marked, f"repeated without the mark: {repeated - marked}"
    assert len(marked) <= faults
    return marked


def test_kill_9_during_bursts_loses_nothing_and_repeats_only_the_marked_in_flight_message(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    env = gateway_env(**FAST)
    first = headless(env).start()
    pair(first, fake_wa)
    assert first.stop() == 0
    sent: dict[str, str] = {}
    rounds = 4
    for r in range(rounds):
        gw = headless(env).start()
        gw.wait_state("connected")
        before = len(fake_wa.texts_received(PEER_PHONE))
        for i in range(15):
            text = f"round {r} message {i:02d}"
            sent[gw.send(PEER, text)] = text
        # kill -9 in the middle of the burst, while a send is in flight
        wanted = before + 3 + r
        wait_until(lambda n=wanted: len(fake_wa.texts_received(PEER_PHONE)) >= n, 30, "a few texts out")
        gw.kill()
    last = headless(env).start()
    last.wait_state("connected")
    check_delivery(last, fake_wa, sent, faults=rounds)
    assert last.stop() == 0


def test_a_connection_lost_before_whatsapp_answers_is_resent_by_whatsmeow_with_the_same_id(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    # whatsmeow reconnects within 5 s and resends the frame: WhatsApp keeps one copy. The
    # session must not cut that retry short (it did: the message then went out three times).
    gw = headless(gateway_env(**FAST)).start()
    pair(gw, fake_wa)
    fake_wa.drop_before_ack()
    sent = {gw.send(PEER, f"burst {i}"): f"burst {i}" for i in range(6)}
    marked = check_delivery(gw, fake_wa, sent, faults=1)
    assert marked == set()
    assert copies(fake_wa) == {f"burst {i}": 1 for i in range(6)}
    assert fake_wa.wait_for(lambda kind, _data: kind == "duplicate-id", 5)  # the resent frame
    assert fake_wa.texts_received(PEER_PHONE) == [f"burst {i}" for i in range(6)]  # order kept
    assert metric(gw, "wadesk_possible_duplicates_total") == 0
    assert gw.stop() == 0


def test_a_connection_lost_before_whatsapp_answers_and_not_back_soon_repeats_it_once_marked(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env(**FAST)).start()
    pair(gw, fake_wa)
    fake_wa.drop_before_ack(unreachable_for=7.0)  # longer than whatsmeow waits to resend
    sent = {gw.send(PEER, f"burst {i}"): f"burst {i}" for i in range(6)}
    marked = check_delivery(gw, fake_wa, sent, faults=1)
    # the first was taken by WhatsApp but never acknowledged: sent again, and said so
    assert marked == {"burst 0"}
    assert copies(fake_wa)["burst 0"] == 2
    assert all(n == 1 for t, n in copies(fake_wa).items() if t != "burst 0")
    assert fake_wa.texts_received(PEER_PHONE)[-5:] == [f"burst {i}" for i in range(1, 6)]  # order kept
    assert metric(gw, "wadesk_possible_duplicates_total") == 1
    assert gw.stop() == 0


def test_connection_drops_during_a_burst_repeat_at_most_the_marked_in_flight_messages(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env(**FAST)).start()
    pair(gw, fake_wa)
    sent = {}
    drops = 4
    for d in range(drops):
        for i in range(8):
            text = f"drop {d} message {i}"
            sent[gw.send(PEER, text)] = text
        before = len(fake_wa.texts_received(PEER_PHONE))
        wait_until(lambda n=before: len(fake_wa.texts_received(PEER_PHONE)) > n + 1, 30, "texts flowing")
        fake_wa.drop_connection()
        gw.wait_state("connected", timeout=30)
    check_delivery(gw, fake_wa, sent, faults=drops)
    assert gw.stop() == 0


def test_uncertain_fail_fails_the_message_in_flight_instead_of_sending_it_again(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env(WADESK_UNCERTAIN="fail", **FAST)).start()
    pair(gw, fake_wa)
    fake_wa.drop_before_ack(unreachable_for=7.0)
    ids = [gw.send(PEER, f"at most once {i}") for i in range(3)]
    wait_until(lambda: gw.message(ids[0])["status"] == "failed", 60, "the uncertain one to fail")
    wait_until(lambda: all(gw.message(i)["status"] == "sent" for i in ids[1:]), 60, "the others sent")
    failed = gw.message(ids[0])
    assert failed["possible_duplicate"] is True
    assert "may or may not have reached WhatsApp" in failed["error"]
    assert copies(fake_wa) == {f"at most once {i}": 1 for i in range(3)}  # it did arrive, once
    assert gw.stop() == 0


def test_a_store_locked_by_another_process_refuses_sends_then_sends_resume_without_a_restart(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env(**FAST)).start()
    pair(gw, fake_wa)
    first = gw.send(PEER, "before the lock")
    wait_until(lambda: gw.message(first)["status"] == "sent", 20, "the first message sent")

    other = sqlite3.connect(gw.data_dir / "wadesk.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # held for longer than wadesk's busy timeout
    try:
        refused = gw.post("/send", json={"to": PEER, "text": "during the lock"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "storage_unavailable"
        assert int(refused.headers["Retry-After"]) > 0
        for path in ("/status", "/health"):
            started = time.monotonic()
            answer = gw.get(path)
            assert answer.status_code == 200 and time.monotonic() - started < 0.1, path
        assert gw.status()["storage"]["available"] is False
        ready = gw.get("/ready")
        assert ready.status_code == 503 and ready.json()["reason"].startswith("storage_unavailable")
        assert metric(gw, "wadesk_storage_available") == 0
    finally:
        other.execute("ROLLBACK")
        other.close()
    after = gw.send(PEER, "after the lock")
    wait_until(lambda: gw.message(after)["status"] == "sent", 20, "a send after the lock")
    assert copies(fake_wa) == {"before the lock": 1, "after the lock": 1}
    assert gw.get("/ready").status_code == 200
    assert gw.stop() == 0
    records = gw.log_records()
    assert any("the outbox pauses" in r["message"] or "storage unavailable" in r["message"] for r in records)
    assert not [r for r in records if r["level"] == "CRITICAL"]  # no thread died
