"""The send form: recipients checked as you type, Send enabled only for valid input."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from wadesk.core.session import MAX_TEXT
from wadesk.ui.compose import OFFLINE_NOTE, RECIPIENT_HINT, ComposeForm


@pytest.fixture
def form(qtbot: Any) -> ComposeForm:
    widget = ComposeForm()
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("0151 23456789", "looks like a national number: add the country code"),
        ("+49 12", "area code"),
        ("hello", "is not a phone number"),
        ("+999 1234567", "known country code"),
        ("abc@example.com", "is not a WhatsApp ID"),
        ("123@lid", "not a valid LID"),
        ("+1 555 000 2222 1234 5678 9", "too long"),
    ],
)
def test_invalid_recipient_keeps_send_disabled_and_says_why(
    qtbot: Any, form: ComposeForm, typed: str, reason: str
) -> None:
    qtbot.keyClicks(form.message, "hello there")
    qtbot.keyClicks(form.recipient, typed)
    assert not form.send_button.isEnabled()
    assert reason in form.recipient_status.text()
    assert form.recipient_status.objectName() == "error"
    assert form.recipient.property("invalid") is True


def test_empty_text_keeps_send_disabled_and_says_why(qtbot: Any, form: ComposeForm) -> None:
    qtbot.keyClicks(form.recipient, "+1 555 000 2222")
    assert form.recipient_status.text() == "✓ Sends to WhatsApp number +1 555-000-2222"
    assert not form.send_button.isEnabled()
    assert form.text_status.text() == "Type a message to send"
    qtbot.keyClicks(form.message, "   ")
    assert not form.send_button.isEnabled()
    assert form.text_status.text() == "Type a message to send"
    qtbot.keyClicks(form.message, "hi")
    assert form.send_button.isEnabled()
    assert form.text_status.text() == "Ctrl+Enter sends"


def test_empty_recipient_shows_the_hint_not_an_error(form: ComposeForm) -> None:
    assert form.recipient_status.text() == RECIPIENT_HINT
    assert form.recipient_status.objectName() == "hint"
    assert not form.send_button.isEnabled()


def test_too_long_text(form: ComposeForm) -> None:
    form.recipient.setText("+15550002222")
    form.message.setPlainText("x" * (MAX_TEXT + 1))
    assert not form.send_button.isEnabled()
    assert f"the limit is {MAX_TEXT}" in form.text_status.text()
    form.message.setPlainText("x" * MAX_TEXT)
    assert form.send_button.isEnabled()


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("+49 151 2345 6789", "WhatsApp number +49 1512 3456789"),
        ("004915123456789", "WhatsApp number +49 1512 3456789"),
        ("4915123456789@s.whatsapp.net", "WhatsApp number +49 1512 3456789"),
        ("120363025246125486@g.us", "group 120363025246125486@g.us"),
    ],
)
def test_valid_recipients(qtbot: Any, form: ComposeForm, typed: str, shown: str) -> None:
    qtbot.keyClicks(form.recipient, typed)
    qtbot.keyClicks(form.message, "hi")
    assert form.recipient_status.text() == f"✓ Sends to {shown}"
    assert form.send_button.isEnabled()


def test_ctrl_enter_and_click_send(qtbot: Any, form: ComposeForm) -> None:
    qtbot.keyClicks(form.recipient, "+1 555 000 2222")
    qtbot.keyClick(form.recipient, Qt.Key.Key_Return)  # Enter in the recipient moves on to the message
    assert form.message.hasFocus()
    qtbot.keyClicks(form.message, "line one")
    qtbot.keyClick(form.message, Qt.Key.Key_Return)  # a plain Enter is a new line
    qtbot.keyClicks(form.message, "line two")
    with qtbot.waitSignal(form.sendRequested) as sent:
        qtbot.keyClick(form.message, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert sent.args == ["+1 555 000 2222", "line one\nline two"]
    with qtbot.waitSignal(form.sendRequested):
        qtbot.mouseClick(form.send_button, Qt.MouseButton.LeftButton)
    form.sent("line one\nline two")
    assert form.message.toPlainText() == ""
    assert form.recipient.text() == "+1 555 000 2222"


def test_ctrl_enter_with_invalid_input_sends_nothing(qtbot: Any, form: ComposeForm) -> None:
    qtbot.keyClicks(form.recipient, "12")
    qtbot.keyClicks(form.message, "hello")
    with qtbot.assertNotEmitted(form.sendRequested):
        qtbot.keyClick(form.message, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert form.recipient.hasFocus()  # focus goes where the problem is


def test_offline_note_and_tab_order(qtbot: Any, form: ComposeForm) -> None:
    assert form.offline_note.isVisible()
    assert OFFLINE_NOTE in form.offline_note.text()
    form.set_connected(True)
    assert not form.offline_note.isVisible()
    form.recipient.setFocus()
    qtbot.keyClick(form.recipient, Qt.Key.Key_Tab)
    assert form.message.hasFocus()
    form.recipient.setText("+15550002222")
    form.message.setPlainText("x")
    qtbot.keyClick(form.message, Qt.Key.Key_Tab)  # Tab leaves the message box instead of typing a tab
    assert form.attach_button.hasFocus()
    assert form.message.toPlainText() == "x"
    qtbot.keyClick(form.attach_button, Qt.Key.Key_Tab)
    assert form.send_button.hasFocus()


def test_accessible_names(form: ComposeForm) -> None:
    assert form.recipient.accessibleName() == "Recipient"
    assert form.message.accessibleName() == "Message"
    assert form.send_button.accessibleName() == "Send message"
    assert form.to_label.buddy() is form.recipient
    assert form.message_label.buddy() is form.message


def test_message_box_grows_with_its_text(form: ComposeForm) -> None:
    small = form.message.height()
    form.message.setPlainText("\n".join(str(i) for i in range(6)))
    assert form.message.height() > small
    form.message.setPlainText("\n".join(str(i) for i in range(40)))
    tallest = form.message.height()
    form.message.setPlainText("\n".join(str(i) for i in range(80)))
    assert form.message.height() == tallest  # capped at 8 lines
    form.message.clear()
    assert form.message.height() == small


def test_nothing_is_sent_twice_while_a_message_is_being_queued(qtbot: Any, form: ComposeForm) -> None:
    form.recipient.setText("+15550002222")
    form.message.setPlainText("once")
    form.set_busy(True)
    assert not form.send_button.isEnabled()
    with qtbot.assertNotEmitted(form.sendRequested):
        form.submit()
        qtbot.keyClick(form.message, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(form.message, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(form.message, " and more")  # typing goes on meanwhile
    assert not form.send_button.isEnabled()
    form.set_busy(False)
    assert form.send_button.isEnabled()
    form.sent("once")  # what was stored; the text was edited since: it stays
    assert form.message.toPlainText() == "once and more"
    form.sent("once and more")
    assert form.message.toPlainText() == ""
