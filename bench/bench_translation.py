"""End-to-end translation latency: from an English writer's send to each reader's `message.translated`.

    python bench/bench_translation.py                    # 1, 5, 10 msg/s, 10 s each (~2 min)
    python bench/bench_translation.py --short            # CI: 5 msg/s for 5 s (< 60 s); report in <out>/
    python bench/bench_translation.py --rates 2,5 --seconds 20

Starts on free loopback ports and a Redis database of its own (flushed before and after; the same lock key as
bench_delivery.py, so the two never flush each other's data): the product (fresh migrated SQLite, Daphne on
chatsite.asgi) and one Celery worker for the `translation` queue (`-P threads -c 8`, OMP_NUM_THREADS=1, as in
the Procfile). No sentiment worker: sentiment tasks queue up unread until the final flush. No model checkpoints
(an empty BRIDGE_MODEL_ROOT), so routes are Apertium: en->es direct, en->fr by pivot through Spanish.

One room: an English writer, a Spanish reader and a French reader. The writer sends short English chat
sentences at a fixed rate; each reader maps message id -> send time from its own `message.new` (the text carries
the send time) and times its `message.translated`. Per rate and route: p50/p95/p99/max and counts of
ok / untranslated / failed / missing / duplicate. Writes <out>/translation.json and a markdown report
(bench/reports/translation.md in full mode, <out>/translation-short.md in short mode).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_delivery import (  # noqa: E402 (needs ROOT on sys.path first)
    LOCK_KEY,
    PASSWORD,
    Server,
    free_port,
    machine_facts,
    percentile,
    product_room,
    server_env,
    start_daphne,
)
from bench.bench_engines import rss_kib  # noqa: E402 (needs ROOT on sys.path first)

OUT_DIR = ROOT / "bench" / "out"
REPORT = ROOT / "bench" / "reports" / "translation.md"
GOAL_RATE = 5.0
GOAL_P50_MS = 300.0
GOAL_P95_MS = 1000.0
TEXT_STAMP = re.compile(r"^\[(\d+):(\d+)\]")  # "[<message index>:<perf_counter_ns at send>] ..."
ROUTES = {"es": "en->es (direct)", "fr": "en->fr (pivot)"}
SENTENCES = [
    "Good morning, how are you today?",
    "The meeting starts at ten in the big room.",
    "I think the new version works much better.",
    "Can you send me the report before lunch?",
    "We need more time to finish the project.",
    "The weather is very nice this afternoon.",
    "Thank you for your help with the house.",
    "Where is the nearest train station?",
]

# Like bench_delivery's set-up script (fast hasher, users through chatsite.services), but each user gets a
# language of its own: bench_delivery's helper makes English users only.
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
for language in sys.argv[2].split(","):
    user = services.signup(username=f"bench{language}x{uuid.uuid4().hex[:6]}", password=sys.argv[1], language=language)
    tokens.append(services.issue_token(user=user))
print(json.dumps(tokens))
"""


