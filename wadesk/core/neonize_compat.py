"""Everything wadesk does to live with neonize 0.5.2's hazards, in one place.

:mod:`.driver` translates neonize's events and runs its commands; this module holds the
workarounds it needs, each answering one behaviour of neonize (or of whatsmeow as
neonize drives it). Each says how to tell when a neonize upgrade makes it unnecessary:
the tests in ``tests/core/test_neonize_compat.py`` exercise the mechanisms, and the
end-to-end tests are what shows a workaround is still needed (remove one, run them).

1. :data:`MAPS`, a readers-writer lock: neonize's Go maps are unsynchronised.
2. :class:`StartHold`: a starting call writes those maps; nobody else may read them then.
3. :func:`hold_maps_after_qr_loop`: after the QR loop neonize's Go side writes them again.
4. :class:`Gate`: no call may overlap ``Stop``.
5. :func:`stop_when_safe` (the reaper): ``Stop`` before the event loop runs crashes later.
6. :func:`end_pairing_loop`: an unpaired client's ``connect`` never returns.
7. :func:`detach_finalizer`: neonize's finalizer calls ``Stop`` from any thread.
8. :func:`load_neonize` patches: the Go call's thread is not a daemon; the QR-loop result
   is printed instead of reported; the event loop's start is not observable.
9. :func:`library_file` and :func:`library_version`: neonize downloads its Go library when
   the file is missing or has another version, so a self-test must look first.
10. :func:`retain_callbacks`: Go keeps pointers to a client's Python callbacks after its
   call returned; they must not be freed while Go may still call them.

Nothing else in wadesk imports neonize.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import platform
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("wadesk.driver")

START_HOLD = 30.0  # longest a starting call keeps MAPS exclusively (until it shows life)
AFTER_QR_LOOP_HOLD = 0.3  # how long the maps stay exclusive after the QR loop ended
REAP_WAIT = 120.0  # how long a reaper waits for a stopped-while-connecting call
SHARED_TIMEOUT = 60.0  # longest a call waits for the maps before it fails
EXCLUSIVE_TIMEOUT = 10.0  # longest Stop waits for the maps before it is handed to a thread


class LibraryBusy(RuntimeError):
    """The maps lock could not be had in time: the call was *not* made (it is never made
    without the lock: that is what could abort the process)."""


# ---- 1. the readers-writer lock over neonize's Go maps --------------------------------------


class RWLock:
    """Readers-writer lock whose exclusive side may be released by another thread.

    Answers: neonize keeps its clients in Go maps without locks. A call writes them when
    it starts, neonize reads them when its event loop starts (after connecting, or after
    the QR loop for an unpaired device), and ``Stop`` deletes from them. A read racing a
    write aborts the whole process ("concurrent map read and map write"). So our calls
    share this lock, while ``Stop``, a call's start-up and the event loop's start-up hold
    it exclusively.

    Never proceeds without the lock: ``shared`` and ``exclusive`` raise
    :class:`LibraryBusy` when their timeout passes (the caller decides what to do
    instead). Unnecessary once neonize guards its maps (a ``sync.Mutex`` or ``sync.Map``
    around its client registry in goneonize's ``main.go``).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def acquire_shared(self, timeout: float = SHARED_TIMEOUT) -> bool:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._writer, timeout):
                return False
            self._readers += 1
            return True

    def release_shared(self) -> None:
        with self._cond:
            if self._readers <= 0:
                raise RuntimeError("release_shared without acquire_shared")
            self._readers -= 1
            self._cond.notify_all()

    def acquire_exclusive(self, timeout: float = EXCLUSIVE_TIMEOUT) -> bool:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._writer and self._readers == 0, timeout):
                return False
            self._writer = True
            return True

    def release_exclusive(self) -> None:
        with self._cond:
            if not self._writer:
                raise RuntimeError("release_exclusive without acquire_exclusive")
            self._writer = False
            self._cond.notify_all()

    @property
    def readers(self) -> int:
        with self._cond:
            return self._readers

    @property
    def exclusive_held(self) -> bool:
        with self._cond:
            return self._writer

    @contextlib.contextmanager
    def shared(self, timeout: float = SHARED_TIMEOUT) -> Iterator[None]:
        if not self.acquire_shared(timeout):
            raise LibraryBusy(f"the WhatsApp library stayed busy for {timeout:g} s")
        try:
            yield
        finally:
            self.release_shared()

    @contextlib.contextmanager
    def exclusive(self, timeout: float = EXCLUSIVE_TIMEOUT) -> Iterator[None]:
        if not self.acquire_exclusive(timeout):
            raise LibraryBusy(f"the WhatsApp library stayed busy for {timeout:g} s")
        try:
            yield
        finally:
            self.release_exclusive()


MAPS = RWLock()  # process-wide: neonize's maps are process-wide


