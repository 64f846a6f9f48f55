"""schemathesis against /openapi.json: every documented operation, fuzzed, must answer within
its documented statuses, content types and schemas, and never with a 5xx.

In process against the app factory (WSGI), with a real Session on a fake driver that stays
connected (a logout is acknowledged but does not unlink it, so that later cases still see
a connected session; /logout's own behaviour is tested in test_api_app.py). /events is left
out: it is an endless stream, tested in test_api_app.py.

All of schemathesis' checks run, with one refinement: a request can match the schema and
still be refused with 400 for what JSON Schema cannot express: a phone number that no
numbering plan allows ("to", "phone"), or an Idempotency-Key header that disagrees with the
body's idempotency_key. For such requests the 400 must name exactly one of those fields.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from headless_harness import AUTH, TOKEN, FakeWorld, make_session, start_session
from hypothesis import HealthCheck, settings
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from wadesk.api.app import create_app
from wadesk.core.session import Session

# fields whose validity the schema cannot express (a real phone number; what a file's content is)
SEMANTIC_FIELDS = {
    "/send": {
        "to",
        "mentions",  # each a real phone number or JID, as "to"
        "idempotency_key",
        "file",
        "kind",
        "mimetype",
        "media.data",
        "media.kind",
        "media.mimetype",
    },
    "/pair-code": {"phone"},
    "/contacts/check": {"phone"},
    # each a real phone number; a name's white space is Unicode's (JSON Schema's \S is narrower)
    "/groups": {"participants", "name"},
    "/messages": {"chat"},  # a real recipient
    "/events/history": {"events"},  # known event names
    "/chats/{jid}/read": {"jid"},  # each a real phone number
    "/groups/{jid}/participants": {"participants"},
}


class StaysConnected(Session):
    def logout(self) -> None:
        self._driver.logout()


_folder = tempfile.TemporaryDirectory(prefix="wadesk-schema-")
SESSION = make_session(Path(_folder.name), FakeWorld("connected"), StaysConnected)
APP: Flask = create_app(SESSION, token=TOKEN)
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, headers=AUTH).exclude(path="/events")


@pytest.fixture(scope="module", autouse=True)
def connected_session() -> Iterator[Session]:
    start_session(SESSION)
    yield SESSION
    SESSION.stop()
    SESSION.store.close()
    _folder.cleanup()


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    semantic = SEMANTIC_FIELDS.get(case.path)
    if semantic is None:
        case.call_and_validate(headers=AUTH)
        return
    response = case.call_and_validate(headers=AUTH, excluded_checks=[positive_data_acceptance])
    if case.meta is not None and case.meta.generation.mode.is_positive and response.status_code == 400:
        field = response.json().get("field")
        if (field or "").split("[")[0] not in semantic:
            raise RejectedPositiveData(
                operation=case.operation.label,
                message=f"a schema-valid request was refused for field {field!r}: {response.text}",
                status_code=400,
                allowed_statuses=["2xx", "400 naming " + " or ".join(sorted(semantic))],
            )
