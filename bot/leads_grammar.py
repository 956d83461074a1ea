"""What `/leads …` means (DESIGN §3): the command's text read into a typed request, or an error that
says which word was not understood and shows the grammar.

    /leads [mine|all|unassigned] [closed] [campaign:NAME] [tag:NAME]… [mode:ai|manual]
           [period:today|week|month|all] [free text…]
    /leads stats [mine] [today|week|month|all]
    /leads help

Words combine in any order; a value with spaces is quoted (`campaign:"Spring Sale"`, `"acme corp"`).
`closed` combines with an owner (`/leads mine closed`); several tags must all be on a conversation.
Any other `word:value` is an error, not a search, so a typo (`tga:vip`) is pointed out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TypeVar

from bot.mrkdwn import escape_clipped, unescape
from core.queries.search import LeadFilter, Mode, Owner, Period

MAX_TEXT = 300  # characters as Slack sends them: the query rides in a button's value (at most 2000)
MAX_WORDS = 8
MAX_TAGS = 5

GRAMMAR = (
    "*/leads* lists the lead conversations of the channels you are in, newest activity first.\n"
    "• `/leads` — open and pending conversations (same as `/leads all`)\n"
    "• `/leads mine` · `/leads unassigned` · `/leads closed` (combines: `/leads mine closed`)\n"
    "• `campaign:NAME` · `tag:NAME` (several tags: all of them) · `mode:ai` or `mode:manual`\n"
    "• `period:today` · `period:week` · `period:month` · `period:all` (by last activity)\n"
    "• any other words search the lead's name, company and email and the messages, notes included\n"
    '• quote values with spaces: `campaign:"Spring Sale"`, `"acme corp"`\n'
    "• `/leads stats [mine] [today|week|month|all]` — response times, resolution, AI share, satisfaction "
    "(default: week)\n"
    "• example: `/leads mine tag:vip pricing`"
)

_OWNERS = {owner.value: owner for owner in Owner}
_PERIODS = {period.value for period in Period}
_E = TypeVar("_E", Mode, Period)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a NUL cannot even reach PostgreSQL; none means anything
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})  # Slack's smart quotes
_TOKEN = re.compile(r'(?:(?P<key>[^\s:"]+):)?(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s"]+))?')


class GrammarError(ValueError):
    """The command was not understood; the message says why and shows the grammar (mrkdwn)."""

    def __init__(self, word: str, why: str) -> None:
        shown = f"`{escape_clipped(word, 100)}`: " if word else ""
        super().__init__(f"I didn't understand {shown}{why}\n\n{GRAMMAR}")


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class StatsRequest:
    period: Period = Period.WEEK
    mine: bool = False


@dataclass(frozen=True)
class ListRequest:
    lead_filter: LeadFilter = field(default_factory=LeadFilter)


Request = Help | StatsRequest | ListRequest


def parse(command_text: str) -> Request:
    """The request `command_text` (as Slack sends it: `&`, `<`, `>` escaped) asks for."""
    if len(command_text) > MAX_TEXT:
        raise GrammarError("", f"that is longer than {MAX_TEXT} characters.")
    plain = _CONTROL.sub(" ", unescape(command_text).translate(_QUOTES)).strip()
    tokens = _tokens(plain)
    if tokens and tokens[0] == (None, "help"):
        return Help()
    if tokens and tokens[0] == (None, "stats"):
        return _stats(tokens[1:])
    return ListRequest(_list_filter(tokens))


def _tokens(plain: str) -> list[tuple[str | None, str]]:
    """(key, value) pairs; free words have no key. Keys and bare words are case-folded later."""
    if plain.count('"') % 2:
        raise GrammarError(plain[plain.rindex('"') :], "a quote is not closed.")
    tokens: list[tuple[str | None, str]] = []
    position = 0
    while position < len(plain):
        if plain[position].isspace():
            position += 1
            continue
        match = _TOKEN.match(plain, position)
        if match is None or match.end() == position:  # pragma: no cover - the pattern always moves on
            raise GrammarError(plain[position:], "that is not a word I know.")
        key, quoted, bare = match.group("key"), match.group("quoted"), match.group("bare")
        value = quoted if quoted is not None else bare or ""
        if key is None and quoted is None:
            value = value.lower()
        tokens.append((key.lower() if key is not None else None, value))
        position = match.end()
    return tokens


def _stats(tokens: list[tuple[str | None, str]]) -> StatsRequest:
    request = StatsRequest()
    for key, value in tokens:
        word = value.lower()
        if key in (None, "period") and word in _PERIODS:
            request = replace(request, period=Period(word))
        elif key is None and word == "mine":
            request = replace(request, mine=True)
        else:
            raise GrammarError(
                _shown(key, value), "stats takes `mine` and a period: today, week, month or all."
            )
    return request


def _list_filter(tokens: list[tuple[str | None, str]]) -> LeadFilter:
    owner: Owner | None = None
    result = LeadFilter()
    for key, value in tokens:
        shown = _shown(key, value)
        if key is None and value in _OWNERS:
            if owner is not None and owner is not _OWNERS[value]:
                raise GrammarError(shown, "choose one of `mine`, `all` and `unassigned`.")
            owner = _OWNERS[value]
        elif key is None and value == "closed":
            result = replace(result, closed=True)
        elif key is None:
            if value.strip():
                result = replace(result, words=(*result.words, value.strip()))
        elif not value.strip():
            raise GrammarError(shown, f"`{key}:` needs a value.")
        elif key == "campaign":
            if result.campaign is not None and result.campaign.lower() != value.strip().lower():
                raise GrammarError(shown, "one campaign at a time.")
            result = replace(result, campaign=value.strip())
        elif key == "tag":
            result = replace(result, tags=(*result.tags, value.strip()))
        elif key == "mode":
            result = replace(result, mode=_choice(Mode, value, shown, "`mode:` is `ai` or `manual`."))
        elif key == "period":
            period = _choice(Period, value, shown, "`period:` is `today`, `week`, `month` or `all`.")
            result = replace(result, period=period)
        else:
            raise GrammarError(shown, "the filters are `campaign:`, `tag:`, `mode:` and `period:`.")
    if len(result.words) > MAX_WORDS:
        raise GrammarError("", f"search with at most {MAX_WORDS} words.")
    if len(result.tags) > MAX_TAGS:
        raise GrammarError("", f"filter by at most {MAX_TAGS} tags.")
    return replace(result, owner=owner or Owner.ANYONE)


def _choice(kind: type[_E], value: str, shown: str, why: str) -> _E:
    try:
        return kind(value.strip().lower())
    except ValueError:
        raise GrammarError(shown, why) from None


def _shown(key: str | None, value: str) -> str:
    if key is None:
        return value
    return f'{key}:"{value}"' if " " in value else f"{key}:{value}"
