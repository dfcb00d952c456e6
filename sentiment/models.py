"""Emotion records (one per message, upserted by the workers) and the moderation that rests on them."""

from django.conf import settings
from django.db import models


class Sentiment(models.Model):
    message = models.OneToOneField("chatsite.Message", on_delete=models.CASCADE, related_name="sentiment")
    emotion = models.CharField(max_length=16)
    polarity = models.CharField(max_length=16)
    score = models.FloatField()
    hostile_score = models.FloatField(default=0.0)
    # Hostile scores of the translations readers see, by language: translation can sharpen or soften an insult.
    translation_hostile = models.JSONField(default=dict, blank=True)
    flagged = models.BooleanField(default=False)
    engine = models.CharField(max_length=200, blank=True, default="")
    source_text_hash = models.CharField(max_length=64, blank=True, default="")
    updated = models.DateTimeField(auto_now=True)


class Flag(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        APPROVED = "approved"
        HIDDEN = "hidden"

    message = models.ForeignKey("chatsite.Message", on_delete=models.CASCADE, related_name="flags")
    reason = models.TextField()
    score = models.FloatField()
    trigger = models.CharField(max_length=16, default="original")  # "original" or a translation's language
    model_version = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    appealed = models.BooleanField(default=False)
    appeal_text = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # At most one open flag per message: re-scoring updates it instead of piling up duplicates.
            models.UniqueConstraint(
                fields=["message"], condition=models.Q(status="open"), name="one_open_flag_per_message"
            )
        ]
        ordering = ["-created"]


class ModerationAction(models.Model):
    """The audit log: every action on a flag, with who, when, what, and the model behind the flag."""

    class Action(models.TextChoices):
        FLAGGED = "flagged"
        APPROVE = "approve"
        HIDE = "hide"
        AUTO_HIDE = "auto_hide"
        APPEAL = "appeal"

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="actions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    note = models.TextField(blank=True, default="")
    model_version = models.CharField(max_length=200, blank=True, default="")
    score = models.FloatField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created"]
