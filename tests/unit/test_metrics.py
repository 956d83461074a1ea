"""How a failed call is named on /metrics (core.metrics, bot.slack_client): the kinds an alert matches
on, for HTTP answers, exceptions, and a channel's own error wrapping the socket's or the server's."""

from __future__ import annotations

import smtplib

import httpx
import pytest
from prometheus_client import REGISTRY
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.slack_client import slack_error
from core.errors import ChannelBroken, PermanentDelivery, RetryableDelivery
from core.metrics import MeteredClient, error_kind, provider_call, status_kind


def errors(provider: str, kind: str) -> float:
    labels = {"provider": provider, "error": kind}
    return REGISTRY.get_sample_value("threadline_provider_errors_total", labels) or 0.0


def calls(provider: str) -> float:
    return REGISTRY.get_sample_value("threadline_provider_call_seconds_count", {"provider": provider}) or 0.0


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (201, None),
        (302, None),
        (400, "refused"),
        (401, "unauthorized"),
        (403, "unauthorized"),
        (404, "refused"),
        (429, "ratelimited"),
        (500, "server_error"),
        (503, "server_error"),
    ],
)
def test_http_statuses_become_error_kinds(status: int, kind: str | None):
    assert status_kind(status) == kind


def test_a_metered_client_counts_every_request_and_names_each_failure():
    answers = iter([httpx.Response(200, json={}), httpx.Response(503), httpx.Response(429)])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/slow":
            raise httpx.ReadTimeout("slow", request=request)
        return next(answers)

    before = {kind: errors("unit-graph", kind) for kind in ("server_error", "ratelimited", "timeout")}
    started = calls("unit-graph")
    with MeteredClient("unit-graph", transport=httpx.MockTransport(handler)) as client:
        for _ in range(3):
            client.get("http://graph.test/ok")
        with pytest.raises(httpx.ReadTimeout):
            client.get("http://graph.test/slow")
    assert calls("unit-graph") - started == 4
    assert errors("unit-graph", "server_error") - before["server_error"] == 1
    assert errors("unit-graph", "ratelimited") - before["ratelimited"] == 1
    assert errors("unit-graph", "timeout") - before["timeout"] == 1


def raised_from(inner: BaseException, outer: Exception) -> Exception:
    """`outer` raised while handling `inner`, `from None` as the senders do (the context stays)."""
    try:
        try:
            raise inner
        except BaseException:
            raise outer from None
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (raised_from(TimeoutError("timed out"), RetryableDelivery("unreachable")), "timeout"),
        (raised_from(ConnectionRefusedError(), RetryableDelivery("unreachable")), "unreachable"),
        (
            raised_from(smtplib.SMTPResponseException(451, b"later"), RetryableDelivery("put off")),
            "temporary",
        ),
        (raised_from(smtplib.SMTPResponseException(554, b"no"), PermanentDelivery("refused")), "refused"),
        (raised_from(smtplib.SMTPAuthenticationError(535, b"bad"), ChannelBroken("login")), "unauthorized"),
        (
            raised_from(smtplib.SMTPRecipientsRefused({"a@b": (550, b"no")}), PermanentDelivery("x")),
            "refused",
        ),
        (RetryableDelivery("WhatsApp: throttled", code="131048", retry_after=30), "ratelimited"),
        (RetryableDelivery("WhatsApp: temporary", code="1"), "temporary"),
        (ChannelBroken("token revoked"), "broken"),
        (PermanentDelivery("bad number"), "refused"),
        (ValueError("something else"), "error"),
    ],
)
def test_exceptions_are_named_by_what_went_wrong_first(exc: Exception, kind: str):
    assert error_kind(exc) == kind


def test_a_provider_call_times_the_block_and_counts_what_escapes_it():
    started, refused = calls("unit-smtp"), errors("unit-smtp", "refused")
    with pytest.raises(PermanentDelivery), provider_call("unit-smtp"):
        raise raised_from(smtplib.SMTPResponseException(550, b"no such user"), PermanentDelivery("refused"))
    with provider_call("unit-smtp"):
        pass
    assert calls("unit-smtp") - started == 2 and errors("unit-smtp", "refused") - refused == 1


def slack_refusal(status: int, body: dict[str, object] | str) -> SlackApiError:
    response = SlackResponse(
        client=None, http_verb="POST", api_url="https://slack.test/api/chat.postMessage",
        req_args={}, data=body, headers={}, status_code=status,
    )  # fmt: skip
    return SlackApiError("refused", response)


def test_slack_failures_are_named_as_an_operator_alerts_on_them():
    assert slack_error(slack_refusal(429, {"ok": False, "error": "ratelimited"})) == "ratelimited"
    assert slack_error(slack_refusal(502, "<html>Bad Gateway</html>")) == "server_error"
    assert slack_error(slack_refusal(200, {"ok": False, "error": "not_in_channel"})) == "not_in_channel"
    assert slack_error(
        slack_refusal(200, {"ok": False, "error": "Received a response in a non-JSON format"})
    ) == ("invalid_response")
    assert slack_error(TimeoutError("read timed out")) == "timeout"
    assert slack_error(ConnectionResetError()) == "unreachable"