# ---- 2. the start hold -----------------------------------------------------------------------


class StartHold:
    """Keeps :data:`MAPS` exclusive from just before a client's ``connect`` call starts
    until the call shows life (a QR code, the event loop's first event, or its return),
    or :data:`START_HOLD` seconds at most.

    Answers: the call writes neonize's maps while it starts, and another client's calls
    (or a stopping client) would read or delete concurrently. Unnecessary with (1).
    """

    def __init__(self, locks: RWLock = MAPS, limit: float = START_HOLD) -> None:
        """Raises :class:`LibraryBusy` if the maps cannot be had within
        :data:`EXCLUSIVE_TIMEOUT` (the client must then not be started)."""
        self._locks = locks
        self._lock = threading.Lock()
        if not locks.acquire_exclusive(EXCLUSIVE_TIMEOUT):
            raise LibraryBusy(f"the WhatsApp library stayed busy for {EXCLUSIVE_TIMEOUT:g} s")
        self._held = True
        self.alive = threading.Event()
        self._timer = threading.Timer(limit, self.release)
        self._timer.daemon = True
        self._timer.start()

    @property
    def held(self) -> bool:
        with self._lock:
            return self._held

    def release(self) -> None:
        """The call showed life (or the limit passed): let other calls in. Idempotent."""
        self.alive.set()
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._locks.release_exclusive()
            self._timer.cancel()


# ---- 3. the moment after the QR loop ---------------------------------------------------------


def hold_maps_after_qr_loop(locks: RWLock = MAPS, hold: float = AFTER_QR_LOOP_HOLD) -> bool:
    """Hold :data:`MAPS` exclusively for ``hold`` seconds, from a login-status callback.

    Answers: right after whatsmeow's QR loop ends (its login-status callback returns),
    neonize's Go side reads its maps to start the event loop. Returns False if the maps
    could not be had within 5 s (the moment is then unguarded, and logged). Unnecessary
    with (1)."""
    if not locks.acquire_exclusive(5.0):
        log.warning("the WhatsApp library stayed busy after the QR loop ended")
        return False
    release = threading.Timer(hold, locks.release_exclusive)
    release.daemon = True
    release.start()
    return True


# ---- 4. the gate -----------------------------------------------------------------------------


class Gate:
    """Counts calls in progress on one client; once closed, admits no new ones.

    Answers: a call into a client while its ``Stop`` runs reads a client neonize is
    deleting. ``Stop`` closes the gate and waits for the calls inside to leave first.
    Unnecessary when neonize makes ``Stop`` wait for a client's calls itself.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._closed = False

    def enter(self) -> bool:
        with self._cond:
            if self._closed:
                return False
            self._active += 1
            return True

    def leave(self) -> None:
        with self._cond:
            if self._active <= 0:
                raise RuntimeError("Gate.leave without enter")
            self._active -= 1
            self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Admit no new calls; True once none is left inside (within ``timeout``)."""
        with self._cond:
            self._closed = True
            return self._cond.wait_for(lambda: self._active == 0, timeout)

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    @property
    def active(self) -> int:
        with self._cond:
            return self._active


# ---- 5. stopping a client safely ---------------------------------------------------------------


def stop_client(client: Any, gate: Gate, timeout: float, locks: RWLock = MAPS) -> None:
    """Disconnect (in-flight calls fail fast), close the gate, then ``Stop`` with the maps
    held exclusively. If the maps cannot be had in time, ``Stop`` is finished by a thread
    that waits for them: never run unguarded, never forgotten."""
    if gate.enter():
        try:
            with contextlib.suppress(Exception), locks.shared():
                client.disconnect()
        finally:
            gate.leave()
    gate.close(timeout)
    try:
        with locks.exclusive(timeout), contextlib.suppress(Exception):
            client.stop()
    except LibraryBusy:
        log.warning("the WhatsApp library is busy; the client is stopped as soon as it is free")

        def later() -> None:
            while True:
                try:
                    with locks.exclusive(EXCLUSIVE_TIMEOUT), contextlib.suppress(Exception):
                        client.stop()
                    return
                except LibraryBusy:
                    continue

        threading.Thread(target=later, name="wadesk-stop-later", daemon=True).start()


