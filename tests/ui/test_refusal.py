"""The window's start on a data folder it must not use: the same one sentence as the command
line, in a dialog, and exit code 2; a window already running on the folder is still raised
(before the folder's lock is even looked at)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from datafolder import damage, snapshot, used_folder

from wadesk.config import Config
from wadesk.core.datadir import DataDir
from wadesk.ui import app as app_module
from wadesk.ui.single import SingleInstance, server_name


class FakeMessageBox:
    """Records the dialogs instead of showing them (a modal dialog would wait for a click)."""

    shown: ClassVar[list[tuple[str, str]]] = []

    @staticmethod
    def critical(parent: Any, title: str, text: str) -> None:
        FakeMessageBox.shown.append((title, text))


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    FakeMessageBox.shown = []
    monkeypatch.setattr(app_module, "QMessageBox", FakeMessageBox)
    monkeypatch.setattr(app_module.logs, "setup", lambda *a, **k: None)  # keep pytest's logging
    yield FakeMessageBox.shown


def test_a_folder_held_by_the_gateway_is_a_dialog_and_exit_2(
    qapp: Any, tmp_path: Path, dialogs: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    held = DataDir(tmp_path / "data").open("headless")  # as a running wadesk --headless holds it
    try:
        code = app_module.run(Config(data_dir=held.path), DataDir(held.path))
    finally:
        held.close()
    sentence = (
        f"the data folder {held.path} is in use by another wadesk (pid {os.getpid()}, headless); "
        "stop it first or use another --data-dir"
    )
    assert code == 2
    assert dialogs == [("wadesk", sentence[0].upper() + sentence[1:])]
    assert capsys.readouterr().err == f"wadesk: {sentence}\n"


def test_a_damaged_store_is_a_dialog_and_exit_2(
    qapp: Any, tmp_path: Path, dialogs: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = used_folder(tmp_path / "data")
    damage(folder / "wadesk.db", "one zeroed page")
    before = snapshot(folder)
    assert app_module.run(Config(data_dir=folder), DataDir(folder)) == 2
    [(title, text)] = dialogs
    assert title == "wadesk"
    assert text.startswith(f"The database {folder / 'wadesk.db'} is damaged (SQLite: ")
    assert "--reset-store" in text and "\n" not in text
    assert capsys.readouterr().err == f"wadesk: {text[0].lower()}{text[1:]}\n"
    assert snapshot(folder) == before


def test_a_running_window_is_raised_before_the_lock_is_tried(
    qapp: Any, qtbot: Any, tmp_path: Path, dialogs: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    held = DataDir(tmp_path / "data").open("desktop")  # the first window holds the folder ...
    first = SingleInstance(server_name(held.path))
    assert first.listen()  # ... and listens for a second start
    try:
        with qtbot.waitSignal(first.raiseRequested, timeout=5000):
            assert app_module.run(Config(data_dir=held.path), DataDir(held.path)) == 0
    finally:
        first.close()
        held.close()
    assert dialogs == []
    assert "already running" in capsys.readouterr().out
