"""Benchmark: does one lead's backlog hold up anyone else? Fairness on the real app process.

Prints figures and ratios; asserts nothing.

    .venv/bin/python bench/fairness.py [--runtime embedded|celery|both] [--backlog 500] [--drain-seconds 30]
        [--gap 0]

embedded: `threadline run` on a SQLite file (in-process worker). celery: a fresh PostgreSQL database,
REDIS_URL on a flushed Redis index, `threadline run` (which supervises a Celery worker). Slack and Graph
are the strict stand-ins; Slack pacing is the app's default (THREADLINE_SLACK_POSTS_PER_SECOND=1).

Lead C writes and gets its card. Then one webhook carries `--backlog` messages from lead A; right
after it (or `--gap` seconds later), a new lead B writes and, at the same moment, a rep replies in C's
thread. Measured: B's webhook -> B's card posted in Slack; the rep's Slack event -> the reply to C
received by Graph; A's backlog drained in the first `--drain-seconds` after its webhook, against the
floor, Slack's published limit of 1 post per second per channel.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common
import httpx
from _common import REP, log_problems, machine, print_notes, verdict

from tests.e2e.harness import CHANNEL, PHONE_NUMBER_ID, AppProcess, message_event
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

SLACK_LIMIT = 1.0  # chat.postMessage per second per channel, Slack's published limit (the floor)
TARGET_CARD_SECONDS = 2.0
TARGET_REPLY_SECONDS = 2.0
TARGET_DRAIN = 0.95  # of the allowed rate
REDIS_INDEX = 10
CARLA, CHATTY, NEWCOMER = "15550000003", "15550000001", "15550000002"


@dataclass
class Result:
    runtime: str
    backlog: int
    drain_seconds: float
    gap: float  # seconds between A's backlog answered and B's webhook
    card_seconds: float | None = None  # B's webhook -> B's card posted
    entry_seconds: float | None = None  # B's webhook -> B's message posted in its thread
    reply_seconds: float | None = None  # the rep's event -> Graph receives the reply to C
    backlog_answer_ms: float = 0.0  # the backlog webhook's own answer
    statuses: list[int] = field(default_factory=list)  # HTTP answers to the webhooks and the event
    answer_ms: list[float] = field(default_factory=list)  # how long B's webhook and the event took
    drained: int = 0  # A's entries posted within the window
    channel_posts: int = 0  # every chat.postMessage to the channel within the window
    steady_gap: float | None = None  # median seconds between channel posts in the window
    first_posts: list[float] = field(default_factory=list)  # seconds after A's webhook, first channel posts
    in_order: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def drain_rate(self) -> float:
        return self.drained / self.drain_seconds

    @property
    def channel_rate(self) -> float:
        return self.channel_posts / self.drain_seconds


def text_webhook(wa_id: str, name: str, text: str, message_id: str) -> dict[str, Any]:
    return meta.text_message(
        wa_id=wa_id, name=name, text=text, message_id=message_id, phone_number_id=PHONE_NUMBER_ID
    )


def backlog_webhook(wa_id: str, name: str, count: int) -> dict[str, Any]:
    """One webhook carrying `count` messages from one lead, as Meta batches them after an outage."""
    payload = text_webhook(wa_id, name, "m0", "wamid.backlog0")
    value = payload["entry"][0]["changes"][0]["value"]
    first = value["messages"][0]
    value["messages"] = [
        {**first, "id": f"wamid.backlog{n}", "text": {"body": f"backlog {n}"}} for n in range(count)
    ]
    return payload


def card_post(slack: SlackStandIn, name: str) -> tuple[str, float] | None:
    """The ts and time of the card (top-level post) naming `name`, once it is posted."""
    for message in slack.messages(CHANNEL):
        if name in message["text"]:
            ts = message["ts"]
            posts = [c for c in slack.calls_to("chat.postMessage") if c.ok and not c.args.get("thread_ts")]
            at = next((c.at for c in posts if name in str(c.args.get("text", ""))), time.time())
            return ts, at
    return None


def thread_posts(slack: SlackStandIn, card_ts: str) -> list[tuple[float, str]]:
    """(time, text) of each post in the card's thread, in order."""
    return [
        (c.at, str(c.args.get("text", "")))
        for c in slack.calls_to("chat.postMessage")
        if c.ok and c.args.get("thread_ts") == card_ts
    ]


