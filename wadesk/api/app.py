"""The HTTP API as a Flask application factory.

``create_app(session, token=...)`` builds the app around a :class:`wadesk.core.Session`
(started or not). Everything the views need lives in ``app.extensions["wadesk"]``
(:class:`ApiContext`); nothing is global, so several apps (tests) can live side by side,
each with its own Prometheus registry.

Every endpoint but the probes ``/health`` and ``/ready`` needs the API token. Every error is
JSON (see :mod:`.errors`). One access-log line (method, route, status, duration) per request.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from flask import Flask, Request, Response, current_app, json, jsonify, request, send_file
from msgspec import Struct
from werkzeug.exceptions import RequestEntityTooLarge

from .. import __version__, qr
from ..core.events import StateChanged, Status
from ..core.recipients import RecipientError, bare_jid, parse_recipient
from ..core.session import (
    MEDIA_PENDING,
    GroupNotFound,
    IdempotencyConflict,
    MediaError,
    NotGroupAdmin,
    SessionError,
    TextError,
    TooLarge,
)
from . import errors, sse
from .auth import TicketBook, TokenChecker, presented_token
from .errors import ApiError, error_response, field_error
from .eventlog import EventLog, Replay
from .feed import Envelope, EventFeed
from .logstream import AccessLog
from .metrics import Metrics
from .models import (
    CREATE_GROUP,
    DEFAULT_PAGE,
    DEFAULT_QR_FORMAT,
    DIRECTIONS,
    EVENT_NAMES,
    FORM_FIELDS,
    IDEMPOTENCY_KEY_HEADER,
    MAX_BODY,
    MAX_CHECK,
    MAX_CURSOR_DIGITS,
    MAX_EVENT_ID,
    MAX_EVENT_PAGE,
    MAX_FORM_MENTIONS,
    MAX_JSON_MEDIA_BODY,
    MAX_PAGE,
    MAX_SEARCH,
    MIN_PAGE,
    PAIR_CODE,
    PARTICIPANTS,
    QR_FORMATS,
    SEND,
    SEND_MEDIA,
    Body,
    Field,
    FieldError,
    Recipient,
)

if TYPE_CHECKING:
    from ..core.session import Session

log = logging.getLogger("wadesk.api")
access_log = logging.getLogger("wadesk.http")

OPEN_PATHS = frozenset({"/health", "/ready"})  # probes: they reveal only the session state
TICKET_PATHS = frozenset({"/events"})  # where ?ticket= stands in for the token (EventSource)
# CORS, for the origins in WADESK_CORS_ORIGINS only: what a browser page may send and read
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID, X-Api-Key, Idempotency-Key"
CORS_EXPOSE_HEADERS = (
    "Location, Retry-After, Idempotent-Replayed, WWW-Authenticate, Content-Disposition, "
    "Content-Range, Accept-Ranges, ETag"
)
CORS_MAX_AGE = "600"  # seconds a browser may cache a preflight's answer
UNMATCHED = "unmatched"
_Model = TypeVar("_Model", bound=Struct)


@dataclass
class ApiContext:
    session: Session
    check_token: TokenChecker
    metrics: Metrics
    feed: EventFeed
    broker: sse.EventBroker
    event_log: EventLog | None = None
    webhooks: Any = None
    version: str = __version__
    heartbeat: float = 15.0
    cors_origins: frozenset[str] = frozenset()
    tickets: TicketBook = field(default_factory=TicketBook)
    access_log: AccessLog | None = None  # the fast path; None: through the logging module
    draining: bool = False  # set at shutdown: every response says Connection: close
    _openapi: dict[str, Any] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def close(self) -> None:
        """Stop the event log's writer (after the last event: it commits what waits)."""
        if self.event_log is not None:
            self.event_log.stop()

    def openapi(self) -> dict[str, Any]:
        with self._lock:
            if self._openapi is None:
                from .openapi import document

                self._openapi = document(self.version)
            return self._openapi


