"""Fixtures shared by the whole suite.

`live_server_url` starts the real product for integration and browser tests: a migrated SQLite file, Daphne on
a free port, and Celery workers for the model queues, all on the real Redis (a database number of their own).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Letters only: a digit-heavy password was once "too similar" to a random username like w421736 (CI, stop 14).
TEST_PASSWORD = "quiet-harbour-lantern"


def live_redis_url() -> str:
    # A database of its own per live product, so concurrent test runs on one machine do not share queues.
    db = os.environ.get("BRIDGE_TEST_REDIS_DB") or str(random.randint(1, 12))
    return f"redis://127.0.0.1:6379/{db}"


def pytest_collection_modifyitems(config, items) -> None:
    if os.environ.get("BRIDGE_SLOW") == "1":
        return
    skip_slow = pytest.mark.skip(reason="slow: set BRIDGE_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture
def make_db_user(db):
    from chatsite.models import User

    def make(username: str | None = None, language: str = "en", **extra) -> User:
        user = User(username=username or f"u{uuid.uuid4().hex[:10]}", language=language, **extra)
        user.set_password(TEST_PASSWORD)
        user.save()
        return user

    return make


@pytest.fixture
def make_room(db):
    from chatsite import services

    def make(creator, *members, name: str = "General"):
        room = services.create_room(name=name, creator=creator)
        for member in members:
            services.join_room(room=room, user=member)
        return room

    return make


# Live product ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveProduct:
    """The product's processes for one test session; workers can be killed and restarted by tests."""

    def __init__(self, base_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.base_dir = base_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis_url = live_redis_url()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "DATABASE_URL": f"sqlite:///{base_dir / 'live.sqlite3'}",
            "REDIS_URL": self.redis_url,
            "BRIDGE_MODEL_ROOT": str(base_dir / "models"),
            "CELERY_VISIBILITY_TIMEOUT": "8",
            "CELERY_UNACKED_RESTORE_INTERVAL": "2",
            # Structured logs, as in production (tests/integration/test_logs.py reads them).
            "LOG_FORMAT": "json",
            # Every live test signs up and logs in from 127.0.0.1: the per-IP sign-up and login limits (tested in
            # tests/core) would otherwise throttle the suite itself.
            "BRIDGE_AUTH_RATE_PER_MINUTE": "10000",
            "BRIDGE_LOGIN_RATE_PER_MINUTE": "10000",
            # The sweeper at test speed: every 2 s, for messages older than 10 s.
            "BRIDGE_SWEEP_INTERVAL_S": "2",
            "BRIDGE_SWEEP_GRACE_S": "10",
            "PYTHONUNBUFFERED": "1",
            # As in the Procfile: on two cores, one torch thread per worker is many times faster than two.
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **(extra_env or {}),
        }
        # As under bin/run: every process writes its metrics here and /metrics on the web process sums them.
        (base_dir / "prometheus").mkdir(exist_ok=True)
        self.env["PROMETHEUS_MULTIPROC_DIR"] = str(base_dir / "prometheus")
        self.env.pop("BRIDGE_CHANNEL_LAYER", None)
        self.env.pop("BRIDGE_CACHE", None)
        self.processes: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.base_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the process's life)
        # A session of its own: killing a process group also kills what a bin/respawn wrapper started.
        process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def start(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )
        self._spawn(
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
        self.start_worker("translation")
        self.start_worker("sentiment")
        self.start_beat()
        self.wait_healthy()

    def start_beat(self, respawn: bool = False) -> subprocess.Popen:
        """Celery beat, as in the Procfile: it schedules the sweeper that re-sends lost follow-up work."""
        schedule = self.base_dir / "celerybeat-schedule"
        return self._spawn(
            "beat",
            [str(ROOT / "bin" / "respawn")] * respawn
            + [sys.executable, "-m", "celery", "-A", "chatsite", "beat", "-s", str(schedule), "-l", "INFO"],
        )

    def start_worker(self, queue: str, concurrency: int = 4, respawn: bool = False) -> subprocess.Popen:
        """A model worker on `queue` (and the maintenance queue, as in the Procfile); `respawn` wraps it in
        bin/respawn, the Procfile's restart loop."""
        return self._spawn(
            f"worker-{queue}",
            [str(ROOT / "bin" / "respawn")] * respawn
            + [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "chatsite",
                "worker",
                "-Q",
                f"{queue},maintenance",
                "-P",
                "threads",
                "-c",
                str(concurrency),
                "-n",
                f"{queue}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],
        )

    def kill_worker(self, queue: str) -> None:
        process = self.processes.pop(f"worker-{queue}")
        os.killpg(process.pid, signal.SIGKILL)  # the worker and, under bin/respawn, its wrapper
        process.wait(timeout=10)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if self.processes["web"].poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"the web process did not become healthy; see {self.base_dir / 'web.log'}")

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # anything left in its group (a respawned worker)

    def room_with(self, *people: tuple[str, str], name: str = "Live") -> tuple[str, list[str]]:
        """A new room of new users, one per (name prefix, language); the first creates it. (slug, their tokens)."""
        tokens = [self.signup(f"{prefix}{uuid.uuid4().hex[:6]}", language) for prefix, language in people]
        status, room = self.api("POST", "/api/rooms", {"name": name}, tokens[0])
        assert status == 201, room
        for token in tokens[1:]:
            assert self.api("POST", f"/api/rooms/{room['slug']}/join", {}, token)[0] == 200
        return room["slug"], tokens

    def log(self, name: str) -> str:
        """What process `name` (web, worker-translation, worker-sentiment, beat) has written so far."""
        path = self.base_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **env},
            check=True,
            capture_output=True,
            text=True,
        )

    def admin_token(self) -> str:
        name = f"admin{uuid.uuid4().hex[:6]}"
        self.manage(
            "createsuperuser",
            "--noinput",
            "--username",
            name,
            "--email",
            f"{name}@example.com",
            DJANGO_SUPERUSER_PASSWORD=TEST_PASSWORD,
        )
        status, body = self.api("POST", "/api/auth/token", {"username": name, "password": TEST_PASSWORD})
        assert status == 200, body
        return body["token"]

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path, method=method, data=json.dumps(body).encode() if body else None
        )
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def signup(self, username: str, language: str) -> str:
        status, body = self.api(
            "POST",
            "/api/auth/signup",
            {"username": username, "password": TEST_PASSWORD, "language": language},
        )
        assert status == 201, body
        status, body = self.api("POST", "/api/auth/token", {"username": username, "password": TEST_PASSWORD})
        assert status == 200, body
        return body["token"]


