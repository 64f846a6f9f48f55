"""What the window says for each session state (pure functions, no widgets)."""

from __future__ import annotations

import pytest

from wadesk.core.events import Account, SessionState, Status
from wadesk.ui.status import Action, Tone, describe, needs_ticking, qr_expired, seconds_left, sentence

NOW = 1_700_000_000.0


def test_every_status_has_words_and_a_tone() -> None:
    seen = set()
    for status in Status:
        view = describe(SessionState(status, reason="something happened"), NOW)
        assert view.title, status
        assert isinstance(view.tone, Tone)
        seen.add(status)
    assert seen == set(Status)


def test_starting() -> None:
    view = describe(SessionState(Status.STARTING), NOW)
    assert view.title == "Starting"
    assert view.tone is Tone.NEUTRAL
    assert view.action is Action.NONE


def test_waiting_for_scan_with_a_code() -> None:
    view = describe(SessionState(Status.WAITING_FOR_SCAN, qr="2@abc", qr_expires_at=NOW + 20), NOW)
    assert view.title == "Scan the QR code"
    assert view.tone is Tone.INFO
    assert needs_ticking(SessionState(Status.WAITING_FOR_SCAN, qr="2@abc", qr_expires_at=NOW + 20))


def test_waiting_for_scan_codes_expired_offers_a_new_code() -> None:
    state = SessionState(
        Status.WAITING_FOR_SCAN, reason="the QR code expired: ask for a new one", qr_expired=True
    )
    assert qr_expired(state)
    view = describe(state, NOW)
    assert view.title == "The QR code expired"
    assert view.action is Action.NEW_CODE
    assert view.tone is Tone.WARN


def test_waiting_for_scan_while_a_code_is_requested() -> None:
    state = SessionState(Status.WAITING_FOR_SCAN)
    assert not qr_expired(state)
    assert describe(state, NOW).title == "Getting a QR code"
    assert describe(state, NOW).action is Action.NONE


def test_connected_shows_number_and_push_name() -> None:
    account = Account("4915123456789@s.whatsapp.net", "+4915123456789", "Anna")
    view = describe(SessionState(Status.CONNECTED, account=account), NOW)
    assert view.title == "Connected as +49 1512 3456789 (Anna)"
    assert view.tone is Tone.OK
    no_name = describe(
        SessionState(Status.CONNECTED, account=Account("15550001111@s.whatsapp.net", "+15550001111"))
    )
    assert no_name.title == "Connected as +1 555-000-1111"


def test_reconnecting_counts_down() -> None:
    state = SessionState(
        Status.RECONNECTING, attempt=3, next_try_at=NOW + 4.2, reason="Connection to WhatsApp lost"
    )
    view = describe(state, NOW)
    assert view.title == "Reconnecting (attempt 3, next try in 5 s)"
    assert view.detail == "Connection to WhatsApp lost"
    assert view.tone is Tone.WARN
    assert view.action is Action.RECONNECT_NOW
    assert describe(state, NOW + 2).title == "Reconnecting (attempt 3, next try in 3 s)"
    due = describe(state, NOW + 5)
    assert due.title == "Reconnecting (attempt 3, trying now)"
    assert due.action is Action.NONE
    assert needs_ticking(state)


def test_logged_out() -> None:
    view = describe(SessionState(Status.LOGGED_OUT, reason="logged out from the phone"), NOW)
    assert view.title == "Logged out"
    assert view.detail == "logged out from the phone"
    assert view.text == "Logged out: logged out from the phone"
    assert not needs_ticking(SessionState(Status.LOGGED_OUT))


def test_failed_offers_try_again() -> None:
    view = describe(SessionState(Status.FAILED, reason="WhatsApp says this client is outdated"), NOW)
    assert view.title == "Failed"
    assert view.detail == "WhatsApp says this client is outdated"
    assert view.tone is Tone.ERROR
    assert view.action is Action.TRY_AGAIN


@pytest.mark.parametrize(
    ("delta", "expected"), [(None, 0), (-3.0, 0), (0.0, 0), (0.2, 1), (1.0, 1), (1.01, 2), (59.5, 60)]
)
def test_seconds_left(delta: float | None, expected: int) -> None:
    assert seconds_left(None if delta is None else NOW + delta, NOW) == expected


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("is not a phone number", "Recipient is not a phone number"),
        ("must be a phone number, not a group", "Recipient must be a phone number, not a group"),
        ("'0151' looks like a national number", "'0151' looks like a national number"),
        ("too long", "Too long"),
        ("", ""),
    ],
)
def test_sentence(reason: str, expected: str) -> None:
    assert sentence(reason, "Recipient") == expected
