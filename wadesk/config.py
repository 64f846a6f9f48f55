"""Configuration in one place.

Every setting is read as command-line flag, then environment variable, then default.
A bad value raises :class:`ConfigError` naming the setting and the value; the CLI turns
that into one line on stderr and exit code 2. Secrets (tokens) can only come from the
environment or a file, never from a flag (flags are visible in ``ps``), and are never
echoed back in an error.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

APP_NAME = "wadesk"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")
WEBHOOK_EVENTS = ("message.received", "message.status", "session.status", "qr", "group.participants")


class ConfigError(ValueError):
    """A setting has a bad value. ``str(err)`` is one line meant for a person."""

    def __init__(self, setting: str, value: str | None, problem: str) -> None:
        shown = "" if value is None else f" {value!r}"
        super().__init__(f"invalid {setting}{shown}: {problem}")
        self.setting = setting


def default_data_dir(headless: bool) -> Path:
    """Per-user data folder on the desktop; the same rule in headless mode outside a container.

    In the container image WADESK_DATA_DIR=/app/session is set explicitly.
    """
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


# ---- parsers: str -> value, raising ValueError with the problem ----------------------------


def _path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("must not be empty")
    if "\0" in raw:
        raise ValueError("must not contain NUL")
    return Path(raw).expanduser()


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level == "WARN":
        level = "WARNING"
    if level not in LOG_LEVELS:
        raise ValueError("must be one of " + ", ".join(LOG_LEVELS))
    return level


def _log_format(raw: str) -> str:
    fmt = raw.strip().lower()
    if fmt not in LOG_FORMATS:
        raise ValueError("must be json or text")
    return fmt


def _host(raw: str) -> str:
    host = raw.strip()
    if not host:
        raise ValueError("must not be empty")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", host):
            raise ValueError("must be an IP address or a host name") from None
    return host


def _port(raw: str) -> int:
    try:
        port = int(raw.strip(), 10)
    except ValueError:
        raise ValueError("must be a whole number from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise ValueError("must be a whole number from 1 to 65535")
    return port


def _seconds(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("must be a number of seconds, e.g. 1 or 0.5") from None
    if not 0 <= value <= 3600 or value != value:
        raise ValueError("must be between 0 and 3600 seconds")
    return value


def _http_url(raw: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    url = raw.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)} and a host")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise ValueError("must not contain spaces or control characters")
    if not (parts.path + parts.query).isascii():
        raise ValueError("must percent-encode the non-ASCII characters of its path and query")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError("has an invalid port") from None
    return url


def _proxy(raw: str) -> str | None:
    if not raw.strip():
        return None
    return _http_url(raw, ("http", "https", "socks5"))


def _url_list(raw: str) -> tuple[str, ...]:
    urls = [u.strip() for u in raw.split(",") if u.strip()]
    out = []
    for url in urls:
        try:
            out.append(_http_url(url))
        except ValueError as exc:
            raise ValueError(f"{exc}" + (f" ({url!r} is not)" if len(urls) > 1 else "")) from None
    return tuple(dict.fromkeys(out))


def _event_list(raw: str) -> frozenset[str]:
    names = {n.strip().lower() for n in raw.split(",") if n.strip()}
    if not names or names in ({"all"}, {"*"}):
        return frozenset(WEBHOOK_EVENTS)
    unknown = sorted(names - set(WEBHOOK_EVENTS))
    if "message" in unknown:
        raise ValueError("the event 'message' is called 'message.received' now")
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}; known: all, " + ", ".join(WEBHOOK_EVENTS))
    return frozenset(names)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(raw: str) -> str:
    """One browser origin, ``scheme://host[:port]``, in the form a browser sends it in the
    Origin header (scheme and host in lower case, no default port, no path)."""
    origin = raw.strip()
    if origin in ("*", "null"):
        raise ValueError(
            f"lists {origin!r}; list each allowed origin exactly (e.g. https://dash.example.com)"
        )
    if not origin.isascii() or not origin.isprintable() or any(c.isspace() for c in origin):
        raise ValueError(f"{origin!r} must be ASCII without spaces (write a non-ASCII host in punycode)")
    parts = urlsplit(origin)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "*" in origin:
        raise ValueError(
            f"{origin!r} is not an origin such as https://dash.example.com or http://localhost:3000"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{origin!r} must not hold a user name or password")
    if parts.path or parts.query or parts.fragment or origin.endswith(("?", "#")):
        raise ValueError(f"{origin!r} must be scheme://host[:port] only, without a path (not even a /)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{origin!r} has an invalid port") from None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    shown = f"{scheme}://{host}"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        shown += f":{port}"
    return shown


def _origin_list(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_origin(o) for o in raw.split(",") if o.strip()))


def _hours(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("must be a number of hours, e.g. 24 or 0.5 (0: no event log)") from None
    if not 0 <= value <= 24 * 365 or value != value:
        raise ValueError("must be between 0 and 8760 hours")
    return value


def _event_count(raw: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= 10_000_000:
        raise ValueError("must be a whole number of events from 0 to 10000000 (0: no event log)")
    return int(text)


def _secret(raw: str) -> str:
    value = raw.strip()
    if len(value) < 16:
        raise ValueError("must be at least 16 characters")
    if any(c.isspace() for c in value):
        raise ValueError("must not contain whitespace")
    return value


WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)
WEBHOOK_KEY_BYTES = (24, 64)  # the Standard Webhooks spec: at least 192 bits, at most 512
MAX_WEBHOOK_SECRETS = 2  # the new one and the old one, while receivers change over
_BASE64 = re.compile(r"[A-Za-z0-9+/]*")
_EXAMPLE = "e.g. whsec_$(openssl rand -base64 32)"


def webhook_key(secret: str) -> bytes:
    """The HMAC key of one Standard Webhooks secret: ``whsec_`` and the key in base64.

    A secret without the prefix is read as base64 too, as the ``standardwebhooks`` libraries
    read it (``Webhook(secret)`` there decodes the same bytes). Only the standard alphabet
    is taken (padding optional): the Python library silently skips other characters, so a
    passphrase such as ``my-secret`` would give it a key other libraries cannot derive."""
    encoded = secret[len(WEBHOOK_SECRET_PREFIX) :] if secret.startswith(WEBHOOK_SECRET_PREFIX) else secret
    body = encoded.rstrip("=")
    if not body:
        raise ValueError(f"has no key: a secret is whsec_ followed by the key in base64 ({_EXAMPLE})")
    if not _BASE64.fullmatch(body) or len(body) % 4 == 1 or len(encoded) - len(body) > 2:
        raise ValueError(
            "must be whsec_ followed by the key in base64 (A-Z, a-z, 0-9, + and /; a value "
            f"without whsec_ is read as base64 too, as the Standard Webhooks libraries do): {_EXAMPLE}"
        )
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        raise ValueError(f"is not valid base64 after whsec_ ({_EXAMPLE})") from None
    low, high = WEBHOOK_KEY_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"must hold a key of {low} to {high} bytes, not {len(key)} ({_EXAMPLE})")
    return key


def webhook_keys(raw: str) -> tuple[bytes, ...]:
    """The HMAC keys of a ``WEBHOOK_SECRET`` value: one secret, or two separated by white
    space while receivers change from one to the other (each delivery is signed with both)."""
    values = raw.split()
    if not values:
        raise ValueError(f"is empty: set one whsec_ secret ({_EXAMPLE}), or unset it to use a generated one")
    if len(values) > MAX_WEBHOOK_SECRETS:
        raise ValueError(
            f"holds {len(values)} secrets; at most {MAX_WEBHOOK_SECRETS} (the new and the old one, "
            "space separated, while receivers change over)"
        )
    keys = []
    for i, secret in enumerate(values):
        try:
            keys.append(webhook_key(secret))
        except ValueError as exc:
            if len(values) == 1:
                raise
            raise ValueError(f"its {('first', 'second')[i]} secret {exc}") from None
    return tuple(dict.fromkeys(keys))


def _webhook_secret(raw: str) -> str:
    """WEBHOOK_SECRET, checked (see :func:`webhook_keys`), with single spaces between secrets."""
    webhook_keys(raw)
    return " ".join(raw.split())


def _api_token(raw: str) -> str:
    """A secret a client can send in an HTTP header: printable ASCII (curl, and most HTTP
    libraries, cannot send other characters there)."""
    value = _secret(raw)
    if not (value.isascii() and value.isprintable()):
        raise ValueError("must be printable ASCII (letters, digits and punctuation only)")
    return value


UNCERTAIN_MODES = ("resend", "fail")


def _uncertain(raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in UNCERTAIN_MODES:
        raise ValueError("must be resend (at least once) or fail (at most once)")
    return mode


MEDIA_KINDS = ("image", "video", "audio", "voice", "document", "sticker")


def _megabytes(raw: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 2048:
        raise ValueError("must be a whole number of megabytes from 1 to 2048")
    return int(text)


def _days(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("must be a number of days, e.g. 7 or 0.5") from None
    if not 0 <= value <= 3650 or value != value:
        raise ValueError("must be between 0 and 3650 days")
    return value


def _media_kinds(raw: str) -> frozenset[str]:
    names = {n.strip().lower() for n in raw.split(",") if n.strip()}
    if names in ({"all"}, {"*"}) or not names:
        return frozenset(MEDIA_KINDS)
    if names == {"none"}:
        return frozenset()
    unknown = sorted(names - set(MEDIA_KINDS))
    if unknown:
        raise ValueError(
            f"unknown kind {unknown[0]!r}; use all, none, or a list of " + ", ".join(MEDIA_KINDS)
        )
    return frozenset(names)


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be 1 or 0 (true or false)")


def _device_name(raw: str) -> str:
    name = raw.strip()
    if not 1 <= len(name) <= 50:
        raise ValueError("must be 1 to 50 characters")
    return name


def _without_passwords(raw: str) -> str:
    """Hide the password of any user:password@ in URLs, so an error line leaks no credential."""
    return re.sub(r"(//[^/@:\s]*:)[^/@\s]*@", r"\1***@", raw)


# ---- the settings table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    flag: str | None = None
    secret: bool = False
    headless_default: Any = None

    def default_for(self, headless: bool) -> Any:
        value = self.headless_default if headless and self.headless_default is not None else self.default
        return value(headless) if callable(value) else value


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        "WADESK_DATA_DIR",
        _path,
        default_data_dir,
        "data folder: WhatsApp session, outbox, tokens (default: per-user data dir)",
        flag="--data-dir",
    ),
    Setting(
        "log_level",
        "LOG_LEVEL",
        _log_level,
        "INFO",
        "log level: DEBUG, INFO, WARNING, ERROR",
        flag="--log-level",
    ),
    Setting(
        "log_format",
        "LOG_FORMAT",
        _log_format,
        "text",
        "log format: json or text (json when headless)",
        flag="--log-format",
        headless_default="json",
    ),
    Setting("host", "HOST", _host, "127.0.0.1", "address the HTTP API listens on", flag="--host"),
    Setting("port", "PORT", _port, 8080, "port the HTTP API listens on", flag="--port"),
    Setting(
        "proxy",
        "WADESK_PROXY",
        _proxy,
        None,
        "proxy for the WhatsApp connection (http://, https:// or socks5://)",
        flag="--proxy",
    ),
    Setting(
        "send_interval",
        "WADESK_SEND_INTERVAL",
        _seconds,
        1.0,
        "seconds between two outgoing messages",
        flag="--send-interval",
    ),
    Setting(
        "uncertain",
        "WADESK_UNCERTAIN",
        _uncertain,
        "resend",
        "a message that may have reached WhatsApp when a crash or a drop cut its send short: "
        "resend (at least once, marked possible_duplicate) or fail (at most once)",
        flag="--uncertain",
    ),
    Setting(
        "check_recipients",
        "WADESK_CHECK_RECIPIENTS",
        _flag,
        True,
        "ask WhatsApp whether a number has an account before the first send to it (1 or 0)",
        flag="--check-recipients",
    ),
    Setting(
        "max_media_mb",
        "WADESK_MAX_MEDIA_MB",
        _megabytes,
        64,
        "largest media file sent or downloaded, in megabytes",
        flag="--max-media-mb",
    ),
    Setting(
        "media_retention_days",
        "WADESK_MEDIA_RETENTION_DAYS",
        _days,
        7.0,
        "days a sent media file is kept in the data folder after it was sent",
        flag="--media-retention-days",
    ),
    Setting(
        "media_download",
        "WADESK_MEDIA_DOWNLOAD",
        _media_kinds,
        frozenset(MEDIA_KINDS),
        "received media to download: all, none, or a list of image, video, audio, voice, document, sticker",
        flag="--media-download",
    ),
    Setting(
        "device_name",
        "WADESK_DEVICE_NAME",
        _device_name,
        "wadesk",
        "name of this device in the phone's Linked devices list",
        flag="--device-name",
    ),
    Setting(
        "webhook_urls",
        "WEBHOOK_URL",
        _url_list,
        (),
        "webhook receiver URL(s), comma separated",
        flag="--webhook-url",
    ),
    Setting(
        "webhook_events",
        "WEBHOOK_EVENTS",
        _event_list,
        frozenset(WEBHOOK_EVENTS),
        "webhook events: all, or a list of " + ", ".join(WEBHOOK_EVENTS),
        flag="--webhook-events",
    ),
    Setting(
        "cors_origins",
        "WADESK_CORS_ORIGINS",
        _origin_list,
        (),
        "browser origins allowed to call the API (CORS), exactly, comma separated, e.g. "
        "https://dash.example.com (none: no CORS)",
        flag="--cors-origins",
    ),
    Setting(
        "event_log_hours",
        "WADESK_EVENT_LOG_HOURS",
        _hours,
        24.0,
        "hours of events kept for /events replay and /events/history (0: none)",
        flag="--event-log-hours",
    ),
    Setting(
        "event_log_max",
        "WADESK_EVENT_LOG_MAX",
        _event_count,
        100_000,
        "most events kept for /events replay and /events/history (0: none)",
        flag="--event-log-max",
    ),
    Setting(
        "webhook_secret",
        "WEBHOOK_SECRET",
        _webhook_secret,
        None,
        "Standard Webhooks signing secret, whsec_<base64 key>; two, space separated, while changing "
        "it (generated and kept in the data folder if unset)",
        secret=True,
    ),
    Setting(
        "api_token",
        "WADESK_API_TOKEN",
        _api_token,
        None,
        "API bearer token (generated and kept in the data folder if unset)",
        secret=True,
    ),
    Setting(
        "api_token_file", "WADESK_API_TOKEN_FILE", _path, None, "file holding the API token (Docker secrets)"
    ),
)


@dataclass(frozen=True)
class Config:
    data_dir: Path
    log_level: str = "INFO"
    log_format: str = "text"
    host: str = "127.0.0.1"
    port: int = 8080
    proxy: str | None = None
    send_interval: float = 1.0
    uncertain: str = "resend"
    check_recipients: bool = True
    max_media_mb: int = 64
    media_retention_days: float = 7.0
    media_download: frozenset[str] = field(default_factory=lambda: frozenset(MEDIA_KINDS))
    device_name: str = "wadesk"
    webhook_urls: tuple[str, ...] = ()
    webhook_events: frozenset[str] = field(default_factory=lambda: frozenset(WEBHOOK_EVENTS))
    cors_origins: tuple[str, ...] = ()
    event_log_hours: float = 24.0
    event_log_max: int = 100_000
    webhook_secret: str | None = None
    api_token: str | None = None
    api_token_file: Path | None = None
    headless: bool = False
    reset_store: bool = False  # --reset-store: move damaged or vanished databases aside

    def __repr__(self) -> str:  # never print secrets by accident
        hidden = {s.name for s in SETTINGS if s.secret}
        parts = [f"{k}={'***' if k in hidden and v else v!r}" for k, v in self.__dict__.items()]
        return f"Config({', '.join(parts)})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per (non-secret) setting. Flags default to None: 'not given'."""
    for s in SETTINGS:
        if s.flag:
            parser.add_argument(
                s.flag, dest=s.name, default=None, metavar=s.env, help=f"{s.help} [env {s.env}]"
            )


