"""`/leads …` read into requests: every word of DESIGN §3, combinations, quotes, and helpful errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.leads_grammar import (
    GRAMMAR,
    MAX_TEXT,
    GrammarError,
    Help,
    ListRequest,
    StatsRequest,
    parse,
)
from core.queries.search import LeadFilter, Mode, Owner, Period


def listed(text: str) -> LeadFilter:
    request = parse(text)
    assert isinstance(request, ListRequest)
    return request.lead_filter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", LeadFilter()),
        ("all", LeadFilter()),
        ("mine", LeadFilter(owner=Owner.MINE)),
        ("UNASSIGNED", LeadFilter(owner=Owner.UNASSIGNED)),
        ("closed", LeadFilter(closed=True)),
        ("mine closed", LeadFilter(owner=Owner.MINE, closed=True)),
        ("campaign:spring", LeadFilter(campaign="spring")),
        ('campaign:"Spring Sale"', LeadFilter(campaign="Spring Sale")),
        ("campaign:“Spring Sale”", LeadFilter(campaign="Spring Sale")),  # Slack's smart quotes
        ("tag:vip tag:demo", LeadFilter(tags=("vip", "demo"))),
        ("mode:ai", LeadFilter(mode=Mode.AI)),
        ("Mode:Manual", LeadFilter(mode=Mode.MANUAL)),
        ("period:today", LeadFilter(period=Period.TODAY)),
        ("period:week", LeadFilter(period=Period.WEEK)),
        ("period:month", LeadFilter(period=Period.MONTH)),
        ("period:all", LeadFilter(period=Period.ALL)),
        ("pricing", LeadFilter(words=("pricing",))),
        ('"acme corp" demo', LeadFilter(words=("acme corp", "demo"))),
        ("AT&amp;T", LeadFilter(words=("at&t",))),  # Slack escapes & < > in a command's text
        (
            "mine tag:vip pricing",
            LeadFilter(owner=Owner.MINE, tags=("vip",), words=("pricing",)),
        ),
        (
            'closed unassigned campaign:"Spring Sale" tag:vip mode:manual period:month jane acme',
            LeadFilter(
                owner=Owner.UNASSIGNED,
                closed=True,
                campaign="Spring Sale",
                tags=("vip",),
                mode=Mode.MANUAL,
                period=Period.MONTH,
                words=("jane", "acme"),
            ),
        ),
        ("mine mine", LeadFilter(owner=Owner.MINE)),
    ],
)
def test_every_word_and_combination(text: str, expected: LeadFilter):
    assert listed(text) == expected


def test_help_and_stats():
    assert parse("help") == Help()
    assert parse(" HELP ") == Help()
    assert parse("stats") == StatsRequest(Period.WEEK)
    assert parse("stats month") == StatsRequest(Period.MONTH)
    assert parse("stats period:today") == StatsRequest(Period.TODAY)
    assert parse("stats mine all") == StatsRequest(Period.ALL, mine=True)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("mode:robot", "`mode:robot`"),
        ("period:year", "`period:year`"),
        ("foo:bar", "`foo:bar`"),
        ("tga:vip", "`tga:vip`"),
        ("tag:", "`tag:`"),
        ('campaign:"Spring Sale', '`"Spring Sale`'),
        ("mine unassigned", "`unassigned`"),
        ("campaign:a campaign:b", "`campaign:b`"),
        ("stats year", "`year`"),
        ("stats tag:vip", "`tag:vip`"),
    ],
)
def test_unknown_words_get_an_error_that_shows_the_grammar(text: str, shown: str):
    with pytest.raises(GrammarError) as error:
        parse(text)
    message = str(error.value)
    assert shown in message and GRAMMAR in message


def test_error_text_is_escaped_and_bounded():
    with pytest.raises(GrammarError) as error:
        parse("<!channel>:x")
    assert "<!channel>" not in str(error.value) and "&lt;!channel&gt;" in str(error.value)

    with pytest.raises(GrammarError) as error:
        parse("x" * (MAX_TEXT + 1))
    assert str(MAX_TEXT) in str(error.value)

    with pytest.raises(GrammarError, match="at most 8 words"):
        parse("a b c d e f g h i")
    with pytest.raises(GrammarError, match="at most 5 tags"):
        parse(" ".join(f"tag:t{i}" for i in range(6)))


@given(st.text(max_size=MAX_TEXT))
def test_any_text_is_a_request_or_a_grammar_error(text: str):
    try:
        request = parse(text)
    except GrammarError:
        return
    if isinstance(request, ListRequest):
        words = [*request.lead_filter.words, *request.lead_filter.tags, request.lead_filter.campaign or ""]
        assert not any(ord(char) < 32 or char == "\x7f" for word in words for char in word)
