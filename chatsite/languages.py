"""The chat languages a deployment serves (ISO 639-1 codes) and their display names."""

from django.conf import settings

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "es": "Español",
    "fr": "Français",
    "de": "Deutsch",
    "pt": "Português",
    "it": "Italiano",
    "zh": "中文",
    "ja": "日本語",
    "ca": "Català",
    "gl": "Galego",
}


def served_languages() -> list[str]:
    return list(settings.BRIDGE_LANGUAGES)


def language_choices() -> list[tuple[str, str]]:
    return [(code, LANGUAGE_NAMES.get(code, code)) for code in served_languages()]


def is_served(code: object) -> bool:
    return isinstance(code, str) and code in settings.BRIDGE_LANGUAGES


def unknown_language_detail(code: object) -> str:
    return f"Unknown language {code!r}. Served languages: {', '.join(served_languages())}."