def create_app(
    session: Session,
    *,
    token: str,
    metrics: Metrics | None = None,
    feed: EventFeed | None = None,
    webhooks: Any = None,
    broker: sse.EventBroker | None = None,
    version: str = __version__,
    sse_heartbeat: float = 15.0,
    max_streams: int = 8,
    access: AccessLog | None = None,
    event_log_age: float = 24 * 3600.0,
    event_log_max: int = 100_000,
    cors_origins: Iterable[str] = (),
) -> Flask:
    """Build the API for ``session``.

    ``metrics`` (default: a fresh :class:`Metrics` with its own registry), ``feed`` (default:
    a new :class:`EventFeed` on ``session``) and ``webhooks`` (a
    :class:`~.webhooks.WebhookDispatcher`, for its backlog in /status and /metrics) can be
    shared with the rest of the process. ``access`` writes the access-log lines (see
    :mod:`.logstream`); without it they go through the ``wadesk.http`` logger.
    ``event_log_age`` (seconds) and ``event_log_max`` bound the log of recent events that
    /events replays and /events/history pages through (0: no log); stop it with
    ``app.extensions["wadesk"].close()``.
    ``cors_origins``: the browser origins (exactly as a browser sends them in ``Origin``)
    whose pages may call the API; their preflights are answered before authentication.
    """
    metrics = metrics or Metrics(session)
    metrics.session = session
    feed = feed or EventFeed(session)
    broker = broker or sse.EventBroker(max_streams=max_streams)
    event_log = None
    table = getattr(session, "event_log", None)
    if table is not None and event_log_age > 0 and event_log_max > 0:
        event_log = EventLog(
            table,
            max_age=event_log_age,
            max_events=event_log_max,
            supervise=getattr(session, "supervised", None),
        )
        feed.add(event_log.add)
    feed.add(broker.publish)
    feed.add(metrics.observe)
    if webhooks is not None:
        metrics.webhook_backlog = webhooks.backlog
    ctx = ApiContext(
        session=session,
        check_token=TokenChecker(token),
        metrics=metrics,
        feed=feed,
        broker=broker,
        event_log=event_log,
        webhooks=webhooks,
        version=version,
        heartbeat=sse_heartbeat,
        cors_origins=frozenset(cors_origins),
        access_log=access,
    )

    app = Flask("wadesk.api", static_folder=None)
    app.request_class = MediaRequest
    max_media = int(getattr(session, "max_media_bytes", 0) or 0)
    # the largest request: a multipart /send with the largest file; JSON bodies have their own
    # limits (MAX_BODY, MAX_JSON_MEDIA_BODY), checked in the views
    app.config.update(MAX_CONTENT_LENGTH=max(MAX_BODY, max_media + 1024 * 1024), TRUSTED_HOSTS=None)
    # DefaultJSONProvider's settings; app.json is typed as the JSONProvider base class
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]
    app.extensions["wadesk"] = ctx
    errors.register(app)
    app.before_request(_authenticate)
    if ctx.cors_origins:
        app.after_request(_cors_headers)
    for rule, method, view in _ROUTES:  # on the app itself: a blueprint costs every request a little
        app.add_url_rule(rule, view.__name__, view, methods=[method])
    app.wsgi_app = RequestLog(app.wsgi_app, ctx)  # type: ignore[method-assign]  # Flask's documented way to add WSGI middleware
    return app


def _ctx() -> ApiContext:
    return current_app.extensions["wadesk"]


def _authenticate() -> Response | None:
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not five
    rule = req.url_rule
    req.environ["wadesk.route"] = rule.rule if rule is not None else UNMATCHED
    ctx = _ctx()
    if req.method == "OPTIONS" and ctx.cors_origins:
        answer = _preflight(req, ctx)
        if answer is not None:
            return answer
    if req.path in OPEN_PATHS:
        return None
    if req.method == "GET" and req.path in TICKET_PATHS and "ticket" in req.args:
        if ctx.tickets.redeem(req.args["ticket"]):
            return None
        return error_response(
            401,
            "the ticket is expired, used or unknown: get a new one with POST /events/ticket",
            error="invalid_ticket",
        )
    presented = presented_token(req.headers)
    if ctx.check_token(presented):
        return None
    return error_response(
        401,
        "wrong API token"
        if presented is not None
        else "send the API token as 'Authorization: Bearer <token>' or 'X-Api-Key'",
        headers={"WWW-Authenticate": 'Bearer realm="wadesk"'},
    )


def _preflight(req: Request, ctx: ApiContext) -> Response | None:
    """The answer to a CORS preflight from an allowed origin, before authentication (a
    browser sends no credentials with it); None for any other OPTIONS request."""
    origin = req.headers.get("Origin")
    if origin not in ctx.cors_origins or not req.headers.get("Access-Control-Request-Method"):
        return None
    methods = current_app.url_map.bind_to_environ(req.environ).allowed_methods()
    if not methods:
        return None  # no such path: answered as any request to it
    response = Response(status=204)
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Allow-Methods"] = ", ".join(m for m in sorted(methods) if m != "OPTIONS")
    headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    response.vary.update(("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"))
    return response


def _cors_headers(response: Response) -> Response:
    """Every response says that it varies by Origin; one to an allowed origin lets its page
    read it (never ``*``: the origin itself, one at a time)."""
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin is not None and origin in _ctx().cors_origins:
        headers = response.headers
        if "Access-Control-Allow-Origin" not in headers:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    return response


class RequestLog:
    """WSGI middleware: one access-log line and the HTTP metrics per request, measured until
    the response body is finished (for /events: until the stream ends)."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], ctx: ApiContext) -> None:
        self.wsgi_app = wsgi_app
        self.ctx = ctx

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        status = [500]
        ctx = self.ctx

        def _start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(line[:3])
            if ctx.draining:
                headers = [h for h in headers if h[0].lower() != "connection"]
                headers.append(("Connection", "close"))
            return start_response(line, headers, exc_info)

        try:
            body = self.wsgi_app(environ, _start_response)
        except BaseException:
            self._done(environ, 500, started)
            raise
        return _Finished(body, lambda: self._done(environ, status[0], started))

    def _done(self, environ: dict[str, Any], status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        method = environ.get("REQUEST_METHOD", "")
        route = environ.get("wadesk.route") or UNMATCHED
        self.ctx.metrics.observe_request(method, route, status, seconds)
        path = _loggable(environ.get("PATH_INFO", ""))
        if self.ctx.access_log is not None:
            self.ctx.access_log(method, path, route, status, seconds)
        elif access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %d %.1f ms",
                method,
                path,
                status,
                seconds * 1000,
                extra=AccessLog.fields(method, route, status, seconds),
            )


def _loggable(path: str) -> str:
    """The path for the access log. It arrives percent-decoded: a "%0A" in a request would
    start a line of the requester's own in a text log, so control characters are escaped."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


