"""Rate limits shared by every worker: in Redis when there is one, in this process when not.

Embedded mode runs one process, so a process-local bucket is exact there; distributed mode needs it in
Redis so N workers agree. Nobody waits here: `take_token` says how long until a token is allowed, and
the caller reschedules its work for then.

`reserve` keeps tokens back for urgent work: backlog work takes a token only while `reserve` more
remain, so a new lead's card or a quiet conversation's message finds one at once even while a
backlog drains the bucket at its full rate.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis


class Coordinator(Protocol):
    def take_token(self, key: str, *, rate: float, burst: int, reserve: int = 0) -> float:
        """Take one token from the bucket `key` if one is allowed now (0.0); else take nothing and
        return the seconds until one will be."""
        ...


class LocalCoordinator:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def take_token(self, key: str, *, rate: float, burst: int, reserve: int = 0) -> float:
        with self._guard:
            now = time.monotonic()
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            needed = 1 + min(reserve, burst - 1)
            if tokens >= needed:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (needed - tokens) / rate


# Refill and take atomically in Redis: KEYS[1] bucket; ARGV rate, burst, now, reserve. Returns wait in ms.
_REFILL_AND_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local needed = 1 + math.min(tonumber(ARGV[4]), burst - 1)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= needed then
  tokens = tokens - 1
else
  wait = math.ceil((needed - tokens) / rate * 1000)
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

    def take_token(self, key: str, *, rate: float, burst: int, reserve: int = 0) -> float:
        seconds, micros = self.redis.time()  # one clock for all workers
        now = seconds + micros / 1_000_000
        wait_ms = self._bucket(keys=[self.prefix + "bucket:" + key], args=[rate, burst, now, reserve])
        return int(wait_ms) / 1000
