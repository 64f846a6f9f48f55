"""Helpers shared by the tests that start servers and processes: wait for a condition, pick a
free loopback port, talk to a running gateway."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy and return that; raise TimeoutError
    naming ``what`` (and the last result or error) after ``timeout`` seconds. A connection
    error while polling (requests' or an OSError) means "not yet"; any other exception
    propagates at once."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
        except (requests.RequestException, OSError) as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayHTTP:
    """HTTP calls to a running wadesk gateway. The class using it provides ``base`` (the URL),
    ``token`` (None: no token) and ``http`` (a requests.Session); ``token=""`` sends none."""

    def headers(self, token: str | None = None) -> dict[str, str]:
        token = self.token if token is None else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def request(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {**self.headers(token), **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 10)
        return self.http.request(method, self.base + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)
