"""How one person is recognised across channels: an email address and a phone number, normalised.

The same person writing by email and by WhatsApp is one lead when the addresses or the numbers match,
whatever their spelling: addresses compare case-folded, phone numbers as E.164 (`+15551234567`).
"""

from __future__ import annotations

import phonenumbers

EMAIL = "email"
PHONE = "phone"


def normal_email(address: str | None) -> str | None:
    """The address as identities store it, or None when it cannot be one."""
    if address is None:
        return None
    value = address.strip().strip("<>").strip().casefold()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value):
        return None
    return value


def normal_phone(number: str | None) -> str | None:
    """The number in E.164, or None when it is not a valid phone number.

    Channels give international numbers, with or without their `+` (a WhatsApp id is the bare
    digits); without a country to assume, a number is read as international.
    """
    if number is None:
        return None
    value = number.strip()
    digits = "".join(c for c in value if c.isdigit())
    if value.startswith("00"):  # the international prefix written out
        digits = digits[2:]
    if not digits or len(value) > 40:
        return None
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
