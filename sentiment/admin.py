from django.contrib import admin

from sentiment.models import Flag, ModerationAction, Sentiment


@admin.register(Sentiment)
class SentimentAdmin(admin.ModelAdmin):
    list_display = ("message", "emotion", "polarity", "score", "hostile_score", "flagged", "engine")


class ActionInline(admin.TabularInline):
    model = ModerationAction
    extra = 0
    readonly_fields = ("actor", "action", "note", "model_version", "score", "created")


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ("message", "status", "score", "trigger", "model_version", "appealed", "created")
    list_filter = ("status", "appealed")
    inlines = [ActionInline]