class _Finished:
    """The response body, with a callback once the server has finished with it."""

    __slots__ = ("_body", "_done")

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done = done

    def __iter__(self) -> Any:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


# ---- helpers ------------------------------------------------------------------------------


def _json_body(model: Body[_Model], limit: int = MAX_BODY) -> _Model:
    """The request's JSON object as ``model``: 413 over 1 MiB, 415 if not JSON, 400 naming the
    field at fault (``body`` for the body itself)."""
    return _decode(model, _json_raw(limit))


def _json_raw(limit: int = MAX_BODY) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413, errors.MESSAGES[413] if limit == MAX_BODY else f"the body is larger than {limit >> 20} MiB"
        )
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "send a JSON object with 'Content-Type: application/json'")
    request.max_content_length = limit
    try:
        return request.get_data(cache=True)  # a longer chunked body stops at the limit
    except RequestEntityTooLarge:
        raise ApiError(413, f"the body is larger than {limit >> 20} MiB") from None


def _decode(model: Body[_Model], raw: bytes) -> _Model:
    try:
        return model.decode(raw)
    except FieldError as exc:
        raise field_error(exc.field, exc.problem) from None


class _UploadStream:
    """Where werkzeug's form parser writes a multipart /send's file: straight into a
    temporary file in the data folder (hashed as it arrives, refused past the limit)."""

    def __init__(self, incoming: Any) -> None:
        self.incoming = incoming

    def write(self, data: bytes) -> int:
        self.incoming.write(data)
        return len(data)

    def seek(self, *_args: Any) -> int:
        return 0

    def tell(self) -> int:
        return int(self.incoming.size)

    def read(self, *_args: Any) -> bytes:
        return b""

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class MediaRequest(Request):
    """A request whose uploaded files go to the session's media folder, never to memory."""

    uploads: list[Any]

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> Any:
        session = _ctx().session
        incoming = session.begin_media()
        if not hasattr(self, "uploads"):
            self.uploads = []
        self.uploads.append(incoming)
        return _UploadStream(incoming)


def _idempotency_key(body: str | None) -> str | None:
    """The key from the header or the body's ``idempotency_key`` (checked already)."""
    header = request.headers.get("Idempotency-Key")
    if header is None:
        return body
    try:
        IDEMPOTENCY_KEY_HEADER.check(header)
    except FieldError as exc:
        raise field_error(exc.field, exc.problem) from None
    if body is not None and header != body:
        raise field_error("idempotency_key", "differs from the Idempotency-Key header")
    return header


def _state_body(state: Any) -> dict[str, Any]:
    body = state.to_dict()
    body["description"] = state.describe()
    return body


def _session_error(status: int, error: str, message: str, state: Any, **headers: str) -> ApiError:
    return ApiError(
        status,
        message,
        error=error,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
        state=state.status.value,
        reason=state.reason,
    )


# ---- views --------------------------------------------------------------------------------

_ROUTES: list[tuple[str, str, Callable[..., Any]]] = []


