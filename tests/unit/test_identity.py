"""One person, however a channel spells their address or number."""

from __future__ import annotations

import pytest

from core.identity import normal_email, normal_phone


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("15551234567", "+15551234567"),  # a WhatsApp id: the bare international digits
        ("+1 (555) 123-4567", "+15551234567"),
        ("+1.555.123.4567", "+15551234567"),
        ("0044 20 7946 0958", "+442079460958"),  # the international prefix written out
        ("+44 (0)20 7946 0958", "+442079460958"),  # the trunk 0 written after the country code
        ("123", None),
        ("", None),
        ("call me", None),
        ("+99999999999999999999", None),
        ("1" * 60, None),
        (None, None),
    ],
)
def test_phone_numbers_compare_as_e164(given: str | None, stored: str | None):
    assert normal_phone(given) == stored


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Jane@Example.COM", "jane@example.com"),
        ("  <jane@example.com> ", "jane@example.com"),
        ("STRASSE@Beispiel.de", "strasse@beispiel.de"),
        ("jane", None),
        ("jane@localhost", None),
        ("ja ne@example.com", None),
        ("@example.com", None),
        (None, None),
    ],
)
def test_addresses_compare_case_folded(given: str | None, stored: str | None):
    assert normal_email(given) == stored
