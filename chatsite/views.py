"""Browser pages. Thin: forms and selectors in, templates out; the chat itself runs over the websocket."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from chatsite import ratelimit, selectors, services
from chatsite.api import client_ip
from chatsite.forms import RoomForm, SignupForm
from chatsite.languages import language_choices
from chatsite.models import Room


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("rooms")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def rooms(request: HttpRequest) -> HttpResponse:
    context = {
        "rooms": selectors.user_rooms(request.user),
        "other_rooms": selectors.joinable_rooms(request.user),
        "create_form": RoomForm(),
    }
    return render(request, "chat/rooms.html", context)


@login_required
@require_POST
def create_room(request: HttpRequest) -> HttpResponse:
    form = RoomForm(request.POST)
    if not form.is_valid():
        return redirect("rooms")
    try:
        room = services.create_room(name=form.cleaned_data["name"], creator=request.user)
    except services.ChatError as exc:
        messages.error(request, exc.detail)
        return redirect("rooms")
    return redirect("room", slug=room.slug)


@login_required
@require_POST
def join_room(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        room = selectors.room_by_slug(slug)
    except Room.DoesNotExist as exc:
        raise Http404(slug) from exc
    try:
        services.join_room(room=room, user=request.user)
    except services.ChatError as exc:
        messages.error(request, exc.detail)
        return redirect("rooms")
    return redirect("room", slug=room.slug)


@login_required
def room(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        chat_room = selectors.room_for_member(slug=slug, user=request.user)
    except Room.DoesNotExist as exc:
        raise Http404(slug) from exc
    except selectors.NotAMember:
        return render(request, "chat/not_member.html", {"slug": slug}, status=403)
    bootstrap = {
        "room": chat_room.slug,
        "room_name": chat_room.name,
        "username": request.user.username,
        "language": request.user.language,
        "ws_path": f"/ws/rooms/{chat_room.slug}/",
        "history_url": f"/api/rooms/{chat_room.slug}/messages",
        "me_url": "/api/me",
        "appeal_url": reverse("api-flag-appeal", args=[0]),
        "csrf_token": get_token(request),
        "languages": language_choices(),
    }
    context = {"room": chat_room, "me": request.user, "languages": language_choices(), "bootstrap": bootstrap}
    return render(request, "chat/room.html", context)


@login_required
def checkpoints(request: HttpRequest) -> HttpResponse:
    """The admins' model page: upload, figures beside the active version's, activate, roll back."""
    if not request.user.is_superuser:
        return render(request, "moderation/forbidden.html", status=403)
    bootstrap = {"csrf_token": get_token(request), "api": "/api/checkpoints"}
    return render(request, "checkpoints/manage.html", {"bootstrap": bootstrap})


class ThrottledLoginView(LoginView):
    """Django's login form, with attempts per client IP and per username capped per minute (password guessing)."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        limit = settings.BRIDGE_LOGIN_RATE_PER_MINUTE
        username = str(request.POST.get("username", "")).strip().lower()[:150]
        allowed = ratelimit.hit("login-ip", client_ip(request), limit=limit)
        # Both counters move on every attempt, so a spread-out guesser and a single noisy IP are both slowed.
        allowed = ratelimit.hit("login-user", username, limit=limit) and allowed
        if not allowed:
            # An unbound form: validating the posted one would check the password, which is what is throttled.
            form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
            response = self.render_to_response(self.get_context_data(form=form, throttled=True), status=429)
            response["Retry-After"] = str(ratelimit.seconds_to_window_end(60))
            return response
        return super().post(request, *args, **kwargs)
