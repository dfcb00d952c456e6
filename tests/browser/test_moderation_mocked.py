"""The moderation queue page (real template and static/js/moderation.js) against a scripted API."""

from __future__ import annotations

import json

from playwright.sync_api import Route, expect

from .conftest import save_screenshot
from .fakebridge import ORIGIN, render_template, serve_page, serve_static

FLAGS = [
    {
        "id": 7,
        "status": "open",
        "reason": "hostile sentiment",
        "score": 0.93,
        "created": "2026-11-29T01:58:00+00:00",
        "model_version": "sentiment-e5-small@3",
        "trigger": "translation",
        "appealed": True,
        "appeal_text": "It was a joke between friends",
        "scores": {"original": 0.93, "translations": {"en": 0.88}},
        "audit": [
            {
                "action": "flagged",
                "actor": None,
                "note": "",
                "model_version": "sentiment-e5-small@3",
                "score": 0.93,
                "created": "2026-11-29T01:58:00+00:00",
            }
        ],
        "message": {
            "id": 41,
            "seq": 41,
            "room": "plaza",
            "author": "mallory",
            "language": "es",
            "text": "Eres un inútil <script>alert('x')</script>",
            "created": "2026-11-29T01:57:59+00:00",
            "client_id": None,
            "hidden": False,
            "translations": {
                "en": {
                    "status": "ok",
                    "text": "You are useless <script>alert('x')</script>",
                    "engine": "apertium-es-en@0.8.1",
                    "reason": None,
                },
                "ja": {"status": "untranslated", "text": None, "engine": None, "reason": "no route es→ja"},
            },
            "sentiment": {"emotion": "anger", "polarity": "negative", "score": 0.93, "flagged": True},
        },
    },
    {
        "id": 8,
        "status": "open",
        "reason": "hostile sentiment",
        "score": 0.71,
        "created": "2026-11-29T02:01:00+00:00",
        "model_version": "sentiment-e5-small@3",
        "message": {
            "id": 44,
            "seq": 44,
            "room": "plaza",
            "author": "bob",
            "language": "en",
            "text": "This deploy is killing me",
            "created": "2026-11-29T02:00:59+00:00",
            "client_id": None,
            "hidden": False,
            "translations": {},
            "sentiment": {"emotion": "anger", "polarity": "negative", "score": 0.71, "flagged": True},
        },
    },
]


def test_queue_lists_flags_and_resolves_with_note(new_page):
    html = render_template(
        "moderation/queue.html",
        {
            "user": {"username": "mod", "language": "en"},
            "is_moderator": True,
            "bootstrap": {"csrf_token": "tok-123"},
        },
    )
    resolved: list[tuple[str, dict, str | None]] = []

    def handle(route: Route) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path == "/moderation/":
            serve_page(route, html)
        elif path.startswith("/static/"):
            serve_static(route)
        elif path == "/api/moderation/flags?status=open":
            route.fulfill(json={"flags": FLAGS})
        elif path.startswith("/api/moderation/flags/") and route.request.method == "POST":
            resolved.append((path, json.loads(route.request.post_data), route.request.headers.get("x-csrftoken")))
            route.fulfill(json={"status": "resolved"})
        else:
            route.fulfill(status=404, json={})

    page = new_page()
    page.context.route(f"{ORIGIN}/**", handle)
    page.goto(f"{ORIGIN}/moderation/")
    cards = page.locator("#flags article.flag")
    expect(cards).to_have_count(2)
    first = cards.first
    expect(first.locator(".flag-original")).to_have_text("Eres un inútil <script>alert('x')</script>")
    expect(first.locator(".flag-translations li")).to_have_count(2)
    expect(first.locator(".flag-facts")).to_contain_text("sentiment-e5-small@3")
    expect(first.locator(".flag-facts")).to_contain_text("anger (negative, 93%)")
    expect(first.locator(".flag-facts")).to_contain_text("original 93% · en 88%")
    expect(first.locator(".flag-appeal")).to_contain_text("It was a joke between friends")
    expect(first.locator(".flag-audit li")).to_contain_text(["flagged · system · sentiment-e5-small@3"])
    expect(page.get_by_role("link", name="Moderation")).to_be_visible()
    save_screenshot(page, "moderation")

    first.get_by_label("Note (optional)").fill("insult, hidden")
    first.get_by_role("button", name="Hide").click()
    expect(cards).to_have_count(1)
    assert resolved == [("/api/moderation/flags/7/resolve", {"action": "hide", "note": "insult, hidden"}, "tok-123")]
    cards.first.get_by_role("button", name="Approve").click()
    expect(page.locator("#flags")).to_have_text("Nothing to review.")
    assert resolved[-1][1] == {"action": "approve", "note": ""}
    assert page.dialogs == [] and page.locator("#flags script").count() == 0
    assert page.csp_violations == []
