"""Reads of the chat core. Views and consumers call these; they never write."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Prefetch, QuerySet

from chatsite import events
from chatsite.models import Membership, Message, Room, User
from sentiment.models import Sentiment
from translation.models import Translation


class NotAMember(Exception):
    """The user may not read or post in this room."""


def room_by_slug(slug: str) -> Room:
    """Raises Room.DoesNotExist (404 to clients)."""
    return Room.objects.get(slug=slug)


def is_member(*, room_id: int, user_id: int) -> bool:
    return Membership.objects.filter(room_id=room_id, user_id=user_id).exists()


def room_for_member(*, slug: str, user: User) -> Room:
    """The room, when `user` is a member; Room.DoesNotExist or NotAMember otherwise."""
    room = room_by_slug(slug)
    if not is_member(room_id=room.id, user_id=user.id):
        raise NotAMember(slug)
    return room


def user_rooms(user: User) -> QuerySet[Room]:
    return Room.objects.filter(memberships__user=user).annotate(member_count=Count("memberships")).order_by("name")


def joinable_rooms(user: User) -> QuerySet[Room]:
    return Room.objects.exclude(memberships__user=user).annotate(member_count=Count("memberships")).order_by("name")


def _with_reader_data(queryset: QuerySet[Message], language: str | None) -> QuerySet[Message]:
    translations = Translation.objects.all() if language is None else Translation.objects.filter(language=language)
    return queryset.select_related("author", "room", "sentiment").prefetch_related(
        Prefetch("translations", queryset=translations, to_attr="reader_translations")
    )


def translation_payload(translation: Translation) -> dict[str, Any]:
    return {
        "status": translation.status,
        "text": translation.text,
        "engine": translation.engine,
        "reason": translation.reason,
    }


def sentiment_payload(sentiment: Sentiment | None) -> dict[str, Any] | None:
    if sentiment is None:
        return None
    return {
        "emotion": sentiment.emotion,
        "polarity": sentiment.polarity,
        "score": round(sentiment.score, 4),
        "flagged": sentiment.flagged,
        "engine": sentiment.engine or None,
    }


def _sentiment_of(message: Message) -> Sentiment | None:
    try:
        return message.sentiment
    except Sentiment.DoesNotExist:
        return None


def message_payload(message: Message) -> dict[str, Any]:
    """The Message object of CONTRACT.md. Hidden messages keep their place (seq) but lose their text."""
    translations = getattr(message, "reader_translations", None)
    if translations is None:
        translations = list(message.translations.all())
    hidden = message.hidden
    return {
        "id": message.id,
        "seq": message.seq,
        "room": message.room.slug,
        "author": message.author.username,
        "text": "" if hidden else message.text,
        "language": message.language,
        "created": message.created.isoformat(),
        "edited": message.edited.isoformat() if message.edited else None,
        "client_id": str(message.client_id) if message.client_id else None,
        "translations": {} if hidden else {t.language: translation_payload(t) for t in translations},
        "sentiment": None if hidden else sentiment_payload(_sentiment_of(message)),
        "hidden": hidden,
    }


def new_message_payload(message: Message) -> dict[str, Any]:
    """The payload of a message stored a moment ago, from the object in hand: it has no translation and no emotion
    yet, so the send path needs no query for it (its room and author are the ones it was created with)."""
    message.reader_translations = []
    Message.sentiment.related.set_cached_value(message, None)
    return message_payload(message)


def message_by_id(message_id: int) -> Message:
    return _with_reader_data(Message.objects.filter(pk=message_id), None).get()


def history(
    *, room: Room, language: str, after: int | None = None, before: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Visible messages oldest first: after `after`, or the latest `limit` (before `before` when given)."""
    queryset = _with_reader_data(Message.objects.filter(room=room, hidden=False), language)
    if after is not None:
        rows = list(queryset.filter(seq__gt=after).order_by("seq")[:limit])
    else:
        if before is not None:
            queryset = queryset.filter(seq__lt=before)
        rows = list(queryset.order_by("-seq")[:limit])[::-1]
    return [message_payload(m) for m in rows]


def replay(*, room_id: int, after: int, language: str, page_size: int = 200) -> Iterator[dict[str, Any]]:
    """The events a client missed after `after`, in seq order, read page by page.

    Each message.new is followed by the events that already exist for it: message.translated in the reader's
    language, message.sentiment, message.hidden. Hidden messages are replayed without their text so the client's
    seq stays contiguous.
    """
    cursor = after
    while True:
        page = list(
            _with_reader_data(Message.objects.filter(room_id=room_id, seq__gt=cursor), language).order_by("seq")[
                :page_size
            ]
        )
        for message in page:
            yield events.message_new(message_payload(message))
            if message.hidden:
                yield events.message_hidden(message_id=message.id, seq=message.seq)
                continue
            for translation in message.reader_translations:
                yield events.message_translated(
                    message_id=message.id,
                    seq=message.seq,
                    language=translation.language,
                    **translation_payload(translation),
                )
            sentiment = _sentiment_of(message)
            if sentiment is not None:
                yield events.message_sentiment(message_id=message.id, seq=message.seq, **sentiment_payload(sentiment))
        if len(page) < page_size:
            return
        cursor = page[-1].seq


def last_seq(room_id: int) -> int:
    return Room.objects.filter(pk=room_id).values_list("last_seq", flat=True).get()


def room_reader_languages(room_id: int) -> set[str]:
    """The languages the members of a room read: the targets a new message must be translated into."""
    return set(User.objects.filter(memberships__room_id=room_id).values_list("language", flat=True))


def _visible_messages_between(created_after, created_before) -> QuerySet[Message]:
    return Message.objects.filter(created__gte=created_after, created__lte=created_before, hidden=False).order_by(
        "created", "id"
    )


def messages_with_their_translations(*, created_after, created_before, limit: int) -> QuerySet[Message]:
    """Visible messages in a time window, oldest first, with the languages they are translated into: the
    translation sweep's candidates (it works out which languages each still lacks)."""
    translations = Prefetch("translations", queryset=Translation.objects.only("id", "message_id", "language"))
    return _visible_messages_between(created_after, created_before).prefetch_related(translations)[:limit]


def message_ids_without_sentiment(*, created_after, created_before, limit: int) -> list[int]:
    """Visible messages in a time window that have no emotion yet, oldest first: the emotion sweep's work."""
    queryset = _visible_messages_between(created_after, created_before).filter(sentiment__isnull=True)
    return list(queryset.values_list("id", flat=True)[:limit])
