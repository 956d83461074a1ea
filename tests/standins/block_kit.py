"""Block Kit limits Slack enforces that slack_sdk's models do not check.

slack_sdk's models catch most limits (section text 3000, 10 fields, header 150, 10 context elements,
option text 75 in most selects, image alt_text present and ≤ 2000…) but let some through that Slack
answers with `invalid_blocks`. The stand-in runs both, so a payload the real Slack refuses fails a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

TEXT_LIMIT = 3000  # any text object
FIELD_LIMIT = 2000  # one section field
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
INPUT_LENGTH_LIMIT = 3000  # plain_text_input max_length and initial_value
ALT_TEXT_LIMIT = 2000
URL_LIMIT = 3000
TEXT_TYPES = {"plain_text", "mrkdwn"}
OPTION_LISTS = ("options", "initial_options")


def block_problems(blocks: list[Any]) -> Iterator[str]:
    """What Slack would refuse in `blocks` that slack_sdk lets pass, as readable reasons."""
    for index, block in enumerate(blocks):
        if isinstance(block, dict):
            yield from _block(block, f"blocks[{index}]")


def view_problems(view: dict[str, Any]) -> Iterator[str]:
    """What Slack would refuse in a view beyond its blocks (checked by `block_problems`)."""
    blocks = view.get("blocks") or []
    if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks) and not view.get("submit"):
        yield "a view with input blocks needs a submit button"


def _block(block: dict[str, Any], where: str) -> Iterator[str]:
    kind = block.get("type")
    if kind == "section":
        for index, field in enumerate(block.get("fields") or []):
            text = field.get("text") if isinstance(field, dict) else None
            if isinstance(text, str) and len(text) > FIELD_LIMIT:
                yield f"{where}.fields[{index}]: {len(text)} characters, more than {FIELD_LIMIT}"
    if kind == "header" and (block.get("text") or {}).get("type") != "plain_text":
        yield f"{where}: a header's text must be plain_text"
    yield from _walk(block, where)


def _walk(node: Any, where: str) -> Iterator[str]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, f"{where}[{index}]")
        return
    if not isinstance(node, dict):
        return
    yield from _text_object(node, where)
    yield from _options(node, where)
    yield from _input(node, where)
    yield from _image(node, where)
    for key, value in node.items():
        yield from _walk(value, f"{where}.{key}")


def _text_object(node: dict[str, Any], where: str) -> Iterator[str]:
    if node.get("type") not in TEXT_TYPES or "text" not in node:
        return
    text = node["text"]
    if not isinstance(text, str) or not text:
        yield f"{where}: text must be a non-empty string (got {text!r:.40})"
    elif len(text) > TEXT_LIMIT:
        yield f"{where}: text of {len(text)} characters, more than {TEXT_LIMIT}"


def _options(node: dict[str, Any], where: str) -> Iterator[str]:
    for key in OPTION_LISTS:
        for index, option in enumerate(node.get(key) or []):
            if not isinstance(option, dict):
                continue
            text = (option.get("text") or {}).get("text")
            if isinstance(text, str) and len(text) > OPTION_TEXT_LIMIT:
                yield f"{where}.{key}[{index}]: option text over {OPTION_TEXT_LIMIT} characters"
            value = option.get("value")
            if isinstance(value, str) and len(value) > OPTION_VALUE_LIMIT:
                yield f"{where}.{key}[{index}]: option value over {OPTION_VALUE_LIMIT} characters"
    # Slack refuses a preselected option that is not exactly one of the options offered.
    offered = [_option_key(o) for o in node.get("options") or [] if isinstance(o, dict)]
    if offered:
        for index, option in enumerate(node.get("initial_options") or []):
            if isinstance(option, dict) and _option_key(option) not in offered:
                yield f"{where}.initial_options[{index}]: not one of the options"


def _option_key(option: dict[str, Any]) -> tuple[Any, Any]:
    return (option.get("value"), (option.get("text") or {}).get("text"))


def _input(node: dict[str, Any], where: str) -> Iterator[str]:
    if node.get("type") != "plain_text_input":
        return
    max_length = node.get("max_length", INPUT_LENGTH_LIMIT)
    if not isinstance(max_length, int) or not 1 <= max_length <= INPUT_LENGTH_LIMIT:
        yield f"{where}: max_length {max_length!r} outside 1..{INPUT_LENGTH_LIMIT}"
        return
    initial = node.get("initial_value")
    if initial is not None and (not isinstance(initial, str) or len(initial) > max_length):
        size = len(initial) if isinstance(initial, str) else initial
        yield f"{where}: initial_value of {size} characters, more than max_length {max_length}"


def _image(node: dict[str, Any], where: str) -> Iterator[str]:
    if node.get("type") != "image":
        return
    alt = node.get("alt_text")
    if not isinstance(alt, str) or not alt or len(alt) > ALT_TEXT_LIMIT:
        yield f"{where}: an image needs alt_text of 1..{ALT_TEXT_LIMIT} characters"
    url = node.get("image_url")
    if url is not None and (not isinstance(url, str) or len(url) > URL_LIMIT):
        yield f"{where}: image_url over {URL_LIMIT} characters"
