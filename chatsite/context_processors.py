from django.http import HttpRequest


def bridge(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    is_moderator = bool(
        user is not None
        and user.is_authenticated
        and (user.is_superuser or user.groups.filter(name="moderators").exists())
    )
    return {"is_moderator": is_moderator}