def _route(method: str, rule: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        _ROUTES.append((rule, method, view))
        return view

    return register


_HEALTH = {
    s: f'{{"status":"ok","state":"{s.value}"}}\n'.encode() for s in Status
}  # liveness probes are frequent


@_route("GET", "/health")
def health() -> Response:
    """Liveness: 200 while every core thread runs (the state may be anything); 503 once one
    has died, so that Docker or Kubernetes restarts the process."""
    session = _ctx().session
    if session.dead_threads:
        body = {
            "status": "failed",
            "state": session.state.status.value,
            "reason": "a core thread died: "
            + "; ".join(f"{name}: {why}" for name, why in session.dead_threads.items()),
        }
        return Response(json.dumps(body) + "\n", status=503, mimetype="application/json")
    return Response(_HEALTH[session.state.status], mimetype="application/json")


@_route("GET", "/ready")
def ready() -> tuple[Response, int]:
    """Readiness: 200 only while connected, the store takes writes and every core thread runs."""
    session = _ctx().session
    state = session.state
    storage = session.storage
    body: dict[str, Any] = {"ready": False, "state": state.status.value, "description": state.describe()}
    headers = {"Cache-Control": "no-store"}
    if session.dead_threads:
        body["reason"] = "a core thread died; restart wadesk"
    elif not storage.available:
        body["reason"] = f"storage_unavailable: {storage.reason}"
        body["storage"] = storage.kind
        headers["Retry-After"] = str(storage.retry_after)
    elif state.status is Status.CONNECTED:
        body["ready"] = True
    else:
        body["reason"] = state.describe()
    response = jsonify(body)
    response.headers.update(headers)
    return response, 200 if body["ready"] else 503


@_route("GET", "/status")
def status() -> Response:
    ctx = _ctx()
    session = ctx.session
    body = _state_body(session.state)
    body.update(
        outbox_depth=session.outbox_depth(),
        storage=session.storage.to_dict(),
        healthy=not session.dead_threads,
        webhook_backlog=ctx.webhooks.total_backlog() if ctx.webhooks is not None else 0,
        reconnects=session.reconnects,
        version=ctx.version,
        uptime=round(time.time() - session.started_at, 3),
    )
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@_route("GET", "/qr")
def qr_code() -> Response:
    """The QR code in the media type ``?format=`` names (png by default)."""
    fmt = request.args.get("format", DEFAULT_QR_FORMAT).lower()
    if fmt not in QR_FORMATS:
        raise field_error("format", "must be one of " + ", ".join(QR_FORMATS))
    return _qr(fmt)


# one operation per format, each with one media type (what generated clients need)
@_route("GET", "/qr/png")
def qr_png() -> Response:
    return _qr("png")


@_route("GET", "/qr/svg")
def qr_svg() -> Response:
    return _qr("svg")


@_route("GET", "/qr/text")
def qr_text() -> Response:
    return _qr("text")


@_route("GET", "/qr/json")
def qr_json() -> Response:
    return _qr("json")


def _qr(fmt: str) -> Response:
    session = _ctx().session
    state = session.state
    if state.status is Status.STARTING:
        raise _session_error(503, "starting", "the session is starting; try again", state, Retry_After="1")
    if state.paired:
        raise _session_error(409, "already_paired", "already paired: log out first to link again", state)
    if state.status is not Status.WAITING_FOR_SCAN:
        raise _session_error(
            503, "no_qr", f"no QR code right now: {state.describe()}", state, Retry_After="5"
        )
    code = state.qr
    if code is None:
        if state.qr_expired:  # asking for one starts a new round
            session.refresh_qr()
        raise _session_error(503, "qr_pending", "a new QR code is being requested", state, Retry_After="2")
    if fmt == "png":
        response = Response(qr.png(code), mimetype="image/png")
    elif fmt == "svg":
        response = Response(qr.svg(code), mimetype="image/svg+xml")
    elif fmt == "text":
        response = Response(code, mimetype="text/plain")
    else:
        image = "data:image/png;base64," + base64.b64encode(qr.png(code)).decode("ascii")
        response = jsonify(qr=code, expires_at=state.qr_expires_at, image=image)
    response.headers["Cache-Control"] = "no-store"
    return response


@_route("POST", "/pair-code")
def pair_code() -> Response:
    phone = _json_body(PAIR_CODE).phone
    session = _ctx().session
    try:
        parse_recipient(phone)
    except RecipientError as exc:
        raise field_error("phone", str(exc)) from None
    state = session.state
    if state.status is Status.CONNECTED:
        raise _session_error(409, "already_paired", "already paired: log out first to link again", state)
    try:
        code = session.request_pairing_code(phone)
    except RecipientError as exc:
        raise field_error("phone", str(exc)) from None
    except SessionError as exc:
        state = session.state
        if state.status is Status.CONNECTED:
            raise _session_error(409, "already_paired", str(exc), state) from None
        raise _session_error(503, "unavailable", str(exc), state, Retry_After="5") from None
    return jsonify(code=code)


@_route("POST", "/send")
def send() -> tuple[Response, int]:
    """A text message (JSON), a media message with the file inline (JSON ``media``), or a
    media message as multipart/form-data (the file streamed to the data folder)."""
    session = _ctx().session
    if request.mimetype == "multipart/form-data":
        return _send_multipart(session)
    raw = _json_raw(MAX_JSON_MEDIA_BODY)
    if b'"media"' in raw:
        body = _decode(SEND_MEDIA, raw)
        key = _idempotency_key(body.idempotency_key)
        upload = body.media
        try:
            data = base64.b64decode(upload.data, validate=True)
        except (binascii.Error, ValueError):
            raise field_error("media.data", "is not valid base64") from None
        with _send_errors(file_field="media.data", caption_field="media.caption"):
            record, created = session.send_media(
                body.to,
                data,
                kind=str(upload.kind) if upload.kind else None,
                mimetype=upload.mimetype,
                filename=_base_name(upload.filename),
                caption=upload.caption,
                idempotency_key=key,
                source="api",
                mentions=tuple(body.mentions or ()),
                mention_all=bool(body.mention_all),
            )
        return _accepted(record, created)
    if len(raw) > MAX_BODY:
        raise ApiError(413, errors.MESSAGES[413])
    text_body = _decode(SEND, raw)
    key = _idempotency_key(text_body.idempotency_key)
    with _send_errors():
        record, created = session.send(
            text_body.to,
            text_body.text,
            idempotency_key=key,
            source="api",
            mentions=tuple(text_body.mentions or ()),
            mention_all=bool(text_body.mention_all),
        )
    return _accepted(record, created)


def _send_multipart(session: Session) -> tuple[Response, int]:
    req: Any = request
    try:
        files = req.files
        form = req.form
    except TooLarge as exc:
        _discard_uploads(req)
        raise ApiError(413, f"file: {exc}", field="file") from None
    except RequestEntityTooLarge:
        _discard_uploads(req)
        raise ApiError(413, "the request is larger than the media limit allows", field="file") from None
    try:
        for name in form:
            if name not in FORM_FIELDS:
                raise field_error(name, "unknown field; expected file, " + ", ".join(FORM_FIELDS))
        for name in files:
            if name != "file":
                raise field_error(name, "unknown file field; send the file as 'file'")
        parts = files.getlist("file")
        if not parts:
            raise field_error("file", "is required (a form part with a file name)")
        if len(parts) > 1:
            raise field_error("file", "give one file per message")
        values: dict[str, Any] = {}
        mentions = []
        if len(form.getlist("mentions")) > MAX_FORM_MENTIONS:
            raise field_error("mentions", f"at most {MAX_FORM_MENTIONS} people (mention_all: everyone)")
        for i, given in enumerate(form.getlist("mentions")):  # one field per person
            try:
                mentions.append(Field(f"mentions[{i}]", Recipient).check(given))
            except FieldError as exc:
                raise field_error(exc.field, exc.problem) from None
        for name, checker in FORM_FIELDS.items():
            if name == "mentions":
                continue
            items = form.getlist(name)
            if len(items) > 1:
                raise field_error(name, "is given more than once")
            value = items[0] if items else None
            if value in (None, "") and name != "to":
                continue
            if value is None:
                raise field_error(name, "is required")
            try:
                values[name] = checker.check(value)
            except FieldError as exc:
                raise field_error(exc.field, exc.problem) from None
        key = _idempotency_key(values.get("idempotency_key"))
        part = parts[0]
        declared = part.mimetype if part.mimetype and part.mimetype != "application/octet-stream" else None
        incoming = req.uploads[-1]
    except BaseException:
        _discard_uploads(req)
        raise
    with _send_errors(file_field="file", caption_field="caption"):
        record, created = session.send_media(
            values["to"],
            incoming,
            kind=str(values["kind"]) if values.get("kind") else None,
            mimetype=declared,
            filename=_base_name(values.get("filename") or part.filename),
            caption=values.get("caption"),
            idempotency_key=key,
            source="api",
            mentions=tuple(mentions),
            mention_all=values.get("mention_all") == "true",
        )
    req.uploads = []
    return _accepted(record, created)


def _discard_uploads(req: Any) -> None:
    for incoming in getattr(req, "uploads", ()):
        incoming.discard()
    req.uploads = []


def _base_name(name: str | None) -> str | None:
    """The last part of a file name a client gave (no folders), or None."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(c for c in base if c.isprintable())
    return base[:255] or None


class _send_errors:
    """The session's refusals of a send, as 4xx answers naming the field."""

    def __init__(self, *, file_field: str = "file", caption_field: str = "text") -> None:
        self.file_field = file_field
        self.caption_field = caption_field

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, _tb: Any) -> Literal[False]:
        if exc is None:
            return False
        if isinstance(exc, RecipientError):
            field, _, problem = str(exc).partition(": ")
            if field.startswith("mentions[") and problem:
                raise field_error(field, problem) from None
            raise field_error("to", str(exc)) from None
        if isinstance(exc, TextError):
            raise field_error(self.caption_field, str(exc)) from None
        if isinstance(exc, TooLarge):
            raise ApiError(413, f"{self.file_field}: {exc}", field=self.file_field) from None
        if isinstance(exc, MediaError):
            name = {"file": self.file_field}.get(exc.field, exc.field)
            if self.file_field.startswith("media.") and name in ("kind", "mimetype", "filename"):
                name = f"media.{name}"
            raise field_error(name, exc.reason) from None
        if isinstance(exc, GroupNotFound):
            raise ApiError(404, f"no such group: {exc}", error="group_not_found", field="to") from None
        if isinstance(exc, SessionError):  # mention_all needs the group's participants
            state = _ctx().session.state
            raise _session_error(503, "unavailable", str(exc), state, Retry_After="5") from None
        if isinstance(exc, IdempotencyConflict):
            raise ApiError(
                409,
                "this idempotency key was used within 24 h for a different message",
                error="idempotency_conflict",
                field="idempotency_key",
                id=exc.message_id,
            ) from None
        return False