def load(
    args: argparse.Namespace | Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    headless: bool = False,
    reset_store: bool = False,
) -> Config:
    """Build the configuration: flag, then environment variable, then default."""
    flags = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {"headless": headless, "reset_store": reset_store}
    for s in SETTINGS:
        raw: str | None = None
        source = s.env
        if s.flag and flags.get(s.name) is not None:
            raw, source = str(flags[s.name]), s.flag
        elif env.get(s.env) not in (None, ""):
            raw = env[s.env]
        if raw is None:
            values[s.name] = s.default_for(headless)
            continue
        try:
            values[s.name] = s.parse(raw)
        except ValueError as exc:
            shown = None if s.secret else _without_passwords(raw)
            raise ConfigError(source, shown, _without_passwords(str(exc))) from None
    if values["api_token"] and values["api_token_file"]:
        raise ConfigError(
            "WADESK_API_TOKEN_FILE", None, "set either WADESK_API_TOKEN or WADESK_API_TOKEN_FILE, not both"
        )
    return Config(**values)


def settings_table() -> Sequence[tuple[str, str, str, str]]:
    """(env, flag, default, help) rows, for --help epilogues and the README."""
    rows = []
    for s in SETTINGS:
        default = s.default
        shown = "per-user data dir" if callable(default) else ("" if default in (None, ()) else str(default))
        if s.name in ("webhook_events", "media_download"):
            shown = "all"
        rows.append((s.env, s.flag or "", shown, s.help))
    return rows
