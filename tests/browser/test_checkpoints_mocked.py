"""The checkpoints page (real template and static/js/checkpoints.js) against a scripted API."""

from __future__ import annotations

from playwright.sync_api import Route, expect

from .conftest import save_screenshot
from .fakebridge import ORIGIN, render_template, serve_page, serve_static

CHECKPOINTS = [
    {
        "id": 1,
        "kind": "translation",
        "version": "marian-en-es@1",
        "status": "active",
        "languages": ["en-es"],
        "created": "2026-11-28T10:00:00+00:00",
        "metrics": {"en-es": {"bleu": 27.4, "chrf": 52.1}},
    },
    {
        "id": 2,
        "kind": "translation",
        "version": "marian-en-es@2",
        "status": "ready",
        "languages": ["en-es"],
        "created": "2026-11-29T01:00:00+00:00",
        "metrics": {"en-es": {"bleu": 29.9, "chrf": 51.0}},
        "shadow": {"messages": 120, "agreement": 0.82},
    },
    {
        "id": 3,
        "kind": "sentiment",
        "version": "emotion-e5@4",
        "status": "rejected",
        "created": "2026-11-29T01:30:00+00:00",
        "detail": "pytorch_model.bin refused: pickle can run code",
    },
    {
        "id": 4,
        "kind": "sentiment",
        "version": "emotion-e5@3",
        "status": "active",
        "created": "2026-11-27T09:00:00+00:00",
        "metrics": {"macro_f1": 0.71, "accuracy": 0.78},
    },
]


def test_checkpoints_page_upload_activate_rollback(new_page, tmp_path):
    html = render_template(
        "checkpoints/manage.html",
        {
            "user": {"username": "root", "language": "en", "is_superuser": True},
            "checkpoints_url": "/checkpoints/",
            "bootstrap": {"csrf_token": "tok-9", "api": "/api/checkpoints"},
        },
    )
    calls: list[tuple[str, str, str | None]] = []
    uploads: list[bytes] = []

    def handle(route: Route) -> None:
        request = route.request
        path = request.url.removeprefix(ORIGIN)
        if path == "/checkpoints/":
            serve_page(route, html)
        elif path.startswith("/static/"):
            serve_static(route)
        elif path == "/api/checkpoints" and request.method == "GET":
            route.fulfill(json={"checkpoints": CHECKPOINTS})
        elif path == "/api/checkpoints" and request.method == "POST":
            uploads.append(request.post_data_buffer)
            calls.append(("upload", path, request.headers.get("x-csrftoken")))
            route.fulfill(status=201, json={"id": 5, "kind": "translation", "version": "x@5", "status": "validating"})
        elif request.method == "POST":
            calls.append(("post", path, request.headers.get("x-csrftoken")))
            route.fulfill(json={"status": "ok"})
        else:
            route.fulfill(status=404, json={})

    page = new_page()
    page.context.route(f"{ORIGIN}/**", handle)
    page.goto(f"{ORIGIN}/checkpoints/")
    translation = page.get_by_role("region", name="Translation", exact=True)
    expect(translation.locator("tbody tr")).to_have_count(2)
    candidate = translation.locator("tr[data-checkpoint-id='2']")
    # Figures of a candidate are shown beside the active model's.
    expect(candidate.locator(".figures").first).to_contain_text("en-es bleu")
    expect(candidate.locator(".delta").first).to_have_text(" (active 27.400, +2.500)")
    expect(candidate.locator(".shadow")).to_contain_text("Shadow results")
    expect(page.locator("tr[data-checkpoint-id='3']")).to_contain_text("pickle can run code")
    expect(page.get_by_role("link", name="Models")).to_be_visible()
    save_screenshot(page, "checkpoints")

    candidate.get_by_role("button", name="Activate").click()
    expect(page.locator("#notice")).to_contain_text("Activated version marian-en-es@2")
    page.locator("tr[data-checkpoint-id='4']").get_by_role("button", name="Roll back").click()
    expect(page.locator("#notice")).to_contain_text("Rolled back from version emotion-e5@3")

    archive = tmp_path / "model.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    page.locator("#ckpt-languages").fill("en-es,es-en")
    page.locator("#ckpt-file").set_input_files(str(archive))
    page.get_by_role("button", name="Upload and validate").click()
    expect(page.locator("#upload-status")).to_have_text("Uploaded: version x@5, validating")
    assert calls == [
        ("post", "/api/checkpoints/2/activate", "tok-9"),
        ("post", "/api/checkpoints/4/rollback", "tok-9"),
        ("upload", "/api/checkpoints", "tok-9"),
    ]
    body = uploads[0]
    assert (
        b'name="kind"' in body and b"translation" in body and b"en-es,es-en" in body and b'filename="model.zip"' in body
    )
    assert page.csp_violations == []
