"""The admins' model page against the real product: the output of `manage.py finetune translation`, uploaded
from the browser, validated by the worker, shown with its figures, activated, serving the next message, and rolled
back, all from the page."""

from __future__ import annotations

import json
import uuid

from playwright.sync_api import expect

from tests.conftest import ROOT, TEST_PASSWORD
from tests.factories import zip_directory
from tests.integration.wsclient import next_of, open_socket, run_async

from .test_chat_live import login

VALIDATION_WAIT_MS = 180_000


def test_admin_uploads_a_finetuned_model_activates_and_rolls_back_from_the_page(live_product, new_page, tmp_path):
    out = tmp_path / "en-es"
    live_product.manage(
        "finetune", "translation", "--data", str(ROOT / "data" / "translation" / "chat-en-es.tsv"), "--init", "tiny",
        "--source", "en", "--target", "es", "--out", str(out), "--max-steps", "40", "--eval-steps", "40",
        "--threads", "1", "--vocab-size", "400",
    )  # fmt: skip
    archive = zip_directory(out, tmp_path / "finetuned-en-es.zip")
    admin = f"admin{uuid.uuid4().hex[:6]}"
    live_product.manage(
        "createsuperuser", "--noinput", "--username", admin, "--email", f"{admin}@example.com",
        DJANGO_SUPERUSER_PASSWORD=TEST_PASSWORD,
    )  # fmt: skip

    page = new_page()
    login(page, live_product.url, admin)
    page.goto(f"{live_product.url}/checkpoints/")
    page.locator("#ckpt-kind").select_option("translation")
    page.locator("#ckpt-languages").fill("en-es")
    page.locator("#ckpt-file").set_input_files(str(archive))
    page.get_by_role("button", name="Upload and validate").click()
    expect(page.locator("#upload-status")).to_contain_text("validating", timeout=60_000)
    version = page.locator("#upload-status").inner_text().split("version ", 1)[1].split(",", 1)[0]

    row = page.locator("tr", has_text=version)
    # The page polls while validating; the worker's held-out figures (BLEU/chrF on en-es) appear with "ready".
    expect(row).to_contain_text("ready", timeout=VALIDATION_WAIT_MS)
    expect(row.locator(".figures").first).to_contain_text("en-es")

    writer = live_product.signup(f"w{uuid.uuid4().hex[:6]}", "en")
    reader = live_product.signup(f"r{uuid.uuid4().hex[:6]}", "es")
    _, room = live_product.api("POST", "/api/rooms", {"name": "From the page"}, writer)
    assert live_product.api("POST", f"/api/rooms/{room['slug']}/join", {}, reader)[0] == 200

    async def route_of_next_message() -> str:
        en = await open_socket(live_product, room["slug"], writer)
        es = await open_socket(live_product, room["slug"], reader)
        await en.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": "I like the dog."}))
        translated = await next_of(es, "message.translated", timeout=90)
        await en.close()
        await es.close()
        return translated["engine"]

    row.get_by_role("button", name="Activate").click()
    try:
        expect(page.locator("#notice")).to_contain_text(f"Activated version {version}")
        assert run_async(route_of_next_message()) == f"bridge-mt@{version}"
        expect(row).to_contain_text("active")
    finally:
        # Rolled back from the page; the shared live product must serve en->es by Apertium again.
        row.get_by_role("button", name="Roll back").click()
        expect(page.locator("#notice")).to_contain_text(version)
    assert run_async(route_of_next_message()).startswith("apertium-en-es@")
    assert page.csp_violations == []
