"""Fixtures for the headless gateway: in-process apps on a fake driver, the real
``wadesk --headless`` process against the fake WhatsApp server, and webhook receivers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from headless_harness import (
    SECRET,
    TOKEN,
    FakeWorld,
    Headless,
    Receiver,
    clean_env,
    env_for,
    make_session,
    pair,
    start_session,
)

from wadesk.core.session import Session

if TYPE_CHECKING:
    from fakewa.harness import FakeWhatsApp
    from flask import Flask
    from flask.testing import FlaskClient


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld("connected")


@pytest.fixture
def session(tmp_path: Path, world: FakeWorld) -> Iterator[Session]:
    """A real Session on a fake driver, started; CONNECTED unless the test changes ``world.mode`` first."""
    s = make_session(tmp_path / "data", world)
    yield s
    s.stop()


@pytest.fixture
def app(session: Session) -> Flask:
    from wadesk.api.app import create_app

    start_session(session)
    return create_app(session, token=TOKEN, sse_heartbeat=0.2)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# ---- the real process ---------------------------------------------------------------------


@pytest.fixture
def headless(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Headless]]:
    """``headless(env_base, **settings)``: a (not yet started) ``wadesk --headless`` process
    whose environment is ``env_base`` plus test settings; every one is killed at the end."""
    made: list[Headless] = []

    def factory(base: dict[str, str] | None = None, *, name: str = "data", **settings: str) -> Headless:
        data_dir = tmp_path / name
        settings.setdefault("WADESK_API_TOKEN", TOKEN)
        if settings["WADESK_API_TOKEN"] == "":
            del settings["WADESK_API_TOKEN"]
        env = env_for(base if base is not None else clean_env(dict(os.environ)), data_dir, **settings)
        gw = Headless(env, data_dir, env.get("WADESK_API_TOKEN"), tmp_path / f"{name}-{len(made)}.log")
        made.append(gw)
        return gw

    yield factory
    for gw in made:
        gw.close()
    report: Any = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for gw in made:
            print(f"---- {gw.log_path.name} ----\n{gw.logs()[-30000:]}")


@pytest.fixture
def gateway_env(fake_wa: FakeWhatsApp) -> Callable[..., dict[str, str]]:
    """The environment of a gateway that talks to the fake WhatsApp server."""

    def make(**extra: str) -> dict[str, str]:
        env = clean_env(fake_wa.child_env())
        env.update({"WADESK_PROXY": fake_wa.proxy_url, **extra})
        return env

    return make


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def hooked_gateway(
    fake_wa: FakeWhatsApp,
    headless: Callable[..., Headless],
    gateway_env: Callable[..., dict[str, str]],
    receiver: Receiver,
) -> Callable[..., Headless]:
    """``hooked_gateway(**settings)``: starts ``receiver``, then a gateway on the fake WhatsApp
    server whose webhooks go to it signed with ``SECRET``, and pairs it; returns the gateway."""

    def start(**settings: str) -> Headless:
        receiver.start()
        gw = headless(gateway_env(WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET, **settings)).start()
        pair(gw, fake_wa)
        return gw

    return start


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)  # lets fixtures see whether the test failed
    return report