def run_script(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run one of the repository's scripts (``bench/...``) with this interpreter from the repository root."""
    return subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def output_tail(done: subprocess.CompletedProcess[str]) -> str:
    """The end of a finished script's output, for an assertion message."""
    return f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"


def emotion_model_dir() -> Path:
    """The default emotion model for the live product, built once by the product's own command and cached.

    Order: BRIDGE_TEST_SENTIMENT_DIR; the checkout's own var/models (after bin/run); a cache under
    ~/.cache/bridge keyed by the dataset and the training recipe, so a second run (and CI on the same machine)
    reuses it. Building it is part of what the suite proves: the pipeline makes the model offline.
    """
    explicit = os.environ.get("BRIDGE_TEST_SENTIMENT_DIR")
    if explicit:
        return Path(explicit)
    local = ROOT / "var" / "models" / "sentiment" / "default"
    if (local / "config.json").exists():
        return local
    recipe = hashlib.sha256()
    for path in sorted((ROOT / "data" / "sentiment").glob("*.tsv")) + [
        ROOT / "sentiment" / "training" / "default_model.py"
    ]:
        recipe.update(path.read_bytes())
    root = Path(os.environ.get("BRIDGE_TEST_MODEL_CACHE", Path.home() / ".cache" / "bridge")) / recipe.hexdigest()[:12]
    built = root / "sentiment" / "default"
    if not (built / "config.json").exists():
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.settings", "BRIDGE_MODEL_ROOT": str(root)}
        subprocess.run([sys.executable, "manage.py", "build_models", "--quiet"], cwd=ROOT, env=env, check=True)
    return built


@pytest.fixture(scope="session")
def live_product(tmp_path_factory) -> Iterator[LiveProduct]:
    base = tmp_path_factory.mktemp("live")
    product = LiveProduct(base, {"BRIDGE_SENTIMENT_MODEL_DIR": str(emotion_model_dir())})
    product.start()
    yield product
    product.stop()


@pytest.fixture(scope="session")
def live_server_url(live_product: LiveProduct) -> str:
    return live_product.url


@pytest.fixture
def make_user(live_product: LiveProduct):
    """A user of the live product who logs in with TEST_PASSWORD; returns the username."""

    def make(username: str | None = None, language: str = "en") -> str:
        name = username or f"u{uuid.uuid4().hex[:8]}"
        live_product.signup(name, language)
        return name

    return make