def _accepted(record: Any, created: bool) -> tuple[Response, int]:
    response = jsonify(id=record.id, status="queued")
    response.headers["Location"] = f"/messages/{record.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202


def _group_body(group: Any, *, participants: bool) -> dict[str, Any]:
    account = _ctx().session.state.account
    # the account's number JID and LID: a LID group may name the account by its LID alone
    mine = {bare_jid(j) for j in (account.jid, account.lid) if j} if account else set()

    def is_me(p: Any) -> bool:
        named = {bare_jid(p.jid), bare_jid(p.lid or "")}
        if p.phone:
            named.add(f"{p.phone}@s.whatsapp.net")
        return bool(mine & named)

    body: dict[str, Any] = {
        "jid": group.jid,
        "name": group.name,
        "topic": group.topic,
        "participant_count": len(group.participants),
        "only_admins_send": group.announce,
        "we_are_admin": any(p.admin and is_me(p) for p in group.participants),
    }
    if participants:
        body["participants"] = [
            {
                "jid": p.jid,
                "lid": p.lid,
                "phone": f"+{p.phone}"
                if p.phone
                else (f"+{p.jid.partition('@')[0]}" if p.jid.endswith("@s.whatsapp.net") else None),
                "admin": p.admin,
                "superadmin": p.superadmin,
            }
            for p in group.participants
        ]
    return body


