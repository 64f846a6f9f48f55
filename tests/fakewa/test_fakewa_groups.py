"""Contacts, groups and LIDs of the fake WhatsApp with a bare neonize client."""

from __future__ import annotations

import pytest

from fakewa.bare_client import BareClient
from fakewa.harness import FakeWhatsApp

PEER = "15550002222"
STRANGER = "15550009999"


@pytest.mark.e2e
def test_is_on_whatsapp(fake_wa: FakeWhatsApp, paired: BareClient) -> None:
    fake_wa.peer(PEER)
    fake_wa.set_on_whatsapp("15550003333")
    fake_wa.set_on_whatsapp("15550004444", False)
    fake_wa.peer("15550004444")  # a peer that is marked unregistered stays unregistered
    answers = paired.client.is_on_whatsapp("+" + PEER, "+" + STRANGER, "+15550003333", "+15550004444")
    got = {a.Query: (a.IsIn, a.JID.User, a.JID.Server) for a in answers}
    assert got == {
        "+" + PEER: (True, PEER, "s.whatsapp.net"),
        "+" + STRANGER: (False, STRANGER, "s.whatsapp.net"),
        "+15550003333": (True, "15550003333", "s.whatsapp.net"),
        "+15550004444": (False, "15550004444", "s.whatsapp.net"),
    }
    # the lookup did not make the stranger known
    assert not paired.client.is_on_whatsapp("+" + STRANGER)[0].IsIn
