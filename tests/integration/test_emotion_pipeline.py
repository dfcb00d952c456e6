"""Emotion end to end with the real default model: a hostile message in each language is tagged, flagged and
queued within seconds; a moderator hides it and every client sees it vanish; the audit log records who and why."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from tests.integration.wsclient import next_of, open_socket, run_async

pytestmark = pytest.mark.integration

# Insults aimed at the reader (hostile) and friendly lines (not), one pair per served language. Written for
# this test; none of them is in the training data.
HOSTILE = {
    "en": "you are a pathetic idiot and everyone here hates you",
    "es": "eres un imbécil patético, nadie te soporta",
    "fr": "t'es vraiment un abruti fini, ferme-la",
    "de": "du bist ein erbärmlicher Idiot, halt endlich die Klappe",
    "pt": "você é um idiota patético, cala a boca",
    "it": "sei un idiota patetico, stai zitto una buona volta",
    "zh": "你就是个废物白痴，闭嘴吧",
    "ja": "お前みたいなバカは黙ってろ、本当に無能だな",
}
FRIENDLY = {
    "en": "thanks so much for your help today, you made my week!",
    "es": "¡muchas gracias por la ayuda, eres un sol!",
    "fr": "merci beaucoup, c'était une super soirée avec vous",
    "de": "vielen Dank, das Treffen heute war richtig schön",
}


def test_hostile_messages_are_flagged_queued_and_hidden_everywhere(live_product):
    moderator_name = f"mod{uuid.uuid4().hex[:6]}"
    moderator = live_product.signup(moderator_name, "en")
    live_product.manage("grant_moderator", moderator_name)
    writer = live_product.signup(f"w{uuid.uuid4().hex[:6]}", "en")
    reader = live_product.signup(f"r{uuid.uuid4().hex[:6]}", "en")
    _, room = live_product.api("POST", "/api/rooms", {"name": "Moderated"}, writer)
    assert live_product.api("POST", f"/api/rooms/{room['slug']}/join", {}, reader)[0] == 200

    async def send_and_tag(ws, text: str) -> dict:
        await ws.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": text}))
        ack = await next_of(ws, "message.ack")
        async with asyncio.timeout(60):
            while True:
                event = await next_of(ws, "message.sentiment", timeout=60)
                if event["id"] == ack["message"]["id"]:
                    return event

    async def scenario() -> tuple[dict, dict]:
        ws = await open_socket(live_product, room["slug"], writer)
        hostile = {lang: await send_and_tag(ws, text) for lang, text in HOSTILE.items()}
        friendly = {lang: await send_and_tag(ws, text) for lang, text in FRIENDLY.items()}
        await ws.close()
        return hostile, friendly

    started = time.monotonic()
    hostile, friendly = run_async(scenario())
    per_message_s = (time.monotonic() - started) / (len(HOSTILE) + len(FRIENDLY))
    flagged = [lang for lang, event in hostile.items() if event["flagged"]]
    assert len(flagged) >= 7, f"hostile messages flagged only in {flagged}: {hostile}"
    assert all(event["polarity"] == "negative" for lang, event in hostile.items() if lang in flagged)
    assert not [lang for lang, event in friendly.items() if event["flagged"]], friendly
    assert per_message_s < 10, per_message_s

    _, queue = live_product.api("GET", "/api/moderation/flags?status=open", token=moderator)
    queued = {flag["message"]["id"]: flag for flag in queue["flags"]}
    target = hostile[flagged[0]]
    flag = queued[target["id"]]
    assert flag["model_version"].startswith("bridge-emotion@") and flag["scores"]["original"] >= 0.5
    assert live_product.api("GET", "/api/moderation/flags", token=writer)[0] == 403

    async def hide_and_watch() -> dict:
        ws = await open_socket(live_product, room["slug"], reader)
        status, _ = await asyncio.to_thread(
            live_product.api,
            "POST",
            f"/api/moderation/flags/{flag['id']}/resolve",
            {"action": "hide", "note": "insult"},
            moderator,
        )
        assert status == 200
        hidden = await next_of(ws, "message.hidden")
        await ws.close()
        return hidden

    hidden = run_async(hide_and_watch())
    assert hidden["id"] == target["id"]
    _, history = live_product.api("GET", f"/api/rooms/{room['slug']}/messages?limit=200", token=reader)
    assert target["id"] not in {m["id"] for m in history["messages"]}
    _, resolved = live_product.api("GET", "/api/moderation/flags?status=hidden", token=moderator)
    audit = next(f for f in resolved["flags"] if f["id"] == flag["id"])["audit"]
    assert [a["action"] for a in audit] == ["flagged", "hide"]
    assert audit[1]["actor"] == moderator_name and audit[1]["note"] == "insult" and audit[1]["model_version"]
