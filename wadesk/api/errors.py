"""JSON errors everywhere: ``{"error": <code>, "message": <text>, ...}``.

``error`` is a stable machine-readable code, ``message`` a sentence for a person; 400
responses name the offending ``field``, 409/503 responses about the session carry its
``state``. Unknown routes and methods, oversized bodies and unexpected exceptions all
answer in this shape: never an HTML page, never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from ..core.session import StorageError

log = logging.getLogger("wadesk.api")

CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    502: "bad_gateway",
    503: "unavailable",
    507: "storage_full",
}

MESSAGES = {
    404: "no such endpoint; see /openapi.json",
    405: "method not allowed for this endpoint",
    413: "the request body is larger than 1 MiB",
    500: "internal error; the server log has the details",
}


class ApiError(Exception):
    """Raise in a view to answer with a JSON error."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error or CODES.get(status, "error")
        self.headers = headers or {}
        self.extra = extra


def field_error(field: str, problem: str) -> ApiError:
    """400 naming the field: ``{"error": "invalid_request", "field": "to", "message": "to: ..."}``."""
    return ApiError(400, f"{field}: {problem}", field=field)


def error_response(
    status: int,
    message: str,
    *,
    error: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {"error": error or CODES.get(status, "error"), "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    response = Response(json.dumps(body) + "\n", status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _from_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, error=exc.error, headers=exc.headers, **exc.extra)


def _from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = {}
    allowed = getattr(exc, "valid_methods", None)
    if status == 405 and allowed:
        headers["Allow"] = ", ".join(sorted(allowed))
    message = MESSAGES.get(status) or (exc.description or exc.name or "error").strip()
    return error_response(status, message, headers=headers)


def _from_storage_error(exc: StorageError) -> Response:
    """The store cannot take the request now: 507 for a full disk, else 503; never a 500.
    Nothing was changed (the failed write was rolled back)."""
    status = 507 if exc.kind == "full" else 503
    log.warning("storage unavailable (%s): %s", exc.kind, exc.detail, extra={"storage": exc.kind})
    return error_response(
        status,
        "the message store cannot be written right now "
        + ("(the disk is full)" if exc.kind == "full" else f"({exc.kind})")
        + "; nothing was stored: try again later",
        error="storage_full" if exc.kind == "full" else "storage_unavailable",
        headers={"Retry-After": str(exc.retry_after)},
        storage=exc.kind,
    )


def _from_exception(exc: Exception) -> Response:
    log.error("request failed: %s", type(exc).__name__, exc_info=exc)
    return error_response(500, MESSAGES[500])


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, _from_api_error)
    app.register_error_handler(StorageError, _from_storage_error)
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(Exception, _from_exception)
