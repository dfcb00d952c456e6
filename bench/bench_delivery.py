"""Websocket delivery benchmark: the product's original-message delivery against a bare Channels baseline.

    python bench/bench_delivery.py                      # N = 10, 20, 50 clients, 20 msg/s, 10 s each
    python bench/bench_delivery.py --short              # CI: N = 10, 20, 4 s each, < 60 s in all
    python bench/bench_delivery.py --clients 10,20,50,100 --rate 20 --seconds 10

Starts, side by side on free loopback ports and a Redis database of its own (flushed before and after), the
product (a fresh migrated SQLite file, Daphne on chatsite.asgi) and the baseline (bench/baseline_asgi.py, Daphne,
the same Redis channel layer settings). For each client count N it runs the product, then the baseline: N
websocket clients in one room, in this one process, send R messages/s in all (spread evenly over the clients,
each text carrying its send time); every client times the arrival of every OTHER client's `message.new`. The
first --warmup seconds are not counted. Lost messages (delivered < expected = messages x (N - 1)) are counted,
never hidden. Prints a table; writes <out>/delivery.json and a markdown report (bench/reports/delivery.md in
full mode, <out>/delivery-short.md in short mode so CI does not rewrite the committed report).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
REPORT = ROOT / "bench" / "reports" / "delivery.md"
PASSWORD = "quiet-harbor-7391-lantern"  # bench users only; never a login anyone uses
GOAL_P99_MS = 50.0
GOAL_RATIO = 2.0
TEXT_STAMP = re.compile(r"^\[(\d+):(\d+)\]")  # "[<message index>:<perf_counter_ns at send>] ..."
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LOCK_KEY = "bench:delivery:running"


# Servers ------------------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One Daphne process the bench started; stop() is safe to call more than once."""

    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, slug: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/rooms/{slug}/"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (Linux /proc), to compare the two servers' work."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15 of stat)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.http + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready; log tail:\n{self.log_tail()}")

    def wait_idle(self, timeout: float = 30.0, window: float = 0.5, busy_share: float = 0.1) -> float:
        """Waits until the process uses under `busy_share` of a core (start-up work such as the product's
        language-detector warm-up thread done); returns the seconds waited. Gives up quietly at `timeout`."""
        started, quiet_windows = time.monotonic(), 0
        while time.monotonic() - started < timeout and quiet_windows < 2:
            before = self.cpu_seconds()
            time.sleep(window)
            quiet = self.cpu_seconds() - before < busy_share * window
            quiet_windows = quiet_windows + 1 if quiet else 0
        return time.monotonic() - started

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def server_env(work: Path, redis_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "BRIDGE_MODEL_ROOT": str(work / "models"),
        # Production mode: no debug query log or tracebacks on the hot path. Plain HTTP on loopback, so no TLS redirect.
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "BRIDGE_AUTH_RATE_PER_MINUTE": "100000",
        "BRIDGE_SEND_RATE_PER_MINUTE": "1000000",
    }
    for name in ("BRIDGE_CHANNEL_LAYER", "BRIDGE_CACHE", "CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL"):
        env.pop(name, None)  # the real Redis layer, cache and broker, never the in-memory test doubles
    return env


def start_daphne(name: str, app: str, work: Path, env: dict[str, str]) -> Server:
    port = free_port()
    log_path = work / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["--websocket-max-message-size", "65536", app],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Server(name, port, process, log_path)


# Migrates the fresh database and creates the bench's users in one Django start-up. Users are made through the
# product's own services, but with a fast password hasher: sign-up through the API hashes with PBKDF2 (about a
# CPU-second per sign-up and again per token on this machine), which is not what this benchmark measures.
SETUP_SCRIPT = """
import json, sys, uuid
import django
from django.conf import settings
from django.core.management import call_command
django.setup()
call_command("migrate", interactive=False, verbosity=0)
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
from chatsite import services
tokens = []
for index in range(int(sys.argv[1])):
    user = services.signup(username=f"bench{index}x{uuid.uuid4().hex[:6]}", password=sys.argv[2], language="en")
    tokens.append(services.issue_token(user=user))
print(json.dumps(tokens))
"""


