"""Recipient parsing: whatever a person or a program types, turned into a WhatsApp JID.

Pure functions, no I/O. A phone number in any usual international notation
("+49 151 2345 6789", "0049 151 23456789", "4915123456789") or a user JID
("4915123456789@s.whatsapp.net") becomes "<digits>@s.whatsapp.net"; a group JID
("120363...@g.us" or the older "<creator>-<time>@g.us") passes through unchanged.
Anything else raises :class:`RecipientError` with a reason a person understands.

Digits are the ASCII digits 0-9 only: Python's ``str.isdigit()`` and ``\\d`` also accept
other scripts' digits ("١٢٠٣…", fullwidth "１２…"), which WhatsApp does not, and a group ID
passes through unchanged, so it would be queued and fail only when sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

USER_SERVER = "s.whatsapp.net"
GROUP_SERVER = "g.us"
LID_SERVER = "lid"

# Characters people put into phone numbers for readability.
_SEPARATORS = re.compile(r"[\s\-./()\u00a0\u2010-\u2015]+")
GROUP_USER_PATTERN = r"[0-9]{5,25}|[0-9]{5,20}-[0-9]{5,15}"
_GROUP_USER = re.compile(GROUP_USER_PATTERN)
_DIGITS = re.compile(r"[0-9]+")

_POSSIBLE_REASONS = {
    ValidationResult.TOO_SHORT: "is too short for a phone number",
    ValidationResult.TOO_LONG: "is too long for a phone number",
    ValidationResult.INVALID_LENGTH: "has the wrong number of digits for its country",
    ValidationResult.INVALID_COUNTRY_CODE: "does not start with a known country code",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "is too short: give the whole number with its area code",
}


class RecipientError(ValueError):
    """The recipient cannot be used; ``str(err)`` is the reason, ready to show."""


@dataclass(frozen=True)
class Recipient:
    """A parsed recipient: ``jid`` is what WhatsApp needs, ``is_group`` says which kind."""

    jid: str
    is_group: bool

    @property
    def user(self) -> str:
        return self.jid.partition("@")[0]

    @property
    def is_lid(self) -> bool:
        """A person addressed by their LID: the phone number is not known from it."""
        return self.jid.endswith("@" + LID_SERVER)

    @property
    def phone(self) -> str | None:
        """The number in E.164 form ("+4915123456789"), or None for a group or a LID."""
        return None if self.is_group or self.is_lid else "+" + self.user

    def display(self) -> str:
        """A readable form: an internationally formatted number, or the group JID."""
        if self.is_group or self.is_lid:
            return self.jid
        return format_phone(self.user)


def format_phone(digits: str) -> str:
    """'4915123456789' -> '+49 151 23456789' (falls back to '+digits')."""
    try:
        number = phonenumbers.parse("+" + digits)
    except NumberParseException:
        return "+" + digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def bare_jid(jid: str) -> str:
    """A JID without its device (``4915…:3@s.whatsapp.net`` is ``4915…@s.whatsapp.net``);
    "" for a text without a server."""
    user, _, server = jid.partition("@")
    return f"{user.partition(':')[0]}@{server}" if server else ""


def parse_recipient(value: object) -> Recipient:
    """Parse a phone number or JID into a :class:`Recipient`, or raise :class:`RecipientError`."""
    if not isinstance(value, str):
        raise RecipientError("must be a phone number or a WhatsApp ID given as text")
    text = value.strip()
    if not text:
        raise RecipientError("is empty: give a phone number with its country code, e.g. +49 151 23456789")
    if len(text) > 100:
        raise RecipientError("is too long to be a phone number or WhatsApp ID")
    if "@" in text:
        return _parse_jid(text)
    return Recipient(jid=f"{_parse_phone(text)}@{USER_SERVER}", is_group=False)


def _parse_jid(text: str) -> Recipient:
    user, _, server = text.rpartition("@")
    server = server.lower()
    if server == GROUP_SERVER:
        if not _GROUP_USER.fullmatch(user):
            raise RecipientError(f"'{text}' is not a valid group ID (expected digits@g.us)")
        return Recipient(jid=f"{user}@{GROUP_SERVER}", is_group=True)
    if server in (USER_SERVER, "c.us"):
        if not _DIGITS.fullmatch(user):
            raise RecipientError(f"'{text}' is not a valid WhatsApp user ID (expected digits@s.whatsapp.net)")
        return Recipient(jid=f"{_parse_phone('+' + user)}@{USER_SERVER}", is_group=False)
    if server == LID_SERVER:
        if not _DIGITS.fullmatch(user) or not 5 <= len(user) <= 25:
            raise RecipientError(f"'{text}' is not a valid LID (expected digits@lid)")
        return Recipient(jid=f"{user}@{LID_SERVER}", is_group=False)
    if server == "broadcast" or server == "newsletter":
        raise RecipientError(f"sending to {server} addresses is not supported")
    raise RecipientError(f"'{text}' is not a WhatsApp ID: the part after @ must be s.whatsapp.net or g.us")


def _parse_phone(text: str) -> str:
    """Return the digits (country code first) of an international phone number."""
    compact = _SEPARATORS.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif compact.startswith("0"):
        raise RecipientError(
            f"'{text}' looks like a national number: add the country code, e.g. +49 for Germany"
        )
    elif not compact.startswith("+"):
        compact = "+" + compact
    digits = compact[1:]
    if not digits:
        raise RecipientError(f"'{text}' has no digits")
    if not _DIGITS.fullmatch(digits):
        raise RecipientError(
            f"'{text}' is not a phone number: only the digits 0-9, spaces, +, -, ( ) are allowed"
        )
    try:
        number = phonenumbers.parse(compact)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            raise RecipientError(f"'{text}' does not start with a known country code") from None
        if exc.error_type == NumberParseException.TOO_LONG:
            raise RecipientError(f"'{text}' is too long for a phone number") from None
        raise RecipientError(f"'{text}' is too short for a phone number") from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != ValidationResult.IS_POSSIBLE:
        raise RecipientError(f"'{text}' {_POSSIBLE_REASONS.get(reason, 'is not a possible phone number')}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
