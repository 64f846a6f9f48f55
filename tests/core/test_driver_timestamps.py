import time

import pytest

from wadesk.core.driver import unix_seconds


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (1795540105000, 1795540105.0),  # MessageInfo.Timestamp: milliseconds
        (1795540105, 1795540105.0),  # receipts and send responses: seconds
        (1795540105123.0, 1795540105.123),
        (86400, 86400.0),
    ],
)
def test_unix_seconds(raw, seconds):
    assert unix_seconds(raw) == pytest.approx(seconds)


def test_missing_timestamp_is_now():
    assert abs(unix_seconds(0) - time.time()) < 5
    assert abs(unix_seconds(None) - time.time()) < 5
