"""Internal notes: a thread message that leads with a mention or `note:` never reaches the lead.

When in doubt it is a note, so the negatives here are the few shapes that must still be sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.notes import is_note, strip_note_prefix

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # optional: the example tests still run without it
    given = None  # type: ignore[assignment]


def rich_text(*elements: dict[str, Any]) -> list[dict[str, Any]]:
    """Blocks as Slack sends them for a message typed in the composer: one section in one rich_text."""
    return [
        {
            "type": "rich_text",
            "block_id": "b1",
            "elements": [{"type": "rich_text_section", "elements": list(elements)}],
        }
    ]


def text(value: object, **style: bool) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "text", "text": value}
    if style:
        element["style"] = style
    return element


INVISIBLE = {
    "space": " ",
    "newline": "\n",
    "tab": "\t",
    "zero-width space": "\u200b",
    "zero-width non-joiner": "\u200c",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "no-break space": "\u00a0",
    "narrow no-break space": "\u202f",
    "em space": "\u2003",
    "ideographic space": "\u3000",
    "soft hyphen": "\u00ad",
    "left-to-right mark": "\u200e",
    "hangul filler": "\u3164",
    "a mix": " \u200b\u00a0\ufeff\u2060 ",
}


# --- mentions in the text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("<@U0ANA> call her tomorrow", id="user"),
        pytest.param("<@W0ANA> call her tomorrow", id="enterprise-user"),
        pytest.param("<@U0ANA|ana> call her tomorrow", id="user-with-label"),
        pytest.param("<@U0ANA>: call her tomorrow", id="user-then-colon"),
        pytest.param("*<@U0ANA>* call her tomorrow", id="bold-user"),
    ],
)
def test_a_leading_person_mention_is_a_note(message: str):
    assert is_note(message)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("<!subteam^S0SALES> who takes this?", id="bare"),
        pytest.param("<!subteam^S0SALES|@sales> who takes this?", id="with-label"),
    ],
)
def test_a_leading_user_group_mention_is_a_note(message: str):
    assert is_note(message)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("<!here> anyone?", id="here"),
        pytest.param("<!channel> anyone?", id="channel"),
        pytest.param("<!everyone> anyone?", id="everyone"),
        pytest.param("<!here|here> anyone?", id="here-with-label"),
        pytest.param("<!channel|@channel> anyone?", id="channel-with-label"),
        pytest.param("<!everyone|everyone> anyone?", id="everyone-with-label"),
    ],
)
def test_a_leading_broadcast_is_a_note(message: str):
    assert is_note(message)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("@ana can you take this?", id="unresolved-name"),
        pytest.param("@here anyone?", id="typed-here"),
        pytest.param("@channel anyone?", id="typed-channel"),
        pytest.param("＠ana can you take this?", id="full-width-at"),
    ],
)
def test_a_leading_plain_text_at_sign_is_a_note(message: str):
    assert is_note(message)


@pytest.mark.parametrize("prefix", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_a_mention_after_invisible_characters_is_still_a_note(prefix: str):
    assert is_note(prefix + "<@U0ANA> call her")
    assert is_note(prefix + "<!here> anyone?")


# --- mentions only in the blocks ------------------------------------------------------------------


@pytest.mark.parametrize(
    "element",
    [
        pytest.param({"type": "user", "user_id": "U0ANA"}, id="user"),
        pytest.param({"type": "usergroup", "usergroup_id": "S0SALES"}, id="usergroup"),
        pytest.param({"type": "broadcast", "range": "here"}, id="broadcast-here"),
        pytest.param({"type": "broadcast", "range": "channel"}, id="broadcast-channel"),
        pytest.param({"type": "broadcast", "range": "everyone"}, id="broadcast-everyone"),
    ],
)
def test_a_mention_leading_the_blocks_is_a_note_even_when_the_text_lacks_it(element: dict[str, Any]):
    assert is_note(" call her tomorrow", rich_text(element, text(" call her tomorrow")))


def test_a_mention_after_blank_and_invisible_text_in_the_blocks_is_a_note():
    blocks = rich_text(text(" \u200b\n"), text("\u00a0", bold=True), {"type": "user", "user_id": "U0ANA"})
    assert is_note("call her", blocks)


@pytest.mark.parametrize(
    "container",
    [
        pytest.param("rich_text_quote", id="quote"),
        pytest.param("rich_text_preformatted", id="preformatted"),
    ],
)
def test_a_mention_leading_a_quote_or_code_block_is_a_note(container: str):
    blocks = [
        {
            "type": "rich_text",
            "elements": [{"type": container, "elements": [{"type": "user", "user_id": "U0ANA"}]}],
        }
    ]
    assert is_note("call her", blocks)


def test_a_mention_leading_a_list_in_the_blocks_is_a_note():
    item = {"type": "rich_text_section", "elements": [{"type": "usergroup", "usergroup_id": "S0SALES"}]}
    blocks = [
        {"type": "rich_text", "elements": [{"type": "rich_text_list", "style": "bullet", "elements": [item]}]}
    ]
    assert is_note("• who takes this?", blocks)


def test_a_note_prefix_split_across_styled_text_elements_in_the_blocks_is_a_note():
    blocks = rich_text(text("No", bold=True), text("te", italic=True, strike=True), text(": call her"))
    assert is_note("call her", blocks)


def test_a_note_prefix_in_a_code_element_in_the_blocks_is_a_note():
    assert is_note("call her", rich_text(text("\u200bNOTE", code=True), text(" - call her")))


def test_a_mention_after_words_in_the_blocks_is_not_a_note():
    blocks = rich_text(text("Hello "), {"type": "user", "user_id": "U0ANA"})
    assert not is_note("Hello", blocks)


def test_a_mention_after_an_emoji_or_link_in_the_blocks_is_not_a_note():
    blocks = rich_text({"type": "emoji", "name": "wave"}, {"type": "user", "user_id": "U0ANA"})
    assert not is_note("hi", blocks)
    blocks = rich_text({"type": "link", "url": "https://acme.example"}, text(" note: x"))
    assert not is_note("see this", blocks)


# --- the word `note` ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("note: call her", id="lowercase"),
        pytest.param("Note: call her", id="capitalised"),
        pytest.param("NOTE: call her", id="uppercase"),
        pytest.param("nOtE: call her", id="mixed-case"),
        pytest.param("notes: call her", id="plural"),
        pytest.param("Notes - call her", id="plural-dash"),
        pytest.param("note : call her", id="space-before-colon"),
        pytest.param("Note - call her", id="dash"),
        pytest.param("note-call her", id="dash-without-spaces"),
        pytest.param("note – call her", id="en-dash"),
        pytest.param("note — call her", id="em-dash"),
        pytest.param("note − call her", id="minus-sign"),
        pytest.param("note：call her", id="full-width-colon"),
        pytest.param("note﹕call her", id="small-colon"),
        pytest.param("note︓call her", id="presentation-form-colon"),
        pytest.param("ＮＯＴＥ: call her", id="full-width-letters"),
        pytest.param("no\u200bte: call her", id="zero-width-space-inside-the-word"),
        pytest.param("note:\ncall her", id="newline-after"),
        pytest.param("note:", id="nothing-after"),
    ],
)
def test_a_leading_note_word_with_a_colon_or_dash_is_a_note(message: str):
    assert is_note(message)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("*Note:* call her", id="bold-around-prefix"),
        pytest.param("*note*: call her", id="bold-word"),
        pytest.param("_note:_ call her", id="italic-around-prefix"),
        pytest.param("_note_ - call her", id="italic-word-dash"),
        pytest.param("~note~: call her", id="strike-word"),
        pytest.param("`note:` call her", id="code-around-prefix"),
        pytest.param("`note`: call her", id="code-word"),
        pytest.param("_*NOTE*_ - call her", id="bold-italic-word"),
        pytest.param("*Note: call her*", id="bold-whole-message"),
        pytest.param("* note :* call her", id="spaces-inside-formatting"),
    ],
)
def test_a_note_word_in_any_slack_formatting_is_a_note(message: str):
    assert is_note(message)


@pytest.mark.parametrize("prefix", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_a_note_word_after_invisible_characters_is_still_a_note(prefix: str):
    assert is_note(prefix + "note: call her")
    assert is_note(prefix + "*Note:* call her")


# --- must be sent ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("Notebook prices are attached", id="notebook"),
        pytest.param("Noted, thanks!", id="noted"),
        pytest.param("notes are attached", id="notes-without-colon"),
        pytest.param("Note that we close at 5", id="note-without-colon"),
        pytest.param("Hello @ana", id="mention-not-leading"),
        pytest.param("Hello <@U0ANA>", id="slack-mention-not-leading"),
        pytest.param("Please note: prices change in May", id="note-not-leading"),
        pytest.param("@ 10am works for us", id="at-sign-followed-by-space"),
        pytest.param("Hi! Thanks for your message.", id="plain-reply"),
        pytest.param("", id="empty"),
    ],
)
def test_a_reply_that_does_not_lead_with_a_mention_or_note_prefix_is_sent(message: str):
    assert not is_note(message)
    assert not is_note(message, rich_text(text(message)))


# --- malformed blocks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "blocks",
    [
        pytest.param(None, id="none"),
        pytest.param("<!here>", id="a-string"),
        pytest.param(42, id="a-number"),
        pytest.param({"type": "rich_text"}, id="a-dict"),
        pytest.param([], id="empty"),
        pytest.param([None, 3, "x", ["y"]], id="non-dicts"),
        pytest.param([{"type": "rich_text", "elements": None}], id="elements-none"),
        pytest.param([{"type": "rich_text", "elements": "abc"}], id="elements-a-string"),
        pytest.param([{"type": "rich_text", "elements": [None, 1, {"type": None}]}], id="odd-elements"),
        pytest.param(rich_text(text(None), text(7), text(["note:"])), id="text-not-a-string"),
        pytest.param(rich_text({"type": 5, "user_id": "U1"}), id="type-a-number"),
        pytest.param(
            [{"type": "section", "text": {"type": "mrkdwn", "text": "<!here>"}}], id="not-rich-text"
        ),
    ],
)
def test_malformed_blocks_never_raise_and_add_no_note_verdict(blocks: object):
    assert not is_note("Thanks, see you Monday", blocks)
    assert is_note("note: call her", blocks)  # the text rule still applies


def test_deeply_nested_blocks_do_not_raise():
    node: dict[str, Any] = {"type": "user", "user_id": "U0ANA"}
    for _ in range(5000):
        node = {"type": "rich_text_section", "elements": [node]}
    assert not is_note("hi", [{"type": "rich_text", "elements": [node]}])


def test_self_containing_blocks_do_not_loop_forever():
    section: dict[str, Any] = {"type": "rich_text_section", "elements": []}
    section["elements"].append(section)
    assert not is_note("hi", [{"type": "rich_text", "elements": [section]}])


# --- strip_note_prefix ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "stripped"),
    [
        pytest.param("note: call her", "call her", id="plain"),
        pytest.param("*Note:* call her", "call her", id="bold-around-prefix"),
        pytest.param("*note*: call her", "call her", id="bold-word"),
        pytest.param("_note_ - x", "x", id="italic-word-dash"),
        pytest.param("_*NOTE*_ - call her", "call her", id="bold-italic-word"),
        pytest.param("`note:` call her", "call her", id="code"),
        pytest.param("\u200bNOTE：x", "x", id="zero-width-space-and-full-width-colon"),
        pytest.param("\u00a0 Notes — call her", "call her", id="nbsp-and-em-dash"),
        pytest.param("*Note: call her*", "call her", id="bold-whole-message"),
        pytest.param("_*Note:* call her_", "call her", id="italic-whole-message"),
        pytest.param("note: *call* her", "*call* her", id="keeps-formatting-after-the-prefix"),
        pytest.param("note:\n\u200bcall her", "call her", id="invisible-after-the-prefix"),
        pytest.param("note:", "", id="prefix-only"),
    ],
)
def test_strip_note_prefix_removes_the_prefix_and_its_formatting(message: str, stripped: str):
    assert strip_note_prefix(message) == stripped


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("<@U0ANA> note: call her", id="leading-mention-kept"),
        pytest.param("<!here> anyone?", id="broadcast-kept"),
        pytest.param("Notebook prices are attached", id="no-prefix"),
        pytest.param("  Please note: x", id="prefix-not-leading"),
        pytest.param("", id="empty"),
    ],
)
def test_strip_note_prefix_leaves_text_without_a_leading_prefix_unchanged(message: str):
    assert strip_note_prefix(message) == message


# --- properties -----------------------------------------------------------------------------------

if given is not None:
    PROPERTY = settings(max_examples=200, deadline=None, database=None)
    invisible_prefixes = st.text(alphabet=st.sampled_from(list("".join(INVISIBLE.values()))), max_size=8)
    json_like = st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=10)
        | st.sampled_from(["rich_text", "rich_text_section", "text", "user", "note:", "<!here>"]),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["type", "elements", "text", "user_id", "style", "range"]), inner, max_size=4
            )
        ),
        max_leaves=30,
    )

    @PROPERTY
    @given(st.text())
    def test_anything_after_a_note_prefix_or_a_broadcast_is_a_note(tail: str):
        assert is_note("note: " + tail)
        assert is_note("<!here> " + tail)
        assert is_note(tail, rich_text({"type": "broadcast", "range": "here"}, text(tail)))

    @PROPERTY
    @given(invisible_prefixes, st.text(max_size=40))
    def test_invisible_characters_in_front_never_turn_a_note_into_a_reply(prefix: str, message: str):
        if is_note(message):
            assert is_note(prefix + message)

    @PROPERTY
    @given(st.text())
    def test_stripping_the_prefix_keeps_everything_after_it(tail: str):
        assert tail.endswith(strip_note_prefix("note: " + tail))

    @PROPERTY
    @given(st.text(max_size=40), json_like)
    def test_any_blocks_never_raise(message: str, blocks: object):
        assert isinstance(is_note(message, blocks), bool)