def wait(slack_or_graph: SlackStandIn | GraphStandIn, predicate: Any, timeout: float) -> bool:
    try:
        slack_or_graph.wait_for(predicate, timeout=timeout)
        return True
    except AssertionError:
        return False


@contextmanager
def runtime_env(runtime: str, workdir: Path) -> Iterator[dict[str, str]]:
    if runtime == "embedded":
        yield {"DATABASE_URL": f"sqlite:///{workdir / 'threadline.db'}"}
        return
    with _common.fresh_postgres() as url, _common.flushed_redis(REDIS_INDEX) as redis_url:
        yield {"DATABASE_URL": url, "REDIS_URL": redis_url}


def run(runtime: str, args: argparse.Namespace) -> Result:
    result = Result(runtime, args.backlog, args.drain_seconds, args.gap)
    with (
        tempfile.TemporaryDirectory(prefix="bench-fairness-") as tmp,
        _common.standins() as (slack, graph),
        runtime_env(runtime, Path(tmp)) as settings,
    ):
        workdir = Path(tmp)
        env = _common.app_env(slack, graph, workdir, **settings)
        app = AppProcess(env=env, log_path=workdir / "run.log", command="run")
        app.start(timeout=90)
        try:
            measure(app, slack, graph, result)
        finally:
            app.stop()
        result.notes += [f"log: {line}" for line in log_problems(app.logs())]
        result.notes += [f"Slack stand-in violation: {v}" for v in slack.violations]
        result.notes += [f"Graph stand-in violation: {v}" for v in graph.violations]
    return result


def measure(app: AppProcess, slack: SlackStandIn, graph: GraphStandIn, result: Result) -> None:
    result.statuses.append(
        app.whatsapp(text_webhook(CARLA, "Carla", "hi, Carla here", "wamid.c1")).status_code
    )
    wait(slack, lambda: card_post(slack, "Carla") is not None, 60)
    carla = card_post(slack, "Carla")
    if carla is None:
        result.notes.append("C's card never came: nothing measured")
        return
    wait(slack, lambda: len(thread_posts(slack, carla[0])) >= 1, 30)
    time.sleep(5)  # Slack pacing (its burst at 1/s) refills: the backlog starts from a full bucket

    backlog_sent = time.time()
    result.statuses.append(app.whatsapp(backlog_webhook(CHATTY, "Chatty", result.backlog)).status_code)
    backlog_answered = time.time()
    time.sleep(result.gap)  # 0: B and the rep act at once; more: once the runner is busy with A
    result.backlog_answer_ms = (backlog_answered - backlog_sent) * 1000

    # B writes and the rep replies at the same moment, each on its own connection: neither waits for
    # the other's answer.
    text = "Reply to Carla while Chatty's backlog drains"
    reply_ts = slack.post_as_user(CHANNEL, REP, text, thread_ts=carla[0])
    event = message_event(user=REP, text=text, ts=reply_ts, thread_ts=carla[0])
    newcomer = text_webhook(NEWCOMER, "Newcomer", "hello, I am new", "wamid.n1")
    with ThreadPoolExecutor(2) as pool:
        newcomer_sent = time.time()
        newcomer_answer = pool.submit(timed, lambda: app.whatsapp(newcomer))
        reply_sent = time.time()
        reply_answer = pool.submit(timed, lambda: app.slack_event(event))
        for answer in (newcomer_answer.result(), reply_answer.result()):
            result.statuses.append(answer[0])
            result.answer_ms.append(answer[1])

    if wait(slack, lambda: card_post(slack, "Newcomer") is not None, args_timeout(result)):
        card = card_post(slack, "Newcomer")
        assert card is not None
        result.card_seconds = card[1] - newcomer_sent
        if wait(slack, lambda: thread_posts(slack, card[0]), args_timeout(result)):
            result.entry_seconds = thread_posts(slack, card[0])[0][0] - newcomer_sent
    if wait(graph, lambda: any(s.to == CARLA for s in graph.sent), args_timeout(result)):
        result.reply_seconds = next(s.at for s in graph.sent if s.to == CARLA) - reply_sent

    window_end = backlog_answered + result.drain_seconds
    time.sleep(max(0.0, window_end - time.time()) + 1.0)  # the drain window, plus answers in flight
    chatty = card_post(slack, "Chatty")
    if chatty is None:
        result.notes.append("A's card never came")
        return
    entries = [(at, text) for at, text in thread_posts(slack, chatty[0]) if at <= window_end]
    result.drained = len(entries)
    result.in_order = [t.split(": ", 1)[-1] for _, t in entries] == [
        f"backlog {n}" for n in range(len(entries))
    ]
    posts = [at for at in slack.post_times(CHANNEL) if backlog_answered <= at <= window_end]
    result.channel_posts = len(posts)
    gaps = [b - a for a, b in itertools.pairwise(posts)]
    result.steady_gap = statistics.median(gaps) if gaps else None
    result.first_posts = [at - backlog_answered for at in posts[:8]]


