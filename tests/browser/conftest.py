"""Browser fixtures: one headless Debian Chromium per session, a fresh context per test user."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "_artifacts"
DOC_IMAGES = ROOT / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser):
    """Factory: a page in its own context (own cookies, storage), closed after the test."""
    contexts = []

    def make(viewport: dict | None = None) -> Page:
        context = browser.new_context(viewport=viewport or {"width": 1200, "height": 800}, locale="en-US")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        # Any dialog means injected script ran (alert/confirm/prompt payloads): record it for the XSS tests.
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.csp_violations = []
        page.on("console", lambda msg: _note_console(page, msg))
        return page

    yield make
    for context in contexts:
        context.close()


def _note_console(page: Page, msg) -> None:
    if "Content Security Policy" in msg.text:
        page.csp_violations.append(msg.text)


@pytest.fixture
def live_url(request: pytest.FixtureRequest) -> str:
    """`live_server_url` of tests/conftest.py (Daphne + Celery workers), or a skip where it is missing."""
    try:
        return request.getfixturevalue("live_server_url")
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py provides no live_server_url fixture")


def save_screenshot(page: Page, name: str, *, publish: bool = True) -> Path:
    """Screenshot into tests/_artifacts/ and, for the docs, a copy in docs/img/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    if publish:
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_IMAGES / path.name)
    return path


# WCAG 2.x contrast of every visible text node against the background it is painted on (opacity included).
# Disabled controls are exempt (WCAG 1.4.3), as is visually hidden text.
_CONTRAST_SCRIPT = """
() => {
  const parse = (c) => {
    const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const over = (f, b, a) => f * a + b * (1 - a);
  const mix = (fg, bg, a) => ({ r: over(fg.r, bg.r, a), g: over(fg.g, bg.g, a), b: over(fg.b, bg.b, a) });
  const background = (el) => {
    for (let n = el; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c.a > 0.5) return c;
    }
    return parse(getComputedStyle(document.documentElement).backgroundColor || "rgb(255,255,255)");
  };
  const failures = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.checkVisibility({ visibilityProperty: true })) continue;
    if (el.closest(".sr-only, [hidden], :disabled, option")) continue;
    const style = getComputedStyle(el);
    let alpha = parse(style.color).a;
    for (let n = el; n; n = n.parentElement) alpha *= Number(getComputedStyle(n).opacity);
    const bg = background(el);
    const fg = mix(parse(style.color), bg, alpha);
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      failures.push(`${el.className || el.tagName} "${node.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
    }
  }
  return failures;
}
"""


def contrast_failures(page: Page) -> list[str]:
    """Visible text below WCAG AA contrast (4.5:1, or 3:1 for large text) on the current page."""
    return page.evaluate(_CONTRAST_SCRIPT)
