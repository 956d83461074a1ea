"""Benchmark: end-to-end latency on every channel, lead → Slack thread and rep → provider, on the real app.

Prints figures and ratios; asserts nothing.

    .venv/bin/python bench/latency.py [--runtime embedded|celery|both]
        [--channels whatsapp,linkedin,email,sandbox]
        [--leads 5] [--samples 20] [--gap 1.2]

The real `threadline run` (embedded: SQLite, worker in process; celery: a fresh PostgreSQL database, Redis
index 12, a Celery worker) with the strict stand-ins: Slack (its opt-in limit of 1 post/s per channel,
burst 5, on: a 429 would show), Graph (WhatsApp), Unipile (LinkedIn); Email through real postfix and
dovecot (tests/mailserver.py; skipped where they cannot run), read by the app over IMAP IDLE; and the
sandbox channel (`threadline simulate`'s signed webhook). For each channel, one after another:

- new lead: `--leads` leads write their first message (a signed webhook; for Email the mail is put in
  the mailbox with IMAP APPEND, i.e. delivered) → the stand-in receives the thread's chat.postMessage
  carrying it (after the card);
- lead → thread: `--samples` more messages from those leads, round robin → the thread's chat.postMessage;
- rep → provider: `--samples` rep replies (Slack stores the message, then a signed `message` event) →
  Graph / Unipile receives the send; for Email and the sandbox, which have no stand-in, the ✅ / 📥 mark
  on the rep's message in Slack (SMTP accepted it / the sandbox "delivered" it): an upper bound. The
  mark's time is shown for every channel too.

Each message waits for the previous one's result, and sends are spaced so Slack's per-channel bucket never
defers a post (`--gap` per post: a new lead costs two, a card and its entry). Targets: p50 ≤ 150 ms for
both. Floors, measured in the same run: the bare HTTP round trip to each stand-in (a chat.postMessage to
the Slack stand-in on another channel; a send to Graph; a send to Unipile; one SMTP submission to postfix);
for Email's lead → thread, a mail APPENDed until a bare IMAP IDLE client hears it (dovecot's own delay).
Resident memory of the web process (and the Celery worker) at rest and at peak during the run.
"""

from __future__ import annotations

import argparse
import json
import smtplib
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import _common
import httpx
from _common import REP, log_problems, machine, percentile, print_memory, print_notes, verdict

from channels.sandbox import PATH as SANDBOX_PATH
from channels.sandbox import signed_message
from channels.sandbox.client import Contact
from tests import mailserver
from tests.e2e.harness import (
    BOT_TOKEN,
    CHANNEL,
    PHONE_NUMBER_ID,
    SIGNING_SECRET,
    WHATSAPP_TOKEN,
    AppProcess,
    message_event,
)
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn
from tests.standins.unipile import UnipileStandIn, attendee, message_webhook

TARGET_P50_MS = 150.0
REDIS_INDEX = 12
TIMEOUT = 30.0  # seconds one message may take before it is counted as lost
FLOOR_CHANNEL = "C0FLOOR"  # the Slack floor posts elsewhere: its own bucket, not the leads channel's
MARKS = {"white_check_mark", "inbox_tray", "eyes"}  # ✅ sent, 📥 delivered, 👀 read: past ⏳
UNIPILE_KEY, UNIPILE_SECRET, UNIPILE_ACCOUNT, UNIPILE_OWN = (
    "bench-key",
    "bench-secret",
    "acc-bench",
    "ACoAAOURS",
)
OURS = f"sales@{mailserver.DOMAIN}"
CHANNELS = ("whatsapp", "linkedin", "email", "sandbox")


@dataclass
class Stands:
    slack: SlackStandIn
    graph: GraphStandIn
    unipile: UnipileStandIn
    mail: mailserver.MailServers | None


@dataclass
class Lead:
    """One lead of one channel: how they write, and when the provider got a reply to them."""

    channel: str
    n: int
    run: str
    card_ts: str | None = None
    written: int = 0

    @property
    def name(self) -> str:
        return f"{self.channel.title()} Lead {self.n}"

    @property
    def wa_id(self) -> str:
        return f"1555{self.n:07d}"

    @property
    def chat(self) -> str:
        return f"chat-bench-{self.n}"

    @property
    def address(self) -> str:
        return f"jane+{self.run}{self.n}@{mailserver.LEAD_DOMAIN}"  # lands in Jane's mailbox

    def mail_id(self, k: int) -> str:
        return f"<bench-{self.run}-{self.n}-{k}@{mailserver.LEAD_DOMAIN}>"


