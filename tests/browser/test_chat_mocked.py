"""The chat page (real templates, real static/js/chat.js, real Chromium) against a scripted server.

The scripted server (fakebridge.py) speaks the CONTRACT.md protocol and lets a test drop sockets, lose acks
and rate-limit on demand. The same behaviours are exercised end to end against the real server in
test_chat_live.py.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import contrast_failures, save_screenshot
from .fakebridge import FakeBridge

XSS_PAYLOADS = [
    "<script>alert('xss-1')</script>",
    "<img src=x onerror=\"alert('xss-2')\">",
    "<svg onload=alert('xss-3')>",
    '"><iframe src="javascript:alert(\'xss-4\')"></iframe>',
    "<a href=\"javascript:alert('xss-5')\">click</a>",
    "{{ 7*7 }} ${alert('xss-6')} </li><li class=pwned>",
    "<style>body{display:none}</style><b onmouseover=alert('xss-7')>bold</b>",
    "&lt;script&gt;alert('xss-8')&lt;/script&gt;",
]


def items(page: Page):
    return page.locator("#messages > li")


def bodies(page: Page):
    """The main text of each message (translation or original), without author and time."""
    return page.locator("#messages > li .primary")


def open_chat(bridge: FakeBridge, new_page, username: str, language: str, **viewport) -> Page:
    page = new_page(viewport or None)
    url = bridge.attach(page.context, username, language)
    page.goto(url)
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
    return page


def test_history_then_send_with_local_echo_never_doubles(new_page):
    bridge = FakeBridge()
    for n in range(3):
        bridge.store("bob", f"old message {n}")
    page = open_chat(bridge, new_page, "ana", "en")
    expect(items(page)).to_have_count(3)
    # The websocket resumed right after the history it loaded.
    assert bridge.frames_from("ana", "resume") == [{"type": "resume", "after": 3}]

    page.locator("#composer").fill("hello there")
    page.keyboard.press("Enter")
    mine = page.locator("#messages > li", has_text="hello there")
    expect(mine).to_have_count(1)
    expect(mine).to_have_attribute("data-seq", "4")
    expect(mine).not_to_have_class(re.compile(r"\bpending\b"))
    # The server sent both the ack and the broadcast message.new; the page shows it once.
    sends = bridge.frames_from("ana", "message.send")
    assert len(sends) == 1 and mine.get_attribute("data-client-id") == sends[0]["client_id"]
    expect(page.locator("#composer")).to_have_value("")
    assert page.csp_violations == []


def test_pending_echo_is_replaced_by_ack(new_page):
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    bridge.swallow_sends = True
    page.locator("#composer").fill("waiting for ack")
    page.keyboard.press("Enter")
    echo = page.locator("#messages > li.echo.pending", has_text="waiting for ack")
    expect(echo).to_have_count(1)
    client_id = bridge.frames_from("ana", "message.send")[0]["client_id"]
    message = bridge.by_client_id[("ana", client_id)]
    bridge.connections[0].send({"type": "message.ack", "client_id": client_id, "message": bridge.view(message, "ana")})
    expect(page.locator("#messages > li.echo")).to_have_count(0)
    expect(items(page)).to_have_count(1)
    expect(items(page).first).to_have_attribute("data-id", str(message["id"]))
    # A late broadcast of the same message must not add a second copy.
    bridge.broadcast_new(message)
    page.wait_for_timeout(200)
    expect(items(page)).to_have_count(1)


def test_translation_pending_then_shown_with_original_and_engine(new_page):
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    bridge.post("bob", "hola, ¿qué tal?", language="es")
    message = items(page).first
    expect(message.locator(".badge-pending")).to_be_visible()
    expect(message.locator(".primary")).to_have_text("hola, ¿qué tal?")

    bridge.translate(1, "en", text="hi, how are you?", engine="apertium@3.8")
    expect(message.locator(".primary.translation")).to_have_text("hi, how are you?")
    expect(message.locator(".primary.translation")).to_have_attribute("title", re.compile("apertium@3.8"))
    expect(message.locator(".primary.translation")).to_have_attribute("lang", "en")
    # Short message: the original is shown inline too, marked as the original.
    expect(message.locator(".secondary.original .original-text")).to_have_text("hola, ¿qué tal?")
    expect(message.locator(".secondary.original")).to_have_attribute("lang", "es")
    expect(message.locator(".badge-pending")).to_have_count(0)

    toggle = message.get_by_role("button", name="Original")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(message.locator(".primary.original")).to_have_text("hola, ¿qué tal?")
    back = message.get_by_role("button", name="Translation")
    expect(back).to_be_focused()  # focus survives the re-render, so keyboard users can flip back
    page.keyboard.press("Enter")
    expect(message.locator(".primary.translation")).to_have_text("hi, how are you?")


def test_translation_and_emotion_that_beat_their_message_are_applied_when_it_arrives(new_page):
    # A worker's follow-ups and the web process's message.new reach the page through different processes: under
    # load the translation can come first. It must not be dropped (the message would stay "translating" forever).
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    message = bridge.store("bob", "hola, ¿qué tal?", language="es")
    as_sent = bridge.view(message, "ana")  # message.new leaves before any worker ran
    bridge.translate(1, "en", text="hi, how are you?", engine="apertium@3.8")
    bridge.sentiment(1, "joy", "positive", 0.91)
    expect(items(page)).to_have_count(0)
    for conn in list(bridge.connections):
        conn.send({"type": "message.new", "message": as_sent})
    shown = items(page).first
    expect(shown.locator(".primary.translation")).to_have_text("hi, how are you?")
    expect(shown.locator(".badge-pending")).to_have_count(0)
    expect(shown.locator(".cue .sr-only")).to_have_text("Emotion: joy (confidence 91%)")


def test_long_message_hides_original_until_asked(new_page):
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    long_text = "palabra " * 40
    bridge.post("bob", long_text, language="es")
    bridge.translate(1, "en", text="word " * 40)
    message = items(page).first
    expect(message.locator(".primary.translation")).to_be_visible()
    expect(message.locator(".secondary")).to_have_count(0)
    page.locator("#originals-toggle").check()
    expect(message.locator(".secondary.original")).to_have_count(1)


def test_untranslated_and_failed_are_labelled_with_reason(new_page):
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    bridge.post("bob", "こんにちは", language="ja")
    bridge.post("bob", "hallo zusammen", language="de")
    bridge.translate(1, "en", status="untranslated", reason="no route ja→en")
    bridge.translate(2, "en", status="failed", reason="engine error after 3 tries")
    expect(items(page).nth(0).locator(".badge-untranslated")).to_have_text("not translated: no route ja→en")
    expect(items(page).nth(1).locator(".badge-failed")).to_contain_text("engine error after 3 tries")
    expect(items(page).nth(0).locator(".primary")).to_have_text("こんにちは")


def test_emotion_cue_threshold_label_and_setting(new_page):
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    bridge.post("bob", "I love this!")
    bridge.post("bob", "meh")
    bridge.sentiment(1, "joy", "positive", 0.91)
    bridge.sentiment(2, "anger", "negative", 0.31)
    first, second = items(page).nth(0), items(page).nth(1)
    expect(first.locator(".cue")).to_be_visible()
    expect(first.locator(".cue .sr-only")).to_have_text("Emotion: joy (confidence 91%)")
    expect(first.locator(".cue")).to_have_attribute("title", "joy — confidence 91%")
    expect(first).to_have_attribute("data-tone", "positive")
    expect(second.locator(".cue")).to_have_count(0)  # under the 0.5 threshold

    page.locator("#cues-toggle").uncheck()
    expect(first.locator(".cue")).to_be_hidden()
    page.reload()
    expect(page.locator("#cues-toggle")).not_to_be_checked()  # the setting is remembered
    expect(items(page).nth(0).locator(".cue")).to_be_hidden()


def test_reconnect_resumes_from_last_seq_without_gaps_or_duplicates(new_page):
    bridge = FakeBridge()
    bridge.post("bob", "before the drop")
    page = open_chat(bridge, new_page, "ana", "en")
    expect(items(page)).to_have_count(1)

    bridge.refuse = True
    bridge.drop_all()
    expect(page.locator("#conn-status")).to_have_attribute("data-state", re.compile("reconnecting|connecting"))
    bridge.post("bob", "sent while you were away 1")
    bridge.post("bob", "sent while you were away 2")
    page.wait_for_timeout(700)  # at least one refused attempt: backoff grows, nothing is lost
    bridge.refuse = False

    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online", timeout=15_000)
    expect(bodies(page)).to_have_text(["before the drop", "sent while you were away 1", "sent while you were away 2"])
    assert bridge.frames_from("ana", "resume")[-1] == {"type": "resume", "after": 1}
    # Live traffic after the reconnect also arrives exactly once.
    bridge.post("bob", "after the reconnect")
    expect(items(page)).to_have_count(4)
    assert [li.get_attribute("data-seq") for li in items(page).all()] == ["1", "2", "3", "4"]


def test_unsent_messages_are_resent_with_the_same_client_id(new_page):
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    # The server stores the message but the ack is lost when the socket drops.
    bridge.swallow_sends = True
    page.locator("#composer").fill("did this arrive?")
    page.keyboard.press("Enter")
    expect(page.locator("li.echo.pending")).to_have_count(1)
    bridge.refuse = True
    bridge.drop_all()
    page.locator("#composer").fill("written while offline")
    page.keyboard.press("Enter")
    expect(page.locator("li.echo.pending")).to_have_count(2)
    bridge.swallow_sends = False
    bridge.refuse = False

    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online", timeout=15_000)
    expect(bodies(page)).to_have_text(["did this arrive?", "written while offline"])
    expect(page.locator("li.echo")).to_have_count(0)
    sends = bridge.frames_from("ana", "message.send")
    first_ids = [f["client_id"] for f in sends if f["text"] == "did this arrive?"]
    assert len(first_ids) == 2 and len(set(first_ids)) == 1  # re-sent with the SAME client_id
    assert len(bridge.messages) == 2  # and stored once


def test_rate_limited_message_stays_pending_and_is_retried(new_page):
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    bridge.rate_limit_next = 1
    page.locator("#composer").fill("slow down please")
    page.keyboard.press("Enter")
    expect(page.locator("li.echo.pending")).to_have_count(1)
    expect(page.locator("#notice")).to_contain_text("Slow down")
    expect(page.locator("li.echo")).to_have_count(0, timeout=15_000)
    expect(bodies(page)).to_have_text(["slow down please"])
    sends = bridge.frames_from("ana", "message.send")
    assert len(sends) == 2 and sends[0]["client_id"] == sends[1]["client_id"]


def test_hidden_message_disappears(new_page):
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    bridge.post("bob", "keep me")
    bridge.post("bob", "moderate me")
    expect(items(page)).to_have_count(2)
    bridge.hide(2)
    expect(bodies(page)).to_have_text(["keep me"])


def test_edit_own_message_and_translation_goes_pending_again(new_page):
    bridge = FakeBridge()
    ana = open_chat(bridge, new_page, "ana", "en")
    ben = open_chat(bridge, new_page, "ben", "es")
    ana.locator("#composer").fill("good morning")
    ana.keyboard.press("Enter")
    expect(items(ben)).to_have_count(1)
    bridge.translate(1, "es", text="buenos días")
    expect(items(ben).first.locator(".primary.translation")).to_have_text("buenos días")

    ana.locator("#messages > li").first.get_by_role("button", name="Edit").click()
    box = ana.locator(".edit-box")
    expect(box).to_be_focused()
    box.fill("good evening")
    ana.keyboard.press("Enter")
    expect(items(ana).first.locator(".primary")).to_have_text("good evening")
    expect(items(ana).first.locator(".msg-edited")).to_be_visible()
    assert bridge.frames_from("ana", "message.edit") == [{"type": "message.edit", "id": 1, "text": "good evening"}]
    theirs = items(ben).first
    expect(theirs.locator(".primary")).to_have_text("good evening")
    expect(theirs.locator(".badge-pending")).to_be_visible()
    # Nobody else gets an Edit button on ana's message.
    expect(theirs.get_by_role("button", name="Edit")).to_have_count(0)


def test_typing_and_presence(new_page):
    bridge = FakeBridge()
    ana = open_chat(bridge, new_page, "ana", "en")
    ben = open_chat(bridge, new_page, "ben", "es")
    expect(ana.locator("#presence .presence-chip")).to_have_text(["ana", "ben"])
    ben.locator("#composer").press_sequentially("hol")
    expect(ana.locator("#typing")).to_have_text("ben is typing…")
    assert len(bridge.frames_from("ben", "typing")) == 1  # throttled: at most one per 2 s
    expect(ana.locator("#typing")).to_have_text("", timeout=5_000)
    ben.context.close()
    expect(ana.locator("#presence .presence-chip")).to_have_text(["ana"])


def test_language_switch_reloads_history_in_new_language(new_page):
    bridge = FakeBridge()
    bridge.store("bob", "hola", language="es")
    bridge.messages[0]["translations"] = {
        "en": {"status": "ok", "text": "hello", "engine": "apertium@3.8", "reason": None},
        "fr": {"status": "ok", "text": "bonjour", "engine": "marian@2", "reason": None},
    }
    page = open_chat(bridge, new_page, "ana", "en")
    expect(items(page).first.locator(".primary")).to_have_text("hello")
    requests_before = len(bridge.history_requests)
    page.locator("#language-select").select_option("fr")
    expect(items(page).first.locator(".primary")).to_have_text("bonjour")
    assert bridge.frames_from("ana", "language.set") == [{"type": "language.set", "language": "fr"}]
    assert len(bridge.history_requests) == requests_before + 1
    expect(page.locator(".lang-chip")).to_have_text("FR")
    expect(items(page)).to_have_count(1)


def test_load_older_on_scroll_to_top(new_page):
    bridge = FakeBridge()
    for n in range(1, 121):
        bridge.store("bob", f"message number {n}")
    page = open_chat(bridge, new_page, "ana", "en")
    expect(items(page)).to_have_count(50)
    page.locator("#scroller").evaluate("el => { el.scrollTop = 0; }")
    expect(items(page)).to_have_count(100)
    page.locator("#scroller").evaluate("el => { el.scrollTop = 0; }")
    expect(items(page)).to_have_count(120)
    expect(page.locator("#load-older")).to_be_disabled()
    seqs = [int(s) for s in items(page).evaluate_all("els => els.map(e => e.dataset.seq)")]
    assert seqs == list(range(1, 121))
    assert {"before": "71", "limit": "50"} in bridge.history_requests


def test_keyboard_only_send_with_shift_enter_newline(new_page):
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    expect(page.locator("#composer")).to_be_focused()  # focus starts in the composer
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    page.keyboard.press("Enter")
    expect(items(page)).to_have_count(1)
    assert bridge.messages[0]["text"] == "line one\nline two"
    # Tab order reaches the message list and the settings without a mouse.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    focused = page.evaluate("document.activeElement.id")
    assert focused in {"scroller", "load-older"}


def test_xss_payloads_stay_inert_in_original_and_translation(new_page):
    bridge = FakeBridge()
    page = open_chat(bridge, new_page, "ana", "en")
    for seq, payload in enumerate(XSS_PAYLOADS, start=1):
        bridge.post("mallory<b>", payload, language="es")
        bridge.translate(seq, "en", text=payload, engine=payload)
        bridge.sentiment(seq, payload, payload, 0.9)
    expect(page.locator("#messages > li .primary.translation")).to_have_text(XSS_PAYLOADS)
    expect(page.locator("#messages > li .original-text")).to_have_text(XSS_PAYLOADS)
    expect(page.locator("#messages > li .msg-author")).to_have_text(["mallory<b>"] * len(XSS_PAYLOADS))
    # Hover and focus everything, so that on* handlers would have had their chance.
    for button in page.locator("#messages button").all()[:3]:
        button.hover()
    page.wait_for_timeout(300)
    assert page.dialogs == []
    injected = ", ".join(f"#messages {tag}" for tag in ("script", "img", "svg", "iframe", "a", "style", "b"))
    assert page.locator(f"{injected}, .pwned").count() == 0
    assert page.csp_violations == []


def test_screenshots_for_docs(new_page):
    bridge = FakeBridge("lobby")
    samples = [
        (
            "bob",
            "¡Hola a todos! ¿Cómo va el proyecto?",
            "es",
            "Hi everyone! How is the project going?",
            ("joy", "positive", 0.88),
        ),
        ("ana", "Going well, the new release ships tomorrow.", "en", None, ("joy", "positive", 0.74)),
        (
            "lena",
            "Ich mache mir Sorgen, dass die Tests noch nicht durchlaufen.",
            "de",
            None,
            ("fear", "negative", 0.67),
        ),
        (
            "bob",
            "No te preocupes, lo reviso esta tarde y te cuento qué encuentro en los registros del servidor.",
            "es",
            "Don't worry, I'll check it this afternoon and tell you what I find in the server logs.",
            ("neutral", "neutral", 0.4),
        ),
    ]
    for author, text, language, english, feeling in samples:
        bridge.store(author, text, language=language)
        seq = len(bridge.messages)
        if english:
            bridge.messages[-1]["translations"]["en"] = {
                "status": "ok",
                "text": english,
                "engine": "apertium@3.8",
                "reason": None,
            }
        elif language == "de":
            bridge.messages[-1]["translations"]["en"] = {
                "status": "untranslated",
                "text": None,
                "engine": None,
                "reason": "no engine for de→en",
            }
        emotion, polarity, score = feeling
        bridge.messages[seq - 1]["sentiment"] = {
            "emotion": emotion,
            "polarity": polarity,
            "score": score,
            "flagged": False,
        }
    page = open_chat(bridge, new_page, "ana", "en")
    bridge.post("bob", "¿Alguien ha visto el informe?", language="es")
    expect(items(page)).to_have_count(5)
    save_screenshot(page, "chat-wide")
    mobile = open_chat(bridge, new_page, "ana", "en", width=390, height=760)
    expect(items(mobile)).to_have_count(5)
    save_screenshot(mobile, "chat-mobile")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
        page.locator("#composer").fill("draft")
        assert contrast_failures(page) == [], scheme
    save_screenshot(page, "chat-dark", publish=False)


def test_messages_of_another_room_are_never_shown(new_page):
    bridge = FakeBridge("lobby")
    page = open_chat(bridge, new_page, "ana", "en")
    stray = bridge.store("eve", "wrong room")
    stray["room"] = "elsewhere"
    bridge.broadcast_new(stray)
    bridge.post("bob", "right room")
    expect(bodies(page)).to_have_text(["right room"])
