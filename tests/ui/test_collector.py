"""Cyclic garbage is collected on the GUI thread, whatever thread allocates."""

from __future__ import annotations

import gc
import threading
from typing import Any

from wadesk.ui import collector
from wadesk.ui.collector import GuiCollector


class Cyclic:
    """An object in a reference cycle that records the thread that frees it."""

    def __init__(self, freed_on: list[int]) -> None:
        self.me = self
        self.freed_on = freed_on

    def __del__(self) -> None:
        self.freed_on.append(threading.get_ident())


def test_the_application_owns_the_collector(qapp: Any) -> None:
    installed = collector._installed  # the window's application() installed it
    assert installed is not None and installed.parent() is qapp
    assert collector.install(qapp) is installed
    assert not gc.isenabled()


def test_a_cycle_dropped_while_a_worker_allocates_is_freed_on_the_gui_thread(qtbot: Any) -> None:
    gui = threading.get_ident()
    freed_on: list[int] = []
    Cyclic(freed_on)  # unreachable at once, but only a collection frees it
    threshold = gc.get_threshold()[0]

    kept: list[list[object]] = []

    def allocate() -> None:  # far more container objects than generation 0's threshold
        kept.append([[] for _ in range(threshold * 20)])

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    assert freed_on == []  # the worker's allocations did not start a collection
    qtbot.waitUntil(lambda: freed_on != [], timeout=3000)  # the timer did
    assert freed_on == [gui]


def test_the_due_generation_is_collected_and_stop_gives_collection_back(qapp: Any) -> None:
    enabled = gc.isenabled()
    gc.enable()
    own = GuiCollector()
    try:
        assert not gc.isenabled()
        gc.collect()
        assert own.check() is None  # nothing allocated since: nothing due
        junk = [[] for _ in range(gc.get_threshold()[0] * 2)]
        assert own.check() == 0
        del junk
        assert own.collections[0] == 1
    finally:
        own.stop()
    assert gc.isenabled()
    if not enabled:
        gc.disable()
