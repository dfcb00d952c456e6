from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render

from sentiment.selectors import is_moderator


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    if not is_moderator(request.user):
        return render(request, "moderation/forbidden.html", status=403)
    return render(request, "moderation/queue.html", {"bootstrap": {"csrf_token": get_token(request)}})
