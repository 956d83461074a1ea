"""The stand-ins refuse what the real providers refuse: a wrong call by the app must fail a test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from tests.conftest import SPECS
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

TOKEN = "xoxb-standin"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(SPECS / "slack" / "methods", bot_token=TOKEN) as standin:
        standin.add_channel("C1", "leads")
        standin.add_user("U1", "ana", "Ana")
        yield standin


@pytest.fixture
def client(slack: SlackStandIn) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[])


def error_of(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SlackApiError) as caught:
        call()
    return str(caught.value.response["error"])


def test_a_valid_post_is_stored_with_no_violation(slack: SlackStandIn, client: WebClient):
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}},
        {
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "go"}],
        },
    ]
    ts = client.chat_postMessage(
        channel="C1", text="hi", blocks=blocks, metadata={"event_type": "x", "event_payload": {"id": 1}}
    )["ts"]
    assert slack.messages("C1")[0]["ts"] == ts and slack.violations == []
    history = client.conversations_history(channel="C1", include_all_metadata=True)["messages"]
    assert history[0]["metadata"]["event_payload"] == {"id": 1}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"text": "hi"}, "invalid_arguments"),  # no channel
        ({"channel": "C1", "text": "hi", "colour": "red"}, "invalid_arguments"),
        (
            {
                "channel": "C1",
                "text": "hi",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            },
            "invalid_blocks",
        ),
        ({"channel": "C1", "text": "hi", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        ({"channel": "C1", "text": "hi", "blocks": [{"type": "no_such_block"}]}, "invalid_blocks"),
        (
            {
                "channel": "C1",
                "text": "hi",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "x" * 76},
                                "action_id": "a",
                            }
                        ],
                    }
                ],
            },
            "invalid_blocks",
        ),
    ],
)
def test_calls_the_spec_does_not_allow_are_refused_and_recorded(
    slack: SlackStandIn, client: WebClient, kwargs, error
):  # type: ignore[no-untyped-def]
    assert error_of(lambda: client.api_call("chat.postMessage", json=kwargs)) == error
    assert len(slack.violations) == 1


def _section(**extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}, **extra}


def _select_input(options: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    element = {"type": "multi_static_select", "action_id": "s", "options": options, **extra}
    return {"type": "input", "label": {"type": "plain_text", "text": "Pick"}, "element": element}


def _option(text: str, value: str = "v") -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def _text_input(**element: Any) -> dict[str, Any]:
    return {
        "type": "input",
        "label": {"type": "plain_text", "text": "Name"},
        "element": {"type": "plain_text_input", "action_id": "t", **element},
    }


@pytest.mark.parametrize(
    "block",
    [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]},
        {"type": "section", "text": {"type": "mrkdwn", "text": ""}},
        {"type": "header", "text": {"type": "mrkdwn", "text": "*bold*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 3001}]},
        _section(accessory={"type": "image", "image_url": "https://example.com/a.png", "alt_text": ""}),
        _select_input([_option("x" * 76)]),
        _select_input([_option("a")], initial_options=[_option("b", "w")]),
        _text_input(max_length=5, initial_value="abcdefg"),
        _text_input(max_length=3001),
    ],
    ids=[
        "field-2001",
        "empty-text",
        "mrkdwn-header",
        "context-3001",
        "image-without-alt",
        "option-76",
        "initial-not-offered",
        "initial-over-max",
        "max-length-3001",
    ],
)
def test_block_kit_limits_slack_enforces_beyond_slack_sdk_are_refused(
    slack: SlackStandIn, client: WebClient, block: dict[str, Any]
):
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "t"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [block],
    }
    assert error_of(lambda: client.views_open(trigger_id=slack.issue_trigger_id(), view=view)) in {
        "invalid_blocks",
        "invalid_arguments",
    }
    assert len(slack.violations) == 1


def test_a_view_with_inputs_needs_a_submit_button(slack: SlackStandIn, client: WebClient):
    view = {"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": [_text_input()]}
    assert error_of(lambda: client.views_open(trigger_id=slack.issue_trigger_id(), view=view))
    good = {**view, "submit": {"type": "plain_text", "text": "Save"}}
    client.views_open(trigger_id=slack.issue_trigger_id(), view=good)
    assert len(slack.violations) == 1


def test_unknown_method_and_wrong_token(slack: SlackStandIn):
    assert (
        error_of(lambda: WebClient(token=TOKEN, base_url=slack.base_url).api_call("chat.shout"))
        == "unknown_method"
    )
    assert (
        error_of(lambda: WebClient(token="xoxb-wrong", base_url=slack.base_url).auth_test()) == "invalid_auth"
    )
    assert len(slack.violations) == 2


def test_provider_errors_are_answered_like_slack(slack: SlackStandIn, client: WebClient):
    assert error_of(lambda: client.chat_postMessage(channel="C404", text="x")) == "channel_not_found"
    assert error_of(lambda: client.users_info(user="U404")) == "user_not_found"
    ts = client.chat_postMessage(channel="C1", text="x")["ts"]
    client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    assert (
        error_of(lambda: client.reactions_add(channel="C1", timestamp=ts, name="eyes")) == "already_reacted"
    )
    assert (
        error_of(
            lambda: client.views_open(
                trigger_id="made-up",
                view={
                    "type": "modal",
                    "title": {"type": "plain_text", "text": "t"},
                    "blocks": [{"type": "divider"}],
                },
            )
        )
        == "invalid_trigger_id"
    )
    assert slack.violations == []  # these are the app's honest mistakes to handle, not spec breaches


def test_rate_limits_answer_429_with_retry_after(slack: SlackStandIn):
    slack.fail_next("chat.postMessage", retry_after=1)
    bare = WebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as caught:
        bare.chat_postMessage(channel="C1", text="x")
    assert caught.value.response.status_code == 429
    slack.fail_next("chat.postMessage", retry_after=1)
    patient = WebClient(
        token=TOKEN, base_url=slack.base_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    assert patient.chat_postMessage(channel="C1", text="x")["ok"]


def test_trouble_answers_each_call_in_turn_until_it_ends_and_still_checks_every_call(slack: SlackStandIn):
    bare = WebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[])
    slack.trouble_for(60, ("429", "502"), retry_after=3)
    with pytest.raises(SlackApiError) as limited:
        bare.chat_postMessage(channel="C1", text="1")
    assert limited.value.response.status_code == 429 and limited.value.response.headers["Retry-After"] == "3"
    with pytest.raises(SlackApiError) as gateway:  # an HTML page, as a load balancer answers
        bare.chat_postMessage(channel="C1", text="2")
    assert gateway.value.response.status_code == 502
    assert error_of(lambda: bare.api_call("chat.postMessage", json={"text": "no channel"})) == (
        "invalid_arguments"  # checked first: trouble never hides a call Slack would refuse
    )
    assert [c.status for c in slack.calls] == [429, 502, 200] and len(slack.violations) == 1
    slack.trouble_for(0)
    assert bare.chat_postMessage(channel="C1", text="3")["ok"] and not slack.in_trouble
    assert [m["text"] for m in slack.messages("C1")] == ["3"]


def test_the_opt_in_post_limit_allows_a_burst_then_answers_429_per_channel(slack: SlackStandIn):
    slack.add_channel("C2", "other")
    slack.limit_posts(per_second=1.0, burst=2, jitter=0.0)
    bare = WebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[])
    bare.chat_postMessage(channel="C1", text="1")
    bare.chat_postMessage(channel="C1", text="2")
    with pytest.raises(SlackApiError) as caught:
        bare.chat_postMessage(channel="C1", text="3")
    assert caught.value.response.status_code == 429 and int(caught.value.response.headers["Retry-After"]) >= 1
    assert bare.chat_postMessage(channel="C2", text="elsewhere")["ok"]  # each channel has its own
    assert [c.args["text"] for c in slack.rate_limited] == ["3"]
    assert [m["text"] for m in slack.messages("C1")] == ["1", "2"] and slack.violations == []


def test_graph_refuses_bodies_the_spec_does_not_allow():
    with GraphStandIn(
        SPECS / "whatsapp" / "business-messaging-api_v23.0.yaml", access_token="t", phone_number_id="P1"
    ) as graph:
        url = f"{graph.base_url}/P1/messages"
        auth = {"Authorization": "Bearer t"}
        good = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "1555",
            "type": "text",
            "text": {"body": "hi"},
        }
        answer = httpx.post(url, json=good, headers=auth).json()
        assert answer["messages"][0]["id"].startswith("wamid.") and answer["contacts"][0]["wa_id"] == "1555"
        assert graph.violations == []

        for bad in (
            {k: v for k, v in good.items() if k != "messaging_product"},
            {**good, "type": "hologram"},
            {**good, "text": {}},
            {**good, "text": {"body": "hi", "font": "comic"}},
        ):
            response = httpx.post(url, json=bad, headers=auth)
            assert response.status_code == 400 and response.json()["error"]["code"] == 100
        assert len(graph.violations) == 4

        wrong = httpx.post(url, json=good, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == 190

        graph.fail_next(131047)
        refused = httpx.post(url, json=good, headers=auth)
        assert refused.json()["error"]["code"] == 131047 and len(graph.violations) == 5
