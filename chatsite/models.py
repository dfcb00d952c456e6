"""The chat core: users with a reading language, rooms, membership, messages with a per-room sequence, API tokens."""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    # The language the user reads and, by default, writes in (ISO 639-1; validated against BRIDGE_LANGUAGES).
    language = models.CharField(max_length=8, default="en")


class Room(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    # The last seq handed out in this room. Incremented with an UPDATE inside the posting transaction, which
    # takes the row's write lock first: two concurrent posts can never read the same value.
    last_seq = models.BigIntegerField(default=0)
    # Words and names that pass through translation untouched (moderators edit it).
    do_not_translate = models.JSONField(default=list, blank=True)
    # Moderation: flag above this hostility score; auto-hide (opt-in) above the second one. 0.3 because the
    # default model's hostile scores are conservative (across builds, recall at 0.5 ranged 0.81-0.94 while
    # precision stayed near 1.0; docs/models.md), and the queue only selects what moderators review; nothing is
    # hidden automatically.
    flag_threshold = models.FloatField(default=0.3)
    auto_hide_threshold = models.FloatField(null=True, blank=True)
    members = models.ManyToManyField(User, through="Membership", related_name="rooms")

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    joined = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="unique_membership")]


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="messages")
    text = models.TextField()
    # The source language: detected from the text, or the author's language when detection is unsure.
    language = models.CharField(max_length=8)
    language_confidence = models.FloatField(null=True, blank=True)
    language_method = models.CharField(max_length=16, default="profile")
    client_id = models.UUIDField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    edited = models.DateTimeField(null=True, blank=True)
    hidden = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="unique_room_seq"),
            # The idempotency key of message.send: the same client_id from one author never stores twice.
            models.UniqueConstraint(
                fields=["author", "client_id"],
                name="unique_author_client_id",
                condition=models.Q(client_id__isnull=False),
            ),
        ]
        ordering = ["room", "seq"]
        # The sweeper scans recent messages by creation time every interval.
        indexes = [models.Index(fields=["created"], name="message_created")]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq}"


class ApiToken(models.Model):
    """A bearer token for non-browser clients. Only its SHA-256 is stored, so a database leak leaks no token."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    @staticmethod
    def digest_of(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()


class Checkpoint(models.Model):
    """An uploaded model version. Files live under BRIDGE_MODEL_ROOT/checkpoints/<id>/ (outside the database)."""

    class Kind(models.TextChoices):
        TRANSLATION = "translation"
        SENTIMENT = "sentiment"

    class Status(models.TextChoices):
        VALIDATING = "validating"
        READY = "ready"
        REJECTED = "rejected"
        ACTIVE = "active"
        RETIRED = "retired"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    version = models.CharField(max_length=64, unique=True)
    # Translation: the pairs it serves, "en-es,es-en". Empty for sentiment.
    languages = models.CharField(max_length=400, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALIDATING)
    archive_sha256 = models.CharField(max_length=64)
    archive_bytes = models.BigIntegerField(default=0)
    model_dir = models.CharField(max_length=500, blank=True, default="")
    metrics = models.JSONField(default=dict, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    # The version this one replaced when activated: rollback returns to it.
    previous = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    shadow = models.BooleanField(default=False)
    uploaded_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    activated = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.kind}:{self.version}"

    def pairs(self) -> list[tuple[str, str]]:
        return [tuple(pair.split("-", 1)) for pair in self.languages.split(",") if "-" in pair]  # type: ignore[misc]


class CheckpointEvent(models.Model):
    """Audit log of the registry: uploads, validations, activations, rollbacks."""

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=32)
    detail = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created"]


class ShadowResult(models.Model):
    """A shadow candidate's verdict on one live message, next to the active version's (never shown to users)."""

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, related_name="shadow_results")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    active_version = models.CharField(max_length=200)
    active_label = models.CharField(max_length=64)
    candidate_label = models.CharField(max_length=64)
    agree = models.BooleanField()
    active_ms = models.FloatField()
    candidate_ms = models.FloatField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["checkpoint", "message"], name="unique_shadow_result")]
