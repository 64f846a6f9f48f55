import subprocess
import sys
from pathlib import Path

import pytest

from wadesk import config as cfg


def load(env=None, **flags):
    return cfg.load(flags, env or {}, headless=flags.pop("headless", False) if "headless" in flags else False)


def test_defaults_desktop_and_headless(tmp_path):
    desktop = cfg.load({}, {}, headless=False)
    headless = cfg.load({}, {}, headless=True)
    assert desktop.port == 8080 and desktop.host == "127.0.0.1"
    assert desktop.log_format == "text" and headless.log_format == "json"
    assert desktop.log_level == "INFO"
    assert desktop.send_interval == 1.0
    assert desktop.webhook_events == frozenset(cfg.WEBHOOK_EVENTS)
    assert "wadesk" in str(desktop.data_dir)
    assert desktop.api_token is None and desktop.webhook_urls == ()


def test_flag_beats_environment_beats_default(tmp_path):
    env = {"PORT": "9000", "WADESK_DATA_DIR": str(tmp_path / "env"), "LOG_LEVEL": "debug"}
    assert cfg.load({}, env).port == 9000
    config = cfg.load({"port": "9100", "data_dir": str(tmp_path / "flag")}, env)
    assert config.port == 9100
    assert config.data_dir == tmp_path / "flag"
    assert config.log_level == "DEBUG"


def test_empty_environment_value_means_unset():
    assert cfg.load({}, {"PORT": ""}).port == 8080


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"PORT": "0"}, "PORT"),
        ({"PORT": "65536"}, "PORT"),
        ({"PORT": "http"}, "PORT"),
        ({"HOST": "not a host!"}, "HOST"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"WADESK_SEND_INTERVAL": "-1"}, "WADESK_SEND_INTERVAL"),
        ({"WADESK_SEND_INTERVAL": "soon"}, "WADESK_SEND_INTERVAL"),
        ({"WADESK_SEND_INTERVAL": "nan"}, "WADESK_SEND_INTERVAL"),
        ({"WEBHOOK_URL": "ftp://example.com"}, "WEBHOOK_URL"),
        ({"WEBHOOK_URL": "http://ok.example,nourl"}, "WEBHOOK_URL"),
        ({"WEBHOOK_URL": "http://example.com:99999"}, "WEBHOOK_URL"),
        ({"WEBHOOK_EVENTS": "message,telepathy"}, "WEBHOOK_EVENTS"),
        ({"WADESK_PROXY": "gopher://proxy"}, "WADESK_PROXY"),
        ({"WADESK_DEVICE_NAME": "x" * 51}, "WADESK_DEVICE_NAME"),
        ({"WADESK_API_TOKEN": "short"}, "WADESK_API_TOKEN"),
        ({"WEBHOOK_SECRET": "has white space inside"}, "WEBHOOK_SECRET"),
    ],
)
def test_bad_values_name_the_setting(env, setting):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load({}, env)
    assert str(info.value).startswith(f"invalid {setting}")
    assert "\n" not in str(info.value)


def test_bad_flag_is_named_as_the_flag():
    with pytest.raises(cfg.ConfigError, match=r"^invalid --port 'x'"):
        cfg.load({"port": "x"}, {})


def test_secrets_are_never_echoed():
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load({}, {"WADESK_API_TOKEN": "short secret"})
    assert "short secret" not in str(info.value)
    config = cfg.load({}, {"WADESK_API_TOKEN": "a-long-enough-secret-token"})
    assert "a-long-enough-secret-token" not in repr(config)


def test_token_and_token_file_are_exclusive(tmp_path):
    with pytest.raises(cfg.ConfigError, match="not both"):
        cfg.load({}, {"WADESK_API_TOKEN": "a-long-enough-secret-token", "WADESK_API_TOKEN_FILE": "/run/x"})


def test_lists_and_events():
    config = cfg.load(
        {},
        {
            "WEBHOOK_URL": "http://a.example/h, https://b.example/h,http://a.example/h",
            "WEBHOOK_EVENTS": "Message.Received, qr",
        },
    )
    assert config.webhook_urls == ("http://a.example/h", "https://b.example/h")
    assert config.webhook_events == frozenset({"message.received", "qr"})
    with pytest.raises(cfg.ConfigError, match=r"message\.received"):  # the old name says what it is now
        cfg.load({}, {"WEBHOOK_EVENTS": "message"})
    assert cfg.load({}, {"WEBHOOK_EVENTS": "all"}).webhook_events == frozenset(cfg.WEBHOOK_EVENTS)


