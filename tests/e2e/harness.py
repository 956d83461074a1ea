"""Runs the real `threadline run` in a subprocess and talks to it as Slack and Meta do.

Every request is signed the way the provider signs it and goes through the real HTTP endpoint; every
call the app makes goes to a strict stand-in that checks it against the published specs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select

from core.db import Database
from core.models import Base
from tests.standins.meta_webhooks import sign as meta_sign

BOT_TOKEN = "xoxb-test-0000-threadline"
APP_TOKEN = "xapp-1-test-socket-mode-token"
SIGNING_SECRET = "slack-signing-secret-for-tests"
CHANNEL = "C0LEADS"
WHATSAPP_TOKEN = "EAAG-test-whatsapp-access-token"
WHATSAPP_SECRET = "whatsapp-app-secret-for-tests"
WHATSAPP_VERIFY = "verify-me"
PHONE_NUMBER_ID = "106540352242922"
SECRETS = {
    "bot token": BOT_TOKEN,
    "app token": APP_TOKEN,
    "signing secret": SIGNING_SECRET,
    "WhatsApp token": WHATSAPP_TOKEN,
    "app secret": WHATSAPP_SECRET,
}
TEAM = "T0TEST"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class AppProcess:
    """A running Threadline with its environment, log file and database."""

    env: dict[str, str]
    log_path: Path
    command: str = "run"  # or "web": the HTTP face alone, as in the distributed deployment
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _event_counter: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        env = {**self.env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", self.command],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.env.get("THREADLINE_TEST_CWD"),
                start_new_session=True,  # so stop() can end the Celery child too
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"threadline exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling for readiness, not waiting for a result
        raise AssertionError(f"threadline did not become ready in {timeout}s:\n{self.logs()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- as Meta -------------------------------------------------------------------------------------

    def whatsapp(self, payload: dict[str, Any], *, secret: str = WHATSAPP_SECRET) -> httpx.Response:
        raw = json.dumps(payload).encode()
        return self.post_whatsapp_raw(raw, signature=meta_sign(secret, raw))

    def post_whatsapp_raw(self, raw: bytes, *, signature: str | None) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return httpx.post(f"{self.url}/webhooks/whatsapp", content=raw, headers=headers, timeout=10)

    # --- as Slack ------------------------------------------------------------------------------------

    def slack_event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> httpx.Response:
        self._event_counter += 1
        envelope = {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "api_app_id": "A0THREADLINE",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{self._event_counter:08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": "U0BOT", "is_bot": True}],
        }
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.signed_slack_post(json.dumps(envelope).encode(), "application/json", headers)

    def slack_interaction(self, payload: dict[str, Any]) -> httpx.Response:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return self.signed_slack_post(body, "application/x-www-form-urlencoded")

    def slack_command(self, text: str, *, user_id: str, command: str = "/leads") -> httpx.Response:
        form = {
            "token": "legacy",
            "team_id": TEAM,
            "channel_id": CHANNEL,
            "user_id": user_id,
            "command": command,
            "text": text,
            "response_url": self.response_url("commands"),
            "trigger_id": "1.2.3",
        }
        return self.signed_slack_post(
            urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
        )

    def signed_slack_post(
        self,
        body: bytes,
        content_type: str,
        extra_headers: dict[str, str] | None = None,
        *,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
    ) -> httpx.Response:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body.decode())
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
            **(extra_headers or {}),
        }
        return httpx.post(f"{self.url}/slack/events", content=body, headers=headers, timeout=10)

    def response_url(self, kind: str) -> str:
        """A payload's response_url: the Slack stand-in's receiver (SlackStandIn.response_url)."""
        return self.env["SLACK_API_URL"].removesuffix("api/") + f"response/{kind}/{TEAM}/1/abc"

    # --- looking inside --------------------------------------------------------------------------------

    @contextmanager
    def database(self) -> Iterator[Database]:
        database = Database(self.env["DATABASE_URL"])
        try:
            yield database
        finally:
            database.dispose()

    def count(self, model: type[Base]) -> int:
        with self.database() as db, db.sessions() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0


def message_event(
    *,
    user: str,
    text: str,
    ts: str,
    thread_ts: str,
    channel: str = CHANNEL,
    blocks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "thread_ts": thread_ts,
        "team": TEAM,
        "event_ts": ts,
        "channel_type": "channel",
    }
    if blocks is not None:
        event["blocks"] = blocks
    return event


def interaction(kind: str, user: str) -> dict[str, Any]:
    """What every interaction payload Slack sends starts with: its type, the team, who, the app."""
    return {
        "type": kind,
        "team": {"id": TEAM, "domain": "threadline-test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0THREADLINE",
        "token": "legacy",
    }


def block_action(
    *, user: str, card_ts: str, action: dict[str, Any], channel: str = CHANNEL, trigger_id: str = "1.2.3"
) -> dict[str, Any]:
    """A block_actions payload for a click on the card (the thread's parent message)."""
    return {
        **interaction("block_actions", user),
        "container": {"type": "message", "message_ts": card_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": trigger_id,
        "channel": {"id": channel, "name": "leads"},
        "message": {"type": "message", "ts": card_ts, "user": "U0BOT", "bot_id": "B0BOT", "text": "card"},
        "response_url": "https://hooks.slack.com/actions/T0TEST/1/abc",
        "actions": [{**action, "action_ts": str(time.time())}],
    }
