"""Benchmark: a burst of lead messages into ONE Slack channel, drained against Slack's limit.

Prints figures and ratios; asserts nothing.

    .venv/bin/python bench/burst.py [--runtime embedded|celery|both] [--messages 500] [--leads N]
        [--concurrency 16] [--max-seconds S] [--slack-burst 5]

The real `threadline run` (embedded: SQLite, worker in process; celery: a fresh PostgreSQL database, Redis
index 13, a Celery worker), the app's default pacing (THREADLINE_SLACK_POSTS_PER_SECOND=1, burst 4: one
under the 5 assumed of Slack), and
the strict Slack stand-in with its opt-in limit on (1 chat.postMessage/s per channel, burst
`--slack-burst`): a post over it is answered 429 and counted. `--messages` signed WhatsApp webhooks, one
message each, are sent at once (`--concurrency` connections); by default each from a different lead
(`--leads`, default = `--messages`): a campaign's replies arriving together, every one a new card and an
entry in its thread, all contending for one channel's bucket, twice as many posts as messages. (One lead's
backlog is bench/fairness.py's; `--leads 1` gives it here too, one post per message.)

Measured until every message is in its thread (or `--max-seconds`): posts to the channel, the time from
the first webhook to the last post, posts/s against what Slack allows in that time (the floor: the burst
plus 1/s, Slack's published limit) → the ratio (target ≥ 95 %), 429s (target 0), the steady gap between
posts, how long each message took to reach its thread (p50 and the last), entries lost or doubled,
and resident memory of the web process (and the Celery worker) at rest and at peak during the drain.
500 messages from 500 leads take about 17 minutes (1,000 posts at 1/s); `--messages 50` for a quick look.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import _common
import aiohttp
from _common import SLACK_LIMIT, log_problems, machine, percentile, print_memory, print_notes, verdict

from core.settings import Settings
from tests.e2e.harness import CHANNEL, PHONE_NUMBER_ID, WHATSAPP_SECRET, AppProcess
from tests.standins import meta_webhooks as meta
from tests.standins.slack_api import SlackStandIn

TARGET_RATIO = 0.95
APP_BURST = Settings.model_fields["THREADLINE_SLACK_POST_BURST"].default
REDIS_INDEX = 13


@dataclass
class Result:
    runtime: str
    messages: int
    leads: int
    statuses: Counter[str] = field(default_factory=Counter)
    sent_seconds: float = 0.0  # the first webhook sent -> the last one answered
    started: float = 0.0  # wall clock of the first webhook
    post_times: list[float] = field(default_factory=list)  # every ok chat.postMessage to the channel
    cards: int = 0
    entries: Counter[int] = field(default_factory=Counter)  # message n -> thread posts carrying it
    waits: list[float] = field(default_factory=list)  # seconds from the first webhook to each entry
    rate_limited: int = 0
    finished: bool = False
    rest: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def drain_seconds(self) -> float:
        return self.post_times[-1] - self.started if self.post_times else 0.0

    @property
    def allowed(self) -> float:
        """Posts Slack allows in the drain: the burst, plus 1/s."""
        return _common.SLACK_BURST + SLACK_LIMIT * self.drain_seconds


def webhook(n: int, leads: int, run: str) -> bytes:
    lead = n % leads
    payload = meta.text_message(
        wa_id=f"1555{lead:07d}",
        name=f"Burst Lead {lead}",
        text=f"burst-{run}-{n:05d}",
        message_id=f"wamid.burst.{run}.{n}",
        phone_number_id=PHONE_NUMBER_ID,
    )
    return json.dumps(payload).encode()


async def send_all(url: str, bodies: list[bytes], concurrency: int, statuses: Counter[str]) -> None:
    queue = iter(bodies)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def client() -> None:
            for raw in queue:
                headers = {
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": meta.sign(WHATSAPP_SECRET, raw),
                }
                try:
                    async with session.post(url, data=raw, headers=headers) as answer:
                        await answer.read()
                        statuses[str(answer.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    statuses[f"error:{type(exc).__name__}"] += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))


class Drain:
    """Reads the Slack stand-in's calls as they come: posts to the channel, and which messages they carry."""

    def __init__(self, slack: SlackStandIn, run: str, since: float) -> None:
        self.slack, self.since = slack, since
        self.token = re.compile(rf"burst-{run}-(\d{{5}})")
        self.seen = 0
        self.post_times: list[float] = []
        self.cards = 0
        self.entries: Counter[int] = Counter()
        self.entered: dict[int, float] = {}  # message n -> when its entry was first posted

    def read(self) -> None:
        with self.slack.changed:
            calls = self.slack.calls[self.seen :]
        self.seen += len(calls)
        for call in calls:
            if call.method != "chat.postMessage" or not call.ok or call.args.get("channel") != CHANNEL:
                continue
            if call.at < self.since:
                continue
            self.post_times.append(call.at)
            thread = call.args.get("thread_ts")
            if not thread:
                self.cards += 1
                continue
            carried = {
                int(n)
                for n in self.token.findall(str(call.args.get("text")) + json.dumps(call.args.get("blocks")))
            }
            for n in carried:
                self.entries[n] += 1
                self.entered.setdefault(n, call.at)


