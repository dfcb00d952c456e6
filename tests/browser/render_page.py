"""Render one of the project's templates with a given context, outside the Django project.

Run as a script (``python render_page.py <template> <context.json>``) so that its minimal Django settings
never meet the project's settings inside the same pytest process. Used by the mocked browser tests, which
exercise the real templates and the real static JS against a scripted server.
"""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import django
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def render(template_name: str, context: dict) -> str:
    """Render ``template_name`` from templates/ with ``context``; ``user`` becomes a logged-in user object."""
    settings.configure(
        DEBUG=False,
        USE_I18N=True,
        LANGUAGE_CODE="en",
        STATIC_URL="/static/",
        INSTALLED_APPS=[],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [ROOT / "templates"]}],
    )
    django.setup()
    from django.template.loader import render_to_string

    user = context.get("user")
    if isinstance(user, dict):
        context["user"] = SimpleNamespace(
            is_authenticated=True,
            get_username=lambda: user["username"],
            username=user["username"],
            language=user.get("language", "en"),
            is_superuser=user.get("is_superuser", False),
        )
    return render_to_string(template_name, context)


if __name__ == "__main__":
    sys.stdout.write(render(sys.argv[1], json.loads(Path(sys.argv[2]).read_text())))
