"""The mechanisms of wadesk.core.neonize_compat on their own (the e2e tests show they are
still needed with the real client; these show each does what its docstring says)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from wadesk.core import neonize_compat as compat


def in_thread(fn, *args):  # type: ignore[no-untyped-def]
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = fn(*args)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


# ---- the readers-writer lock -------------------------------------------------------------------


def test_readers_share_the_lock_and_a_writer_waits_for_them() -> None:
    lock = compat.RWLock()
    assert lock.acquire_shared(1) and lock.acquire_shared(1)
    assert lock.readers == 2
    assert not lock.acquire_exclusive(0.05)  # readers inside
    thread, result = in_thread(lock.acquire_exclusive, 5)
    time.sleep(0.05)
    assert "value" not in result  # still waiting
    lock.release_shared()
    lock.release_shared()
    thread.join(5)
    assert result["value"] is True and lock.exclusive_held
    assert not lock.acquire_shared(0.05)  # a writer inside: readers wait
    lock.release_exclusive()
    assert lock.acquire_shared(0.05)
    lock.release_shared()


def test_the_lock_never_proceeds_after_its_timeout() -> None:
    lock = compat.RWLock()
    lock.acquire_exclusive(1)
    ran = []
    with pytest.raises(compat.LibraryBusy), lock.shared(timeout=0.05):
        ran.append("shared")
    with pytest.raises(compat.LibraryBusy), lock.exclusive(timeout=0.05):
        ran.append("exclusive")
    assert ran == []  # neither body ran without the lock
    lock.release_exclusive()
    with lock.exclusive(timeout=0.05):
        ran.append("exclusive")
    assert ran == ["exclusive"] and not lock.exclusive_held


def test_the_exclusive_side_may_be_released_by_another_thread() -> None:
    lock = compat.RWLock()
    assert lock.acquire_exclusive(1)
    thread, result = in_thread(lock.release_exclusive)
    thread.join(5)
    assert "error" not in result and not lock.exclusive_held


def test_unbalanced_releases_fail_loudly() -> None:
    lock = compat.RWLock()
    with pytest.raises(RuntimeError):
        lock.release_shared()
    with pytest.raises(RuntimeError):
        lock.release_exclusive()


# ---- the gate ----------------------------------------------------------------------------------


def test_the_gate_waits_for_calls_inside_and_then_admits_none() -> None:
    gate = compat.Gate()
    assert gate.enter() and gate.enter()
    assert not gate.close(0.05)  # two calls inside
    assert gate.closed and not gate.enter()  # closed at once, even before they left
    thread, result = in_thread(gate.close, 5)
    gate.leave()
    time.sleep(0.05)
    assert "value" not in result
    gate.leave()
    thread.join(5)
    assert result["value"] is True and gate.active == 0
    with pytest.raises(RuntimeError):
        gate.leave()


# ---- the start hold and the moment after the QR loop ---------------------------------------------


def test_the_start_hold_keeps_the_maps_until_the_call_shows_life() -> None:
    lock = compat.RWLock()
    hold = compat.StartHold(lock, limit=30)
    assert hold.held and lock.exclusive_held and not hold.alive.is_set()
    hold.release()
    hold.release()  # idempotent: the QR code and the event loop may both show life
    assert not lock.exclusive_held and hold.alive.is_set()


def test_the_start_hold_ends_by_itself_after_its_limit() -> None:
    lock = compat.RWLock()
    hold = compat.StartHold(lock, limit=0.1)
    deadline = time.monotonic() + 5
    while lock.exclusive_held and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not lock.exclusive_held and hold.alive.is_set()


def test_a_client_is_not_started_while_the_maps_stay_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "EXCLUSIVE_TIMEOUT", 0.05)
    lock = compat.RWLock()
    lock.acquire_shared(1)
    with pytest.raises(compat.LibraryBusy):
        compat.StartHold(lock)
    lock.release_shared()


def test_after_the_qr_loop_the_maps_are_held_for_a_moment() -> None:
    lock = compat.RWLock()
    assert compat.hold_maps_after_qr_loop(lock, hold=0.2)
    assert lock.exclusive_held
    deadline = time.monotonic() + 5
    while lock.exclusive_held and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not lock.exclusive_held


# ---- stopping ----------------------------------------------------------------------------------


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.stopped = threading.Event()

    def disconnect(self) -> None:
        self.calls.append("disconnect")

    def stop(self) -> None:
        self.calls.append("stop")
        self.stopped.set()


def test_stop_disconnects_closes_the_gate_then_stops_with_the_maps_held() -> None:
    lock, gate, client = compat.RWLock(), compat.Gate(), FakeClient()
    seen = []
    client.stop = lambda: seen.append(lock.exclusive_held)  # type: ignore[method-assign]
    compat.stop_client(client, gate, 1.0, lock)
    assert client.calls == ["disconnect"] and seen == [True]
    assert gate.closed and not lock.exclusive_held


def test_stop_while_the_maps_stay_busy_is_finished_later_not_unguarded() -> None:
    lock, gate, client = compat.RWLock(), compat.Gate(), FakeClient()
    assert lock.acquire_shared(1)  # a call of another client that does not return
    compat.stop_client(client, gate, 0.05, lock)
    assert not client.stopped.is_set()  # not stopped without the lock
    lock.release_shared()
    assert client.stopped.wait(15)


def test_the_reaper_stops_a_client_once_its_event_loop_runs_or_ends_a_pairing_loop() -> None:
    returned, loop, pairing = threading.Event(), threading.Event(), threading.Event()
    done: list[str] = []
    thread = threading.Thread(
        target=compat.stop_when_safe,
        args=(returned, loop, pairing, lambda: done.append("stop"), lambda: done.append("end pairing")),
    )
    thread.start()
    time.sleep(0.2)
    assert done == []  # neither: Stop now would crash the event loop later
    loop.set()
    thread.join(5)
    assert done == ["stop"]

    returned, loop, pairing = threading.Event(), threading.Event(), threading.Event()
    pairing.set()
    compat.stop_when_safe(
        returned, loop, pairing, lambda: done.append("stop"), lambda: done.append("end pairing")
    )
    assert done == ["stop", "end pairing"]


def test_ending_the_pairing_loop_shuts_only_keep_alive_sockets_to_the_whatsapp_port() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    keepalive = socket.create_connection(("127.0.0.1", port))
    keepalive.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    plain = socket.create_connection(("127.0.0.1", port))  # e.g. a webhook: no keep-alive
    peers = [server.accept()[0], server.accept()[0]]
    try:
        assert compat.end_pairing_loop(f"http://127.0.0.1:{port}") == 1
        keepalive.settimeout(2)
        assert keepalive.recv(1) == b""  # shut down from our side
        plain.setblocking(False)
        with pytest.raises(BlockingIOError):
            plain.recv(1)  # still open, nothing to read
    finally:
        for s in (keepalive, plain, server, *peers):
            s.close()


# ---- the library -----------------------------------------------------------------------------


def test_the_library_file_is_the_name_neonize_looks_for() -> None:
    compat.load_neonize()  # neonize's own naming can only be imported with the library
    from neonize.utils.platform import generated_name

    assert compat.library_file() == generated_name()
    path, version = compat.check_library()
    assert path.name == generated_name() and version == compat.expected_library_version()


def test_the_finalizer_is_detached() -> None:
    class Finalizer:
        detached = False

        def detach(self) -> None:
            self.detached = True

    class Client:
        _stop_finalizer = Finalizer()

    client = Client()
    compat.detach_finalizer(client)
    assert client._stop_finalizer.detached
    compat.detach_finalizer(object())  # a neonize without it: nothing to do


def test_a_returned_clients_callbacks_outlive_the_client_for_a_while() -> None:
    import gc
    import weakref

    class Callback:  # stands for a ctypes function pointer handed to Go
        pass

    class Client:
        def __init__(self) -> None:
            self._connect_refs = (Callback(), Callback())

    client = Client()
    alive = [weakref.ref(ref) for ref in client._connect_refs]
    kept = compat.retain_callbacks(client, now=1000.0, keep=60.0)
    assert kept >= 1
    del client
    gc.collect()
    assert all(ref() is not None for ref in alive)  # the client is gone, its callbacks are not
    compat.retain_callbacks(object(), now=1030.0, keep=60.0)  # a client without any: nothing kept
    assert all(ref() is not None for ref in alive)
    compat.retain_callbacks(object(), now=1061.0, keep=60.0)  # later: dropped
    gc.collect()
    assert all(ref() is None for ref in alive)