def run(runtime: str, args: argparse.Namespace) -> Result:
    leads = args.leads or args.messages
    result = Result(runtime, args.messages, leads)
    expected_seconds = (leads + args.messages) / SLACK_LIMIT
    max_seconds = args.max_seconds or expected_seconds * 1.5 + 60
    with (
        tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp,
        _common.standins() as (slack, graph),
        _common.runtime_settings(runtime, Path(tmp), REDIS_INDEX) as settings,
    ):
        slack.limit_posts(SLACK_LIMIT, args.slack_burst)
        workdir = Path(tmp)
        env = _common.app_env(slack, graph, workdir, **settings)
        app = AppProcess(env=env, log_path=workdir / "run.log", command="run")
        app.start(timeout=90)
        try:
            with _common.MemoryWatch(app.process.pid) as memory:  # type: ignore[union-attr]
                result.rest = memory.settled()
                memory.reset_peaks()
                run_id = uuid.uuid4().hex[:6]
                bodies = [webhook(n, leads, run_id) for n in range(args.messages)]
                result.started = time.time()
                drain = Drain(slack, run_id, result.started)
                asyncio.run(
                    send_all(f"{app.url}/webhooks/whatsapp", bodies, args.concurrency, result.statuses)
                )
                result.sent_seconds = time.time() - result.started
                result.finished = follow(drain, args.messages, result.started, max_seconds)
                result.peaks = memory.peaks_now()
        finally:
            app.stop()
        drain.read()
        result.post_times, result.cards, result.entries = drain.post_times, drain.cards, drain.entries
        result.waits = sorted(at - result.started for at in drain.entered.values())
        result.rate_limited = len(slack.rate_limited)
        for refused in slack.rate_limited[:5]:  # what the stand-in's bucket saw just before it said 429
            before = [
                f"{refused.at - at:.2f}" for at in drain.post_times if refused.at - 6 < at <= refused.at
            ]
            result.notes.append(
                f"429 at {refused.at - result.started:.1f} s; accepted posts in the 6 s before it, "
                f"seconds earlier: {', '.join(before) or 'none'}"
            )
        result.notes += [f"log: {line}" for line in log_problems(app.logs())]
        result.notes += [f"Slack stand-in violation: {v}" for v in slack.violations]
    return result


