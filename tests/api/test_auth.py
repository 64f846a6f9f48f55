"""Where the API token comes from, how a request presents it and how it is compared."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from wadesk.api.auth import TokenChecker, presented_token, resolve_api_token, resolve_webhook_secret
from wadesk.config import Config, ConfigError
from wadesk.core.datadir import DataDir

TOKEN = "a-token-of-sufficient-length"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": f"Bearer {TOKEN}"}, TOKEN),
        ({"Authorization": f"BEARER {TOKEN}"}, TOKEN),
        ({"Authorization": f"  Bearer   {TOKEN}  "}, TOKEN),
        ({"X-Api-Key": TOKEN}, TOKEN),
        ({"Authorization": "Basic abc", "X-Api-Key": TOKEN}, TOKEN),
        ({"Authorization": "Bearer "}, None),
        ({"Authorization": TOKEN}, None),
        ({"X-Api-Key": "  "}, None),
        ({}, None),
    ],
)
def test_presented_token(headers: dict[str, str], expected: str | None) -> None:
    assert presented_token(headers) == expected


def test_token_checker() -> None:
    check = TokenChecker(TOKEN)
    assert check(TOKEN)
    for wrong in (None, "", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "\ud800"):
        assert not check(wrong)
    with pytest.raises(ValueError):
        TokenChecker("")


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    return DataDir(tmp_path / "data").prepare()


def test_token_from_the_environment(data: DataDir) -> None:
    secret = resolve_api_token(Config(data_dir=data.path, api_token=TOKEN), data)
    assert (secret.value, secret.source, secret.path) == (TOKEN, "WADESK_API_TOKEN", None)


def test_token_from_a_file(data: DataDir, tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(f"  {TOKEN}\n")
    secret = resolve_api_token(Config(data_dir=data.path, api_token_file=path), data)
    assert (secret.value, secret.path) == (TOKEN, path)


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text(""), "empty"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00"), "cannot read it"),
        (lambda p: p.mkdir(), "cannot read it"),
        (lambda p: p.write_text("two words here and more"), "whitespace"),
        (lambda p: p.write_text("pässwort-0123456789abc", encoding="utf-8"), "must be printable ASCII"),
    ],
)
def test_bad_token_file_is_a_config_error(data: DataDir, tmp_path: Path, setup: object, problem: str) -> None:
    path = tmp_path / "secret"
    setup(path)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=problem) as info:
        resolve_api_token(Config(data_dir=data.path, api_token_file=path), data)
    assert str(info.value).startswith(f"invalid WADESK_API_TOKEN_FILE '{path}'")
    assert "\n" not in str(info.value)


def test_generated_token_is_kept_owner_only(data: DataDir) -> None:
    config = Config(data_dir=data.path)
    first = resolve_api_token(config, data)
    assert first.created and first.path == data.file("api-token") and len(first.value) >= 40
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    again = resolve_api_token(config, data)
    assert (again.value, again.created) == (first.value, False)
    webhook = resolve_webhook_secret(config, data)
    assert webhook.created and webhook.value != first.value
    assert resolve_webhook_secret(Config(data_dir=data.path, webhook_secret=TOKEN), data).value == TOKEN
