"""``wadesk --headless`` and its data folder, as real processes: one owner per folder, and a
damaged or vanished database stops the start (exit 2, one line, before anything listens)
unless --reset-store moves it aside. WhatsApp is unreachable (the proxy port has nobody
listening): nothing here needs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from datafolder import DAMAGES, SAID, damage, digest, paired_session_db, snapshot, used_folder
from headless_harness import TOKEN, Headless, clean_env, env_for

from wadesk.core.datadir import DataDir

OFFLINE = {"WADESK_PROXY": "http://127.0.0.1:9"}  # nobody listens on the discard port


def run_headless(data_dir: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``wadesk --headless`` on ``data_dir`` that is expected to end by itself."""
    env = env_for(clean_env(dict(os.environ)), data_dir, WADESK_API_TOKEN=TOKEN, **OFFLINE)
    return subprocess.run(
        [sys.executable, "-m", "wadesk", "--headless", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start_with(gw: Headless, *args: str) -> Headless:
    """Start ``gw`` with extra command-line arguments and wait until it answers /health."""
    with open(gw.log_path, "ab") as log_file:
        gw.proc = subprocess.Popen(
            [sys.executable, "-m", "wadesk", "--headless", *args],
            env=gw.env,
            stdout=log_file,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
        )
    gw.wait_healthy()
    return gw


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# ---- one owner per folder --------------------------------------------------------------------


def test_a_second_gateway_on_the_folder_exits_2_and_kill_9_leaves_no_stale_lock(
    headless: Callable[..., Headless],
) -> None:
    first = headless(**OFFLINE).start()
    accepted = first.send("+1 555 000 2222", "in flight")  # WhatsApp is unreachable: it stays queued
    second = headless(**OFFLINE).start(wait=False)  # the same folder, another port
    assert second.proc is not None and second.proc.wait(15) == 2
    assert second.logs().strip().splitlines() == [
        f"wadesk: the data folder {first.data_dir} is in use by another wadesk (pid {first.pid}, headless); "
        "stop it first or use another --data-dir"
    ]
    assert first.message(accepted)["status"] == "queued"  # untouched by the second start
    first.kill()  # kill -9: the OS drops the lock with the process
    third = headless(**OFFLINE).start()
    assert third.message(accepted)["status"] == "queued"
    assert third.stop() == 0


def test_the_window_holding_the_folder_is_named(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data").open("desktop")  # as the window takes it
    try:
        result = run_headless(data.path)
    finally:
        data.close()
    assert result.returncode == 2
    assert one_line(result) == (
        f"wadesk: the data folder {data.path} is in use by another wadesk (pid {os.getpid()}, desktop); "
        "stop it first or use another --data-dir"
    )


# ---- damaged or vanished databases -----------------------------------------------------------


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_or_vanished_store_stops_the_start_with_exit_2(tmp_path: Path, how: str) -> None:
    folder = used_folder(tmp_path / "data")
    damage(folder / "wadesk.db", how)
    before = snapshot(folder)
    result = run_headless(folder)
    assert result.returncode == 2, result.stderr
    line = one_line(result)  # no traceback, no log records: it stopped before logging and listening
    assert line.startswith(f"wadesk: the database {folder / 'wadesk.db'} {SAID[how]}")
    assert "--reset-store" in line
    assert snapshot(folder) == before  # left exactly as it was


def test_a_vanished_paired_session_stops_the_start(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    DataDir(folder).prepare()
    paired_session_db(folder / "whatsapp.db")
    DataDir(folder).open("headless").close()  # a start that saw the paired device
    (folder / "whatsapp.db").unlink()
    result = run_headless(folder)
    assert result.returncode == 2
    assert one_line(result).startswith(
        f"wadesk: the database {folder / 'whatsapp.db'} is missing, but it held the link to the phone"
    )
    assert not (folder / "whatsapp.db").exists()


def test_reset_store_moves_the_damaged_store_aside_and_starts_afresh(
    headless: Callable[..., Headless],
) -> None:
    gw = headless(**OFFLINE)
    folder = used_folder(gw.data_dir)
    db = folder / "wadesk.db"
    damage(db, "overwritten")
    damaged = digest(db)
    start_with(gw, "--reset-store")
    aside = [p for p in folder.iterdir() if p.name.startswith("wadesk.db.damaged-")]
    assert len(aside) == 1 and digest(aside[0]) == damaged  # moved, not changed, not deleted
    message_id = gw.send("+1 555 000 2222", "after the reset")
    assert gw.message(message_id)["status"] == "queued"
    assert gw.stop() == 0
    notes = [r for r in gw.log_records() if r["message"].startswith("--reset-store:")]
    assert len(notes) == 1 and notes[0]["level"] == "WARNING"
    assert f"moved wadesk.db to {aside[0].name} (in {folder})" in notes[0]["message"]
    # the next start, without the flag, is a normal one on the new store
    again = headless(**OFFLINE).start()
    assert again.message(message_id)["status"] == "queued"
    assert again.stop() == 0
