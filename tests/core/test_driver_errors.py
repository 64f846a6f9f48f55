"""What whatsmeow's error texts mean to the driver (no neonize needed)."""

import pytest

from wadesk.core.driver import SendFailed, SendFailure, classify_send_error, group_refusal


@pytest.mark.parametrize(
    ("text", "failure", "code"),
    [
        ("server returned error 420", SendFailure.ADMINS_ONLY, 420),
        ("server returned error 463", SendFailure.REACH_OUT_TIMELOCK, 463),
        ("server returned error 404", SendFailure.REJECTED, 404),
        ("server returned error 500", SendFailure.TRANSIENT, 500),
        ("failed to get device list: unknown server", SendFailure.UNDELIVERABLE, None),
        ("context deadline exceeded", SendFailure.TRANSIENT, None),
    ],
)
def test_send_errors_are_classified_by_whatsapps_code(text, failure, code):
    assert classify_send_error(text) == (failure, code)


def test_an_error_ack_proves_nothing_was_delivered():
    failed = SendFailed.of(RuntimeError("server returned error 420"))
    assert (failed.written, failed.failure, failed.code) == (False, SendFailure.ADMINS_ONLY, 420)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("you're not participating in that group", "not_in_group"),  # group info, invite link
        ("info query returned status 403: forbidden", "not_in_group"),
        ("that group does not exist", "no_such_group"),
        ("info query returned status 404: item-not-found", "no_such_group"),
        ("info query returned status 401: not-authorized", "not_admin"),
        ("you don't have the permission to get the group's invite link", "not_admin"),
        ("info query timed out", None),
    ],
)
def test_group_refusals_are_named(text, reason):
    assert group_refusal(text) == reason
