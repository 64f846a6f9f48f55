"""The baseline for bench_headless.py: a bare Flask app with one /health route, served by
waitress in one process with the same thread count as ``wadesk --headless``.

Usage: python bench/headless_bare_app.py PORT THREADS
"""

from __future__ import annotations

import signal
import sys

from flask import Flask, jsonify
from waitress import create_server

app = Flask(__name__)


@app.get("/health")
def health() -> object:
    return jsonify(status="ok", state="connected")


if __name__ == "__main__":
    port, threads = int(sys.argv[1]), int(sys.argv[2])
    server = create_server(app, host="127.0.0.1", port=port, threads=threads)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.run()
