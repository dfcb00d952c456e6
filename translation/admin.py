from django.contrib import admin

from translation.models import Translation


@admin.register(Translation)
class TranslationAdmin(admin.ModelAdmin):
    list_display = ("message", "language", "status", "engine")
    list_filter = ("status", "language")