@dataclass
class Figures:
    channel: str
    new_lead: list[float] = field(default_factory=list)  # ms
    to_thread: list[float] = field(default_factory=list)
    to_provider: list[float] = field(default_factory=list)
    to_mark: list[float] = field(default_factory=list)
    lost: int = 0
    provider_floor: list[float] = field(default_factory=list)
    mail_floor: list[float] = field(default_factory=list)  # email: APPEND -> a bare IDLE client sees it
    provider_what: str = ""


@dataclass
class Result:
    runtime: str
    figures: list[Figures] = field(default_factory=list)
    slack_floor: list[float] = field(default_factory=list)
    rate_limited: int = 0
    rest: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- a lead writes ----------------------------------------------------------------------------------------


def write(app: AppProcess, stands: Stands, lead: Lead, text: str) -> int:
    """The lead's message reaches the app as its channel brings it; the HTTP status (or 250 for mail)."""
    k, lead.written = lead.written, lead.written + 1
    if lead.channel == "whatsapp":
        payload = meta.text_message(
            wa_id=lead.wa_id,
            name=lead.name,
            text=text,
            message_id=f"wamid.bench.{lead.run}.{lead.n}.{k}",
            phone_number_id=PHONE_NUMBER_ID,
        )
        return app.whatsapp(payload).status_code
    if lead.channel == "linkedin":
        payload = message_webhook(
            account_id=UNIPILE_ACCOUNT,
            chat_id=lead.chat,
            message_id=f"li-{lead.run}-{lead.n}-{k}",
            text=text,
            sender=attendee(f"ACoAABENCH{lead.n:04d}", lead.name),
            attendees=[attendee(UNIPILE_OWN, "Ana Lima")],
        )
        headers = {"Content-Type": "application/json", "X-Unipile-Secret": UNIPILE_SECRET}
        raw = json.dumps(payload).encode()
        return httpx.post(
            f"{app.url}/webhooks/linkedin", content=raw, headers=headers, timeout=10
        ).status_code
    if lead.channel == "email":
        assert stands.mail is not None
        mail = EmailMessage()
        mail["From"] = f"{lead.name} <{lead.address}>"
        mail["To"] = f"Acme <{OURS}>"
        mail["Subject"] = "Benchmark" if k == 0 else "Re: Benchmark"
        mail["Message-ID"] = lead.mail_id(k)
        if k:  # a reply in the same mail thread, as a lead's mail client sends it
            mail["In-Reply-To"] = mail["References"] = lead.mail_id(0)
        mail.set_content(text)
        stands.mail.append(mail, user=OURS)  # delivered: in our mailbox, unseen
        return 250
    body, headers = signed_message(
        Contact(lead.name, f"lead{lead.n}.{lead.run}@example.com"), text, signing_secret=SIGNING_SECRET
    )
    return httpx.post(f"{app.url}{SANDBOX_PATH}", content=body, headers=headers, timeout=10).status_code


def thread_post(slack: SlackStandIn, token: str, since: int) -> tuple[float, str] | None:
    """(time, thread ts) of the post into a thread that carries `token`, among calls from index `since`."""
    with slack.changed:
        calls = slack.calls[since:]
    for call in calls:
        into_thread = call.method == "chat.postMessage" and call.ok and call.args.get("thread_ts")
        if into_thread and (
            token in str(call.args.get("text")) or token in json.dumps(call.args.get("blocks"))
        ):
            return call.at, str(call.args["thread_ts"])
    return None


