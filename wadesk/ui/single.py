"""One window per data folder: a second start asks the first to come to the front, then exits.

The first instance listens on a local socket (a Unix socket or a Windows named pipe, only
for the current user) whose name derives from the user and the data folder. A second
start connects, writes ``raise``, and ends. The first reads that line as it arrives, on a
timer of its event loop: a client that connects and says nothing never holds up the window.
(No Python slot is connected to a client socket's signals: a socket signals from its
destructor too.)
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger("wadesk.ui")

RAISE = b"raise\n"
MAX_REQUEST = 64  # bytes: a request is one short line
IDLE_S = 2.0  # a connection that sends no request in this time is closed
POLL_MS = 20


def server_name(data_dir: Path) -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or the password database
        user = "user"
    digest = hashlib.sha256(f"{user}\0{Path(data_dir).expanduser().resolve()}".encode()).hexdigest()
    return f"wadesk-{digest[:20]}"


class SingleInstance(QObject):
    raiseRequested = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._server: QLocalServer | None = None
        self._clients: list[tuple[QLocalSocket, bytearray, float]] = []  # socket, received, deadline
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._read_clients)

    def notify_running(self, timeout_ms: int = 500) -> bool:
        """If an instance is running, ask it to raise its window; True if one answered."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(timeout_ms):
            return False
        socket.write(RAISE)
        socket.flush()
        socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        if socket.state() != QLocalSocket.LocalSocketState.UnconnectedState:
            socket.waitForDisconnected(timeout_ms)
        return True

    def listen(self) -> bool:
        """Become the running instance. False if the name cannot be claimed."""
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            # a socket file left by a crashed instance: nobody answered, so it is stale
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                log.warning("single-instance socket %s unavailable: %s", self.name, server.errorString())
                return False
        server.newConnection.connect(self._accept)
        self._server = server
        return True

    def _accept(self) -> None:
        while self._server is not None and self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._clients.append((socket, bytearray(), time.monotonic() + IDLE_S))
        if self._clients and not self._poll.isActive():
            self._poll.start()

    def _read_clients(self) -> None:
        """Read what the clients sent so far (a timer in the GUI thread: never wait here)."""
        waiting = []
        for socket, received, deadline in self._clients:
            received.extend(bytes(socket.readAll().data()))
            gone = socket.state() == QLocalSocket.LocalSocketState.UnconnectedState
            if not (b"\n" in received or gone or len(received) > MAX_REQUEST or time.monotonic() > deadline):
                waiting.append((socket, received, deadline))
                continue
            if RAISE.strip() in received:
                log.info("wadesk was started again: bringing the window to the front")
                self.raiseRequested.emit()
            socket.abort()
            socket.deleteLater()
        self._clients = waiting
        if not waiting:
            self._poll.stop()

    def close(self) -> None:
        self._poll.stop()
        for socket, _received, _deadline in self._clients:
            socket.abort()
            socket.deleteLater()
        self._clients = []
        if self._server is not None:
            self._server.close()
            self._server = None
