"""Locks and rate limits shared by every worker: in Redis when there is one, in this process when not.

Embedded mode runs one process, so process-local primitives are exact there; distributed mode needs
them in Redis so N workers agree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import redis

LOCK_TTL_SECONDS = 120


class Coordinator(Protocol):
    def hold(self, key: str) -> AbstractContextManager[None]:
        """Exclusive hold of `key` across all workers, for the `with` block."""
        ...

    def take_token(self, key: str, *, rate: float, burst: int) -> float:
        """Take one token from the bucket `key`; returns seconds to wait first (0 = go now)."""
        ...


def wait_for_token(coordinator: Coordinator, key: str, *, rate: float, burst: int) -> None:
    while (delay := coordinator.take_token(key, rate=rate, burst=burst)) > 0:
        time.sleep(delay)


class LocalCoordinator:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def take_token(self, key: str, *, rate: float, burst: int) -> float:
        with self._guard:
            now = time.monotonic()
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / rate


# Refill and take atomically in Redis: KEYS[1] bucket; ARGV rate, burst, now. Returns wait in ms.
_REFILL_AND_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"""


class RedisCoordinator:
    def __init__(self, url: str, *, prefix: str = "threadline:") -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.prefix = prefix
        self._bucket = self.redis.register_script(_REFILL_AND_TAKE_LUA)

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        # The TTL frees the lock if its holder dies; work under it is bounded well below that.
        with self.redis.lock(
            self.prefix + "lock:" + key, timeout=LOCK_TTL_SECONDS, blocking_timeout=LOCK_TTL_SECONDS
        ):
            yield

    def take_token(self, key: str, *, rate: float, burst: int) -> float:
        seconds, micros = self.redis.time()  # one clock for all workers
        now = seconds + micros / 1_000_000
        wait_ms = self._bucket(keys=[self.prefix + "bucket:" + key], args=[rate, burst, now])
        return int(wait_ms) / 1000
