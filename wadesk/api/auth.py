"""API token: where it comes from, how a request presents it, how it is checked.

A request presents the token as ``Authorization: Bearer <token>`` or ``X-Api-Key: <token>``.
The comparison is constant-time and does not depend on the length of what was sent
(both sides are hashed first).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, ConfigError, _api_token
from ..core.datadir import API_TOKEN_FILE, WEBHOOK_SECRET_FILE, DataDir


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The token a request carries, or None."""
    auth = headers.get("Authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("X-Api-Key")
    if key and key.strip():
        return key.strip()
    return None


class TokenChecker:
    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the API token must not be empty")
        self._digest = hashlib.sha256(token.encode("utf-8")).digest()

    def __call__(self, presented: str | None) -> bool:
        if presented is None:
            return False
        try:
            digest = hashlib.sha256(presented.encode("utf-8")).digest()
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(digest, self._digest)


@dataclass(frozen=True)
class Secret:
    value: str
    source: str  # for the log: where it came from, never the value
    path: Path | None = None
    created: bool = False


def resolve_api_token(config: Config, data: DataDir) -> Secret:
    """WADESK_API_TOKEN, else the file named by WADESK_API_TOKEN_FILE, else one kept in the
    data folder (generated on first start). A named file that is missing, unreadable, empty
    or too weak is a :class:`ConfigError`."""
    if config.api_token:
        return Secret(config.api_token, "WADESK_API_TOKEN")
    if config.api_token_file is not None:
        path = Path(config.api_token_file)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("WADESK_API_TOKEN_FILE", str(path), "no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            problem = getattr(exc, "strerror", None) or "not readable as UTF-8 text"
            raise ConfigError("WADESK_API_TOKEN_FILE", str(path), f"cannot read it: {problem}") from None
        if not raw.strip():
            raise ConfigError("WADESK_API_TOKEN_FILE", str(path), "the file is empty")
        try:
            value = _api_token(raw)
        except ValueError as exc:
            raise ConfigError("WADESK_API_TOKEN_FILE", str(path), f"the token in it {exc}") from None
        return Secret(value, "WADESK_API_TOKEN_FILE", path)
    return _kept(data, API_TOKEN_FILE)


def resolve_webhook_secret(config: Config, data: DataDir) -> Secret:
    if config.webhook_secret:
        return Secret(config.webhook_secret, "WEBHOOK_SECRET")
    return _kept(data, WEBHOOK_SECRET_FILE)


def _kept(data: DataDir, name: str) -> Secret:
    try:
        value, created = data.secret(name)
    except OSError as exc:
        raise ConfigError(
            "WADESK_DATA_DIR", str(data.path), f"cannot keep {name} there: {exc.strerror or exc}"
        ) from None
    return Secret(value, "data folder", data.file(name), created)