def _whatsapp_call(call: Callable[[], Any]) -> Any:
    session = _ctx().session
    try:
        return call()
    except GroupNotFound as exc:
        raise ApiError(
            404, f"no such group, or this account is not in it: {exc}", error="group_not_found"
        ) from None
    except NotGroupAdmin as exc:
        raise ApiError(403, str(exc), error="not_admin") from None
    except SessionError as exc:
        raise _session_error(503, "unavailable", str(exc), session.state, Retry_After="5") from None


@_route("GET", "/groups")
def groups() -> Response:
    found = _whatsapp_call(_ctx().session.groups)
    return jsonify(groups=[_group_body(g, participants=False) for g in found])


@_route("GET", "/groups/<group_jid>")
def group(group_jid: str) -> Response:
    session = _ctx().session
    try:
        info = _whatsapp_call(lambda: session.group(group_jid))
    except RecipientError as exc:
        raise field_error("jid", str(exc)) from None
    return jsonify(_group_body(info, participants=True))


def _group_change(call: Callable[[], Any]) -> Any:
    """A group request: 400 for a bad group JID or person, 403 not_admin, 404 group_not_found."""
    try:
        return _whatsapp_call(call)
    except RecipientError as exc:
        field, _, problem = str(exc).partition(": ")
        if not problem or not (field in ("name", "action") or field.startswith("participants")):
            field, problem = "jid", str(exc)
        raise field_error(field, problem) from None


def _results(asked: list[str], results: list[Any]) -> list[dict[str, Any]]:
    out = []
    for given, r in zip(asked, results, strict=False):
        jid = r.jid
        phone = r.phone or (jid.partition("@")[0] if jid.endswith("@s.whatsapp.net") else None)
        out.append(
            {
                "participant": given,
                "jid": jid,
                "lid": r.lid or (jid if jid.endswith("@lid") else None),
                "phone": f"+{phone}" if phone else None,
                "ok": r.reason is None,
                "reason": r.reason,
                "code": r.code,
            }
        )
    return out


def _distinct(people: list[str]) -> list[str]:
    """The people as given, each JID once (the session asks WhatsApp once per person)."""
    seen: set[str] = set()
    out = []
    for p in people:
        try:
            jid = parse_recipient(p).jid
        except RecipientError:
            return people  # the session names the bad one
        if jid not in seen:
            seen.add(jid)
            out.append(p)
    return out


@_route("POST", "/groups")
def create_group() -> tuple[Response, int]:
    body = _json_body(CREATE_GROUP)
    session = _ctx().session
    asked = _distinct(body.participants)
    info, results = _group_change(lambda: session.create_group(body.name, body.participants))
    out = _group_body(info, participants=True)
    out["results"] = _results(asked, results)
    response = jsonify(out)
    response.headers["Location"] = f"/groups/{info.jid}"
    return response, 201


_REFUSAL_STATUS = {"group_full": 409, "already_participant": 409}


@_route("POST", "/groups/<group_jid>/participants")
def group_participants(group_jid: str) -> Response:
    body = _json_body(PARTICIPANTS)
    session = _ctx().session
    asked = _distinct(body.participants)
    results = _group_change(lambda: session.change_participants(group_jid, body.action, body.participants))
    listed = _results(asked, results)
    if listed and not any(r["ok"] for r in listed):
        reasons = {r["reason"] for r in listed}
        reason = reasons.pop() if len(reasons) == 1 else "participants_refused"
        status = _REFUSAL_STATUS.get(reason, 422)
        names = ", ".join(f"{r['participant']} ({r['reason']})" for r in listed[:5])
        raise ApiError(status, f"WhatsApp made no change: {names}", error=reason, results=listed)
    return jsonify(group=group_jid, action=body.action, results=listed)


@_route("POST", "/groups/<group_jid>/leave")
def leave_group(group_jid: str) -> Response:
    session = _ctx().session
    _group_change(lambda: session.leave_group(group_jid))
    return jsonify(group=group_jid, status="left")


@_route("GET", "/groups/<group_jid>/invite-link")
def invite_link(group_jid: str) -> Response:
    session = _ctx().session
    link = _group_change(lambda: session.invite_link(group_jid))
    return jsonify(group=group_jid, link=link)