def timed(send: Callable[[], httpx.Response]) -> tuple[int, float]:
    """The answer's status and how long it took, in ms."""
    started = time.perf_counter()
    status = send().status_code
    return status, (time.perf_counter() - started) * 1000


def args_timeout(result: Result) -> float:
    return max(30.0, result.drain_seconds)


def seconds(value: float | None) -> str:
    return "never (timed out)" if value is None else f"{value:.2f} s"


def report(results: list[Result]) -> None:
    print(f"machine       {machine()}")
    print(
        f"targets       new lead's card ≤ {TARGET_CARD_SECONDS:.0f} s; reply to another lead sent "
        f"≤ {TARGET_REPLY_SECONDS:.0f} s during the backlog; drain ≥ {TARGET_DRAIN:.0%} of "
        f"{SLACK_LIMIT:.0f} post/s/channel (Slack's limit, the floor)"
    )
    for r in results:
        print()
        print(
            f"runtime       {r.runtime}: {r.backlog}-message backlog from lead A in one webhook; "
            f"B and the rep {r.gap:.1f} s after it"
        )
        print(f"answers       {r.statuses} (C's webhook, A's backlog, B's webhook, the rep's event)")
        print(f"backlog       webhook answered in {r.backlog_answer_ms:.0f} ms")
        if len(r.answer_ms) == 2:
            print(
                f"answer times  B's webhook {r.answer_ms[0]:.0f} ms, the rep's event {r.answer_ms[1]:.0f} ms "
                "(sent together)"
            )
        met = r.card_seconds is not None and r.card_seconds <= TARGET_CARD_SECONDS
        print(f"B's card      {seconds(r.card_seconds)} after B's webhook: {verdict(met)}")
        print(f"B's message   {seconds(r.entry_seconds)} after B's webhook (in B's thread)")
        met = r.reply_seconds is not None and r.reply_seconds <= TARGET_REPLY_SECONDS
        print(f"reply to C    {seconds(r.reply_seconds)} from the rep's event to Graph: {verdict(met)}")
        met = r.drain_rate >= TARGET_DRAIN * SLACK_LIMIT
        channel_met = r.channel_rate >= TARGET_DRAIN * SLACK_LIMIT
        print(
            f"A's drain     {r.drained} entries in the first {r.drain_seconds:.0f} s = {r.drain_rate:.2f}/s, "
            f"{r.drain_rate / SLACK_LIMIT:.2f}× the limit: {verdict(met)}; "
            f"in order: {'yes' if r.in_order else 'NO'}"
        )
        gap = "n/a" if r.steady_gap is None else f"{r.steady_gap:.2f} s"
        print(
            f"channel       {r.channel_posts} posts in the window = {r.channel_rate:.2f}/s, "
            f"{r.channel_rate / SLACK_LIMIT:.2f}× the limit (A, B and C together; the burst included): "
            f"{verdict(channel_met)}; median gap {gap}"
        )
        print(
            f"first posts   {', '.join(f'{t:.2f}' for t in r.first_posts)} s after A's webhook was answered"
        )
        print_notes(r.notes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runtime", choices=["embedded", "celery", "both"], default="embedded")
    parser.add_argument("--backlog", type=int, default=500, help="messages in A's webhook (default 500)")
    parser.add_argument(
        "--gap",
        type=float,
        default=0.0,
        help="seconds between A's backlog and B's webhook / the rep's reply (default 0)",
    )
    parser.add_argument(
        "--drain-seconds", type=float, default=30.0, help="window for A's drain rate (default 30)"
    )
    args = parser.parse_args()
    runtimes = ["embedded", "celery"] if args.runtime == "both" else [args.runtime]
    report([run(runtime, args) for runtime in runtimes])


if __name__ == "__main__":
    main()