def waited(standin: Any, probe: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    found: list[Any] = []

    def check() -> bool:
        value = probe()
        if value:
            found.append(value)
        return bool(value)

    try:
        standin.wait_for(check, timeout=timeout)
    except AssertionError:
        return None
    return found[-1]


def lead_to_thread(
    app: AppProcess, stands: Stands, lead: Lead, samples: list[float], figures: Figures
) -> None:
    slack = stands.slack
    token = f"bench-{uuid.uuid4().hex[:10]}"
    since = len(slack.calls)
    sent = time.time()
    status = write(app, stands, lead, f"Hello, a question ({token})")
    found = waited(slack, lambda: thread_post(slack, token, since)) if status in (200, 250) else None
    if found is None:
        figures.lost += 1
        return
    samples.append((found[0] - sent) * 1000)
    lead.card_ts = found[1]


# --- a rep replies ----------------------------------------------------------------------------------------


def provider_got(stands: Stands, lead: Lead, token: str) -> float | None:
    if lead.channel == "whatsapp":
        return next(
            (s.at for s in stands.graph.sent if s.to == lead.wa_id and token in json.dumps(s.body)), None
        )
    if lead.channel == "linkedin":
        return next(
            (s.at for s in stands.unipile.sent if s.chat_id == lead.chat and token in (s.text or "")), None
        )
    return None  # email and the sandbox: the mark in Slack stands for it


def mark_shown(slack: SlackStandIn, ts: str) -> float | None:
    for call in slack.calls_to("reactions.add"):
        if call.ok and call.args.get("timestamp") == ts and call.args.get("name") in MARKS:
            return call.at
    return None


def rep_to_provider(app: AppProcess, stands: Stands, lead: Lead, figures: Figures) -> None:
    slack = stands.slack
    assert lead.card_ts is not None
    token = f"reply-{uuid.uuid4().hex[:10]}"
    text = f"Thanks, here is the answer ({token})"
    ts = slack.post_as_user(CHANNEL, REP, text, thread_ts=lead.card_ts)
    sent = time.time()
    status = app.slack_event(message_event(user=REP, text=text, ts=ts, thread_ts=lead.card_ts)).status_code
    mark = waited(slack, lambda: mark_shown(slack, ts)) if status == 200 else None
    if mark is None:
        figures.lost += 1
        return
    figures.to_mark.append((mark - sent) * 1000)
    provider: Any = stands.graph if lead.channel == "whatsapp" else stands.unipile
    got = provider_got(stands, lead, token) if lead.channel in ("whatsapp", "linkedin") else mark
    if got is None:
        got = waited(provider, lambda: provider_got(stands, lead, token), 5)
    if got is not None:
        figures.to_provider.append((got - sent) * 1000)


def spaced(previous: float, seconds: float) -> float:
    """Wait until `seconds` after `previous` (Slack's bucket refills meanwhile); the new start."""
    time.sleep(max(0.0, previous + seconds - time.monotonic()))  # pacing the load, not waiting for a result
    return time.monotonic()


def measure_channel(app: AppProcess, stands: Stands, channel: str, args: argparse.Namespace) -> Figures:
    figures = Figures(channel)
    run = uuid.uuid4().hex[:6]
    if channel == "linkedin":
        for n in range(args.leads):
            stands.unipile.add_chat(f"chat-bench-{n}")
    leads = [Lead(channel, n, run) for n in range(args.leads)]
    last = time.monotonic() - 10
    for lead in leads:  # a card and its first entry: two posts
        last = spaced(last, 2 * args.gap)
        lead_to_thread(app, stands, lead, figures.new_lead, figures)
    known = [lead for lead in leads if lead.card_ts]
    for k in range(args.samples if known else 0):
        last = spaced(last, args.gap)
        lead_to_thread(app, stands, known[k % len(known)], figures.to_thread, figures)
    for k in range(args.samples if known else 0):
        last = spaced(last, args.rep_gap)
        rep_to_provider(app, stands, known[k % len(known)], figures)
    return figures


# --- floors -----------------------------------------------------------------------------------------------


def timed(count: int, call: Callable[[], object]) -> list[float]:
    """`count` timed calls in ms, after three untimed (connections, the stand-in's schema caches)."""
    for _ in range(3):
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def slack_floor(slack: SlackStandIn, count: int) -> list[float]:
    slack.add_channel(FLOOR_CHANNEL, "floor")
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {BOT_TOKEN}"}) as client:

        def post() -> None:
            client.post(f"{slack.base_url}chat.postMessage", data={"channel": FLOOR_CHANNEL, "text": "floor"})

        return timed(count, post)


def mail_floor(mail: mailserver.MailServers, count: int) -> list[float]:
    """A mail APPENDed into our mailbox -> a bare IMAP IDLE client on it hears EXISTS: what any reader
    of this dovecot waits (its `mailbox_idle_check_interval` is 1 s in tests/mailserver.py)."""
    samples = []
    with mail.mailbox(OURS) as reader:
        for n in range(count):
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = (
                f"tom@{mailserver.LEAD_DOMAIN}",
                OURS,
                "floor",
            )
            message["Message-ID"] = f"<floor-{uuid.uuid4().hex}@{mailserver.LEAD_DOMAIN}>"
            message.set_content(f"floor {n}")
            reader.idle()
            started = time.perf_counter()
            mail.append(message, user=OURS)
            deadline = started + 10
            while time.perf_counter() < deadline:
                if any(answer[1:2] == (b"EXISTS",) for answer in reader.idle_check(timeout=1)):
                    samples.append((time.perf_counter() - started) * 1000)
                    break
            reader.idle_done()
    return samples


def provider_floor(stands: Stands, channel: str, count: int) -> tuple[list[float], str]:
    if channel == "whatsapp":
        url = f"{stands.graph.base_url}/{PHONE_NUMBER_ID}/messages"
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15559999999",
            "type": "text",
            "text": {"body": "floor"},
        }
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {WHATSAPP_TOKEN}"}) as client:
            return timed(count, lambda: client.post(url, json=body).raise_for_status()), "Graph send"
    if channel == "linkedin":
        stands.unipile.add_chat("chat-floor")
        url = f"{stands.unipile.base_url}/chats/chat-floor/messages"
        with httpx.Client(timeout=10, headers={"X-API-KEY": UNIPILE_KEY}) as client:
            send = lambda: client.post(url, files={"text": (None, "floor")}).raise_for_status()  # noqa: E731
            return timed(count, send), "Unipile send"
    if channel == "email" and stands.mail is not None:
        mail = stands.mail

        def submit() -> None:
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = (
                OURS,
                f"tom@{mailserver.LEAD_DOMAIN}",
                "floor",
            )
            message.set_content("floor")
            with smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=10) as smtp:
                smtp.login(OURS, mailserver.USERS[OURS])
                smtp.send_message(message)

        return timed(count, submit), "SMTP submission"
    return [], "none (no provider)"


