"""The chat core's writes and reads against the database (also run on PostgreSQL by bin/test)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from chatsite import selectors, services
from chatsite.models import Message
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_seq_starts_at_one_and_increases_per_room(make_db_user, make_room):
    alice = make_db_user("alice")
    general, random = make_room(alice, name="General"), make_room(alice, name="Random")
    seqs = [
        services.post_message(room=room, author=alice, text=f"hi {i}", client_id=None, max_chars=4000)[0].seq
        for i, room in enumerate([general, general, random, general])
    ]
    assert seqs == [1, 2, 1, 3]


def test_same_client_id_stores_one_message(make_db_user, make_room):
    alice = make_db_user("alice")
    room = make_room(alice)
    client_id = str(uuid.uuid4())
    first, created_first = services.post_message(
        room=room, author=alice, text="hello", client_id=client_id, max_chars=4000
    )
    again, created_again = services.post_message(
        room=room, author=alice, text="hello", client_id=client_id, max_chars=4000
    )
    assert (created_first, created_again) == (True, False)
    assert again.id == first.id
    assert Message.objects.count() == 1


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite serialises writers; the race needs PostgreSQL")
def test_concurrent_posts_get_distinct_seqs(make_db_user, make_room):
    alice = make_db_user("alice")
    room = make_room(alice)
    errors: list[Exception] = []

    def post(n: int) -> None:
        try:
            for i in range(10):
                services.post_message(room=room, author=alice, text=f"{n}-{i}", client_id=None, max_chars=4000)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(Message.objects.filter(room=room).values_list("seq", flat=True)) == list(range(1, 41))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty_text"),
        ("   ", "empty_text"),
        (None, "empty_text"),
        (42, "empty_text"),
        ("x" * 4001, "text_too_long"),
        ("bad \ud800 surrogate", "invalid_text"),
    ],
)
def test_bad_text_is_refused_and_nothing_stored(make_db_user, make_room, text, code):
    alice = make_db_user("alice")
    room = make_room(alice)
    with pytest.raises(services.ChatError) as caught:
        services.post_message(room=room, author=alice, text=text, client_id=None, max_chars=4000)
    assert caught.value.code == code
    assert Message.objects.count() == 0


def test_unicode_edge_cases_are_stored_intact(make_db_user, make_room):
    alice = make_db_user("alice")
    room = make_room(alice)
    samples = ["\u200fשלום\u200f", "zero\u200bwidth", "e\u0301\u0301", "🧑‍🚀🏳️‍🌈👍🏽", "مرحبا بالعالم"]
    for text in samples:
        services.post_message(room=room, author=alice, text=text, client_id=None, max_chars=4000)
    stored = [m["text"] for m in selectors.history(room=room, language="en")]
    assert stored == samples


def test_history_after_before_and_limit(make_db_user, make_room):
    alice = make_db_user("alice")
    room = make_room(alice)
    for i in range(1, 11):
        services.post_message(room=room, author=alice, text=f"m{i}", client_id=None, max_chars=4000)
    assert [m["seq"] for m in selectors.history(room=room, language="en", limit=3)] == [8, 9, 10]
    assert [m["seq"] for m in selectors.history(room=room, language="en", after=4, limit=3)] == [5, 6, 7]
    assert [m["seq"] for m in selectors.history(room=room, language="en", before=4, limit=50)] == [1, 2, 3]


def test_hidden_messages_leave_history_and_replay_without_text(make_db_user, make_room):
    alice = make_db_user("alice")
    room = make_room(alice)
    for i in range(1, 4):
        services.post_message(room=room, author=alice, text=f"m{i}", client_id=None, max_chars=4000)
    Message.objects.filter(room=room, seq=2).update(hidden=True)
    assert [m["seq"] for m in selectors.history(room=room, language="en")] == [1, 3]
    replayed = list(selectors.replay(room_id=room.id, after=0, language="en"))
    assert [e["type"] for e in replayed] == ["message.new", "message.new", "message.hidden", "message.new"]
    assert replayed[1]["message"]["text"] == "" and replayed[1]["message"]["hidden"] is True


def test_signup_validates_language_and_password(db):
    with pytest.raises(services.ChatError) as caught:
        services.signup(username="bob", password=TEST_PASSWORD, language="xx")
    assert caught.value.code == "unknown_language" and "en" in caught.value.detail
    with pytest.raises(services.ChatError) as caught:
        services.signup(username="bob", password="123", language="en")
    assert caught.value.code == "weak_password"
    user = services.signup(username="bob", password=TEST_PASSWORD, language="es")
    assert user.language == "es" and user.check_password(TEST_PASSWORD)
    with pytest.raises(services.ChatError) as caught:
        services.signup(username="BOB", password=TEST_PASSWORD, language="es")
    assert caught.value.code == "username_taken"


def test_edit_replaces_text_and_only_by_author(make_db_user, make_room):
    alice, bob = make_db_user("alice"), make_db_user("bob")
    room = make_room(alice, bob)
    message, _ = services.post_message(room=room, author=alice, text="helo", client_id=None, max_chars=4000)
    with pytest.raises(services.ChatError):
        services.edit_message(message=message, editor=bob, text="hacked", max_chars=4000)
    services.edit_message(message=message, editor=alice, text="hello", max_chars=4000)
    message.refresh_from_db()
    assert message.text == "hello" and message.edited is not None
