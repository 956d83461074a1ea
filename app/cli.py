"""`threadline` — the one command to run, operate and try Threadline.

Operators read this program's output, so every expected failure is one clear line and exit code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import DBAPIError

from app.describe import database_unreachable
from core.errors import ThreadlineError
from core.settings import Settings, load_settings

SETTINGS_HELP = (
    "Settings come from the environment and .env files (next to the README, then the current directory); "
    "see docs/configuration.md."
)

COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "start Threadline: migrate, then serve HTTP with the worker (the one-command start)",
        "Creates or upgrades the database, then serves Slack (Socket Mode when SLACK_APP_TOKEN is set, "
        "else POST /slack/events) and the lead channels' webhooks on HOST:PORT. The worker runs inside "
        "this process (embedded: REDIS_URL unset) or as a supervised Celery worker (REDIS_URL set). "
        "Needs SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_CHANNEL.",
    ),
    "web": (
        "serve HTTP only (distributed mode; expects `threadline migrate` to have run)",
        "The stateless web process of the distributed deployment: run N of them behind a load balancer, "
        "next to N `threadline worker`. With REDIS_URL unset it also runs the embedded worker.",
    ),
    "worker": (
        "run a Celery worker with the outbox sweep (distributed mode; needs REDIS_URL)",
        "Runs outbox work (Slack mirroring, deliveries to leads, notifications) from Redis nudges, and "
        "sweeps the outbox for work whose nudge was lost. Expects `threadline migrate` to have run.",
    ),
    "migrate": (
        "create or upgrade the database schema",
        "Safe when several processes run it at once: they wait for each other. DATABASE_URL names the "
        "database (default: sqlite:///./threadline.db).",
    ),
    "check": (
        "say what is configured, reachable and missing, and what to do about it",
        "One line per part: database, worker, Slack (token, channel membership, transport), each lead "
        "channel, the AI agent. Exits 1 if anything needs fixing. Run it first when something is wrong.",
    ),
    "replay": (
        "process waiting inbox deliveries now; --parked: the parked ones too, after a fix",
        "Every lead message and status is kept raw in the inbox before it is processed. One our code "
        "could not process is parked with its reason (see `threadline check`); once the cause is fixed, "
        "`threadline replay --parked` runs it again. Nothing is stored twice. Exits 1 while any stays "
        "parked.",
    ),
    "simulate": (
        'write as a lead through the sandbox channel: simulate "Name <email or phone>" "text"',
        "Posts a signed message to a running Threadline's /webhooks/sandbox: it takes the path of any "
        "lead's message, so a card and a thread entry appear in Slack. Replies to a sandbox lead are "
        "printed by the server and show as delivered. Needs the same SLACK_SIGNING_SECRET as the server.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="threadline",
        description="Run your sales team's lead conversations from Slack.",
        epilog=SETTINGS_HELP,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {
        name: commands.add_parser(name, help=short, description=f"{short}.\n\n{long}", epilog=SETTINGS_HELP)
        for name, (short, long) in COMMANDS.items()
    }
    simulate = parsers["simulate"]
    simulate.add_argument(
        "lead", metavar="LEAD", help='who writes: "Jane Doe <jane@example.com>" or "Jo <+351…>"'
    )
    simulate.add_argument("text", metavar="TEXT", help="what they write")
    simulate.add_argument(
        "--url", help="the running Threadline's address (default: http://HOST:PORT from the settings)"
    )
    parsers["replay"].add_argument(
        "--parked", action="store_true", help="also run the deliveries that were parked"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_settings()
        from app.logs import configure_logging

        configure_logging(settings)
        return _command(args.command)(settings, args)
    except ThreadlineError as exc:
        print(f"threadline: {exc}", file=sys.stderr)
        return 2
    except DBAPIError as exc:
        print(f"threadline: {database_unreachable(settings, exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _command(name: str) -> Callable[[Settings, argparse.Namespace], int]:
    from app import checks, replay, serve, simulate

    commands: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
        "run": serve.run,
        "web": serve.web,
        "worker": serve.worker,
        "migrate": serve.migrate,
        "check": checks.check,
        "simulate": simulate.simulate,
        "replay": replay.replay,
    }
    return commands[name]


if __name__ == "__main__":
    sys.exit(main())
