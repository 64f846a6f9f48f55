"""Runtime hook of the wadesk desktop bundle; runs before wadesk's own code.

1. libmagic (used by python-magic, which neonize imports) reads its compiled database from
a path fixed when libmagic was built (/usr/share/misc/magic.mgc, a Homebrew prefix, ...),
which need not exist on the machine that runs the bundle. The bundle carries its own copy
under ``libmagic/magic.mgc``; libmagic reads the ``MAGIC`` environment variable first.
A ``MAGIC`` set by the user wins.

2. Qt's plugin path, set without importing Qt (see below).
"""

import os
import sys

_base = getattr(sys, "_MEIPASS", os.path.dirname(os.path.abspath(sys.executable)))
_database = os.path.join(_base, "libmagic", "magic.mgc")
if os.path.isfile(_database):
    os.environ.setdefault("MAGIC", _database)

# Qt, for the desktop window. PyInstaller's own run-time hook for PySide6 imports
# PySide6.QtCore at start-up, in every run: `wadesk --headless` must not load Qt at all, so
# the spec drops that hook and this sets the same environment without importing anything.
# (PySide6 from its wheels registers its own relocating qt.conf when QtCore is imported.)
if sys.platform == "win32":
    _qt = os.path.join(sys._MEIPASS, "PySide6")
    if os.path.isdir(_qt):
        os.environ["QT_PLUGIN_PATH"] = os.path.join(_qt, "plugins")
        # QtNetwork looks for OpenSSL DLLs on PATH
        os.environ["PATH"] = sys._MEIPASS + os.pathsep + os.environ.get("PATH", "")
elif hasattr(sys, "_MEIPASS"):
    _qt = os.path.join(sys._MEIPASS, "PySide6", "Qt")
    if os.path.isdir(_qt):
        os.environ["QT_PLUGIN_PATH"] = os.path.join(_qt, "plugins")
