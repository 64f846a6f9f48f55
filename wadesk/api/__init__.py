"""The headless gateway: the HTTP API (Flask, served by waitress), signed durable webhooks
and the Server-Sent Events stream, on top of :mod:`wadesk.core`.

Nothing here imports Qt. Submodules import Flask, waitress and prometheus_client only when
they are used, so ``wadesk --headless`` answers ``/health`` quickly:

* :mod:`.app`: ``create_app(session, token=...)``, the Flask application factory;
* :mod:`.server`: ``run(config, data)``, what ``wadesk --headless`` runs;
* :mod:`.http`: ``HttpServer``, the waitress runner that serves the app, for the gateway and
  for the desktop's local API;
* :mod:`.webhooks`: the durable webhook queue and its delivery threads, plus ``sign`` and
  ``verify`` for receivers.
"""
