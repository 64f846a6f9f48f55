"""Python's cyclic garbage collector runs on the GUI thread only.

Python starts a collection in whichever thread happens to allocate past the threshold: in
the window that may be a session thread, the loader or a thread neonize's Go runtime calls
back on. A collection there that frees a Qt object caught in a reference cycle (a widget and
a lambda connected to its own signal, a dialog and its slots) runs the object's C++
destructor on that thread, and Qt objects must be destroyed in the thread they live in: the
result is a crash some time later, far from its cause.

:class:`GuiCollector` turns automatic collection off and runs it from a timer in the GUI
thread instead, with the thresholds Python itself uses (generation 0 when more objects were
allocated than its threshold, the older generations when enough younger collections were
made). Objects that are not in a cycle are still freed at once by reference counting, on any
thread, as before; only cycles wait for the timer (at most :data:`INTERVAL_MS`).
"""

from __future__ import annotations

import gc
import logging

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger("wadesk.ui")

INTERVAL_MS = 500


class GuiCollector(QObject):
    """Owns the cyclic garbage collector while it exists (create it in the GUI thread)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self.collections = [0, 0, 0]  # collections made, per generation (tests)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def check(self) -> int | None:
        """Collect the generation that is due, as Python's own rule would (GUI thread); the
        generation collected, or None."""
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        if counts[0] <= thresholds[0]:
            return None
        generation = 0
        if counts[1] > thresholds[1]:
            generation = 2 if counts[2] > thresholds[2] else 1
        gc.collect(generation)
        self.collections[generation] += 1
        return generation

    def stop(self) -> None:
        """Give collection back to Python (as it was before) after one last full collection."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()


_installed: GuiCollector | None = None


def install(app: QObject) -> GuiCollector:
    """The application's collector (one per process; later calls return the same one)."""
    global _installed
    if _installed is None:
        _installed = GuiCollector(app)
        log.debug("cyclic garbage collection moved to the GUI thread")
    return _installed
