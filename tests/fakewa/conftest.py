"""Fixtures for the tests of the fake itself: bare neonize clients against ``fake_wa``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fakewa.bare_client import BareClient
    from fakewa.harness import FakeWhatsApp


@pytest.fixture
def make_client(fake_wa: FakeWhatsApp, tmp_path: Path) -> Iterator[Callable[[], BareClient]]:
    """Start bare neonize clients against ``fake_wa``; they are stopped after the test."""
    from fakewa.bare_client import BareClient

    clients: list[BareClient] = []

    def make() -> BareClient:
        client = BareClient(fake_wa, tmp_path / f"client{len(clients)}")
        clients.append(client)
        return client.start()

    yield make
    for client in clients:
        client.stop()


@pytest.fixture
def paired(make_client: Callable[[], BareClient]) -> BareClient:
    """A client that is paired and connected."""
    client = make_client()
    client.pair()
    return client