# --- the run ----------------------------------------------------------------------------------------------


@contextmanager
def stand_ins(channels: list[str], notes: list[str]) -> Iterator[Stands]:
    with ExitStack() as stack:
        slack, graph = stack.enter_context(_common.standins())
        slack.limit_posts(_common.SLACK_LIMIT, _common.SLACK_BURST)
        unipile = UnipileStandIn(api_key=UNIPILE_KEY, account_id=UNIPILE_ACCOUNT, own_provider_id=UNIPILE_OWN)
        unipile.start()
        stack.callback(unipile.stop)
        mail = None
        if "email" in channels:
            problem = mailserver.missing()
            if problem is None:
                mail = stack.enter_context(mailserver.running_mail_servers())
            else:
                notes.append(f"email skipped: {problem}")
        yield Stands(slack, graph, unipile, mail)


def run(runtime: str, args: argparse.Namespace) -> Result:
    result = Result(runtime)
    channels = [c for c in args.channels.split(",") if c]
    with (
        tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp,
        stand_ins(channels, result.notes) as stands,
        _common.runtime_settings(runtime, Path(tmp), REDIS_INDEX) as settings,
    ):
        workdir = Path(tmp)
        extra = {
            "UNIPILE_API_URL": stands.unipile.base_url,
            "UNIPILE_API_KEY": UNIPILE_KEY,
            "UNIPILE_ACCOUNT_ID": UNIPILE_ACCOUNT,
            "UNIPILE_WEBHOOK_SECRET": UNIPILE_SECRET,
        }
        if stands.mail is not None:
            extra |= {
                "EMAIL_IMAP_URL": stands.mail.imap_url(),
                "EMAIL_SMTP_URL": stands.mail.smtp_url(),
                "EMAIL_FROM": f"Acme Sales <{OURS}>",
            }
        env = _common.app_env(stands.slack, stands.graph, workdir, **extra, **settings)
        app = AppProcess(env=env, log_path=workdir / "run.log", command="run")
        app.start(timeout=90)
        try:
            with _common.MemoryWatch(app.process.pid) as memory:  # type: ignore[union-attr]
                result.rest = memory.settled()
                for channel in channels:
                    if channel == "email" and stands.mail is None:
                        continue
                    result.figures.append(measure_channel(app, stands, channel, args))
                result.peaks = memory.peaks_now()
        finally:
            app.stop()
        result.notes += [f"log: {line}" for line in log_problems(app.logs())]
        result.rate_limited = len(stands.slack.rate_limited)
        for name, standin in (("Slack", stands.slack), ("Graph", stands.graph), ("Unipile", stands.unipile)):
            result.notes += [f"{name} stand-in violation: {v}" for v in standin.violations]
        result.slack_floor = slack_floor(stands.slack, args.floor)
        if stands.mail is not None and "email" in channels:
            [email] = [f for f in result.figures if f.channel == "email"]
            email.mail_floor = mail_floor(stands.mail, min(args.floor, 20))
        for figures in result.figures:
            figures.provider_floor, figures.provider_what = provider_floor(
                stands, figures.channel, args.floor
            )
    return result


