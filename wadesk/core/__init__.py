"""The Qt-free, Flask-free core: the WhatsApp session, its state machine and the outbox.

Front ends (the desktop window, the HTTP API) build a :class:`Session` with
:func:`open_session` and talk to it only through its methods and events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .datadir import DataDir
from .events import Account, Event, SessionState, Status
from .mediafiles import MediaFiles
from .session import Session, SessionError
from .store import Store

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "Account",
    "DataDir",
    "Event",
    "Session",
    "SessionError",
    "SessionState",
    "Status",
    "Store",
    "open_session",
]


def open_session(config: Config, data: DataDir | None = None) -> Session:
    """Prepare the data folder, open our database and build the (not yet started) session."""
    data = data or DataDir(config.data_dir).prepare()
    store = Store(data.store_db)
    data.tighten()
    data.store_opened()
    session = Session(
        store,
        data.session_db,
        device_name=config.device_name,
        proxy=config.proxy,
        send_interval=config.send_interval,
        uncertain=config.uncertain,
        check_recipients=config.check_recipients,
        media_files=MediaFiles(data.path / "media"),
        max_media_bytes=config.max_media_mb * 1024 * 1024,
        media_download=config.media_download,
        media_retention=config.media_retention_days * 86400.0,
    )
    session.on_connected = data.connected
    return session
