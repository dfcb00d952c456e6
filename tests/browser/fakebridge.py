"""A scripted stand-in for the Bridge server, wired into Playwright's request and websocket routing.

It speaks the protocol of CONTRACT.md (history, resume, send/ack with client_id dedupe, translations,
sentiment, hide, edit, typing, presence, language) so the real templates and the real static/js code can be
driven into states that are hard to reach on demand against the real server: a dropped socket, a lost ack,
a rate limit.
"""

from __future__ import annotations

import json
import mimetypes
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import BrowserContext, Route, WebSocketRoute

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "http://localhost:8765"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws://localhost:8765; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
LANGUAGES = [("en", "English"), ("es", "Español"), ("fr", "Français"), ("de", "Deutsch"), ("ja", "日本語")]


def render_template(template: str, context: dict) -> str:
    """Render a project template in a clean interpreter (see render_page.py)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(context, handle)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("render_page.py")), template, handle.name],
        capture_output=True,
        text=True,
        check=True,
    )
    Path(handle.name).unlink()
    return done.stdout


def serve_static(route: Route) -> None:
    """Answer /static/... from the repository's static/ folder, as Django's staticfiles would."""
    path = ROOT / urlparse(route.request.url).path.lstrip("/")
    if not path.is_file() or ROOT / "static" not in path.resolve().parents:
        route.fulfill(status=404, body="")
        return
    content_type = "text/javascript" if path.suffix == ".js" else mimetypes.guess_type(path.name)[0]
    route.fulfill(status=200, content_type=content_type or "application/octet-stream", body=path.read_bytes())


def serve_page(route: Route, html: str) -> None:
    route.fulfill(
        status=200,
        content_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": CSP},
        body=html,
    )


@dataclass
class Connection:
    ws: WebSocketRoute
    user: str
    language: str
    frames: list[dict] = field(default_factory=list)

    def send(self, frame: dict) -> None:
        self.ws.send(json.dumps(frame))


class FakeBridge:
    """One room, many users; every page/context attached to it shares the same messages."""

    def __init__(self, room: str = "lobby") -> None:
        self.room = room
        self.messages: list[dict] = []
        self.connections: list[Connection] = []
        self.received: list[tuple[str, dict]] = []  # (user, frame) for every frame any page sent
        self.by_client_id: dict[tuple[str, str], dict] = {}
        self.languages: dict[str, str] = {}
        self.refuse = False  # close every new socket at once, as a server that is down would
        self.swallow_sends = False  # store message.send but answer nothing (an ack lost in a drop)
        self.rate_limit_next = 0  # answer this many next message.send frames with error rate_limited
        self.history_requests: list[dict] = []
        self._rendered: dict[str, str] = {}

    # ------------------------------------------------------------------ wiring
    def attach(self, context: BrowserContext, username: str, language: str) -> str:
        """Route one browser context (one user) to this fake; returns the room page URL."""
        self.languages[username] = language
        context.route(f"{ORIGIN}/**", lambda route: self._http(route, username))
        context.route_web_socket(f"ws://localhost:8765/ws/rooms/{self.room}/", lambda ws: self._accept(ws, username))
        return f"{ORIGIN}/rooms/{self.room}/"

    def _page_html(self, username: str) -> str:
        language = self.languages[username]
        context = {
            "user": {"username": username, "language": language},
            "room": {"slug": self.room, "name": f"Room {self.room}"},
            "me": {"username": username, "language": language},
            "languages": LANGUAGES,
            "bootstrap": {
                "room": self.room,
                "username": username,
                "language": language,
                "ws_path": f"/ws/rooms/{self.room}/",
                "history_url": f"/api/rooms/{self.room}/messages",
                "me_url": "/api/me",
                "csrf_token": "test-csrf-token",
            },
        }
        key = f"{username}:{language}"
        if key not in self._rendered:
            self._rendered[key] = render_template("chat/room.html", context)
        return self._rendered[key]

    def _http(self, route: Route, username: str) -> None:
        url = urlparse(route.request.url)
        if url.path == f"/rooms/{self.room}/":
            serve_page(route, self._page_html(username))
        elif url.path.startswith("/static/"):
            serve_static(route)
        elif url.path == f"/api/rooms/{self.room}/messages":
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            self.history_requests.append(query)
            route.fulfill(status=200, json={"messages": self.history(username, **query)})
        elif url.path == "/api/me" and route.request.method == "PATCH":
            self.languages[username] = json.loads(route.request.post_data or "{}")["language"]
            route.fulfill(status=200, json={"username": username, "language": self.languages[username]})
        else:
            route.fulfill(status=404, json={"error": {"code": "not_found", "detail": url.path}})

    # ------------------------------------------------------------------ server behaviour
    def view(self, message: dict, username: str) -> dict:
        """The Message object as `username` receives it (translations in their language only)."""
        language = self.languages[username]
        out = {k: v for k, v in message.items() if k != "translations"}
        tr = message["translations"].get(language)
        out["translations"] = {language: tr} if tr else {}
        return out

    def history(self, username: str, after=None, before=None, limit="50") -> list[dict]:
        limit = min(int(limit), 200)
        rows = [m for m in self.messages if not m["hidden"]]
        if after is not None:
            rows = [m for m in rows if m["seq"] > int(after)][:limit]
        else:
            if before is not None:
                rows = [m for m in rows if m["seq"] < int(before)]
            rows = rows[-limit:]
        return [self.view(m, username) for m in rows]

    def _accept(self, ws: WebSocketRoute, username: str) -> None:
        if self.refuse:
            ws.close(code=1011, reason="down")
            return
        conn = Connection(ws, username, self.languages[username])
        self.connections.append(conn)
        ws.on_message(lambda raw: self._frame(conn, raw))
        ws.on_close(lambda code, reason: self._forget(conn))
        self._presence()

    def _forget(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
            self._presence()

    def _presence(self) -> None:
        online = sorted({c.user for c in self.connections})
        for conn in list(self.connections):
            conn.send({"type": "presence", "online": online})

    def _frame(self, conn: Connection, raw: str | bytes) -> None:
        frame = json.loads(raw)
        conn.frames.append(frame)
        self.received.append((conn.user, frame))
        kind = frame.get("type")
        if kind == "resume":
            for message in self.messages:
                if message["seq"] > frame["after"] and not message["hidden"]:
                    conn.send({"type": "message.new", "message": self.view(message, conn.user)})
            conn.send({"type": "resume.done", "seq": self.messages[-1]["seq"] if self.messages else 0})
        elif kind == "message.send":
            key = (conn.user, frame["client_id"])
            if key in self.by_client_id:
                conn.send(
                    {
                        "type": "message.ack",
                        "client_id": frame["client_id"],
                        "message": self.view(self.by_client_id[key], conn.user),
                    }
                )
                return
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                conn.send(
                    {
                        "type": "error",
                        "code": "rate_limited",
                        "detail": "slow down",
                        "client_id": frame["client_id"],
                    }
                )
                return
            message = self.store(conn.user, frame["text"], language=conn.language, client_id=frame["client_id"])
            if self.swallow_sends:
                return
            conn.send(
                {
                    "type": "message.ack",
                    "client_id": frame["client_id"],
                    "message": self.view(message, conn.user),
                }
            )
            self.broadcast_new(message)
        elif kind == "language.set":
            conn.language = self.languages[conn.user] = frame["language"]
            conn.send({"type": "language.changed", "language": frame["language"]})
        elif kind == "typing":
            for other in self.connections:
                if other.user != conn.user:
                    other.send({"type": "typing", "user": conn.user})
        elif kind == "message.edit":
            message = self.messages[frame["id"] - 1]
            message["text"] = frame["text"]
            message["translations"] = {}
            for other in self.connections:
                other.send(
                    {
                        "type": "message.edited",
                        "id": message["id"],
                        "seq": message["seq"],
                        "text": frame["text"],
                    }
                )

    # ------------------------------------------------------------------ test controls
    def store(self, author: str, text: str, *, language: str = "en", client_id: str | None = None) -> dict:
        seq = len(self.messages) + 1
        message = {
            "id": seq,
            "seq": seq,
            "room": self.room,
            "author": author,
            "text": text,
            "language": language,
            "created": datetime.now(UTC).isoformat(),
            "client_id": client_id,
            "translations": {},
            "sentiment": None,
            "hidden": False,
        }
        self.messages.append(message)
        if client_id:
            self.by_client_id[(author, client_id)] = message
        return message

    def broadcast_new(self, message: dict) -> None:
        for conn in list(self.connections):
            conn.send({"type": "message.new", "message": self.view(message, conn.user)})

    def post(self, author: str, text: str, *, language: str = "en") -> dict:
        """Another user's message: stored, then broadcast to whoever is connected."""
        message = self.store(author, text, language=language)
        self.broadcast_new(message)
        return message

    def translate(self, seq: int, language: str, *, status: str = "ok", text=None, engine="apertium@3.8", reason=None):
        message = self.messages[seq - 1]
        message["translations"][language] = {
            "status": status,
            "text": text,
            "engine": engine,
            "reason": reason,
        }
        for conn in list(self.connections):
            if conn.language == language:
                conn.send(
                    {
                        "type": "message.translated",
                        "id": seq,
                        "seq": seq,
                        "language": language,
                        "status": status,
                        "text": text,
                        "engine": engine,
                        "reason": reason,
                    }
                )

    def sentiment(self, seq: int, emotion: str, polarity: str, score: float, flagged: bool = False) -> None:
        message = self.messages[seq - 1]
        message["sentiment"] = {"emotion": emotion, "polarity": polarity, "score": score, "flagged": flagged}
        for conn in list(self.connections):
            conn.send({"type": "message.sentiment", "id": seq, "seq": seq, **message["sentiment"]})

    def hide(self, seq: int) -> None:
        self.messages[seq - 1]["hidden"] = True
        for conn in list(self.connections):
            conn.send({"type": "message.hidden", "id": seq, "seq": seq})

    def drop_all(self, code: int = 1012) -> None:
        """The server goes away: close every page's socket."""
        for conn in list(self.connections):
            conn.ws.close(code=code, reason="restart")
            self._forget(conn)

    def frames_from(self, user: str, kind: str) -> list[dict]:
        return [f for u, f in self.received if u == user and f.get("type") == kind]