def follow(drain: Drain, messages: int, started: float, max_seconds: float) -> bool:
    """Read the drain until every message is in a thread, or `max_seconds`; progress on stderr."""
    next_line = time.monotonic() + 30
    while True:
        drain.read()
        if len(drain.entries) >= messages:
            return True
        if time.time() - started > max_seconds:
            return False
        if time.monotonic() >= next_line:
            elapsed = time.time() - started
            print(
                f"  … {elapsed:.0f} s: {len(drain.post_times)} posts, "
                f"{len(drain.entries)}/{messages} entries",
                file=sys.stderr,
            )
            next_line += 30
        time.sleep(0.5)  # polling the stand-in's record, with a deadline


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(f"machine   {machine()}")
    print(
        f"Slack     the stand-in's limit: {SLACK_LIMIT:.0f} chat.postMessage/s per channel, "
        f"burst {args.slack_burst}; "
        f"the app's pacing: its defaults (1/s, burst {APP_BURST})"
    )
    print(f"target    drain ≥ {TARGET_RATIO:.0%} of Slack's allowed rate, zero 429s")
    print()
    columns = (
        "messages / leads | webhooks answered | posts | drain s | posts/s | Slack allows | ratio | 429s "
        "| steady gap s | message → its thread p50 / max s | lost / doubled | target"
    )
    print(f"| runtime | {columns} |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        answers = ", ".join(f"{count}× {status}" for status, count in r.statuses.items())
        posts = len(r.post_times)
        rate = posts / r.drain_seconds if r.drain_seconds else 0.0
        ratio = posts / r.allowed if r.post_times else 0.0
        gaps = [b - a for a, b in itertools.pairwise(r.post_times)][_common.SLACK_BURST :]
        steady = f"{statistics.median(gaps):.2f}" if gaps else "—"
        waits = f"{percentile(r.waits, 50):.0f} / {r.waits[-1]:.0f}" if r.waits else "—"
        lost = r.messages - len(r.entries)
        doubled = sum(1 for count in r.entries.values() if count > 1)
        met = verdict(
            r.finished and ratio >= TARGET_RATIO and r.rate_limited == 0 and not lost and not doubled
        )
        print(
            f"| {r.runtime} | {r.messages} / {r.leads} | {answers} in {r.sent_seconds:.1f} s | {posts} "
            f"({r.cards} cards) | {r.drain_seconds:.1f} | {rate:.3f} | {r.allowed:.0f} posts | {ratio:.1%} "
            f"| {r.rate_limited} | {steady} | {waits} | {lost} / {doubled} | {met} |"
        )
    for r in results:
        print()
        if not r.finished:
            print(f"{r.runtime}: stopped at --max-seconds before every message was posted")
        if r.post_times:  # where a drain loses time against Slack's allowance: its start, and its gaps
            spans = sorted(
                ((b - a, a - r.started) for a, b in itertools.pairwise(r.post_times)), reverse=True
            )
            longest = ", ".join(f"{gap:.2f} s at {at:.0f} s" for gap, at in spans[:3])
            slack_seconds = sum(gap - 1 / SLACK_LIMIT for gap, _ in spans if gap > 1.05 / SLACK_LIMIT)
            print(
                f"{r.runtime}: first post {r.post_times[0] - r.started:.2f} s after the first webhook; "
                f"longest gaps {longest}; {slack_seconds:.1f} s lost in gaps over 1.05 s"
            )
        print_memory(r.rest, r.peaks, f"the drain ({r.runtime})")
        print_notes(r.notes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runtime", choices=["embedded", "celery", "both"], default="embedded")
    parser.add_argument("--messages", type=int, default=500, help="lead messages in the burst (default 500)")
    parser.add_argument(
        "--leads", type=int, default=0, help="distinct leads writing them (default: one each)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="webhook connections at once (default 16)"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=0.0,
        help="give up after (default: 1.5× the expected drain + 60 s)",
    )
    parser.add_argument(
        "--slack-burst", type=int, default=_common.SLACK_BURST, help="the Slack stand-in's burst (default 5)"
    )
    args = parser.parse_args()
    runtimes = ["embedded", "celery"] if args.runtime == "both" else [args.runtime]
    report([run(runtime, args) for runtime in runtimes], args)


if __name__ == "__main__":
    main()
