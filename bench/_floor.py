"""The floor for bench/webhooks.py: the least a WhatsApp webhook endpoint can do and still keep its promise.

A bare aiohttp server that checks Meta's `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app
secret), checks the body is a WhatsApp webhook JSON object (as Threadline's edge does), stores the raw
body in a one-table database with one insert, committed, and answers 200. Nothing else: no framework
around it, no dedupe key, no metrics, no hand-off to a worker.

    python bench/_floor.py --port 8001 --secret S --database sqlite:///path/floor.db
    python bench/_floor.py --port 8001 --secret S --database postgresql://postgres@127.0.0.1/bench_x

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
from collections.abc import Awaitable, Callable

from aiohttp import web

POOL_SIZE = 8
Store = Callable[[bytes], Awaitable[None]]


def signed(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header[7:].strip().lower().encode("utf-8", "replace"))


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


def build(secret: bytes, store: Store) -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        if not signed(secret, body, request.headers.get("X-Hub-Signature-256")):
            return web.Response(status=401)
        if not whatsapp_shaped(body):
            return web.Response(status=400)
        await store(body)
        return web.json_response({"ok": True})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=1_048_576)
    app.router.add_post("/webhooks/whatsapp", webhook)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(port: int, secret: bytes, database: str) -> None:
    if database.startswith("sqlite:///"):
        store = sqlite_store(database.removeprefix("sqlite:///"))
    else:
        store = await postgres_store(database)
    runner = web.AppRunner(build(secret, store), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()  # until the benchmark terminates this process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True, help="the WhatsApp app secret the signatures use")
    parser.add_argument("--database", required=True, help="sqlite:///PATH or postgresql://…")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.secret.encode(), args.database))


if __name__ == "__main__":
    main()
