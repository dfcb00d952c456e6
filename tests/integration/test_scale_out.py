"""Scale-out: two Daphne processes on two ports share one Redis channel layer and one database. Clients on
different processes chat with each other, resume across processes, and get their translations."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port
from tests.integration.wsclient import next_of, open_socket, run_async

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def second_web(live_product):
    """A second Daphne beside the live product's, on its own port, with the same settings."""
    port = free_port()
    process = live_product._spawn(
        "web-2",
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "chatsite.asgi:application"],
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        raise RuntimeError("the second web process did not become healthy")
    yield port
    process.terminate()
    process.wait(timeout=10)
    live_product.processes.pop("web-2", None)


async def _new_with_id(ws, message_id: int) -> dict:
    """The message.new of one message (a sender also gets its own message.new)."""
    while True:
        event = await next_of(ws, "message.new")
        if event["message"]["id"] == message_id:
            return event


async def _send(ws, text: str) -> dict:
    await ws.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": text}))
    return (await next_of(ws, "message.ack"))["message"]


def test_clients_on_two_web_processes_chat_resume_and_get_translations(live_product, second_web):
    slug, (en_token, es_token) = live_product.room_with(("en", "en"), ("es", "es"), name="Two processes")
    first_port, second_port = live_product.port, second_web

    async def scenario() -> None:
        en = await open_socket(live_product, slug, en_token, port=first_port)
        es = await open_socket(live_product, slug, es_token, port=second_port)
        # Across processes, both ways, with the Spanish reader's translation delivered on the second process.
        sent = await _send(en, "The house is very big and the dog is happy.")
        await _new_with_id(es, sent["id"])
        translated = await next_of(es, "message.translated", timeout=60)
        assert translated["id"] == sent["id"] and "casa" in translated["text"].lower()
        reply = await _send(es, "Mi hermana trabaja en una tienda grande.")
        await _new_with_id(en, reply["id"])

        # The Spanish reader leaves the second process; two messages are sent meanwhile; it comes back on the
        # first process and resumes after the last seq it saw: exactly the missed ones, in order.
        await es.close()
        missed = [await _send(en, f"Message number {i} while you were away.") for i in range(2)]
        es = await open_socket(live_product, slug, es_token, port=first_port)
        await es.send(json.dumps({"type": "resume", "after": reply["seq"]}))
        replayed = [await next_of(es, "message.new") for _ in missed]
        assert [m["message"]["seq"] for m in replayed] == [m["seq"] for m in missed]
        # And live traffic continues across processes after the resume.
        live = await _send(en, "Still here?")
        await next_of(es, "resume.done")
        await _new_with_id(es, live["id"])
        await en.close()
        await es.close()

    run_async(scenario())


def _nginx_config(upstream_ports: list[int], listen_port: int, prefix: Path) -> str:
    """deploy/nginx.conf as shipped, with the test's upstream ports, a plain listening port instead of TLS, no
    redirect server, and the files nginx writes kept under `prefix`."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = re.sub(
        r"(\s*server 127\.0\.0\.1:\d+[^;]*;)+",
        "".join(f"\n    server 127.0.0.1:{port};" for port in upstream_ports),
        site,
        count=1,
    )
    site = re.sub(r"server \{\s*listen 80;.*?\n\}\n", "", site, count=1, flags=re.DOTALL)
    site = re.sub(r"listen 443 ssl http2;.*", f"listen 127.0.0.1:{listen_port};", site)
    site = re.sub(r"\n\s*ssl_certificate(_key)? .*;", "", site)
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"user root;\ndaemon off;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log {prefix / 'access.log'};\n{temp}\n{site}\n}}\n"
    )


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed (bin/setup --dev installs it)")
def test_the_shipped_nginx_config_fronts_both_web_processes(live_product, second_web, tmp_path):
    port = free_port()
    config = tmp_path / "nginx.conf"
    config.write_text(_nginx_config([live_product.port, second_web], port, tmp_path))
    checked = subprocess.run(["nginx", "-t", "-c", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    nginx = subprocess.Popen(["nginx", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        origin = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"{origin}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        slug, (en_token, es_token) = live_product.room_with(("en", "en"), ("es", "es"), name="Behind nginx")
        logs = {name: (live_product.base_dir / f"{name}.log") for name in ("web", "web-2")}
        before = {name: path.read_text(errors="replace").count('"WSCONNECT ') for name, path in logs.items()}

        async def scenario() -> None:
            # Four sockets through nginx: least_conn spreads them over both processes.
            sockets = [
                await open_socket(live_product, slug, token, origin, port=port) for token in (en_token, es_token) * 2
            ]
            sent = await _send(sockets[0], "The dog is happy.")
            for index, ws in enumerate(sockets):
                try:
                    await _new_with_id(ws, sent["id"])
                except TimeoutError:
                    # Seen once (session 6) and not reproduced: say which socket, and what each process logged.
                    tails = {name: path.read_text(errors="replace")[-2000:] for name, path in logs.items()}
                    raise AssertionError(f"socket {index} of 4 got no message.new; logs: {tails}") from None
            translated = await next_of(sockets[1], "message.translated", timeout=60)
            assert translated["id"] == sent["id"] and "perro" in translated["text"].lower()
            for ws in sockets:
                await ws.close()

        run_async(scenario())
        # The proxy caps request bodies before Daphne (which would buffer a whole body) sees a byte.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(
                b"POST /api/auth/signup HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 3000000\r\n\r\n"
            )
            assert raw.recv(100).startswith(b"HTTP/1.1 413")
        time.sleep(0.5)  # Daphne writes its access log line after the handshake
        after = {name: path.read_text(errors="replace").count('"WSCONNECT ') for name, path in logs.items()}
        assert all(after[name] > before[name] for name in logs), (before, after)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