# --- the report -------------------------------------------------------------------------------------------


def cell(values: list[float], digits: int = 0) -> str:
    """`p50 / p95` in ms, or — when nothing was measured."""
    return f"{percentile(values, 50):.{digits}f} / {percentile(values, 95):.{digits}f}" if values else "—"


def ratio(values: list[float], floor: list[float]) -> str:
    if not values or not floor:
        return "—"
    times = percentile(values, 50) / percentile(floor, 50)
    return f"{times:.1f}×" if times < 10 else f"{times:.0f}×"


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(f"machine   {machine()}")
    print(
        f"load      per channel: {args.leads} new leads, then {args.samples} lead messages and "
        f"{args.samples} rep replies, one at a time, {args.gap:.1f} s per Slack post apart "
        f"(rep replies {args.rep_gap:.1f} s)"
    )
    print(
        f"targets   lead → Slack thread p50 ≤ {TARGET_P50_MS:.0f} ms; "
        f"rep → provider p50 ≤ {TARGET_P50_MS:.0f} ms"
    )
    for r in results:
        print()
        print(
            f"| {r.runtime}: channel | new lead → thread p50 / p95 ms | lead → thread p50 / p95 ms | ÷ floor "
            "| rep → provider p50 / p95 ms | ÷ floor | rep → ✅/📥 in Slack | lost | targets |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for f in r.figures:
            thread_met = bool(f.to_thread) and percentile(f.to_thread, 50) <= TARGET_P50_MS
            provider_met = bool(f.to_provider) and percentile(f.to_provider, 50) <= TARGET_P50_MS
            upper = "" if f.channel in ("whatsapp", "linkedin") else " (the mark)"
            print(
                f"| {f.channel} | {cell(f.new_lead)} | {cell(f.to_thread)} "
                f"| {ratio(f.to_thread, f.mail_floor or r.slack_floor)} | {cell(f.to_provider)}{upper} "
                f"| {ratio(f.to_provider, f.provider_floor)} | {cell(f.to_mark)} "
                f"| {f.lost} | {verdict(thread_met)}, {verdict(provider_met)} |"
            )
        floors = [f"Slack chat.postMessage {cell(r.slack_floor, 1)}"]
        floors += [f"{f.provider_what} {cell(f.provider_floor, 1)}" for f in r.figures if f.provider_floor]
        floors += [f"mail APPEND → IDLE hears it {cell(f.mail_floor, 1)}" for f in r.figures if f.mail_floor]
        print()
        print(
            f"floors (p50 / p95 ms, {args.floor} bare round trips each from this process): "
            + "; ".join(floors)
        )
        print(
            "rep → provider for email and the sandbox is the ✅/📥 mark in Slack (no stand-in times "
            "the send): an upper bound"
        )
        limit = f"{_common.SLACK_LIMIT:.0f}/s burst {_common.SLACK_BURST}"
        print(f"Slack 429s (the stand-in's limit, {limit}): {r.rate_limited}")
        print()
        print_memory(r.rest, r.peaks, "the whole run")
        print_notes(r.notes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runtime", choices=["embedded", "celery", "both"], default="embedded")
    parser.add_argument(
        "--channels", default=",".join(CHANNELS), help=f"comma-separated (default {','.join(CHANNELS)})"
    )
    parser.add_argument("--leads", type=int, default=5, help="new leads per channel (default 5)")
    parser.add_argument(
        "--samples", type=int, default=20, help="lead messages, and rep replies, per channel (default 20)"
    )
    parser.add_argument(
        "--gap", type=float, default=1.2, help="seconds per Slack post between lead messages (default 1.2)"
    )
    parser.add_argument(
        "--rep-gap", type=float, default=0.3, help="seconds between rep replies (default 0.3)"
    )
    parser.add_argument("--floor", type=int, default=50, help="round trips per floor (default 50)")
    args = parser.parse_args()
    unknown = set(args.channels.split(",")) - set(CHANNELS)
    if unknown:
        parser.error(f"unknown channels {sorted(unknown)}: choose from {','.join(CHANNELS)}")
    runtimes = ["embedded", "celery"] if args.runtime == "both" else [args.runtime]
    report([run(runtime, args) for runtime in runtimes], args)


if __name__ == "__main__":
    main()
