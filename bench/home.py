"""Benchmark: App Home publish time for a rep with 500 open conversations, against floors.

Prints figures; asserts nothing.

    .venv/bin/python bench/home.py [--database sqlite|postgres] [--open 500] [--queue 200] [--opens 50]
        [--background 0]

The real `threadline run` (embedded worker; SQLite, or a fresh PostgreSQL database) against the strict
Slack stand-in. The database holds `--open` open conversations assigned to the rep (ten messages each,
so "my last 7 days" has something to count) and `--queue` unassigned ones, among `--background`
closed conversations of other reps (the rest of a team's history). Measured, after three
warm-up opens (the first fills the who-may-see caches):

- publish: a signed `app_home_opened` sent to POST /slack/events, until the stand-in has received the
  `views.publish` it causes (the tab the rep sees);
- query + build: `home_summary` + `build_home` in this process on the same database (no Slack);
- floors: a signed event the app ignores (`tab: messages`), answered; and a bare `views.publish` of
  the same view from a Slack client to the stand-in. The publish cannot beat the two together.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import _common
from _common import REP, app_env, log_problems, machine, percentile, print_notes, wait_healthy
from slack_sdk import WebClient
from sqlalchemy import insert

from bot.blocks.home import build_home
from core.db import Database
from core.models import Author, Conversation, Direction, Lead, Member, Message, Status, utcnow
from core.queries.home import home_summary
from tests.e2e.harness import BOT_TOKEN, CHANNEL, AppProcess, free_port

WARMUP = 3


def seed_background(db: Database, count: int) -> None:
    """`count` closed conversations of another rep, inserted in bulk."""
    now = utcnow()
    with db.transaction() as session:
        other = Member(slack_user_id="U0OTHER", name="Other Rep")
        session.add(other)
        session.flush()
        for start in range(0, count, 5000):
            ids = range(start, min(count, start + 5000))
            leads = session.execute(
                insert(Lead).returning(Lead.id), [{"name": f"Old Lead {n}", "created_at": now} for n in ids]
            ).scalars()
            rows = [
                {
                    "lead_id": lead_id,
                    "channel": "whatsapp",
                    "channel_account": "BENCH",
                    "provider_thread_id": f"old-{n}",
                    "status": Status.CLOSED,
                    "ai_mode": "manual",
                    "assignee_id": other.id,
                    "slack_channel": CHANNEL,
                    "slack_thread_ts": f"1600000000.{n:06d}",
                    "unread_count": 0,
                    "last_activity_at": now - timedelta(days=30, minutes=n),
                    "closed_at": now - timedelta(days=30, minutes=n),
                    "created_at": now - timedelta(days=31, minutes=n),
                    "version": 1,
                }
                for n, lead_id in zip(ids, leads, strict=True)
            ]
            session.execute(insert(Conversation), rows)


def seed(url: str, *, open_: int, queue: int, background: int) -> None:
    db = Database(url)
    seed_background(db, background)
    now = utcnow()
    with db.transaction() as session:
        rep = Member(slack_user_id=REP, name="Ana Lima", email="ana@example.com")
        session.add(rep)
        session.flush()
        for n in range(open_ + queue):
            mine = n < open_
            conversation = Conversation(
                lead=Lead(name=f"Bench Lead {n}", company=f"Company {n % 37}", phone=f"+1555{n:07d}"),
                channel="whatsapp",
                channel_account="BENCH",
                provider_thread_id=f"1555{n:07d}",
                status=Status.OPEN if n % 3 else Status.PENDING,
                assignee_id=rep.id if mine else None,
                slack_channel=CHANNEL,
                slack_thread_ts=f"1700000000.{n:06d}",
                unread_count=n % 4,
                last_activity_at=now - timedelta(minutes=n),
                waiting_since=now - timedelta(minutes=n) if n % 3 else None,
                first_response_at=now - timedelta(minutes=n // 2),
                created_at=now - timedelta(minutes=n + 5),
            )
            session.add(conversation)
            for m in range(10 if mine else 0):
                lead = m % 2 == 0
                session.add(
                    Message(
                        conversation=conversation,
                        channel="whatsapp",
                        direction=Direction.INBOUND if lead else Direction.OUTBOUND,
                        author=Author.LEAD if lead else Author.MEMBER,
                        text=f"message {m}",
                        provider_message_id=f"wamid.home.{n}.{m}",
                        created_at=now - timedelta(minutes=n, seconds=m),
                    )
                )
    db.dispose()


def timed(runs: int, once: Callable[[], float | None]) -> list[float]:
    """Seconds per run; `once` returns its own figure, or None to be timed from outside."""
    figures = []
    for _ in range(runs):
        started = time.perf_counter()
        figure = once()
        figures.append(figure if figure is not None else time.perf_counter() - started)
    return figures


def line(what: str, seconds: list[float]) -> None:
    p50, p95 = percentile(seconds, 50) * 1000, percentile(seconds, 95) * 1000
    print(f"  {what:<52} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (n={len(seconds)})")


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "postgres":
        with _common.fresh_postgres() as url:
            yield url
    else:
        yield f"sqlite:///{workdir / 'home.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--open", type=int, default=500, help="open conversations assigned to the rep")
    parser.add_argument("--queue", type=int, default=200, help="unassigned open conversations")
    parser.add_argument("--opens", type=int, default=50, help="App Home openings measured")
    parser.add_argument("--background", type=int, default=0, help="closed conversations of other reps")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="threadline-bench-home-"))
    with _common.standins() as (slack, graph), database(args.database, workdir) as url:
        env = app_env(slack, graph, workdir, DATABASE_URL=url)
        _common.threadline("migrate", env, workdir)
        seed(url, open_=args.open, queue=args.queue, background=args.background)
        app = AppProcess(env=env, log_path=workdir / "threadline.log", port=free_port())
        app.start()
        try:
            assert app.process is not None
            wait_healthy(f"{app.url}/healthz", app.process)

            def publish() -> float:
                before = len(slack.calls_to("views.publish"))
                sent = time.time()
                event = {"type": "app_home_opened", "user": REP, "channel": "D0", "tab": "home"}
                assert app.slack_event({**event, "event_ts": str(sent)}).status_code == 200
                slack.wait_for(lambda: len(slack.calls_to("views.publish")) > before)
                return slack.calls_to("views.publish")[before].at - sent

            def ignored() -> None:
                event = {"type": "app_home_opened", "user": REP, "channel": "D0", "tab": "messages"}
                assert app.slack_event({**event, "event_ts": "1.1"}).status_code == 200

            timed(WARMUP, publish)
            published = timed(args.opens, publish)
            floor_event = timed(args.opens, ignored)
        finally:
            app.stop()
        view = slack.published_views[REP]
        client = WebClient(token=BOT_TOKEN, base_url=slack.base_url)
        floor_publish = timed(args.opens, lambda: client.views_publish(user_id=REP, view=view) and None)

        db = Database(url)
        since = utcnow() - timedelta(days=7)

        def build() -> None:
            with db.sessions() as session:
                summary = home_summary(session, REP, channels=[CHANNEL], since=since)
            build_home(summary, workspace_url="https://bench.slack.com/")

        timed(WARMUP, build)
        built = timed(args.opens, build)
        db.dispose()
        problems = log_problems(app.logs())

    size = len(json.dumps(view).encode())
    print(f"App Home publish — {machine()}")
    print(
        f"  database {args.database}; the rep has {args.open} open conversations, {args.queue} unassigned,"
        f" among {args.background} closed ones of others"
    )
    print(f"  the view: {len(view['blocks'])} blocks, {size / 1024:.1f} KB")
    line("app_home_opened → views.publish at Slack", published)
    line("query + build in process (home_summary, build_home)", built)
    line("floor: a signed event the app ignores, answered", floor_event)
    line("floor: a bare views.publish of the same view", floor_publish)
    floor = percentile(floor_event, 50) + percentile(floor_publish, 50)
    print(f"  publish p50 is {percentile(published, 50) / floor:.1f}× the two floors' p50 together")
    if problems:
        print("  the app logged problems:")
        print_notes(problems)


if __name__ == "__main__":
    main()
