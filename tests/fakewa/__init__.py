"""A fake WhatsApp Web server for hermetic end-to-end tests with the real neonize client.

The unmodified neonize library (whatsmeow inside) pairs by QR code, sends, receives and
reconnects against it on 127.0.0.1. Start with :mod:`.harness` (:class:`~.harness.FakeWhatsApp`,
also available as the ``fake_wa`` fixture). Layers, bottom up:

* :mod:`.keys`: XEdDSA-compatible Curve25519 keys and the throwaway TLS CA
* :mod:`.transport`: WebSocket server side and WhatsApp's Noise handshake
* :mod:`.tokens`, :mod:`.codec`: binary XML, token tables read from the loaded library
* :mod:`.server`: the CONNECT proxy / server, one thread per connection
* :mod:`.media`: media encryption and the HTTPS media host (uploads, downloads)
* :mod:`.phone`, :mod:`.signal_lite`: the account's phone and fake contacts with Signal sessions
* :mod:`.bare_client`: a plain neonize client for the tests of the fake itself
* ``inject/``: standard-library start-up hook for child processes and containers

This package deliberately imports nothing on import: several modules load the neonize
library, which must only happen once the process environment is right.
"""
