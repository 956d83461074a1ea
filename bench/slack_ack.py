"""Benchmark: how fast the real app acknowledges a Slack button click and a `/leads` command.

Prints figures and ratios; asserts nothing.

    .venv/bin/python bench/slack_ack.py [--runtime embedded|celery|both] [--requests 200] [--leads 20]

The real `threadline run` (embedded: SQLite, worker in process; celery: a fresh PostgreSQL database,
Redis index 14, a Celery worker) with the strict Slack and Graph stand-ins. `--leads` WhatsApp leads
write first, and their cards are posted (pacing raised to 50 posts/s for this setup only: acks do not
post). Then, one request at a time over one kept-alive connection, as Slack sends them, each signed with
the signing secret into POST /slack/events:

- button: a card's Close or Reopen (block_actions), alternating per card, so each click changes the
  conversation (the app answers once its use-case has committed: process_before_response);
- command: `/leads` with no text, whose answer (the first page of open conversations) rides in the ack;
- and, to tell the write from the rest, a button with nothing to change: Reopen on an open card (the same
  path, who-may-act and the conversation's lock included, but no event, no outbox row, no redraw).

Measured: the HTTP round trip of each, p50/p95/p99/max, against the issue's target (p99 ≤ 50 ms) and
the floor measured in the same run: bench/_floor.py, a bare aiohttp endpoint that checks the same
signature and answers 200, sent the same bodies. The card redraws the clicks cause run meanwhile, as they
would. Resident memory of the web process (and the Celery worker) at rest and at peak during the acks.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import _common
import httpx
from _common import REP, log_problems, machine, percentile, print_memory, print_notes, verdict

from bot.blocks import ids
from tests.e2e.harness import CHANNEL, PHONE_NUMBER_ID, SIGNING_SECRET, TEAM, AppProcess, block_action
from tests.standins import meta_webhooks as meta
from tests.standins.slack_api import SlackStandIn

TARGET_P99_MS = 50.0
REDIS_INDEX = 14  # 11 is tests/e2e/test_provider_faults.py's
WARMUP = 10  # of each kind, not counted: the first clicks fill the who-may-act cache
Request = tuple[bytes, str]  # body, content type
FORM = "application/x-www-form-urlencoded"


@dataclass
class Series:
    name: str
    latencies: list[float] = field(default_factory=list)  # ms
    statuses: Counter[str] = field(default_factory=Counter)

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q)


@dataclass
class Result:
    runtime: str
    series: list[Series] = field(default_factory=list)
    rest: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def click_body(card_ts: str, action_id: str) -> Request:
    action = {"type": "button", "action_id": action_id, "block_id": ids.CARD_ACTIONS_BLOCK, "value": "1"}
    payload = block_action(user=REP, card_ts=card_ts, action=action)
    return urllib.parse.urlencode(
        {"payload": json.dumps(payload)}
    ).encode(), "application/x-www-form-urlencoded"


def command_body(response_url: str) -> Request:
    form = {
        "token": "legacy",
        "team_id": TEAM,
        "channel_id": CHANNEL,
        "user_id": REP,
        "command": "/leads",
        "text": "",
        "response_url": response_url,
        "trigger_id": "1.2.3",
    }
    return urllib.parse.urlencode(form).encode(), FORM


def clicks(cards: list[str]) -> Callable[[], Request]:
    """Close, then Reopen, each card in turn: every click changes its conversation."""
    sequence = itertools.cycle([(ts, ids.CLOSE) for ts in cards] + [(ts, ids.REOPEN) for ts in cards])
    return lambda: click_body(*next(sequence))


def measure(client: httpx.Client, url: str, series: Series, make: Callable[[], Request], count: int) -> None:
    for _ in range(count):
        body, content_type = make()
        headers = _common.slack_headers(SIGNING_SECRET, body, content_type)
        started = time.perf_counter()
        try:
            answer = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            series.statuses[f"error:{type(exc).__name__}"] += 1
            continue
        series.latencies.append((time.perf_counter() - started) * 1000)
        series.statuses[str(answer.status_code)] += 1


def cards_of(slack: SlackStandIn, leads: int) -> list[str]:
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) >= leads, timeout=60 + leads)
    return [str(message["ts"]) for message in slack.messages(CHANNEL)]


def run(runtime: str, args: argparse.Namespace) -> Result:
    result = Result(runtime)
    with (
        tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp,
        _common.standins() as (slack, graph),
        _common.runtime_settings(runtime, Path(tmp), REDIS_INDEX) as settings,
    ):
        workdir = Path(tmp)
        env = _common.app_env(
            slack,
            graph,
            workdir,
            THREADLINE_SLACK_POSTS_PER_SECOND="50",  # the setup's cards: acks post nothing themselves
            THREADLINE_SLACK_POST_BURST="50",
            **settings,
        )
        app = AppProcess(env=env, log_path=workdir / "run.log", command="run")
        app.start(timeout=90)
        try:
            with _common.MemoryWatch(app.process.pid) as memory:  # type: ignore[union-attr]
                for n in range(args.leads):
                    payload = meta.text_message(
                        wa_id=f"1555{n:07d}",
                        name=f"Ack Lead {n}",
                        text=f"hello {n}",
                        message_id=f"wamid.ack{n}",
                        phone_number_id=PHONE_NUMBER_ID,
                    )
                    app.whatsapp(payload)
                cards = cards_of(slack, args.leads)
                result.rest = memory.settled()
                url = f"{app.url}/slack/events"
                button, command = Series("button (Close/Reopen)"), Series("command (/leads)")
                unchanged = Series("button, nothing to change")
                make_click = clicks(cards)
                open_cards = itertools.cycle(cards)
                make_unchanged = lambda: click_body(next(open_cards), ids.REOPEN)  # noqa: E731
                make_command = lambda: command_body(slack.response_url())  # noqa: E731
                with httpx.Client(timeout=10) as client:
                    measure(client, url, Series("warm-up"), make_command, WARMUP)
                    measure(client, url, Series("warm-up"), make_unchanged, WARMUP)
                    memory.reset_peaks()
                    measure(client, url, unchanged, make_unchanged, args.requests)  # every card is open
                    measure(client, url, Series("warm-up"), make_click, WARMUP)
                    measure(client, url, button, make_click, args.requests)
                    measure(client, url, command, make_command, args.requests)
                result.peaks = memory.peaks_now()
            result.series += [button, unchanged, command]
        finally:
            app.stop()
        result.notes += [f"log: {line}" for line in log_problems(app.logs())]
        result.notes += [f"Slack stand-in violation: {v}" for v in slack.violations]
        with (
            _common.floor_server("--slack-secret", SIGNING_SECRET) as floor_url,
            httpx.Client(timeout=10) as client,
        ):
            floor = Series("floor: bare aiohttp, signature")
            bodies = itertools.cycle([click_body(cards[0], ids.CLOSE), command_body(slack.response_url())])
            measure(client, f"{floor_url}/slack/events", Series("warm-up"), lambda: next(bodies), WARMUP)
            measure(client, f"{floor_url}/slack/events", floor, lambda: next(bodies), 2 * args.requests)
        result.series.append(floor)
    return result


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(f"machine   {machine()}")
    print(
        f"load      {args.requests} signed requests of each kind, one at a time, one kept-alive connection; "
        f"{args.leads} conversations"
    )
    print(f"target    ack p99 ≤ {TARGET_P99_MS:.0f} ms")
    for r in results:
        floor = r.series[-1]
        print()
        columns = "n | p50 ms | p95 ms | p99 ms | max ms | p99 ÷ floor | answers | target"
        print(f"| {r.runtime}: request | {columns} |")
        print("|---|---:|---:|---:|---:|---:|---:|---|---|")
        for s in r.series:
            is_floor = s is floor
            ratio = "" if is_floor else f"{s.ms(99) / floor.ms(99):.1f}×"
            met = "" if is_floor else verdict(s.ms(99) <= TARGET_P99_MS and set(s.statuses) == {"200"})
            answers = ", ".join(f"{count}× {status}" for status, count in s.statuses.items())
            print(
                f"| {s.name} | {len(s.latencies)} | {s.ms(50):.1f} | {s.ms(95):.1f} | {s.ms(99):.1f} "
                f"| {s.ms(100):.1f} | {ratio} | {answers} | {met} |"
            )
        print()
        print_memory(r.rest, r.peaks, "the acks")
        print_notes(r.notes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runtime", choices=["embedded", "celery", "both"], default="embedded")
    parser.add_argument(
        "--requests", type=int, default=200, help="clicks, and commands, measured (default 200)"
    )
    parser.add_argument("--leads", type=int, default=20, help="conversations with a card (default 20)")
    args = parser.parse_args()
    runtimes = ["embedded", "celery"] if args.runtime == "both" else [args.runtime]
    report([run(runtime, args) for runtime in runtimes], args)


if __name__ == "__main__":
    main()
