"""Variables in replies, the rating a lead's answer gives, and THREADLINE_ROUTES: pure rules."""

from __future__ import annotations

import pytest

from core.actions.satisfaction import read_rating
from core.errors import SettingsError
from core.models import Lead, Member
from core.routing import parse_routes
from core.variables import UnfilledVariable, fill, values_for

JANE = Lead(name="Jane van Doe", company="Acme", email="jane@acme.test", phone=None, title=None)
ANA = Member(slack_user_id="U1", name="Ana Lima", email="ana@example.com")


def filled(text: str) -> str:
    return fill(text, values_for(JANE, "Spring Sale", ANA))


def test_every_variable_is_filled_from_the_lead_and_the_rep():
    text = "{first_name}|{last_name}|{full_name}|{company}|{email}|{campaign}|{my_name}|{my_first_name}|{my_email}"
    assert (
        filled(text)
        == "Jane|van Doe|Jane van Doe|Acme|jane@acme.test|Spring Sale|Ana Lima|Ana|ana@example.com"
    )


def test_double_braces_are_literal_and_stray_braces_are_text():
    assert filled("{{first_name}} is {first_name}") == "{first_name} is Jane"
    assert filled('json {"a": 1} and :-} and { not a var }') == 'json {"a": 1} and :-} and { not a var }'
    assert filled("}}{{") == "}{"


@pytest.mark.parametrize(
    ("text", "name", "known"),
    [("Hi {frist_name}", "frist_name", False), ("{phone}", "phone", True), ("{title}!", "title", True)],
)
def test_an_unknown_or_empty_variable_refuses_the_whole_reply(text: str, name: str, known: bool):
    with pytest.raises(UnfilledVariable) as refused:
        filled(text)
    assert refused.value.name == name and refused.value.known is known
    assert f"{{{name}}}" in str(refused.value)


def test_a_lead_without_a_name_has_no_first_name():
    with pytest.raises(UnfilledVariable):
        fill("Hi {first_name}", values_for(Lead(phone="+1555"), None, ANA))


@pytest.mark.parametrize(
    ("text", "rating"),
    [("5", 5), (" 4 ", 4), ("3/5", 3), ("2 stars", 2), ("1!", 1), ("⭐⭐⭐", 3), ("5.", 5)],
)
def test_a_rating_is_read_from_short_answers(text: str, rating: int):
    assert read_rating(text) == rating


@pytest.mark.parametrize("text", ["6", "0", "5 but I have a question", "call me at 5", "", "10/10"])
def test_anything_else_is_not_a_rating(text: str):
    assert read_rating(text) is None


def test_routes_send_campaigns_then_channels_then_the_default():
    routes = parse_routes(
        "campaign:Spring Sale=C0SPRING, whatsapp=C0WA ,email=C0MAIL",
        default="C0LEADS",
        lead_channels={"whatsapp", "email"},
    )
    assert routes.channel_for(campaign="spring sale", lead_channel="whatsapp") == "C0SPRING"
    assert routes.channel_for(campaign="Other", lead_channel="whatsapp") == "C0WA"
    assert routes.channel_for(campaign=None, lead_channel="sandbox") == "C0LEADS"
    assert routes.all_channels() == ["C0LEADS", "C0SPRING", "C0WA", "C0MAIL"]


@pytest.mark.parametrize("text", ["whatsapp", "whatsapp=", "whatsapp=leads", "campaign:=C0ABC", "fax=C0ABC"])
def test_a_route_that_makes_no_sense_is_named(text: str):
    with pytest.raises(SettingsError, match="THREADLINE_ROUTES"):
        parse_routes(text, default="C0LEADS", lead_channels={"whatsapp"})
