"""The baseline for bench_desktop.py: a bare PySide6 window (one QWidget with a label).

Prints ``painted`` on stderr at its first paint, then idles until SIGTERM.

Usage: python bench/desktop_bare_app.py
"""

from __future__ import annotations

import signal
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget


class Window(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.painted = False
        QVBoxLayout(self).addWidget(QLabel("Hello", self))
        self.resize(960, 700)

    def paintEvent(self, event: object) -> None:
        super().paintEvent(event)  # type: ignore[arg-type]
        if not self.painted:
            self.painted = True
            print("painted", file=sys.stderr, flush=True)


if __name__ == "__main__":
    app = QApplication(sys.argv[:1])
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    timer = QTimer()  # lets Python run the signal handler
    timer.start(200)
    timer.timeout.connect(lambda: None)
    window = Window()
    window.show()
    sys.exit(app.exec())
