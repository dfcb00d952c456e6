"""Authorization matrix: every HTTP endpoint for anonymous, member, non-member, moderator and admin."""

from __future__ import annotations

import pytest
from django.test import Client

from chatsite import services
from sentiment.models import Flag
from sentiment.services import grant_moderator

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "member", "non_member", "moderator", "admin"]


@pytest.fixture
def world(make_db_user, make_room):
    owner = make_db_user("owner")
    member = make_db_user("member")
    outsider = make_db_user("outsider")
    moderator = make_db_user("moderator")
    grant_moderator(user=moderator)
    admin = make_db_user("admin", is_superuser=True, is_staff=True)
    room = make_room(owner, member, name="Secret")
    message, _ = services.post_message(room=room, author=owner, text="hello", client_id=None, max_chars=4000)
    flag = Flag.objects.create(message=message, reason="test", score=0.9)
    users = {"member": member, "non_member": outsider, "moderator": moderator, "admin": admin}
    return room, flag, users


def client_for(role: str, users: dict) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(users[role])
    return client


# (method, path template, expected status per role in ROLES order)
MATRIX = [
    ("get", "/api/me", [401, 200, 200, 200, 200]),
    ("get", "/api/rooms", [401, 200, 200, 200, 200]),
    ("get", "/api/rooms/{slug}/messages", [401, 200, 403, 403, 403]),
    ("get", "/api/rooms/nope/messages", [401, 404, 404, 404, 404]),
    ("get", "/api/moderation/flags", [401, 403, 403, 200, 200]),
    ("post", "/api/moderation/flags/{flag}/resolve", [401, 403, 403, 400, 400]),
    ("get", "/api/checkpoints", [401, 403, 403, 403, 200]),
    ("post", "/api/checkpoints/999/activate", [401, 403, 403, 403, 404]),
    ("post", "/api/checkpoints/999/rollback", [401, 403, 403, 403, 404]),
    ("get", "/rooms/{slug}/", [302, 200, 403, 403, 403]),
    ("get", "/moderation/", [302, 403, 403, 200, 200]),
    ("get", "/checkpoints/", [302, 403, 403, 403, 200]),
    ("get", "/", [302, 200, 200, 200, 200]),
]


@pytest.mark.parametrize(("method", "template", "expected"), MATRIX, ids=[f"{m} {t}" for m, t, _ in MATRIX])
def test_authorization_matrix(world, method, template, expected):
    room, flag, users = world
    path = template.format(slug=room.slug, flag=flag.id)
    got = []
    for role in ROLES:
        client = client_for(role, users)
        if method == "post":
            response = client.post(path, data="{}", content_type="application/json")
        else:
            response = client.get(path)
        got.append(response.status_code)
    assert got == expected, dict(zip(ROLES, got, strict=True))
