"""How each session state is shown: tone (colour), title and detail text, and the action offered.

Pure functions of a :class:`~wadesk.core.events.SessionState` and the clock, so every state
can be checked without a window. Colour always comes with text: the tone only picks colours.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import StrEnum

from ..core.events import SessionState, Status
from ..core.recipients import format_phone


class Tone(StrEnum):
    NEUTRAL = "neutral"
    INFO = "info"
    OK = "ok"
    WARN = "warn"
    ERROR = "error"


class Action(StrEnum):
    NONE = ""
    TRY_AGAIN = "Try again"
    RECONNECT_NOW = "Reconnect now"
    NEW_CODE = "Get a new code"


@dataclass(frozen=True)
class StatusView:
    tone: Tone
    title: str
    detail: str = ""
    action: Action = Action.NONE

    @property
    def text(self) -> str:
        """Title and detail in one line (tooltips, the tray, accessibility)."""
        return f"{self.title}: {self.detail}" if self.detail else self.title


def seconds_left(deadline: float | None, now: float | None = None) -> int:
    """Whole seconds until ``deadline`` (rounded up, never negative)."""
    if deadline is None:
        return 0
    now = time.time() if now is None else now
    return max(0, math.ceil(deadline - now - 1e-6))


def sentence(reason: str, subject: str) -> str:
    """A checker's reason as a sentence: ('is not a phone number', 'Recipient') ->
    'Recipient is not a phone number'; a reason that names its subject is only capitalised."""
    if reason.startswith(("is ", "must ")):
        reason = f"{subject} {reason}"
    return reason[:1].upper() + reason[1:]


def account_text(state: SessionState) -> str:
    account = state.account
    if account is None:
        return ""
    phone = format_phone(account.phone.lstrip("+")) if account.phone else account.jid
    return f"{phone} ({account.push_name})" if account.push_name else phone


def qr_expired(state: SessionState) -> bool:
    """Waiting for a scan, but the codes ran out: a new one must be asked for."""
    return state.qr_expired


def describe(state: SessionState, now: float | None = None) -> StatusView:
    now = time.time() if now is None else now
    status = state.status
    if status is Status.STARTING:
        return StatusView(Tone.NEUTRAL, "Starting", "Connecting to WhatsApp…")
    if status is Status.WAITING_FOR_SCAN:
        if state.qr is not None:
            return StatusView(
                Tone.INFO, "Scan the QR code", "Link this computer from WhatsApp on your phone."
            )
        if qr_expired(state):
            return StatusView(
                Tone.WARN,
                "The QR code expired",
                "Ask for a new code when you are ready to scan.",
                Action.NEW_CODE,
            )
        return StatusView(Tone.NEUTRAL, "Getting a QR code", "Asking WhatsApp for a code to scan…")
    if status is Status.CONNECTED:
        who = account_text(state)
        return StatusView(Tone.OK, f"Connected as {who}" if who else "Connected")
    if status is Status.RECONNECTING:
        wait = seconds_left(state.next_try_at, now)
        when = f"next try in {wait} s" if wait > 0 else "trying now"
        return StatusView(
            Tone.WARN,
            f"Reconnecting (attempt {state.attempt}, {when})",
            state.reason or "",
            Action.RECONNECT_NOW if wait > 0 else Action.NONE,
        )
    if status is Status.LOGGED_OUT:
        return StatusView(Tone.NEUTRAL, "Logged out", state.reason or "")
    if status is Status.FAILED:
        return StatusView(Tone.ERROR, "Failed", state.reason or "unknown error", Action.TRY_AGAIN)
    return StatusView(Tone.NEUTRAL, str(status))


def needs_ticking(state: SessionState) -> bool:
    """Whether the view changes with time alone (a countdown is on screen)."""
    if state.status is Status.RECONNECTING:
        return state.next_try_at is not None
    return state.status is Status.WAITING_FOR_SCAN and state.qr_expires_at is not None