def stop_when_safe(
    returned: threading.Event,
    loop_running: threading.Event,
    pairing: threading.Event,
    stop_now: Callable[[], None],
    end_pairing: Callable[[], None],
    wait: float = REAP_WAIT,
) -> None:
    """The reaper, run on a thread of its own for a client stopped while still connecting.

    Answers: ``Stop`` before neonize's event loop started makes that loop dereference a
    deleted client and abort the process later. So ``Stop`` waits until the call returned
    or its event loop runs; if the client turns out to be pairing, the QR loop is ended
    instead (see :func:`end_pairing_loop`). Unnecessary when neonize's ``Stop`` cancels
    a starting client safely (its event loop checks that the client still exists)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if returned.is_set() or loop_running.is_set():
            stop_now()
            return
        if pairing.is_set():
            end_pairing()
            return
        time.sleep(0.1)
    log.warning("a stopped WhatsApp client did not finish connecting within %.0f s", wait)


# ---- 6. ending an unpaired client's QR loop ----------------------------------------------------


def end_pairing_loop(proxy: str | None) -> int:
    """Shut the pairing connection down from our side (Linux); returns how many sockets.

    Answers: before a device is paired, neonize's Go side waits in whatsmeow's QR loop,
    which ``Stop`` does not end, and after that loop it waits for a device ID that never
    comes, so the call never returns. Its thread is a daemon and is left behind; shutting
    the WebSocket (a keep-alive TCP socket to port 443, or to the proxy's port) makes
    whatsmeow see the server go away and end the QR loop at once instead of calling back
    for up to 160 s. Unnecessary when ``Stop`` ends the QR loop (then an unpaired
    client's thread ends too: the e2e tests count the threads left behind).
    """
    if not sys.platform.startswith("linux"):
        return 0
    port = _proxy_port(proxy) if proxy else 443
    shut = 0
    for fd in _socket_fds():
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if (
                sock.family in (socket.AF_INET, socket.AF_INET6)
                and sock.type == socket.SOCK_STREAM
                and sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
                and sock.getpeername()[1] == port
            ):
                sock.shutdown(socket.SHUT_RDWR)
                shut += 1
        except OSError:
            pass
        finally:
            sock.close()
    return shut


def _proxy_port(url: str) -> int:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443, "socks5": 1080}.get(parts.scheme, 0)


def _socket_fds() -> list[int]:
    fds = []
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError, ValueError):
                if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                    fds.append(int(name))
    return fds


# ---- 7. the finalizer ------------------------------------------------------------------------


def detach_finalizer(client: Any) -> None:
    """Answers: neonize's garbage-collection finalizer would call ``Stop`` from any thread
    at any time (past the gate and the lock). We stop our clients ourselves. Unnecessary
    when neonize drops ``_stop_finalizer`` (then this attribute is gone: a no-op)."""
    finalizer = getattr(client, "_stop_finalizer", None)
    if finalizer is not None:
        finalizer.detach()


RETAIN_S = 600.0  # how long a returned client's callbacks are kept from being freed
_retained: list[tuple[float, Any]] = []
_retained_lock = threading.Lock()


def retain_callbacks(client: Any, now: float | None = None, keep: float = RETAIN_S) -> int:
    """Keep the ctypes callbacks of a client whose ``connect`` returned alive for ``keep``
    seconds more; returns how many clients' callbacks are kept now.

    Answers: neonize hands Go C pointers to ctypes callbacks (the event, QR, login and log
    functions) and keeps the Python objects only on the client (``_connect_refs``). Once the
    client is dropped, Python frees them, while goroutines of the stopped client (whatsmeow's
    reconnect and handler loops, its logger) may still call a pointer: a jump into freed
    memory, which kills the process at a random moment later. Ten minutes is far longer than
    any of those loops outlives ``Stop``; the cost is a few kilobytes per client started.
    Unnecessary when neonize keeps the callbacks until Go can no longer call them."""
    now = time.monotonic() if now is None else now
    refs = getattr(client, "_connect_refs", None)
    with _retained_lock:
        _retained[:] = [(until, kept) for until, kept in _retained if until > now]
        if refs is not None:
            _retained.append((now + keep, refs))
        return len(_retained)


def watch_event_loop(client: Any, on_start: Callable[[], None]) -> None:
    """Call ``on_start`` when neonize's event loop delivers its first event (code 0, the
    account info). Answers: neonize offers no way to tell that its event loop runs, and
    ``Stop`` is safe only from then on (see :func:`stop_when_safe`)."""
    execute = client.event.execute

    def execute_and_watch(uuid: Any, binary: Any, size: Any, code: int) -> Any:
        if code == 0:
            on_start()
        return execute(uuid, binary, size, code)

    client.event.execute = execute_and_watch


# ---- 8. loading neonize ----------------------------------------------------------------------

_neonize: dict[str, Any] = {}
_load_lock = threading.Lock()


class DaemonThread(threading.Thread):
    """Answers: neonize starts its Go call on a non-daemon thread; one that can never be
    joined (see :func:`end_pairing_loop`) would keep the interpreter from exiting.
    Unnecessary when unpaired calls return after ``Stop``."""

    def __init__(self, *args: Any, daemon: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, daemon=True, **kwargs)


def load_neonize() -> dict[str, Any]:
    """Import neonize (this loads its Go library) once, and return what the driver uses.

    neonize configures the root logger at import unless it already has handlers, and
    warns about ffmpeg (only needed for media) on every connect: both are kept quiet.
    The client class reports whatsmeow's QR-loop result (``on_login_status``) instead of
    printing it."""
    with _load_lock:
        if _neonize:
            return _neonize
        root = logging.getLogger()
        added = None
        if not root.handlers:
            added = logging.NullHandler()
            root.addHandler(added)
        try:
            import neonize.client as nclient
            from neonize import events as nevents
            from neonize._binder import ProxySettings
            from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
        finally:
            if added is not None:
                root.removeHandler(added)
        logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)
        nclient.Thread = DaemonThread

        class Client(nclient.NewClient):
            """NewClient that reports whatsmeow's QR-loop result instead of printing it."""

            on_login_status: Callable[[str], None] | None = None

            def _NewClient__onLoginStatus(self, uuid: Any, status: Any) -> None:
                with contextlib.suppress(Exception):
                    text = ctypes.string_at(status).decode("utf-8", "replace")
                    if self.on_login_status is not None:
                        self.on_login_status(text)

        _neonize.update(
            client_class=Client,
            events=nevents,
            ProxySettings=ProxySettings,
            DeviceProps=DeviceProps,
            jid_class=nclient.JID,
            proto=_e2e_proto(),
            media_types=_media_types(),
            ParticipantChange=_participant_change(),
            ReceiptType=_receipt_type(),
        )
        return _neonize


def _participant_change() -> Any:
    from neonize.utils.enum import ParticipantChange

    return ParticipantChange


def _receipt_type() -> Any:
    from neonize.utils.enum import ReceiptType

    return ReceiptType


def versions() -> tuple[str, str]:
    """(neonize's version, protobuf's version), once :func:`load_neonize` has run."""
    import neonize
    from google.protobuf import __version__ as protobuf_version

    return str(neonize.__version__), str(protobuf_version)


def _e2e_proto() -> Any:
    from neonize.proto.waE2E import WAWebProtobufsE2E_pb2

    return WAWebProtobufsE2E_pb2


def _media_types() -> dict[str, Any]:
    from neonize.utils.enum import MediaType

    return {
        "image": MediaType.MediaImage,
        "sticker": MediaType.MediaImage,
        "video": MediaType.MediaVideo,
        "audio": MediaType.MediaAudio,
        "voice": MediaType.MediaAudio,
        "document": MediaType.MediaDocument,
    }


# ---- 9. the Go library, without importing neonize -----------------------------------------------


class LibraryProblem(RuntimeError):
    """neonize's Go library is missing, broken or of another version (neonize would then
    download one at import: the self-test reports it instead)."""


def package_dir() -> Path:
    spec = importlib.util.find_spec("neonize")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise LibraryProblem("the neonize package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def library_file() -> str:
    """The file name neonize looks for: the same as ``neonize.utils.platform.generated_name``
    (which cannot be imported without loading the library). A test compares the two."""
    system = platform.system().lower()
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "amd64": "amd64", "arm64": "arm64"}.get(machine, machine)
    ext = {"windows": "dll", "darwin": "dylib"}.get(system, "so")
    return f"neonize-{system}-{arch}.{ext}"


def expected_library_version(directory: Path | None = None) -> str:
    """The Go library version neonize insists on (else it downloads another one)."""
    directory = directory or package_dir()
    source = directory / "download.py"
    if source.is_file():
        found = re.search(r"__GONEONIZE_VERSION__\s*=\s*[\"']([^\"']+)", source.read_text("utf-8"))
        if found:
            return found.group(1)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neonize")
    except PackageNotFoundError:
        raise LibraryProblem(
            "cannot tell which neonize version is installed (no download.py, no package metadata)"
        ) from None


def library_version(path: Path) -> str:
    """The version the Go library reports (``GetVersion``), loading it with ctypes only."""
    try:
        lib = ctypes.CDLL(str(path))
        lib.GetVersion.restype = ctypes.c_char_p
        return str(lib.GetVersion().decode())
    except (OSError, AttributeError) as exc:
        raise LibraryProblem(f"neonize's Go library {path} does not load: {exc}") from None


def check_library() -> tuple[Path, str]:
    """(path, version) of neonize's Go library, if it is there and the version neonize
    wants; else :class:`LibraryProblem` saying what is wrong. Does not import neonize."""
    directory = package_dir()
    path = directory / library_file()
    if not path.is_file():
        raise LibraryProblem(
            f"neonize's Go library {path} is missing (neonize would try to download it): "
            "reinstall neonize, or rebuild the image or bundle"
        )
    expected = expected_library_version(directory)
    found = library_version(path)
    if found != expected:
        raise LibraryProblem(
            f"neonize's Go library {path} is version {found}, neonize {expected} needs its own "
            "(neonize would try to download it): reinstall neonize"
        )
    return path, found