@_route("POST", "/groups/<group_jid>/invite-link/revoke")
def revoke_invite_link(group_jid: str) -> Response:
    """Revoke the group's invite link: the old one stops working; returns the new one."""
    session = _ctx().session
    link = _group_change(lambda: session.invite_link(group_jid, revoke=True))
    return jsonify(group=group_jid, link=link)


@_route("GET", "/contacts/check")
def contacts_check() -> Response:
    phones = request.args.getlist("phone")
    if not phones:
        raise field_error("phone", "is required: ?phone=+49…&phone=…")
    if len(phones) > MAX_CHECK:
        raise field_error("phone", f"at most {MAX_CHECK} numbers at once")
    session = _ctx().session
    try:
        results = _whatsapp_call(lambda: session.check_numbers(phones))
    except RecipientError as exc:
        raise field_error("phone", str(exc)) from None
    return jsonify(results=results)


@_route("GET", "/contacts")
def contacts() -> Response:
    limit = _int_arg("limit", DEFAULT_PAGE, MIN_PAGE, MAX_PAGE)
    offset = _cursor_arg() or 0
    found = _ctx().session.contacts(limit=limit, offset=offset)
    next_cursor = str(offset + limit) if len(found) == limit else None
    return jsonify(contacts=[c.to_dict() for c in found], next_cursor=next_cursor)


