"""The desktop window (PySide6).

Nothing here is imported by the core or by the headless mode. The window talks to the
core only through :class:`wadesk.core.Session` methods and events; events reach widgets
through :class:`wadesk.ui.bridge.SessionBridge`, whose Qt signals are delivered in the GUI
thread. Start it with :func:`wadesk.ui.app.run`.
"""