def make_users(env: dict[str, str], languages: list[str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SETUP_SCRIPT, PASSWORD, ",".join(languages)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"product set-up failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_worker(work: Path, env: dict[str, str], concurrency: int) -> subprocess.Popen:
    """The translation worker as in the Procfile and tests/conftest.py's LiveProduct."""
    with open(work / "worker-translation.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chatsite", "worker", "-Q", "translation", "-P", "threads"]
            + ["-c", str(concurrency), "-n", f"translation-{uuid.uuid4().hex[:6]}@%h"]
            + ["--without-gossip", "--without-mingle", "-l", "INFO"],
            cwd=ROOT,
            env={**env, "OMP_NUM_THREADS": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def start_flower(work: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    """Flower, as in the Procfile, watching the worker during the run (its JSON API on for the bench)."""
    with open(work / "flower.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chatsite", "flower", "--address=127.0.0.1", f"--port={port}"],
            cwd=ROOT,
            env={**env, "FLOWER_UNAUTHENTICATED_API": "true"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def flower_totals(port: int) -> dict[str, int]:
    """Tasks each worker has processed, by task name, as Flower reports them (empty when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/workers?refresh=1", timeout=15) as response:
            workers = json.loads(response.read())
    except (OSError, ValueError):
        return {}
    totals: dict[str, int] = {}
    for info in workers.values():
        for name, count in ((info.get("stats") or {}).get("total") or {}).items():
            totals[name] = totals.get(name, 0) + int(count)
    return totals


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (the worker's Apertium stages, which run for the worker's life)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU of the process, or (children=True) of everything below it: finished children (the
    `apertium` script per batch) plus live descendants (the long-lived Apertium stages)."""
    fields = _stat(pid)
    if fields is None:
        return float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    if not children:
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    total = int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
    for child in descendants(pid):
        child_fields = _stat(child)
        if child_fields is not None:
            total += int(child_fields[11]) + int(child_fields[12])
    return total / tick


def rss_mb(pid: int) -> float:
    """Resident memory of the process and of everything below it (the Apertium stages), in MB."""
    return round(sum(rss_kib(member) for member in [pid, *descendants(pid)]) / 1024, 1)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# Load ---------------------------------------------------------------------------------------------------------


@dataclass
class Reader:
    language: str
    sent_ns: dict[int, tuple[int, int]] = field(default_factory=dict)  # message id -> (index, send time)
    latencies_ms: dict[int, float] = field(default_factory=dict)  # message index -> ms
    statuses: dict[str, int] = field(default_factory=dict)
    engines: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    early: list[dict] = field(default_factory=list)  # translations that came before their message.new


@dataclass
class RouteResult:
    rate: float
    language: str
    route: str
    messages: int
    ok: int
    untranslated: int
    failed: int
    missing: int
    duplicates: int
    engines: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    send_lag_p99_ms: float
    web_cpu_s: float
    worker_cpu_s: float
    apertium_cpu_s: float  # the worker's child processes (Apertium pipelines)
    wall_s: float
    worker_rss_mb: float = float("nan")  # the worker with its engines loaded, Apertium stages included


async def run_rate(
    server: Server, slug: str, tokens: list[str], languages: list[str], rate: float, seconds: float, drain: float
) -> tuple[list[Reader], int, list[float]]:
    """Writer = tokens[0] (English); one Reader per other token. Returns (readers, messages sent, send lags)."""
    from websockets.asyncio.client import connect

    options = {"origin": server.http, "compression": None, "proxy": None, "ping_interval": None}
    total = max(1, round(rate * seconds))
    readers = [Reader(language) for language in languages[1:]]
    lags_ms: list[float] = []
    done = asyncio.Event()

    def check_done() -> None:
        if all(len(r.latencies_ms) >= total for r in readers):
            done.set()

    def record(reader: Reader, message_id: int, event: dict, arrived: int) -> None:
        index, sent = reader.sent_ns[message_id]
        if index in reader.latencies_ms:
            reader.duplicates += 1
            return
        reader.latencies_ms[index] = (arrived - sent) / 1e6
        status = str(event.get("status"))
        reader.statuses[status] = reader.statuses.get(status, 0) + 1
        engine = str(event.get("engine"))
        reader.engines[engine] = reader.engines.get(engine, 0) + 1
        check_done()

    async def read(reader: Reader, connection) -> None:
        async for raw in connection:
            arrived = time.perf_counter_ns()
            event = json.loads(raw)
            kind = event.get("type")
            if kind == "message.new":
                stamp = TEXT_STAMP.match(event["message"].get("text") or "")
                if stamp:
                    message_id = event["message"]["id"]
                    reader.sent_ns[message_id] = (int(stamp[1]), int(stamp[2]))
                    for early in [e for e in reader.early if e["id"] == message_id]:
                        reader.early.remove(early)
                        record(reader, message_id, early, early["_arrived"])
            elif kind == "message.translated" and event.get("language") == reader.language:
                if event["id"] in reader.sent_ns:
                    record(reader, event["id"], event, arrived)
                else:  # not expected (message.new goes first), but never lose one if it happens
                    reader.early.append({**event, "_arrived": arrived})

    async def drain_writer(connection) -> None:
        async for _ in connection:  # acks; read so the socket's buffer never fills
            pass

    async with (
        connect(server.ws_url(slug), additional_headers={"Authorization": f"Bearer {tokens[0]}"}, **options) as writer,
    ):
        reader_connections = [
            await connect(server.ws_url(slug), additional_headers={"Authorization": f"Bearer {t}"}, **options)
            for t in tokens[1:]
        ]
        tasks = [asyncio.create_task(read(r, c)) for r, c in zip(readers, reader_connections, strict=True)]
        tasks.append(asyncio.create_task(drain_writer(writer)))
        try:
            start_ns = time.perf_counter_ns()
            for index in range(total):
                due_ns = start_ns + round(index * 1e9 / rate)
                delay = (due_ns - time.perf_counter_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_ns = time.perf_counter_ns()
                lags_ms.append((sent_ns - due_ns) / 1e6)
                text = f"[{index}:{sent_ns}] {SENTENCES[index % len(SENTENCES)]}"
                await writer.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": text}))
            try:
                async with asyncio.timeout(drain):
                    await done.wait()
            except TimeoutError:
                pass
            await asyncio.sleep(0.3)  # a duplicate, if any, would come right behind
        finally:
            for task in tasks:
                task.cancel()
            for connection in reader_connections:
                await connection.close()
    return readers, total, lags_ms


async def first_translation(server: Server, slug: str, tokens: list[str], timeout: float) -> float:
    """Ms from one send to the Spanish reader's translation: waits for the worker to be up and its engines
    loaded, so the start-up cost is reported apart and stays out of the measured runs."""
    readers, _, _ = await run_rate(server, slug, tokens, ["en", "es"], 1.0, 1.0, timeout)
    latencies = list(readers[0].latencies_ms.values())
    if not latencies:
        raise RuntimeError(f"no translation within {timeout:.0f} s of the first message")
    return latencies[0]


def summarise(
    rate: float, readers: list[Reader], total: int, lags: list[float], cpu: tuple[float, float, float], wall: float
) -> list[RouteResult]:
    results = []
    for reader in readers:
        latencies = list(reader.latencies_ms.values())
        results.append(
            RouteResult(
                rate=rate,
                language=reader.language,
                route=ROUTES.get(reader.language, f"en->{reader.language}"),
                messages=total,
                ok=reader.statuses.get("ok", 0),
                untranslated=reader.statuses.get("untranslated", 0),
                failed=reader.statuses.get("failed", 0),
                missing=total - len(latencies),
                duplicates=reader.duplicates,
                engines=reader.engines,
                p50_ms=percentile(latencies, 50),
                p95_ms=percentile(latencies, 95),
                p99_ms=percentile(latencies, 99),
                max_ms=max(latencies, default=float("nan")),
                send_lag_p99_ms=percentile(lags, 99),
                web_cpu_s=cpu[0],
                worker_cpu_s=cpu[1],
                apertium_cpu_s=cpu[2],
                wall_s=wall,
            )
        )
    return results


# Report -------------------------------------------------------------------------------------------------------


def goal_lines(results: list[RouteResult]) -> list[str]:
    matching = [r for r in results if r.rate == GOAL_RATE and r.language == "es"]
    title = f"issue 3/8: en->es (Apertium) at {GOAL_RATE:g} msg/s: p50 < {GOAL_P50_MS:.0f} ms, p95 < 1 s"
    if not matching:
        return [f"- {title}: not measured in this run."]
    run = matching[0]
    checks = [
        (run.p50_ms < GOAL_P50_MS, f"p50 {run.p50_ms:.0f} ms"),
        (run.p95_ms < GOAL_P95_MS, f"p95 {run.p95_ms:.0f} ms"),
        (run.missing == 0 and run.ok == run.messages, f"{run.ok}/{run.messages} ok, {run.missing} missing"),
    ]
    verdict = "MET" if all(ok for ok, _ in checks) else "NOT MET"
    lines = [f"- {title}: **{verdict}** ({'; '.join(text for _, text in checks)})."]
    pivots = [r for r in results if r.rate == GOAL_RATE and r.language == "fr"]
    if pivots:
        pivot = pivots[0]
        verdict = "met" if pivot.p95_ms < GOAL_P95_MS and pivot.missing == 0 else "not met"
        lines.append(
            f"- en->fr by pivot at {GOAL_RATE:g} msg/s (no goal of its own; p95 < 1 s {verdict}): "
            f"p50 {pivot.p50_ms:.0f} ms, p95 {pivot.p95_ms:.0f} ms, {pivot.missing} missing."
        )
    return lines


def table(results: list[RouteResult]) -> list[str]:
    lines = [
        "| msg/s | route | p50 ms | p95 ms | p99 ms | max ms | ok | untranslated | failed | missing | dup "
        "| engine | web CPU s | worker CPU s | Apertium CPU s | wall s | worker RSS MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        engines = ", ".join(f"`{name}`" for name in r.engines)
        lines.append(
            f"| {r.rate:g} | {r.route} | {r.p50_ms:.0f} | {r.p95_ms:.0f} | {r.p99_ms:.0f} | {r.max_ms:.0f} | "
            f"{r.ok} | {r.untranslated} | {r.failed} | {r.missing} | {r.duplicates} | {engines} | "
            f"{r.web_cpu_s:.1f} | {r.worker_cpu_s:.1f} | {r.apertium_cpu_s:.1f} | {r.wall_s:.1f} | "
            f"{r.worker_rss_mb:.0f} |"
        )
    return lines


def write_report(path: Path, payload: dict, results: list[RouteResult]) -> None:
    facts, params = payload["machine"], payload["parameters"]
    lines = [
        "# End-to-end translation latency benchmark",
        "",
        f"Generated by `python bench/bench_translation.py{' --short' if payload['mode'] == 'short' else ''}` on "
        f"{payload['date']}.",
        "",
        f"Machine: {facts['platform']}, Python {facts['python']}, {facts['cpu_count']} CPUs, shared with other "
        f"jobs; `uptime` at start: `{payload['uptime_at_start']}`; load average after: {payload['loadavg_after']}.",
        "",
        f"Parameters: rates {params['rates']} msg/s, {params['seconds']} s each, up to {params['drain']} s drain "
        "after the last send (ends as soon as everything arrived; what has not arrived then is *missing*, and "
        "its late work spills into the next step). Product: Daphne on `chatsite.asgi` (SQLite, DEBUG off, Redis "
        f"channel layer), one Celery worker on queue `translation` (`-P threads -c {params['concurrency']}`, "
        "OMP_NUM_THREADS=1), no sentiment worker, no model checkpoints (routes are Apertium). One room: an "
        "English writer, a Spanish and a French reader. Latency: from the writer's send to the reader's "
        "`message.translated` (one process, one clock). CPU columns, over the whole rate step (both routes, "
        "so the same figure on both rows): the Daphne process, the worker process, and the worker's finished "
        "child processes (the Apertium pipelines it starts); wall s: the step's length, send to last arrival.",
        "",
        *table(results),
        "",
        f"First translation after start-up (worker start and engine load, timed apart): "
        f"{payload['first_translation_ms']:.0f} ms.",
        "",
        "## Goals",
        "",
        *goal_lines(results),
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


# Main ---------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="CI mode: 5 msg/s for 5 s (< 60 s)")
    parser.add_argument("--rates", help="comma-separated messages/s (default 1,5,10; short 5)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of sending per rate (default 10; short 5)")
    parser.add_argument(
        "--drain",
        type=float,
        default=60.0,
        help="longest wait after the last send for the last translations (ends early when all came); long, so a "
        "backlog is measured as latency rather than cut off, and never spills into the next rate's step",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="translation worker threads")
    parser.add_argument("--redis-db", type=int, default=15, help="Redis database (flushed before and after)")
    parser.add_argument("--redis-host", default="127.0.0.1:6379")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where translation.json goes")
    parser.add_argument("--keep-logs", action="store_true", help="copy the web and worker logs to <out>/")
    parser.add_argument("--report", type=Path, default=None, help="markdown report path")
    options = parser.parse_args(argv)
    options.rate_list = [float(r) for r in (options.rates or ("5" if options.short else "1,5,10")).split(",")]
    if options.seconds is None:
        options.seconds = 5.0 if options.short else 10.0
    if options.report is None:
        options.report = options.out / "translation-short.md" if options.short else REPORT
    return options


def main(argv: list[str] | None = None) -> int:
    import redis

    options = parse_args(argv)
    redis_url = f"redis://{options.redis_host}/{options.redis_db}"
    db = redis.Redis.from_url(redis_url)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    facts = machine_facts()
    if not db.set(LOCK_KEY, os.getpid(), ex=3600, nx=True):
        raise SystemExit(f"another bench holds {redis_url} ({LOCK_KEY}); pass another --redis-db")
    work = Path(tempfile.mkdtemp(prefix="bench-translation-"))
    server: Server | None = None
    worker: subprocess.Popen | None = None
    flower: subprocess.Popen | None = None
    flower_seen: dict[str, int] = {}
    results: list[RouteResult] = []
    failed = True
    languages = ["en", "es", "fr"]
    try:
        db.flushdb()
        db.set(LOCK_KEY, os.getpid(), ex=3600)
        env = server_env(work, redis_url)
        (work / "models").mkdir()
        started = time.monotonic()
        tokens = make_users(env, languages)
        print(f"migrated and made {len(tokens)} users in {time.monotonic() - started:.1f} s", flush=True)
        server = start_daphne("product", "chatsite.asgi:application", work, env)
        worker = start_worker(work, env, options.concurrency)
        flower_port = free_port()
        flower = start_flower(work, env, flower_port)
        server.wait_ready()
        slug = product_room(server, tokens)
        first_ms = asyncio.run(first_translation(server, slug, tokens[:2], timeout=90))
        print(f"first translation after start-up: {first_ms:.0f} ms", flush=True)
        print(f"web idle after {server.wait_idle():.1f} s more", flush=True)
        for rate in options.rate_list:

            def cpu_now() -> tuple[float, float, float]:
                return server.cpu_seconds(), cpu_seconds(worker.pid), cpu_seconds(worker.pid, children=True)

            before, wall_before = cpu_now(), time.monotonic()
            print(f"{time.strftime('%H:%M:%S')} rate {rate:g} msg/s starts", flush=True)
            readers, total, lags = asyncio.run(
                run_rate(server, slug, tokens, languages, rate, options.seconds, options.drain)
            )
            cpu = tuple(after - first for after, first in zip(cpu_now(), before, strict=True))
            step = summarise(rate, readers, total, lags, cpu, time.monotonic() - wall_before)
            for r in step:
                r.worker_rss_mb = rss_mb(worker.pid)
            results += step
            for r in step:
                print(
                    f"  {r.route}: p50 {r.p50_ms:.0f} ms, p95 {r.p95_ms:.0f} ms, max {r.max_ms:.0f} ms, "
                    f"ok {r.ok}/{r.messages}, missing {r.missing}, dup {r.duplicates}, {r.engines}, "
                    f"worker RSS {r.worker_rss_mb:.0f} MB",
                    flush=True,
                )
            for process, name in ((server.process, "web"), (worker, "worker")):
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited during the run")
        flower_seen = flower_totals(flower_port)
        print(f"Flower saw the worker process: {flower_seen}", flush=True)
        failed = False
    finally:
        if flower is not None:
            stop(flower)
        if worker is not None:
            stop(worker)
        if server is not None:
            server.stop()
        try:
            db.flushdb()
        except redis.RedisError as exc:
            print(f"could not flush {redis_url}: {exc}", file=sys.stderr)
        if failed or options.keep_logs:
            kept = options.out / "translation-logs"
            kept.mkdir(parents=True, exist_ok=True)
            for log in work.glob("*.log"):
                shutil.copy(log, kept / log.name)
            print(f"logs kept in {kept}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    payload = {
        "benchmark": "translation",
        "mode": "short" if options.short else "full",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": facts,
        "uptime_at_start": uptime,
        "loadavg_after": [round(value, 2) for value in os.getloadavg()],
        "parameters": {
            "rates": options.rate_list,
            "seconds": options.seconds,
            "drain": options.drain,
            "concurrency": options.concurrency,
        },
        "first_translation_ms": first_ms,
        # Flower, watching the live worker: tasks it counted, by name (its own view of the same run).
        "flower_tasks": flower_seen,
        "runs": [asdict(r) for r in results],
        "goals": goal_lines(results),
    }
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "translation.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    write_report(options.report, payload, results)
    print("\n".join(payload["goals"]))
    print(f"wrote {options.out / 'translation.json'} and {options.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
