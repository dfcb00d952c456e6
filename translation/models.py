"""Translation records: one row per (message, target language), upserted by the workers."""

from django.db import models


class Translation(models.Model):
    class Status(models.TextChoices):
        OK = "ok"
        UNTRANSLATED = "untranslated"
        FAILED = "failed"

    message = models.ForeignKey("chatsite.Message", on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=8)
    status = models.CharField(max_length=16, choices=Status.choices)
    text = models.TextField(null=True, blank=True)
    # The route that produced it, "name@version" (pivots joined with " > "): shown to readers on hover.
    engine = models.CharField(max_length=200, null=True, blank=True)
    reason = models.TextField(null=True, blank=True)
    # The message text this translation was made from: a worker that finds the message edited since gives up.
    source_text_hash = models.CharField(max_length=64, blank=True, default="")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "language"], name="unique_translation")]
