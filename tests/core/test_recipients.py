import pytest

from wadesk.core.recipients import Recipient, RecipientError, format_phone, parse_recipient

GERMAN = "4915123456789@s.whatsapp.net"


@pytest.mark.parametrize(
    "text",
    [
        "+49 151 2345 6789",
        "+49 151 23456789",
        "004915123456789",
        "0049 151 2345 6789",
        "4915123456789",
        "+4915123456789",
        "+49-151-2345-6789",
        "+49 (151) 2345 6789",
        "+49.151.2345.6789",
        "  +49 151 2345 6789  ",
        "+49\u00a0151\u00a023456789",
        "4915123456789@s.whatsapp.net",
        "4915123456789@S.WHATSAPP.NET",
        "4915123456789@c.us",
    ],
)
def test_the_same_german_number_in_every_usual_notation(text):
    assert parse_recipient(text) == Recipient(jid=GERMAN, is_group=False)


@pytest.mark.parametrize(
    ("text", "jid"),
    [
        ("+1 555 000 2222", "15550002222@s.whatsapp.net"),
        ("+1 (415) 555-2671", "14155552671@s.whatsapp.net"),
        ("+44 20 7946 0958", "442079460958@s.whatsapp.net"),
        ("+39 06 1234 5678", "390612345678@s.whatsapp.net"),  # Italian leading zero is kept
        ("+91 98765 43210", "919876543210@s.whatsapp.net"),
        ("+55 11 91234 5678", "5511912345678@s.whatsapp.net"),
        ("+234 803 123 4567", "2348031234567@s.whatsapp.net"),
        ("+971 50 123 4567", "971501234567@s.whatsapp.net"),
        ("0033 6 12 34 56 78", "33612345678@s.whatsapp.net"),
    ],
)
def test_numbers_from_many_countries(text, jid):
    assert parse_recipient(text).jid == jid


@pytest.mark.parametrize(
    "jid", ["120363025246125888@g.us", "491511234567-1612345678@g.us", "120363025246125888@G.US"]
)
def test_group_jids_pass_through(jid):
    parsed = parse_recipient(jid)
    assert parsed.is_group
    assert parsed.jid == jid.lower() if jid.endswith("G.US") else parsed.jid == jid
    assert parsed.phone is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("hello", "not a phone number"),
        ("+49 151 abc", "not a phone number"),
        ("0151 23456789", "add the country code"),
        ("+999 1234567", "known country code"),
        ("+49 1", "too short"),
        ("+4915123456789012345", "too long"),
        ("+1 555 000 2222 1234 5678 9", "too long"),  # phonenumbers says TOO_LONG while parsing
        ("+49 12", "too short: give the whole number with its area code"),
        ("+", "no digits"),
        ("foo@lid", "LID"),
        ("123@lid", "LID"),
        ("x@example.com", "s.whatsapp.net or g.us"),
        ("abc@s.whatsapp.net", "not a valid WhatsApp user ID"),
        ("4915123456789:3@s.whatsapp.net", "not a valid WhatsApp user ID"),
        ("12@g.us", "not a valid group ID"),
        ("abc@g.us", "not a valid group ID"),
        ("status@broadcast", "not supported"),
        ("1" * 101, "too long"),
    ],
)
def test_refused_with_a_reason(text, reason):
    with pytest.raises(RecipientError, match=reason):
        parse_recipient(text)


@pytest.mark.parametrize("value", [None, 4915123456789, ["+49"], {"to": "x"}])
def test_non_text_is_refused(value):
    with pytest.raises(RecipientError, match="as text"):
        parse_recipient(value)


def test_display_and_phone():
    parsed = parse_recipient("004915123456789")
    assert parsed.phone == "+4915123456789"
    assert parsed.display().startswith("+49 ")
    assert format_phone("15550002222") == "+1 555-000-2222"
    assert format_phone("999") == "+999"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "\u0661\u0662\u0660\u0663\u0666\u0663\u0660\u0662\u0665\u0662\u0664\u0666@g.us",
            "not a valid group ID",
        ),
        ("\uff11\uff12\uff10\uff13\uff16\uff13\uff10\uff12\uff15\uff12@g.us", "not a valid group ID"),
        ("120363\u0660\u0662\u0665\u0662\u0664\u0666-1612345678@g.us", "not a valid group ID"),
        ("120363025246125888\n@g.us", "not a valid group ID"),
        (
            "\u0664\u0669\u0661\u0665\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669@s.whatsapp.net",
            "user ID",
        ),
        ("+\u0664\u0669 \u0661\u0665\u0661 \u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669", "digits 0-9"),
        ("+\uff14\uff19 151 23456789", "digits 0-9"),
        ("+49 151 2345678\u00b2", "digits 0-9"),
    ],
)
def test_only_ascii_digits_are_digits(text, reason):
    # str.isdigit() and \d accept other scripts' digits; WhatsApp IDs are ASCII
    with pytest.raises(RecipientError, match=reason):
        parse_recipient(text)