def run_cli(*args, env=None, tmp_path: Path):
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WADESK_DATA_DIR": str(tmp_path / "d")}
    return subprocess.run(
        [sys.executable, "-m", "wadesk", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--headless"],
            {"PORT": "99999"},
            "wadesk: invalid PORT '99999': must be a whole number from 1 to 65535",
        ),
        (["--headless", "--port", "abc"], {}, "wadesk: invalid --port 'abc'"),
        (["--headless"], {"LOG_LEVEL": "chatty"}, "wadesk: invalid LOG_LEVEL 'chatty'"),
        (["--headless"], {"WEBHOOK_URL": "nope"}, "wadesk: invalid WEBHOOK_URL 'nope'"),
        (["--headless"], {"WADESK_CORS_ORIGINS": "*"}, "wadesk: invalid WADESK_CORS_ORIGINS '*'"),
        (
            ["--headless", "--cors-origins", "https://dash.example/app"],
            {},
            "wadesk: invalid --cors-origins 'https://dash.example/app': 'https://dash.example/app' must be",
        ),
    ],
)
def test_cli_bad_setting_exits_2_with_one_line(tmp_path, args, env, expected):
    result = run_cli(*args, env=env, tmp_path=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected)
    assert "Traceback" not in result.stderr


def test_cli_unusable_data_dir_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("--headless", env={"WADESK_DATA_DIR": str(blocker / "sub")}, tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("wadesk: invalid WADESK_DATA_DIR")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_version_and_help(tmp_path):
    from wadesk import __version__

    version = run_cli("--version", tmp_path=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"wadesk {__version__}"
    help_text = run_cli("--help", tmp_path=tmp_path).stdout
    for setting in cfg.SETTINGS:
        assert setting.env in help_text
        if setting.flag:
            assert setting.flag in help_text
    for flag in ("--headless", "--self-test", "--reset-store", "--version"):
        assert flag in help_text


def test_a_url_password_is_never_echoed():
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load({}, {"WEBHOOK_URL": "https://ok.example/h,ftp://alice:s3cr3t-pw@hooks.example/x"})
    assert "s3cr3t-pw" not in str(info.value)
    assert "alice:***@hooks.example" in str(info.value)
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load({}, {"WADESK_PROXY": "gopher://bob:hunter2@proxy.example:8080"})
    assert "hunter2" not in str(info.value)


NOT_ASCII = "invalid WADESK_API_TOKEN: must be printable ASCII (letters, digits and punctuation only)"


@pytest.mark.parametrize(
    "token", ["tökén-0123456789abcdef", "token-0123456789\x7fabcdef", "токен-0123456789abc"]
)
def test_an_api_token_a_client_cannot_send_is_refused(token):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load({}, {"WADESK_API_TOKEN": token})
    assert str(info.value) == NOT_ASCII
    assert cfg.load({}, {"WADESK_API_TOKEN": "plain-ascii-0123456789!#$%&*+-.^_|~"}).api_token


def test_cli_non_ascii_token_exits_2_with_one_line(tmp_path):
    env = {"WADESK_API_TOKEN": "tökén-0123456789abcdef", "WADESK_PROXY": "http://127.0.0.1:9", "PORT": "9"}
    result = run_cli("--headless", env=env, tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"wadesk: {NOT_ASCII}"]


def test_cli_window_without_a_display_exits_2_with_one_line(tmp_path):
    # run_cli's environment has no DISPLAY, no WAYLAND_DISPLAY and no QT_QPA_PLATFORM
    result = run_cli(tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "wadesk: no display found: the window needs a desktop session; for a server run wadesk --headless"
    ]
    assert not (tmp_path / "d").exists()  # stopped before touching the data folder


@pytest.mark.parametrize(
    ("env", "platform", "missing"),
    [
        ({}, "linux", True),
        ({"DISPLAY": ":0"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"QT_QPA_PLATFORM": "vnc:size=800x600"}, "linux", False),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
        ({"QT_QPA_PLATFORM": "wayland"}, "linux", True),
        ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":1"}, "linux", False),
        ({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"DISPLAY": ""}, "linux", True),
        ({}, "win32", False),
        ({}, "darwin", False),
    ],
)
def test_display_missing(env, platform, missing):
    from wadesk.cli import display_missing

    assert display_missing(env, platform) is missing


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ({}, {}, True),
        ({}, {"WADESK_CHECK_RECIPIENTS": "0"}, False),
        ({}, {"WADESK_CHECK_RECIPIENTS": "false"}, False),
        ({"check_recipients": "1"}, {"WADESK_CHECK_RECIPIENTS": "0"}, True),
    ],
)
def test_the_recipient_check_is_on_unless_turned_off_and_reaches_the_session(tmp_path, flags, env, expected):
    from wadesk.core import open_session

    config = cfg.load(flags, {**env, "WADESK_DATA_DIR": str(tmp_path / "data")})
    assert config.check_recipients is expected
    session = open_session(config)
    try:
        assert session.check_recipients is expected
    finally:
        session.store.close()


def test_a_bad_recipient_check_setting_is_refused():
    with pytest.raises(cfg.ConfigError, match=r"^invalid WADESK_CHECK_RECIPIENTS 'maybe'"):
        cfg.load({}, {"WADESK_CHECK_RECIPIENTS": "maybe"})
