"""Fixtures for the fault tests: the live product on a Redis server the test owns, and a chat client that
reconnects with backoff and resumes by seq, as the browser does.

The shared Redis on port 6379 is never touched: each product here gets its own `redis-server` on a free port,
which the Redis-restart test kills and starts again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import websockets

from tests.conftest import LiveProduct, emotion_model_dir, free_port


def fault_messages(default: int) -> int:
    """Messages per fault run: a short mode by default, BRIDGE_FAULT_MESSAGES for the long mode."""
    return int(os.environ.get("BRIDGE_FAULT_MESSAGES") or default)


class OwnRedis:
    """A redis-server this test owns (no persistence): killed and restarted on the same port by the tests."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> None:
        log = open(self.base_dir / "redis.log", "ab")  # noqa: SIM115 (kept open for the process's life)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None


class FaultProduct(LiveProduct):
    """LiveProduct on its own Redis, with a web process that can be killed and started again on its port."""

    def __init__(self, base_dir: Path, redis_server: OwnRedis, extra_env: dict[str, str] | None = None) -> None:
        super().__init__(base_dir, extra_env)
        self.redis_server = redis_server
        self.redis_url = redis_server.url
        self.env["REDIS_URL"] = redis_server.url
        self.env.pop("CELERY_BROKER_URL", None)

    def start(self) -> None:
        redis.Redis.from_url(self.redis_url).flushdb()
        self.manage("migrate", "--noinput")
        self.start_web()
        # As in the Procfile: the workers and beat run under bin/respawn, which starts them again when a broker
        # outage makes them exit.
        self.start_worker("translation", respawn=True)
        self.start_worker("sentiment", respawn=True)
        self.start_beat(respawn=True)
        self.wait_healthy()

    def start_web(self) -> subprocess.Popen:
        return self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--websocket-max-message-size",
                "65536",
                "chatsite.asgi:application",
            ],
        )

    def kill_web(self) -> None:
        process = self.processes.pop("web")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def web_rss_kib(self) -> int:
        status = Path(f"/proc/{self.processes['web'].pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])

    def history(self, slug: str, token: str) -> list[dict]:
        """The whole history, oldest first (pages of 200 walked back with `before`)."""
        messages: list[dict] = []
        query = "limit=200"
        while True:
            status, listed = self.api("GET", f"/api/rooms/{slug}/messages?{query}", token=token)
            assert status == 200, listed
            page = listed["messages"]
            messages = page + messages
            if len(page) < 200:
                return sorted(messages, key=lambda m: m["seq"])
            query = f"limit=200&before={min(m['seq'] for m in page)}"


@pytest.fixture
def make_fault_product(tmp_path) -> Iterator:
    """Builds a FaultProduct on a fresh redis-server; every process it started is stopped afterwards."""
    made: list[tuple[FaultProduct, OwnRedis]] = []

    def make(extra_env: dict[str, str] | None = None, sentiment_dir: Path | None = None) -> FaultProduct:
        base = tmp_path / f"product{len(made)}"
        base.mkdir()
        server = OwnRedis(base)
        server.start()
        env = {"BRIDGE_SENTIMENT_MODEL_DIR": str(sentiment_dir or emotion_model_dir()), **(extra_env or {})}
        product = FaultProduct(base, server, env)
        made.append((product, server))
        product.start()
        return product

    yield make
    for product, server in made:
        product.stop()
        if server.process is not None:
            server.kill()


# A client that survives faults ---------------------------------------------------------------------------------

RECONNECT_ERRORS = (
    OSError,
    websockets.ConnectionClosed,
    websockets.InvalidStatus,
    websockets.InvalidHandshake,
    asyncio.TimeoutError,
)


class ResilientClient:
    """Keeps a socket open to a room through faults: reconnects with capped exponential backoff, resumes after the
    last contiguous seq it saw, and retries an unacked send with the SAME client_id. Records every message.new
    seq it receives, so a test can count gaps and duplicates."""

    def __init__(self, product: FaultProduct, slug: str, token: str, name: str) -> None:
        self.product, self.slug, self.token, self.name = product, slug, token, name
        self.ws = None
        self.seen: set[int] = set()
        self.duplicates: list[int] = []
        self.received_at: dict[int, float] = {}
        self.events: list[dict] = []
        self.reconnects = 0
        self.acks: dict[str, dict] = {}
        self._ack_waiters: dict[str, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._resumed = asyncio.Event()
        self._closing = False

    @property
    def contiguous(self) -> int:
        seq = 0
        while seq + 1 in self.seen:
            seq += 1
        return seq

    async def connect(self, give_up_after: float = 60) -> float:
        """Connects (with backoff), resumes, waits for resume.done; returns the seconds it took."""
        started = time.monotonic()
        delay = 0.1
        while True:
            try:
                self.ws = await asyncio.wait_for(
                    websockets.connect(
                        f"ws://127.0.0.1:{self.product.port}/ws/rooms/{self.slug}/",
                        additional_headers={"Authorization": f"Bearer {self.token}", "Origin": self.product.url},
                        max_size=2**22,
                        open_timeout=5,
                    ),
                    timeout=6,
                )
                self._resumed.clear()
                await self.ws.send(json.dumps({"type": "resume", "after": self.contiguous}))
                self._reader = asyncio.create_task(self._read(self.ws))
                await asyncio.wait_for(self._resumed.wait(), timeout=15)
                self._connected.set()
                return time.monotonic() - started
            except RECONNECT_ERRORS:
                if self.ws is not None:
                    await self.ws.close()
                if time.monotonic() - started > give_up_after:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _read(self, ws) -> None:
        try:
            async for raw in ws:
                event = json.loads(raw)
                self.events.append(event)
                kind = event["type"]
                if kind == "message.new":
                    seq = event["message"]["seq"]
                    if seq in self.seen:
                        self.duplicates.append(seq)
                    self.seen.add(seq)
                    self.received_at.setdefault(seq, time.monotonic())
                elif kind == "message.ack":
                    waiter = self._ack_waiters.pop(event["client_id"], None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(event["message"])
                elif kind == "resume.done":
                    self._resumed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            if ws is self.ws and not self._closing:
                self._connected.clear()
                for waiter in self._ack_waiters.values():
                    if not waiter.done():
                        waiter.set_exception(ConnectionError("socket closed before the ack"))
                self._ack_waiters.clear()
                asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        self.reconnects += 1
        await self.connect()

    async def send(self, text: str, client_id: str | None = None, deadline_s: float = 60) -> dict:
        """Sends until acked, reusing the client_id across reconnects; returns the acked message."""
        client_id = client_id or str(uuid.uuid4())
        deadline = time.monotonic() + deadline_s
        while True:
            await asyncio.wait_for(self._connected.wait(), timeout=max(0.1, deadline - time.monotonic()))
            waiter = asyncio.get_running_loop().create_future()
            self._ack_waiters[client_id] = waiter
            try:
                await self.ws.send(json.dumps({"type": "message.send", "client_id": client_id, "text": text}))
                message = await asyncio.wait_for(waiter, timeout=10)
                self.acks[client_id] = message
                return message
            except (*RECONNECT_ERRORS, ConnectionError):
                self._ack_waiters.pop(client_id, None)
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def wait_for_seq(self, last: int, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while self.contiguous < last:
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        self._closing = True
        if self.ws is not None:
            await self.ws.close()
