"""The floors for bench/webhooks.py and bench/slack_ack.py: the least an endpoint can do and keep its promise.

WhatsApp (`--secret`, `--database`): a bare aiohttp server that checks Meta's `X-Hub-Signature-256`
(HMAC-SHA256 of the raw body with the app secret), checks the body is a WhatsApp webhook JSON object (as
Threadline's edge does), stores the raw body in a one-table database with one insert, committed, and
answers 200. Nothing else: no framework around it, no dedupe key, no metrics, no hand-off to a worker.

Slack (`--slack-secret`): POST /slack/events checks Slack's `X-Slack-Signature` (v0, HMAC-SHA256 of
`v0:timestamp:body` with the signing secret) and that the timestamp is within 5 minutes, and answers 200
with an empty body. No parsing, no database: what any Slack endpoint must do before it may ack.

    python bench/_floor.py --port 8001 --secret S --database sqlite:///path/floor.db
    python bench/_floor.py --port 8001 --secret S --database postgresql://postgres@127.0.0.1/bench_x
    python bench/_floor.py --port 8001 --slack-secret S

The table (`floor_inbox`: id, body, received_at) must exist; bench/webhooks.py creates it. SQLite runs
as the app's does (WAL, synchronous=NORMAL), its insert inline in the event loop; PostgreSQL uses a small
pool of psycopg async connections in autocommit (one statement, one commit, one round trip).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

POOL_SIZE = 8
Store = Callable[[bytes], Awaitable[None]]


def signed(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header[7:].strip().lower().encode("utf-8", "replace"))


def slack_signed(secret: bytes, body: bytes, timestamp: str | None, header: str | None) -> bool:
    if not timestamp or not header or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode("utf-8", "replace"))


def whatsapp_shaped(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("object") == "whatsapp_business_account"


def sqlite_store(path: str) -> Store:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=30000")

    async def store(body: bytes) -> None:
        # Autocommit: the one INSERT is its own transaction, committed when it returns.
        connection.execute("INSERT INTO floor_inbox (body, received_at) VALUES (?, datetime('now'))", (body,))

    return store


async def postgres_store(url: str) -> Store:
    import psycopg

    pool: asyncio.Queue[psycopg.AsyncConnection[tuple[object, ...]]] = asyncio.Queue()
    for _ in range(POOL_SIZE):
        pool.put_nowait(await psycopg.AsyncConnection.connect(url, autocommit=True))

    async def store(body: bytes) -> None:
        connection = await pool.get()
        try:
            await connection.execute("INSERT INTO floor_inbox (body) VALUES (%s)", (body,))
        finally:
            pool.put_nowait(connection)

    return store


def build(secret: bytes | None, store: Store | None, slack_secret: bytes | None = None) -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        assert secret is not None and store is not None  # served only with both
        if not signed(secret, body, request.headers.get("X-Hub-Signature-256")):
            return web.Response(status=401)
        if not whatsapp_shaped(body):
            return web.Response(status=400)
        await store(body)
        return web.json_response({"ok": True})

    async def slack(request: web.Request) -> web.Response:
        body = await request.read()
        assert slack_secret is not None
        headers = request.headers
        if not slack_signed(
            slack_secret, body, headers.get("X-Slack-Request-Timestamp"), headers.get("X-Slack-Signature")
        ):
            return web.Response(status=401)
        return web.Response(status=200)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=1_048_576)
    if secret is not None and store is not None:
        app.router.add_post("/webhooks/whatsapp", webhook)
    if slack_secret is not None:
        app.router.add_post("/slack/events", slack)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(port: int, secret: bytes | None, database: str | None, slack_secret: bytes | None) -> None:
    store: Store | None = None
    if database is not None and database.startswith("sqlite:///"):
        store = sqlite_store(database.removeprefix("sqlite:///"))
    elif database is not None:
        store = await postgres_store(database)
    runner = web.AppRunner(build(secret, store, slack_secret), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()  # until the benchmark terminates this process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", help="the WhatsApp app secret the signatures use")
    parser.add_argument("--database", help="sqlite:///PATH or postgresql://… (with --secret)")
    parser.add_argument("--slack-secret", help="the Slack signing secret: serve POST /slack/events")
    args = parser.parse_args()
    whatsapp = args.secret is not None
    if whatsapp != (args.database is not None) or not (whatsapp or args.slack_secret):
        parser.error("give --secret with --database (WhatsApp), --slack-secret (Slack), or both")
    asyncio.run(
        serve(
            args.port,
            args.secret.encode() if args.secret else None,
            args.database,
            args.slack_secret.encode() if args.slack_secret else None,
        )
    )


if __name__ == "__main__":
    main()
