"""The sweeper re-sends follow-up work that a killed worker or a restarted Redis lost.

These run against the real Redis broker (the test settings' database): what the sweeper publishes is read back
from the broker's queues. The end-to-end proof, with real workers and a Redis restart, is in tests/reliability.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from chatsite import broker, pipeline, services
from chatsite.celery import app
from chatsite.models import Message
from sentiment.models import Sentiment
from translation.models import Translation

QUEUES = ("translation", "sentiment")


@pytest.fixture(autouse=True)
def empty_queues(settings):
    settings.BRIDGE_SWEEP_GRACE_S = 60
    settings.BRIDGE_SWEEP_MAX_AGE_S = 900
    settings.BRIDGE_SWEEP_MAX_RESENDS = 2

    def purge() -> None:
        with app.connection_for_write() as connection:
            for queue in QUEUES:
                connection.default_channel.queue_purge(queue)

    cache.clear()  # the re-send counts: message ids repeat across tests, the database is rolled back
    purge()
    yield purge
    purge()


def _message(room, author, text: str, age_s: float) -> Message:
    message, _ = services.post_message(room=room, author=author, text=text, client_id=None, max_chars=4000)
    Message.objects.filter(pk=message.pk).update(created=timezone.now() - timedelta(seconds=age_s))
    return message


def _queued(queue: str) -> list[tuple[str, list]]:
    """(task name, args) of every task waiting in `queue`, read off the broker without consuming them for good."""
    found = []
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            found.append((message.headers["task"], message.decode()[0]))
    return found


def test_queue_depth_reads_the_broker(empty_queues):
    assert broker.queue_depth("translation") == 0
    app.send_task("translation.translate_message", args=[0, "es"])
    assert broker.queue_depth("translation") == 1


def test_resends_what_is_missing_and_only_that(make_db_user, make_room, empty_queues):
    alice, bruno, chloe = make_db_user(language="en"), make_db_user(language="es"), make_db_user(language="fr")
    room = make_room(alice, bruno, chloe)
    lost = _message(room, alice, "The house is very big.", age_s=120)
    half_done = _message(room, alice, "My brother has a red car.", age_s=120)
    Translation.objects.create(message=half_done, language="es", status="ok", text="Mi hermano tiene un coche rojo.")
    Sentiment.objects.create(message=half_done, emotion="neutral", polarity="neutral", score=0.9)
    _message(room, alice, "Too young to be lost, it may still be in a worker.", age_s=5)
    _message(room, alice, "Too old: out of the sweep window.", age_s=3600)
    hidden = _message(room, alice, "A hidden message is never translated.", age_s=120)
    Message.objects.filter(pk=hidden.pk).update(hidden=True)

    assert pipeline.sweep_unfinished() == {"translation": 3, "sentiment": 1}

    resent = sorted(args for _, args in _queued("translation"))
    assert resent == [[lost.id, "es"], [lost.id, "fr"], [half_done.id, "fr"]]
    assert _queued("sentiment") == [("sentiment.analyse_message", [lost.id])]


def test_nothing_is_resent_while_the_queue_has_a_backlog(make_db_user, make_room, empty_queues):
    alice, bruno = make_db_user(language="en"), make_db_user(language="es")
    room = make_room(alice, bruno)
    _message(room, alice, "The house is very big.", age_s=120)
    app.send_task("translation.translate_message", args=[0, "es"])  # someone else's work is still waiting
    # Translation waits for its backlog; the emotion queue is empty, so the missing emotion is re-sent.
    assert pipeline.sweep_unfinished() == {"translation": 0, "sentiment": 1}


def test_a_translation_no_worker_completes_ends_as_failed_with_the_reason(make_db_user, make_room, empty_queues):
    alice, bruno = make_db_user(language="en"), make_db_user(language="es")
    room = make_room(alice, bruno)
    lost = _message(room, alice, "The house is very big.", age_s=120)
    Sentiment.objects.create(message=lost, emotion="neutral", polarity="neutral", score=0.9)
    for _ in range(2):  # BRIDGE_SWEEP_MAX_RESENDS: each re-send is lost too
        assert pipeline.sweep_unfinished()["translation"] == 1
        empty_queues()
        # A re-send gets the same grace as the original: the next sweep leaves it alone.
        assert pipeline.sweep_unfinished()["translation"] == 0
        cache.delete(f"sweep:translation:{lost.id}:es:recent")  # the grace period has passed
    assert pipeline.sweep_unfinished()["translation"] == 0
    failed = Translation.objects.get(message=lost, language="es")
    assert failed.status == "failed" and "after 2 re-sends" in failed.reason
    assert pipeline.sweep_unfinished() == {"translation": 0, "sentiment": 0}  # settled: nothing more to do


def test_an_unreachable_broker_resends_nothing(make_db_user, make_room, settings):
    alice, bruno = make_db_user(language="en"), make_db_user(language="es")
    room = make_room(alice, bruno)
    _message(room, alice, "The house is very big.", age_s=120)
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        assert broker.queue_depth("translation") is None
        assert pipeline.sweep_unfinished() == {"translation": 0, "sentiment": 0}
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL
