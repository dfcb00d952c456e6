"""The admins' model page against the real product: the output of `manage.py finetune translation`, uploaded
from the browser, validated by the worker, shown with its figures, activated, serving the next message, and rolled
back, all from the page."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD
from tests.factories import finetune_tiny_translation, zip_directory
from tests.integration.wsclient import route_of_next_message as route_of_next

from .test_chat_live import login

VALIDATION_WAIT_MS = 180_000


def test_admin_uploads_a_finetuned_model_activates_and_rolls_back_from_the_page(live_product, new_page, tmp_path):
    out = finetune_tiny_translation(live_product, tmp_path / "en-es")
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

    slug, (writer, reader) = live_product.room_with(("w", "en"), ("r", "es"), name="From the page")

    def route_of_next_message() -> str:
        return route_of_next(live_product, slug, writer, reader, "I like the dog.")

    row.get_by_role("button", name="Activate").click()
    try:
        expect(page.locator("#notice")).to_contain_text(f"Activated version {version}")
        assert route_of_next_message() == f"bridge-mt@{version}"
        expect(row).to_contain_text("active")
    finally:
        # Rolled back from the page; the shared live product must serve en->es by Apertium again.
        row.get_by_role("button", name="Roll back").click()
        expect(page.locator("#notice")).to_contain_text(version)
    assert route_of_next_message().startswith("apertium-en-es@")
    assert page.csp_violations == []
