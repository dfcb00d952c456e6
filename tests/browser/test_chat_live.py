"""Two real browsers against the real product: Daphne, Redis, Celery workers, Apertium (tests/conftest.py).

Each user logs in through the login page, so the session cookie, CSRF, Origin check and the websocket
handshake are the product's own.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.conftest import TEST_PASSWORD

from .conftest import save_screenshot
from .test_chat_mocked import XSS_PAYLOADS

ROOT = Path(__file__).resolve().parents[2]
FIRST_MESSAGE_WAIT_MS = 30_000
DELIVERY_WAIT_MS = 20_000  # the real server on a busy 2-core machine: slow is fine, wrong is not


@pytest.fixture(autouse=True)
def patient_expect():
    expect.set_options(timeout=DELIVERY_WAIT_MS)
    yield
    expect.set_options(timeout=5_000)


TRANSLATION_WAIT_MS = 90_000  # a cold worker loads its engine on the first message


def login(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".whoami-name")).to_have_text(username)


def create_room(page: Page, base: str, name: str) -> str:
    page.goto(f"{base}/")
    page.locator("#id_name").fill(name)
    page.locator("form[action='/rooms/new/'] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/rooms/[^/]+/$"))
    return page.url.rstrip("/").rsplit("/", 1)[1]


def join_room(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/")
    # Located by structure, not by label: the page speaks the user's own language (the es user sees Spanish).
    page.locator("#other-room-list li", has_text=name).locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/rooms/[^/]+/$"))


def wait_online(page: Page, timeout: int = 15_000) -> None:
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online", timeout=timeout)


def message(page: Page, text: str):
    """The message whose original text is `text` (shown as primary or inline original)."""
    return page.locator("#messages > li", has=page.locator(".primary, .original-text", has_text=text))


@pytest.fixture
def pair(live_url, make_user, new_page):
    """ana (English) and bea (Spanish), logged in, in the same new room, both connected."""
    suffix = uuid.uuid4().hex[:6]
    ana_name, bea_name = make_user(f"ana{suffix}", "en"), make_user(f"bea{suffix}", "es")
    ana, bea = new_page(), new_page()
    login(ana, live_url, ana_name)
    login(bea, live_url, bea_name)
    room_name = f"Plaza {suffix}"
    create_room(ana, live_url, room_name)
    join_room(bea, live_url, room_name)
    wait_online(ana)
    wait_online(bea)
    return ana, bea, ana_name, bea_name


def test_two_languages_chat_live(pair):
    ana, bea, ana_name, bea_name = pair
    text = "Hello friends, I am very happy to see you today!"
    ana.locator("#composer").fill(text)
    ana.keyboard.press("Enter")
    expect(message(ana, text)).to_have_count(1)
    started = time.monotonic()

    theirs = message(bea, text)
    # Generous: the web process's first message of a session also warms its language detector.
    expect(theirs).to_have_count(1, timeout=FIRST_MESSAGE_WAIT_MS)
    expect(theirs.locator(".msg-author")).to_have_text(ana_name)
    print(f"first delivery to the other browser: {time.monotonic() - started:.2f} s")
    # The original arrives at once; the Spanish translation follows from the worker.
    translated = theirs.locator(".primary.translation")
    expect(translated).to_be_visible(timeout=TRANSLATION_WAIT_MS)
    shown = translated.inner_text()
    stored = bea.evaluate(
        """async (text) => {
            const boot = JSON.parse(document.getElementById('bridge-bootstrap').textContent);
            const page = await (await fetch(boot.history_url)).json();
            return page.messages.find((m) => m.text === text).translations.es;
        }""",
        text,
    )
    assert stored["status"] == "ok" and shown == stored["text"] and shown != text
    expect(theirs.locator(".original-text")).to_have_text(text)
    # The live product runs the real default emotion model: the cue arrives with the emotion.
    expect(theirs).to_have_attribute("data-emotion", re.compile(r"\w+"), timeout=TRANSLATION_WAIT_MS)

    reply = "¡Hola Ana! Me alegro mucho."
    bea.locator("#composer").fill(reply)
    bea.keyboard.press("Enter")
    back = message(ana, reply)
    expect(back).to_have_count(1)
    expect(back.locator(".primary.translation, .badge-untranslated")).to_be_visible(timeout=TRANSLATION_WAIT_MS)
    expect(ana.locator("#presence .presence-chip")).to_have_count(2)
    save_screenshot(ana, "live-chat-en")
    save_screenshot(bea, "live-chat-es")


def test_keyboard_only_send_live(pair):
    ana, bea, _, bea_name = pair
    expect(bea.locator("#composer")).to_be_focused()
    bea.keyboard.type("primera línea")
    bea.keyboard.press("Shift+Enter")
    bea.keyboard.type("segunda línea")
    bea.keyboard.press("Enter")
    mine = bea.locator("#messages > li.mine")
    expect(mine).to_have_count(1)
    expect(mine.locator(".primary")).to_have_text("primera línea\nsegunda línea")
    expect(ana.locator("#messages > li .msg-author", has_text=bea_name)).to_have_count(1)


def test_xss_corpus_inert_live(pair):
    ana, bea, _, _ = pair
    for payload in XSS_PAYLOADS:
        ana.locator("#composer").fill(payload)
        ana.keyboard.press("Enter")
    expect(ana.locator("#messages > li:not(.echo)")).to_have_count(len(XSS_PAYLOADS))
    expect(bea.locator("#messages > li")).to_have_count(len(XSS_PAYLOADS))
    # Translations (or untranslated verdicts) arrive too: they must stay inert as well.
    expect(bea.locator("#messages > li .badge-pending")).to_have_count(0, timeout=TRANSLATION_WAIT_MS)
    for page in (ana, bea):
        originals = page.locator("#messages > li").evaluate_all(
            "els => els.map(li => (li.querySelector('.original-text') || li.querySelector('.primary')).textContent)"
        )
        assert originals == XSS_PAYLOADS
        assert page.dialogs == []
        injected = (
            ", ".join(f"#messages {tag}" for tag in ("script", "img", "svg", "iframe", "a", "style")) + ", .pwned"
        )
        assert page.locator(injected).count() == 0
        assert page.csp_violations == []


def test_reconnect_shows_messages_sent_meanwhile_exactly_once(live_url, make_user, new_page):
    suffix = uuid.uuid4().hex[:6]
    ana_name, bea_name = make_user(f"ana{suffix}", "en"), make_user(f"bea{suffix}", "en")
    ana, bea = new_page(), new_page()
    sockets: list[WebSocketRoute] = []
    refuse = {"on": False}

    def proxy(ws: WebSocketRoute) -> None:
        # bea's socket goes through Playwright so the test can cut it as a server restart would.
        if refuse["on"]:
            ws.close(code=1012, reason="server restarting")
            return
        ws.connect_to_server()
        sockets.append(ws)

    bea.context.route_web_socket(re.compile(r".*/ws/rooms/.*"), proxy)
    login(ana, live_url, ana_name)
    login(bea, live_url, bea_name)
    room_name = f"Drop {suffix}"
    create_room(ana, live_url, room_name)
    join_room(bea, live_url, room_name)
    wait_online(ana)
    wait_online(bea)
    ana.locator("#composer").fill("before the drop")
    ana.keyboard.press("Enter")
    expect(message(bea, "before the drop")).to_have_count(1)

    refuse["on"] = True
    sockets[-1].close(code=1012, reason="server restarting")
    expect(bea.locator("#conn-status")).not_to_have_attribute("data-state", "online")
    for n in range(3):
        ana.locator("#composer").fill(f"while you were away {n}")
        ana.keyboard.press("Enter")
    expect(ana.locator("#messages > li:not(.echo)")).to_have_count(4)
    bea.locator("#composer").fill("queued while offline")
    bea.keyboard.press("Enter")
    expect(bea.locator("li.echo.pending")).to_have_count(1)
    refuse["on"] = False

    wait_online(bea, timeout=20_000)
    expected = ["before the drop", *[f"while you were away {n}" for n in range(3)], "queued while offline"]
    expect(bea.locator("#messages > li .primary")).to_have_text(expected)
    expect(ana.locator("#messages > li .primary")).to_have_text(expected)
    seqs = [int(s) for s in bea.locator("#messages > li").evaluate_all("els => els.map(e => e.dataset.seq)")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) == 5


def test_signup_login_and_rooms_pages_live(live_url, new_page):
    page = new_page()
    name = f"cleo{uuid.uuid4().hex[:6]}"
    page.goto(f"{live_url}/accounts/login/")
    page.get_by_role("link", name="Sign up").click()
    page.locator("#id_username").fill(name)
    page.locator("#id_password1").fill(TEST_PASSWORD)
    page.locator("#id_password2").fill("something else entirely")
    page.locator("#id_language").select_option("fr")
    page.get_by_role("button", name="Sign up").click()
    # The form comes back with the error shown and the choices kept.
    expect(page.locator(".field-error")).not_to_have_count(0)
    expect(page.locator("#id_username")).to_have_value(name)
    expect(page.locator("#id_language")).to_have_value("fr")
    page.locator("#id_password1").fill(TEST_PASSWORD)
    page.locator("#id_password2").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".whoami-name")).to_have_text(name)
    expect(page.locator(".lang-chip")).to_have_text("FR")

    page.locator("#id_name").fill(f"Salon {name}")
    page.locator("form[action='/rooms/new/'] button[type=submit]").click()
    wait_online(page)
    page.locator("header a[href='/']").first.click()
    expect(page.locator("#room-list")).to_contain_text(f"Salon {name}")
    save_screenshot(page, "rooms")

    page.locator("form[action='/accounts/logout/'] button[type=submit]").click()
    page.goto(f"{live_url}/accounts/login/")
    page.locator("#id_username").fill(name)
    page.locator("#id_password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".form-errors")).to_be_visible()
    save_screenshot(page, "login-error", publish=False)


def test_moderator_hides_flagged_message_live(live_url, make_user, new_page, request):
    product = request.getfixturevalue("live_product")
    suffix = uuid.uuid4().hex[:6]
    mod_name, bea_name = make_user(f"mod{suffix}", "en"), make_user(f"bea{suffix}", "es")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "grant_moderator", mod_name], cwd=ROOT, env=product.env, check=True, capture_output=True)
    mod, bea = new_page(), new_page()
    login(mod, live_url, mod_name)
    login(bea, live_url, bea_name)
    room_name = f"Foro {suffix}"
    create_room(mod, live_url, room_name)
    join_room(bea, live_url, room_name)
    wait_online(mod)
    wait_online(bea)
    text = f"Eres un inútil y te odio {suffix}"
    bea.locator("#composer").fill(text)
    bea.keyboard.press("Enter")
    expect(message(mod, text)).to_have_count(1)
    # The emotion arrives with the flag (one transaction): once the cue shows, the queue has the entry.
    expect(message(mod, text)).to_have_attribute("data-emotion", re.compile(r"\w+"), timeout=TRANSLATION_WAIT_MS)

    # The live product runs the real default emotion model: it tags the insult and the room's policy flags it.
    queue = new_page()
    login(queue, live_url, mod_name)
    queue.goto(f"{live_url}/moderation/")
    card = queue.locator("article.flag", has=queue.locator(".flag-original", has_text=text))
    expect(card).to_have_count(1, timeout=TRANSLATION_WAIT_MS)
    expect(card.locator(".flag-facts")).to_contain_text("bridge-emotion@")
    save_screenshot(queue, "live-moderation", publish=False)
    card.get_by_label("Note (optional)").fill("insult")
    card.get_by_role("button", name="Hide").click()
    expect(card).to_have_count(0)
    # Gone from both chat pages, live, without a reload.
    expect(message(bea, text)).to_have_count(0)
    expect(message(mod, text)).to_have_count(0)
    expect(mod.locator("#messages > li.msg-hidden")).to_have_count(0)

    # The author (a Spanish page: located by structure) keeps a notice in its place and appeals from the chat page.
    notice = bea.locator("#messages > li.msg-hidden")
    expect(notice).to_have_count(1)
    notice.locator("[data-action=appeal]").click()
    notice.locator("textarea").fill(f"Era una broma entre amigos {suffix}")
    notice.locator("form button[type=submit]").click()
    expect(notice.locator(".appeal-sent")).to_have_count(1)
    # Back in the moderators' queue, with the author's words.
    queue.reload()
    expect(card).to_have_count(1)
    expect(card.locator(".flag-appeal")).to_contain_text(f"Era una broma entre amigos {suffix}")
