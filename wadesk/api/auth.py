"""API token: where it comes from, how a request presents it, how it is checked.

A request presents the token as ``Authorization: Bearer <token>`` or ``X-Api-Key: <token>``.
The comparison is constant-time and does not depend on the length of what was sent
(both sides are hashed first).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import WEBHOOK_SECRET_PREFIX, Config, ConfigError, _api_token, webhook_keys
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


def new_webhook_secret(nbytes: int = 32) -> str:
    """A Standard Webhooks secret: ``whsec_`` and ``nbytes`` random bytes in base64."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def resolve_webhook_secret(config: Config, data: DataDir) -> Secret:
    """WEBHOOK_SECRET (checked by the configuration), else the one kept in the data folder,
    generated in the ``whsec_`` form on first start. A kept secret of an older wadesk (a
    plain token, not ``whsec_``) is replaced by a new one; one that is not valid is a
    :class:`ConfigError`."""
    if config.webhook_secret:
        return Secret(config.webhook_secret, "WEBHOOK_SECRET")
    secret = _kept(data, WEBHOOK_SECRET_FILE, new_webhook_secret)
    if not secret.value.startswith(WEBHOOK_SECRET_PREFIX):
        with contextlib.suppress(FileNotFoundError):
            data.file(WEBHOOK_SECRET_FILE).unlink()
        secret = _kept(data, WEBHOOK_SECRET_FILE, new_webhook_secret)
    try:
        webhook_keys(secret.value)
    except ValueError as exc:
        raise ConfigError("WEBHOOK_SECRET", None, f"the secret kept in {secret.path} {exc}") from None
    return secret


def _kept(data: DataDir, name: str, make: Callable[[int], str] | None = None) -> Secret:
    try:
        value, created = data.secret(name) if make is None else data.secret(name, make=make)
    except OSError as exc:
        raise ConfigError(
            "WADESK_DATA_DIR", str(data.path), f"cannot keep {name} there: {exc.strerror or exc}"
        ) from None
    return Secret(value, "data folder", data.file(name), created)


TICKET_PREFIX = "tkt_"
TICKET_SECONDS = 60.0
MAX_TICKETS = 10_000  # unredeemed tickets kept at once; the oldest goes first past that


class TicketBook:
    """Single-use tickets for ``GET /events?ticket=…``: a browser's EventSource cannot send
    an Authorization header. A ticket is random (256 bits), valid for ``ttl`` seconds and
    accepted once; only its SHA-256 is kept, in memory (a restart forgets every ticket)."""

    def __init__(self, ttl: float = TICKET_SECONDS, limit: int = MAX_TICKETS) -> None:
        self.ttl = ttl
        self.limit = limit
        self._expiry: dict[bytes, float] = {}  # digest -> monotonic expiry, oldest first
        self._lock = threading.Lock()

    @staticmethod
    def _digest(ticket: str) -> bytes:
        return hashlib.sha256(ticket.encode("utf-8", "surrogatepass")).digest()

    def issue(self) -> tuple[str, float]:
        """A new ticket and the seconds it stays valid."""
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            while len(self._expiry) >= self.limit:
                del self._expiry[next(iter(self._expiry))]
            self._expiry[self._digest(ticket)] = now + self.ttl
        return ticket, self.ttl

    def redeem(self, ticket: str) -> bool:
        """True once for a ticket issued less than ``ttl`` seconds ago; False otherwise."""
        digest = self._digest(ticket)
        with self._lock:
            expiry = self._expiry.pop(digest, None)
        return expiry is not None and time.monotonic() < expiry

    def __len__(self) -> int:
        with self._lock:
            self._prune(time.monotonic())
            return len(self._expiry)

    def _prune(self, now: float) -> None:
        # issued in order with one ttl: the expired ones are at the front
        while self._expiry:
            digest = next(iter(self._expiry))
            if self._expiry[digest] > now:
                break
            del self._expiry[digest]
