"""What every stand-in shares: an aiohttp server on a loopback port, in a thread of its own.

The app under test runs in another process; tests read the stand-in's state from the test thread, so
state changes happen under `changed` (a Condition) and `wait_for` wakes on each of them — no blind sleeps.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Self

from aiohttp import web


class StandInServer:
    name = "stand-in"

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def url_for(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def describe(self) -> str:
        """What to print when a wait times out."""
        return ""

    def start(self) -> str:
        ready = threading.Event()
        loop = self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            app = web.Application(client_max_size=8 * 1024 * 1024)
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.base_url = self.url_for(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.name} did not start")
        return self.base_url

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def run_in_loop(self, coroutine: object) -> object:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(5)  # type: ignore[arg-type]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        """Wait until the app has made this provider's state match `predicate`."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.name}: condition not met in {timeout}s; {self.describe()}")
                self.changed.wait(min(remaining, 0.1))