@_route("GET", "/media/<media_id>")
def media_file(media_id: str) -> Response:
    """A stored media file (sent or received), with its type, its name and Range support."""
    session = _ctx().session
    media = session.media(media_id)
    if media is None:
        raise ApiError(404, "no media with this id", error="not_found")
    path = session.media_path(media)
    if path is None:
        if media.state == MEDIA_PENDING:
            raise ApiError(
                503,
                "the file is not downloaded yet; try again",
                error="media_pending",
                headers={"Retry-After": "5"},
                state=media.state,
            )
        raise ApiError(
            410,
            f"the file is not available: {media.reason or media.state}",
            error="media_unavailable",
            state=media.state,
            reason=media.reason,
        )
    response = send_file(
        path,
        mimetype=media.mimetype,
        download_name=media.filename or f"{media.id}{_extension(media.mimetype)}",
        conditional=True,
        etag=media.sha256,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _extension(mimetype: str) -> str:
    import mimetypes

    return mimetypes.guess_extension(mimetype.split(";")[0].strip()) or ""


@_route("GET", "/messages/<message_id>")
def message(message_id: str) -> Response:
    record = _ctx().session.message(message_id)
    if record is None:
        raise ApiError(404, "no message with this id", error="not_found")
    return jsonify(record.to_dict())


@_route("GET", "/messages")
def messages() -> Response:
    args = request.args
    limit = _int_arg("limit", DEFAULT_PAGE, MIN_PAGE, MAX_PAGE)
    before = _cursor_arg()
    direction = args.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise field_error("direction", "must be " + " or ".join(f"'{d}'" for d in DIRECTIONS))
    session = _ctx().session
    chat = _chat_arg()
    text = args.get("q")
    if text is not None:
        if not text.strip() or len(text) > MAX_SEARCH:
            raise field_error("q", f"must be 1 to {MAX_SEARCH} characters of words to find")
        records = session.search_messages(text, chat=chat, before=before, limit=limit, direction=direction)
    elif chat is not None:
        records = list(reversed(session.conversation(chat, before=before, limit=limit, direction=direction)))
    else:
        records = session.messages(limit=limit, before=before, direction=direction)
    next_cursor = str(records[-1].seq) if len(records) == limit else None
    return jsonify(messages=[r.to_dict() for r in records], next_cursor=next_cursor)


def _chat_arg() -> str | None:
    raw = request.args.get("chat")
    if raw is None:
        return None
    try:
        return parse_recipient(raw).jid
    except RecipientError as exc:
        raise field_error("chat", str(exc)) from None


@_route("GET", "/chats")
def chats() -> Response:
    limit = _int_arg("limit", DEFAULT_PAGE, MIN_PAGE, MAX_PAGE)
    offset = _cursor_arg() or 0
    query = request.args.get("q")
    if query is not None and len(query) > MAX_SEARCH:
        raise field_error("q", f"is longer than {MAX_SEARCH} characters")
    found = _ctx().session.chats(limit=limit, offset=offset, query=query)
    next_cursor = str(offset + limit) if len(found) == limit else None
    return jsonify(chats=[c.to_dict() for c in found], next_cursor=next_cursor)


@_route("POST", "/chats/<chat_jid>/read")
def chat_read(chat_jid: str) -> Response:
    """Clear the chat's unread count; ``?receipts=true`` also tells WhatsApp (read ticks)."""
    try:
        jid = parse_recipient(chat_jid).jid
    except RecipientError as exc:
        raise field_error("jid", str(exc)) from None
    receipts = request.args.get("receipts", "false")
    if receipts not in ("true", "false"):
        raise field_error("receipts", "must be true or false")
    session = _ctx().session
    if session.chat(jid) is None:
        raise ApiError(404, "no chat with this JID", error="not_found")
    count = session.mark_chat_read(jid, send_receipts=receipts == "true")
    return jsonify(chat=jid, marked_read=count)


def _cursor_arg() -> int | None:
    """``?cursor=``, as an earlier page's ``next_cursor`` gave it (None: the first page)."""
    cursor = request.args.get("cursor")
    if cursor is None:
        return None
    if not cursor.isascii() or not cursor.isdigit() or not 0 < len(cursor) <= MAX_CURSOR_DIGITS:
        raise field_error("cursor", "is not a cursor from an earlier page")
    return int(cursor)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    # ASCII digits, and no more of them than ``high`` has before int(): int() of a few
    # thousand digits raises ValueError (Python's limit on the length of integer strings)
    digits = raw.lstrip("0") or "0"
    if (
        not raw.isascii()
        or not raw.isdigit()
        or len(digits) > len(str(high))
        or not low <= int(digits) <= high
    ):
        raise field_error(name, f"must be a whole number from {low} to {high}")
    return int(digits)


@_route("POST", "/logout")
def logout() -> Response:
    session = _ctx().session
    state = session.state
    if state.status is not Status.CONNECTED:
        raise _session_error(409, "not_connected", "not connected to WhatsApp; nothing to log out", state)
    try:
        session.logout()
    except SessionError as exc:
        raise _session_error(503, "unavailable", str(exc), session.state, Retry_After="5") from None
    return jsonify(status="logged_out", state=session.state.status.value)


def _event_names() -> frozenset[str] | None:
    raw = request.args.get("events")
    if raw is None:
        return None
    names = {n.strip() for n in raw.split(",") if n.strip()}
    unknown = sorted(names - set(EVENT_NAMES))
    if unknown or not names:
        raise field_error("events", "must be a comma-separated list of " + ", ".join(EVENT_NAMES))
    return frozenset(names)


def _event_id_arg(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_EVENT_ID or not value.isascii() or not value.isprintable():
        raise field_error(name, "is not an event id")
    return value


@_route("GET", "/events")
def events() -> Response:
    """Server-Sent Events. With ``Last-Event-ID`` (a browser sends it when it reconnects)
    or ``?after=<id>``, the events logged since that one come first."""
    ctx = _ctx()
    wanted = _event_names()
    after = _event_id_arg(request.headers.get("Last-Event-ID"), "Last-Event-ID")
    after = _event_id_arg(request.args.get("after"), "after") or after
    stream = ctx.broker.open(wanted)
    if stream is None:
        message = "shutting down" if ctx.broker.closed else "too many event streams are open"
        raise ApiError(503, message, headers={"Retry-After": "5"})
    first = None
    if wanted is None or "session.status" in wanted:
        first = Envelope.of(StateChanged(state=ctx.session.state))
    catch_up = None
    log = ctx.event_log
    if after is not None and log is not None:

        def catch_up(since: str | None, limit: int) -> Replay:
            return log.read(since, limit=limit, events=wanted)

    # waitress' check (see server.py) lets the stream end, and free its slot, soon after the
    # client closes or resets the connection instead of at the next heartbeat write
    gone = request.environ.get("waitress.client_disconnected")
    body = sse.serve(
        ctx.broker, stream, first, ctx.heartbeat, client_gone=gone, catch_up=catch_up, after=after
    )
    response = Response(body, mimetype="text/event-stream")
    # a body closed before it started (HEAD, a client gone at once) never runs its finally
    response.call_on_close(lambda: ctx.broker.release(stream))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@_route("POST", "/events/ticket")
def events_ticket() -> tuple[Response, int]:
    """A single-use ticket for ``GET /events?ticket=…``, valid 60 s: for a browser's
    EventSource, which cannot send the token in a header."""
    ticket, seconds = _ctx().tickets.issue()
    response = jsonify(ticket=ticket, expires_in=seconds, expires_at=round(time.time() + seconds, 3))
    response.headers["Cache-Control"] = "no-store"
    return response, 201


@_route("GET", "/events/history")
def events_history() -> Response:
    """The logged events after ``after`` (from the oldest kept without it), oldest first."""
    ctx = _ctx()
    wanted = _event_names()
    after = _event_id_arg(request.args.get("after"), "after")
    limit = _int_arg("limit", DEFAULT_PAGE, MIN_PAGE, MAX_EVENT_PAGE)
    if ctx.event_log is None:
        raise ApiError(404, "the event log is off (WADESK_EVENT_LOG_HOURS=0)", error="event_log_off")
    page = ctx.event_log.read(after, limit=limit, events=wanted)
    return jsonify(
        events=[e.envelope() for e in page.events],
        gap=page.gap,
        next_after=page.events[-1].id if page.events else after,
    )


@_route("GET", "/metrics")
def metrics() -> Response:
    body, content_type = _ctx().metrics.exposition(request.headers.get("Accept"))  # OpenMetrics if asked
    return Response(body, content_type=content_type, headers={"Vary": "Accept"})


@_route("GET", "/openapi.json")
def openapi() -> Response:
    return jsonify(_ctx().openapi())
