"""Writes of the chat core. Every write is a named action; events go out only after the transaction commits."""

from __future__ import annotations

import logging
import secrets
import uuid
from functools import partial

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from chatsite import events, logs, metrics, pipeline, realtime
from chatsite.languages import is_served, unknown_language_detail
from chatsite.models import ApiToken, Membership, Message, Room, User
from chatsite.selectors import new_message_payload

logger = logging.getLogger(__name__)


class ChatError(Exception):
    """A refused action. `code` is the snake_case error code clients see."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _check_language(language: object) -> str:
    if not is_served(language):
        raise ChatError("unknown_language", unknown_language_detail(language))
    return language  # type: ignore[return-value]


@transaction.atomic
def signup(*, username: str, password: str, language: str) -> User:
    _check_language(language)
    if not isinstance(username, str) or not username.strip() or len(username) > 150:
        raise ChatError("invalid_username", "A username of 1 to 150 characters is required.")
    if User.objects.filter(username__iexact=username).exists():
        raise ChatError("username_taken", f"The username {username!r} is taken.")
    user = User(username=username, language=language)
    from django.core.exceptions import ValidationError

    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ChatError("weak_password", " ".join(exc.messages)) from exc
    user.set_password(password)
    user.save()
    return user


def issue_token(*, user: User) -> str:
    raw = secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, digest=ApiToken.digest_of(raw))
    return raw


def set_language(*, user: User, language: str) -> User:
    user.language = _check_language(language)
    user.save(update_fields=["language"])
    return user


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "room"
    slug = base
    while Room.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def _check_membership_limits(*, user: User, room: Room | None) -> None:
    """Caps that keep one account from exhausting the server: rooms it creates, rooms it is in, room size."""
    if Membership.objects.filter(user=user).count() >= settings.BRIDGE_MAX_MEMBERSHIPS_PER_USER:
        raise ChatError(
            "limit_reached", f"An account can be in at most {settings.BRIDGE_MAX_MEMBERSHIPS_PER_USER} rooms."
        )
    if room is None:
        if Room.objects.filter(created_by=user).count() >= settings.BRIDGE_MAX_ROOMS_PER_USER:
            raise ChatError(
                "limit_reached", f"An account can create at most {settings.BRIDGE_MAX_ROOMS_PER_USER} rooms."
            )
    elif Membership.objects.filter(room=room).count() >= settings.BRIDGE_MAX_ROOM_MEMBERS:
        raise ChatError("limit_reached", f"A room holds at most {settings.BRIDGE_MAX_ROOM_MEMBERS} members.")


@transaction.atomic
def create_room(*, name: str, creator: User) -> Room:
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise ChatError("invalid_name", "A room name of 1 to 120 characters is required.")
    _check_membership_limits(user=creator, room=None)
    room = Room.objects.create(slug=_unique_slug(name.strip()), name=name.strip(), created_by=creator)
    Membership.objects.create(room=room, user=creator)
    return room


def join_room(*, room: Room, user: User) -> Membership:
    existing = Membership.objects.filter(room=room, user=user).first()
    if existing is not None:
        return existing  # joining twice is not an error, and never counts against a limit
    _check_membership_limits(user=user, room=room)
    membership, _ = Membership.objects.get_or_create(room=room, user=user)
    return membership


@transaction.atomic
def remove_member(*, room: Room, user: User) -> None:
    """Removes the membership and closes the user's open sockets on that room (after commit)."""
    Membership.objects.filter(room=room, user=user).delete()
    transaction.on_commit(partial(realtime.end_membership, user.id, room.id))


def _next_seq(room_id: int) -> int:
    # The UPDATE takes the row's write lock before the read, so concurrent posts get distinct, increasing seqs.
    # One statement with RETURNING (SQLite >= 3.35 and PostgreSQL both have it): the send path's hottest query.
    table = connection.ops.quote_name(Room._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq", [room_id])
        row = cursor.fetchone()
    if row is None:
        raise Room.DoesNotExist(room_id)
    return row[0]


def _validate_text(text: object, max_chars: int) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ChatError("empty_text", "Message text must be a non-empty string.")
    if len(text) > max_chars:
        raise ChatError("text_too_long", f"Message text is limited to {max_chars} characters.")
    # Lone surrogates cannot be stored as UTF-8: refuse them clearly rather than fail in the database.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ChatError("invalid_text", "Message text is not valid Unicode (lone surrogate).") from exc
    return text


def _parse_client_id(client_id: object) -> uuid.UUID | None:
    if client_id is None:
        return None
    try:
        return uuid.UUID(str(client_id))
    except ValueError as exc:
        raise ChatError("invalid_client_id", "client_id must be a UUID.") from exc


def post_message(*, room: Room, author: User, text: str, client_id: object, max_chars: int) -> tuple[Message, bool]:
    """Stores a message (or finds the one this client_id already stored) and returns (message, created).

    After commit: message.new to the room, then the translation and sentiment tasks. A message whose
    client_id was seen before is returned as it is, with nothing stored or sent again.
    """
    text = _validate_text(text, max_chars)
    parsed_client_id = _parse_client_id(client_id)
    # No look-up of the client_id first: the unique constraint answers a repeat, and a first send (nearly all of
    # them) saves a query.
    try:
        with transaction.atomic():
            detection = pipeline.detect_language(text, fallback=author.language)
            message = Message.objects.create(
                room=room,
                seq=_next_seq(room.id),
                author=author,
                text=text,
                language=detection.language,
                language_confidence=detection.confidence,
                language_method=detection.method,
                client_id=parsed_client_id,
            )
            transaction.on_commit(partial(_announce_new, message))
    except IntegrityError:
        # This client_id was stored before (a resend, or two sends raced): answer with that message.
        if parsed_client_id is None:
            raise
        return Message.objects.get(author=author, client_id=parsed_client_id), False
    return message, True


def _announce_new(message: Message) -> None:
    # Runs on the consumer's database thread, which every send in this process shares: only the broadcast (whose
    # order must follow seq) stays here; the follow-up tasks are published from a thread of their own.
    with logs.about_message(message.id):
        realtime.broadcast_to_room(message.room_id, events.message_new(new_message_payload(message)))
        metrics.MESSAGES.inc()
        logger.info("message stored: room %s seq %s, %s", message.room_id, message.seq, message.language)
        pipeline.submit_followups(message.id)


@transaction.atomic
def edit_message(*, message: Message, editor: User, text: str, max_chars: int) -> Message:
    if message.author_id != editor.id:
        raise ChatError("forbidden", "Only the author can edit a message.")
    if message.hidden:
        raise ChatError("forbidden", "A hidden message cannot be edited.")
    message.text = _validate_text(text, max_chars)
    message.edited = timezone.now()
    message.save(update_fields=["text", "edited"])
    pipeline.discard_followups(message)
    event = events.message_edited(
        message_id=message.id, seq=message.seq, text=message.text, edited=message.edited.isoformat()
    )
    transaction.on_commit(partial(realtime.broadcast_to_room, message.room_id, event))
    transaction.on_commit(partial(pipeline.submit_followups, message.id))
    return message
