from django.http import HttpRequest


def bridge(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    is_moderator = bool(
        user is not None
        and user.is_authenticated
        and (user.is_superuser or user.groups.filter(name="moderators").exists())
    )
    checkpoints_url = "/checkpoints/" if user is not None and user.is_authenticated and user.is_superuser else None
    return {"is_moderator": is_moderator, "checkpoints_url": checkpoints_url}