def migrate_and_make_users(env: dict[str, str], count: int) -> list[str]:
    """Migrates the bench's fresh SQLite file and returns bearer tokens of `count` new users."""
    done = subprocess.run(
        [sys.executable, "-c", SETUP_SCRIPT, str(count), PASSWORD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"product set-up failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# The product's HTTP API (CONTRACT.md) -------------------------------------------------------------------------


def api(base: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path} -> {exc.code}: {exc.read()[:300]!r}") from exc


def product_room(server: Server, tokens: list[str]) -> str:
    """A fresh room whose members are exactly the holders of `tokens`; returns its slug."""
    slug = api(server.http, "POST", "/api/rooms", {"name": f"bench {uuid.uuid4().hex[:8]}"}, tokens[0])["slug"]
    for token in tokens[1:]:
        api(server.http, "POST", f"/api/rooms/{slug}/join", None, token)
    return slug


# Load ---------------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    target: str
    clients: int
    rate: float
    seconds: float
    messages: int  # measured messages sent (after warm-up)
    expected: int  # messages x (clients - 1)
    delivered: int  # distinct (message, receiver) arrivals of measured messages
    duplicates: int
    acks: int
    errors: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    p50_first_half_ms: float  # p50 over the first and the second half of the measured messages: a server that
    p50_second_half_ms: float  # cannot keep up shows a queue that grows, so the second half is much slower
    join_s: float  # from the first connect until no frame arrived for 0.5 s (0.5 s of it is that quiet wait)
    send_lag_p99_ms: float  # how late the client loop sent against its schedule (a busy client inflates figures)
    server_cpu_s: float
    wall_s: float
    # The product's own /metrics, scraped every 2 s while the load ran: what an operator's dashboard showed.
    metrics_peak_sockets: float = float("nan")
    metrics_messages: float = float("nan")

    @property
    def lost(self) -> int:
        return self.expected - self.delivered


@dataclass
class ClientState:
    index: int
    seen: set[int] = field(default_factory=set)
    latencies_ms: list[float] = field(default_factory=list)
    message_indexes: list[int] = field(default_factory=list)  # parallel to latencies_ms
    duplicates: int = 0
    acks: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def run_load(
    ws_url: str,
    origin: str,
    tokens: list[str | None],
    rate: float,
    seconds: float,
    warmup: float,
    drain: float,
    expect_acks: bool,
) -> tuple[list[ClientState], int, list[float], float]:
    """Connects one client per token, sends on schedule, collects arrivals (and acks, when the server sends
    them) until all came or the drain ran out; returns (states, measured messages, send lags in ms, seconds
    from the first connect until the room was quiet)."""
    from websockets.asyncio.client import connect

    clients = len(tokens)
    total = round(rate * (warmup + seconds))
    first_measured = round(rate * warmup)
    expected = (total - first_measured) * (clients - 1)
    states = [ClientState(index) for index in range(clients)]
    send_lags_ms: list[float] = []
    received = 0
    last_frame_ns = time.perf_counter_ns()
    all_arrived = asyncio.Event()

    def check_done() -> None:
        if received >= expected and (not expect_acks or sum(state.acks for state in states) >= total):
            all_arrived.set()

    check_done()

    connections = []
    connect_started_ns = time.perf_counter_ns()
    try:
        for token in tokens:
            headers = {"Authorization": f"Bearer {token}"} if token else None
            connections.append(
                await connect(
                    ws_url,
                    origin=origin,
                    additional_headers=headers,
                    compression=None,  # neither server is asked to deflate: no client CPU spent on it either
                    proxy=None,  # loopback only, whatever proxy the environment names
                    ping_interval=None,
                    open_timeout=30,
                    max_queue=None,
                )
            )

        async def read(state: ClientState, connection) -> None:
            nonlocal received
            nonlocal last_frame_ns
            async for raw in connection:
                arrived = last_frame_ns = time.perf_counter_ns()
                event = json.loads(raw)
                kind = event.get("type")
                if kind == "message.new":
                    stamp = TEXT_STAMP.match(event["message"].get("text") or "")
                    if stamp is None:
                        continue
                    message_index, sent_ns = int(stamp[1]), int(stamp[2])
                    if message_index < first_measured or message_index % clients == state.index:
                        continue  # warm-up, or the reader's own message (not a delivery to another member)
                    if message_index in state.seen:
                        state.duplicates += 1
                        continue
                    state.seen.add(message_index)
                    state.latencies_ms.append((arrived - sent_ns) / 1e6)
                    state.message_indexes.append(message_index)
                    received += 1
                    check_done()
                elif kind == "message.ack":
                    state.acks += 1
                    check_done()
                elif kind == "error":
                    code = str(event.get("code"))
                    state.errors[code] = state.errors.get(code, 0) + 1

        async def write(state: ClientState, connection, start_ns: int) -> None:
            for message_index in range(state.index, total, clients):
                due_ns = start_ns + round(message_index * 1e9 / rate)
                delay = (due_ns - time.perf_counter_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_ns = time.perf_counter_ns()
                if message_index >= first_measured:
                    send_lags_ms.append((sent_ns - due_ns) / 1e6)
                text = f"[{message_index}:{sent_ns}] Hello everyone, this is a benchmark message about the weather."
                await connection.send(
                    json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": text})
                )

        readers = [asyncio.create_task(read(s, c)) for s, c in zip(states, connections, strict=True)]
        # Joining sends presence events to the room (N x N of them on the product): the clock starts once no
        # frame has arrived for half a second, so the storm of a room filling up is not counted as delivery.
        settle_deadline = time.monotonic() + 30
        while time.monotonic() < settle_deadline and time.perf_counter_ns() - last_frame_ns < 500_000_000:
            await asyncio.sleep(0.05)
        settled_s = (time.perf_counter_ns() - connect_started_ns) / 1e9
        start_ns = time.perf_counter_ns() + 50_000_000
        await asyncio.gather(*(write(s, c, start_ns) for s, c in zip(states, connections, strict=True)))
        # Ends as soon as everything has arrived; what has not arrived by the drain's end counts as lost.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_arrived.wait(), timeout=drain)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    finally:
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
    return states, total - first_measured, send_lags_ms, settled_s


async def first_delivery(ws_url: str, origin: str, tokens: list[str | None], timeout: float = 60.0) -> float:
    """Milliseconds from one client's send to the other's `message.new`: the first message after start-up pays
    for whatever the server loads lazily, so it is timed apart and sent before any measured run."""
    from websockets.asyncio.client import connect

    options = {"origin": origin, "compression": None, "proxy": None, "ping_interval": None, "open_timeout": 30}
    sender_headers, reader_headers = ({"Authorization": f"Bearer {t}"} if t else None for t in tokens[:2])
    async with (
        connect(ws_url, additional_headers=sender_headers, **options) as sender,
        connect(ws_url, additional_headers=reader_headers, **options) as reader,
    ):
        started = time.perf_counter_ns()
        text = f"[0:{started}] First message after start-up."
        await sender.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": text}))
        async with asyncio.timeout(timeout):
            async for raw in reader:
                if json.loads(raw).get("type") == "message.new":
                    return (time.perf_counter_ns() - started) / 1e6
    raise RuntimeError("the reader closed before the first message arrived")


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive method); the value itself when there is one, NaN when there are none."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


class MetricsWatch:
    """Scrapes the product's GET /metrics in a thread every 2 s while a run goes on: the peak of open sockets and
    how many messages it counted, so the report shows the live figures an operator would have seen under load."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.peak_sockets = float("nan")
        self.first_messages: float | None = None
        self.last_messages = float("nan")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-watch", daemon=True)

    def _scrape(self) -> dict[str, float]:
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.url, timeout=2) as response:
            text = response.read().decode()
        wanted = {"bridge_websocket_connections", "bridge_messages_total"}
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name in wanted
        }

    def _observe(self) -> None:
        try:
            figures = self._scrape()
        except (OSError, ValueError):
            return
        sockets = figures.get("bridge_websocket_connections")
        if sockets is not None and not sockets <= self.peak_sockets:  # NaN-safe max
            self.peak_sockets = sockets
        messages = figures.get("bridge_messages_total")
        if messages is not None:
            self.first_messages = messages if self.first_messages is None else self.first_messages
            self.last_messages = messages

    def _run(self) -> None:
        while not self._stop.is_set():
            self._observe()
            self._stop.wait(2.0)  # often enough to see the load, rarely enough not to add to it

    def __enter__(self) -> MetricsWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._observe()  # once more after the run: the message count covers all of it

    @property
    def messages(self) -> float:
        return float("nan") if self.first_messages is None else self.last_messages - self.first_messages


def measure(target: str, server: Server, tokens: list[str | None], slug: str, options: argparse.Namespace) -> RunResult:
    cpu_before, wall_before = server.cpu_seconds(), time.monotonic()
    watch = MetricsWatch(f"{server.http}/metrics") if target == "product" else None
    with watch or contextlib.nullcontext():
        states, measured, lags, settled_s = asyncio.run(
            run_load(
                server.ws_url(slug),
                server.http,
                tokens,
                options.rate,
                options.seconds,
                options.warmup,
                options.drain,
                expect_acks=target == "product",  # the baseline sends no acks
            )
        )
    latencies = [value for state in states for value in state.latencies_ms]
    middle = round(options.rate * options.warmup) + measured / 2
    halves: tuple[list[float], list[float]] = ([], [])
    for state in states:
        for index, value in zip(state.message_indexes, state.latencies_ms, strict=True):
            halves[index >= middle].append(value)
    errors: dict[str, int] = {}
    for state in states:
        for code, count in state.errors.items():
            errors[code] = errors.get(code, 0) + count
    return RunResult(
        target=target,
        clients=len(tokens),
        rate=options.rate,
        seconds=options.seconds,
        messages=measured,
        expected=measured * (len(tokens) - 1),
        delivered=len(latencies),
        duplicates=sum(state.duplicates for state in states),
        acks=sum(state.acks for state in states),
        errors=errors,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies, default=float("nan")),
        mean_ms=statistics.fmean(latencies) if latencies else float("nan"),
        p50_first_half_ms=percentile(halves[0], 50),
        p50_second_half_ms=percentile(halves[1], 50),
        join_s=settled_s,
        send_lag_p99_ms=percentile(lags, 99),
        server_cpu_s=server.cpu_seconds() - cpu_before,
        wall_s=time.monotonic() - wall_before,
        metrics_peak_sockets=watch.peak_sockets if watch else float("nan"),
        metrics_messages=watch.messages if watch else float("nan"),
    )


# Report -------------------------------------------------------------------------------------------------------


def machine_facts() -> dict:
    load = os.getloadavg()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg_1_5_15": [round(value, 2) for value in load],
    }


def pairs(results: list[RunResult]) -> list[tuple[RunResult, RunResult]]:
    by_key = {(r.target, r.clients): r for r in results}
    return [
        (by_key[("product", r.clients)], r)
        for r in results
        if r.target == "baseline" and ("product", r.clients) in by_key
    ]


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def table(results: list[RunResult]) -> list[str]:
    lines = [
        "| clients | target | p50 ms | p95 ms | p99 ms | max ms | p50 1st / 2nd half ms | delivered / expected "
        "| lost | server CPU s | join s | p50 ratio | p99 ratio |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for product, baseline in pairs(results):
        for run in (product, baseline):
            ratios = (
                f"{ratio(product.p50_ms, baseline.p50_ms):.2f} | {ratio(product.p99_ms, baseline.p99_ms):.2f}"
                if run is product
                else " | "
            )
            lines.append(
                f"| {run.clients} | {run.target} | {run.p50_ms:.1f} | {run.p95_ms:.1f} | {run.p99_ms:.1f} | "
                f"{run.max_ms:.1f} | {run.p50_first_half_ms:.1f} / {run.p50_second_half_ms:.1f} | "
                f"{run.delivered} / {run.expected} | {run.lost} | {run.server_cpu_s:.2f} | {run.join_s:.1f} | "
                f"{ratios} |"
            )
    return lines


def goal_lines(results: list[RunResult]) -> list[str]:
    lines = []
    goals = [
        (20, "issue 2: p99 < 50 ms at 20 clients and 20 msg/s, within 2x of the baseline"),
        (50, "issue 8: p99 < 50 ms at 50 clients and 20 msg/s, within 2x of the baseline, no drops"),
    ]
    for clients, title in goals:
        matching = [(p, b) for p, b in pairs(results) if p.clients == clients and p.rate == 20]
        if not matching:
            lines.append(f"- {title}: not measured in this run.")
            continue
        product, baseline = matching[0]
        p99_ratio = ratio(product.p99_ms, baseline.p99_ms)
        checks = [
            (product.p99_ms < GOAL_P99_MS, f"p99 {product.p99_ms:.1f} ms vs {GOAL_P99_MS:.0f} ms"),
            (p99_ratio <= GOAL_RATIO, f"p99 ratio {p99_ratio:.2f} vs {GOAL_RATIO:.0f}x"),
            (product.lost == 0, f"{product.lost} lost"),
        ]
        verdict = "MET" if all(ok for ok, _ in checks) else "NOT MET"
        lines.append(f"- {title}: **{verdict}** ({'; '.join(text for _, text in checks)}).")
    return lines


def write_report(path: Path, payload: dict, results: list[RunResult]) -> None:
    facts, params = payload["machine"], payload["parameters"]
    lines = [
        "# Websocket delivery benchmark",
        "",
        f"Generated by `python bench/bench_delivery.py{' --short' if payload['mode'] == 'short' else ''}` on "
        f"{payload['date']}.",
        "",
        f"Machine: {facts['platform']}, Python {facts['python']}, {facts['cpu_count']} CPUs; load average "
        f"(1/5/15 min) {facts['loadavg_1_5_15']} before, {payload['loadavg_after']} after (other jobs share "
        "these cores; figures move with load).",
        "",
        f"Parameters: {params['rate']} messages/s in all, spread evenly over the clients of one room; "
        f"{params['warmup']} s warm-up (not counted), then {params['seconds']} s measured; up to {params['drain']} s "
        "for the last arrivals (what has not arrived by then counts as lost). Latency: from the sender's `send` "
        "to another member's arrival of `message.new` "
        "(same process, one clock), over every (message, other member) pair. Product: Daphne on "
        "`chatsite.asgi`, SQLite (WAL), DEBUG off, Redis channel layer, no Celery workers (follow-up tasks queue "
        "up unread). Baseline: `bench/baseline_asgi.py`, Daphne, the same Redis channel layer settings, no "
        "database. Ratios are product / baseline. Server CPU: the Daphne process's user+system seconds "
        "during the run. Join: seconds from the first connect until the room was quiet (no frame for 0.5 s, "
        "which is included); the clock of the run starts then.",
        "",
        *table(results),
        "",
        "First message after start-up (timed apart, before the runs above): "
        + ", ".join(f"{target} {ms:.0f} ms" for target, ms in payload["first_delivery_ms"].items())
        + ".",
        "",
        "## Goals",
        "",
        *goal_lines(results),
        "",
    ]
    lines += ["Where the product's time goes, and how to profile it: see bench/README.md.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def print_table(results: list[RunResult]) -> None:
    print(
        f"{'N':>4} {'target':<9}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'p50 1st/2nd half':>18}"
        f"{'delivered/expected':>20}{'lost':>6}{'cpu s':>7}{'join s':>7}{'lag99':>7}  errors"
    )
    for run in results:
        halves = f"{run.p50_first_half_ms:.1f}/{run.p50_second_half_ms:.1f}"
        print(
            f"{run.clients:>4} {run.target:<9}{run.p50_ms:>8.1f}{run.p95_ms:>8.1f}{run.p99_ms:>8.1f}{run.max_ms:>8.1f}"
            f"{halves:>18}{f'{run.delivered}/{run.expected}':>20}{run.lost:>6}{run.server_cpu_s:>7.2f}{run.join_s:>7.1f}"
            f"{run.send_lag_p99_ms:>7.1f}  {run.errors or ''}"
        )
    for product, baseline in pairs(results):
        print(
            f"N={product.clients}: product/baseline p50 {ratio(product.p50_ms, baseline.p50_ms):.2f}x, "
            f"p99 {ratio(product.p99_ms, baseline.p99_ms):.2f}x"
        )


# Main ---------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="CI mode: N = 10,20 for 4 s each (< 60 s)")
    parser.add_argument("--clients", help="comma-separated client counts (default 10,20,50,100; short 10,20)")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second, all clients together")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per run (default 10; short 4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds sent first and not counted")
    parser.add_argument(
        "--drain", type=float, default=10.0, help="longest wait for the last arrivals (ends early when all came)"
    )
    parser.add_argument("--redis-db", type=int, default=15, help="Redis database to use (flushed before and after)")
    parser.add_argument("--redis-host", default="127.0.0.1:6379")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where delivery.json goes")
    parser.add_argument("--report", type=Path, default=None, help="markdown report path")
    parser.add_argument("--targets", default="product,baseline", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    options.client_counts = [
        int(n) for n in (options.clients or ("10,20" if options.short else "10,20,50,100")).split(",")
    ]
    if min(options.client_counts) < 2:
        parser.error("every client count must be at least 2 (deliveries go to the OTHER members)")
    if options.seconds is None:
        options.seconds = 4.0 if options.short else 10.0
    if options.report is None:
        options.report = options.out / "delivery-short.md" if options.short else REPORT
    options.target_list = options.targets.split(",")
    return options


def main(argv: list[str] | None = None) -> int:
    import redis

    options = parse_args(argv)
    redis_url = f"redis://{options.redis_host}/{options.redis_db}"
    layer_db = redis.Redis.from_url(redis_url)
    facts = machine_facts()
    results: list[RunResult] = []
    first_ms: dict[str, float] = {}
    servers: list[Server] = []
    # FLUSHDB would pull the floor from under another delivery bench on this database: refuse instead.
    if not layer_db.set(LOCK_KEY, os.getpid(), ex=3600, nx=True):
        raise SystemExit(f"another delivery bench holds {redis_url} ({LOCK_KEY}); pass another --redis-db")
    work = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    failed = True
    try:
        layer_db.flushdb()
        layer_db.set(LOCK_KEY, os.getpid(), ex=3600)
        env = server_env(work, redis_url)
        tokens: list[str] = []
        if "product" in options.target_list:
            started = time.monotonic()
            tokens = migrate_and_make_users(env, max(options.client_counts))
            print(f"migrated and made {len(tokens)} users in {time.monotonic() - started:.1f} s", flush=True)
        if "product" in options.target_list:
            servers.append(start_daphne("product", "chatsite.asgi:application", work, env))
        if "baseline" in options.target_list:
            servers.append(start_daphne("baseline", "bench.baseline_asgi:application", work, env))
        for server in servers:
            server.wait_ready()
        for server in servers:
            print(f"{server.name} ready; idle after {server.wait_idle():.1f} s more", flush=True)
        by_name = {server.name: server for server in servers}
        for target in options.target_list:
            server = by_name[target]
            slug = product_room(server, tokens[:2]) if target == "product" else "first"
            first_ms[target] = asyncio.run(
                first_delivery(server.ws_url(slug), server.http, tokens[:2] if target == "product" else [None, None])
            )
            print(f"{target}: first message after start-up delivered in {first_ms[target]:.0f} ms", flush=True)
        for clients in options.client_counts:
            for target in options.target_list:
                server = by_name[target]
                if target == "product":
                    slug, run_tokens = product_room(server, tokens[:clients]), tokens[:clients]
                else:
                    slug, run_tokens = f"room-{clients}-{uuid.uuid4().hex[:6]}", [None] * clients
                server.wait_idle()  # the previous run's late work (disconnects, presence) is not this run's
                print(f"{time.strftime('%H:%M:%S')} {target} N={clients} starts", flush=True)
                result = measure(target, server, run_tokens, slug, options)
                results.append(result)
                print(
                    f"{target} N={clients}: p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                    f"{result.delivered}/{result.expected} delivered",
                    flush=True,
                )
            for server in servers:
                if server.process.poll() is not None:
                    raise RuntimeError(f"{server.name} exited during the run; log tail:\n{server.log_tail()}")
        failed = False
    finally:
        for server in servers:
            server.stop()
        try:
            layer_db.flushdb()  # follow-up tasks no worker read, groups, rate-limit counters
        except redis.RedisError as exc:
            print(f"could not flush {redis_url}: {exc}", file=sys.stderr)
        if failed:
            kept = options.out / "delivery-logs"
            kept.mkdir(parents=True, exist_ok=True)
            for log in work.glob("*.log"):
                shutil.copy(log, kept / log.name)
            print(f"server logs kept in {kept}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    print_table(results)
    payload = {
        "benchmark": "delivery",
        "mode": "short" if options.short else "full",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": facts,
        "loadavg_after": [round(value, 2) for value in os.getloadavg()],
        "parameters": {
            "clients": options.client_counts,
            "rate": options.rate,
            "seconds": options.seconds,
            "warmup": options.warmup,
            "drain": options.drain,
        },
        "first_delivery_ms": first_ms,
        "runs": [{**asdict(run), "lost": run.lost} for run in results],
        "ratios": [
            {
                "clients": product.clients,
                "p50": ratio(product.p50_ms, baseline.p50_ms),
                "p99": ratio(product.p99_ms, baseline.p99_ms),
            }
            for product, baseline in pairs(results)
        ],
        "goals": goal_lines(results),
    }
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "delivery.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    write_report(options.report, payload, results)
    print("\n".join(payload["goals"]))
    print(f"wrote {options.out / 'delivery.json'} and {options.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
