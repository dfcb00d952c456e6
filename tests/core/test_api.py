"""The HTTP API of CONTRACT.md, through Django's test client."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.test import Client

from chatsite import services
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def post(client: Client, path: str, body: dict | None = None, token: str | None = None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(path, data=json.dumps(body or {}), content_type="application/json", **headers, **extra)


def get(client: Client, path: str, token: str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get(path, **headers)


@pytest.fixture
def client() -> Client:
    return Client()


def signup_and_token(client: Client, username: str, language: str = "en") -> str:
    response = post(client, "/api/auth/signup", {"username": username, "password": TEST_PASSWORD, "language": language})
    assert response.status_code == 201, response.content
    return post(client, "/api/auth/token", {"username": username, "password": TEST_PASSWORD}).json()["token"]


def test_signup_returns_user_and_refuses_unknown_language(client):
    response = post(client, "/api/auth/signup", {"username": "ana", "password": TEST_PASSWORD, "language": "es"})
    assert response.status_code == 201
    assert set(response.json()) == {"id", "username", "language"} and response.json()["language"] == "es"
    bad = post(client, "/api/auth/signup", {"username": "bo", "password": TEST_PASSWORD, "language": "klingon"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "unknown_language"
    assert all(code in bad.json()["error"]["detail"] for code in ["en", "es", "fr", "de", "pt", "it", "zh", "ja"])


def test_token_and_me(client):
    token = signup_and_token(client, "ana", "es")
    me = get(client, "/api/me", token).json()
    assert me["username"] == "ana" and me["language"] == "es"
    patched = client.patch(
        "/api/me",
        data=json.dumps({"language": "fr"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert patched.status_code == 200 and patched.json()["language"] == "fr"
    bad = client.patch(
        "/api/me",
        data=json.dumps({"language": "xx"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "unknown_language"
    assert post(client, "/api/auth/token", {"username": "ana", "password": "nope"}).status_code == 400
    assert get(client, "/api/me").status_code == 401
    assert get(client, "/api/me", "not-a-token").status_code == 401


def test_rooms_membership_and_history(client):
    ana, bob = signup_and_token(client, "ana", "es"), signup_and_token(client, "bob", "en")
    created = post(client, "/api/rooms", {"name": "Team Chat"}, ana)
    assert created.status_code == 201
    slug = created.json()["slug"]
    assert created.json() == {"slug": slug, "name": "Team Chat"}
    assert get(client, f"/api/rooms/{slug}/messages", bob).status_code == 403
    assert get(client, "/api/rooms/nope/messages", bob).status_code == 404
    assert post(client, "/api/rooms/nope/join", {}, bob).status_code == 404
    assert post(client, f"/api/rooms/{slug}/join", {}, bob).status_code == 200
    from chatsite.models import Room, User

    room, author = Room.objects.get(slug=slug), User.objects.get(username="ana")
    for i in range(1, 6):
        services.post_message(room=room, author=author, text=f"hola {i}", client_id=None, max_chars=4000)
    listed = get(client, f"/api/rooms/{slug}/messages?after=2&limit=2", bob).json()["messages"]
    assert [m["seq"] for m in listed] == [3, 4]
    message = listed[0]
    assert set(message) >= {
        "id",
        "seq",
        "room",
        "author",
        "text",
        "language",
        "created",
        "client_id",
        "translations",
        "sentiment",
        "hidden",
    }
    assert message["room"] == slug and message["author"] == "ana" and message["hidden"] is False
    assert get(client, f"/api/rooms/{slug}/messages?limit=201", bob).status_code == 400
    assert get(client, f"/api/rooms/{slug}/messages?after=x", bob).status_code == 400
    assert len(get(client, f"/api/rooms/{slug}/messages", bob).json()["messages"]) == 5


def test_session_requests_need_csrf_but_bearer_requests_do_not(db):
    from chatsite.models import User

    User.objects.create_user("ana", password=TEST_PASSWORD, language="en")
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="ana", password=TEST_PASSWORD)
    refused = browser.post("/api/rooms", data=json.dumps({"name": "x"}), content_type="application/json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    browser.get("/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(
        "/api/rooms", data=json.dumps({"name": "x"}), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert accepted.status_code == 201


def test_malformed_json_and_wrong_method(client):
    token = signup_and_token(client, "ana")
    response = client.post(
        "/api/rooms", data="{nope", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_json"
    assert client.delete("/api/rooms", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 405


def test_token_endpoint_is_rate_limited(client, settings):
    settings.BRIDGE_AUTH_RATE_PER_MINUTE = 3
    from django.core.cache import cache

    cache.clear()
    codes = [post(client, "/api/auth/token", {"username": "x", "password": "y"}).status_code for _ in range(5)]
    assert codes[:3] == [400, 400, 400] and codes[3:] == [429, 429]
    limited = post(client, "/api/auth/token", {"username": "x", "password": "y"})
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited["Retry-After"]) >= 1


def test_healthz_reports_components(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["checks"] == {
        "database": True,
        "channel_layer": True,
    }
    # The broker (the real Redis) answers; no worker runs in a unit test: degraded, but chat is up (200).
    readiness = response.json()["readiness"]
    assert readiness["broker"] is True and set(readiness["queues"]) == {"translation", "sentiment"}
    assert readiness["workers"] == {"translation": 0, "sentiment": 0}
    assert response.json()["degraded"] == ["workers.translation", "workers.sentiment"]


def test_pages_carry_csp_without_unsafe_inline(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_metrics_need_the_token_when_one_is_set(client, settings):
    assert client.get("/metrics").status_code == 200  # a direct local request, no token configured
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    settings.BRIDGE_METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert response.status_code == 200 and b"bridge_messages_total" in response.content
    assert b"bridge_queue_depth" in response.content


def test_login_form_is_throttled_per_ip_and_per_username(client, settings, make_db_user):
    settings.BRIDGE_LOGIN_RATE_PER_MINUTE = 3
    cache.clear()
    user = make_db_user()
    for _ in range(3):
        response = client.post("/accounts/login/", {"username": user.username, "password": "wrong"})
        assert response.status_code == 200  # the form again, with Django's "enter a correct username" error
    response = client.post("/accounts/login/", {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert b"Too many login attempts" in response.content
    assert "_auth_user_id" not in client.session  # the right password did not get through either
    cache.clear()  # the next minute
    response = client.post("/accounts/login/", {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_room_and_membership_limits(make_db_user, settings):
    from chatsite import services
    from chatsite.models import Membership

    settings.BRIDGE_MAX_ROOMS_PER_USER = 2
    settings.BRIDGE_MAX_ROOM_MEMBERS = 2
    settings.BRIDGE_MAX_MEMBERSHIPS_PER_USER = 3
    alice, bruno, chloe = make_db_user(), make_db_user(), make_db_user()
    first = services.create_room(name="one", creator=alice)
    services.create_room(name="two", creator=alice)
    with pytest.raises(services.ChatError) as refused:
        services.create_room(name="three", creator=alice)
    assert refused.value.code == "limit_reached" and "at most 2 rooms" in refused.value.detail
    services.join_room(room=first, user=bruno)
    services.join_room(room=first, user=bruno)  # joining twice is fine and counts once
    with pytest.raises(services.ChatError, match="at most 2 members"):
        services.join_room(room=first, user=chloe)
    services.create_room(name="a", creator=chloe)
    services.create_room(name="b", creator=chloe)
    other = services.create_room(name="bruno's", creator=bruno)
    services.join_room(room=other, user=chloe)  # chloe: 3 memberships now
    with pytest.raises(services.ChatError, match="in at most 3 rooms"):
        services.join_room(room=services.create_room(name="x", creator=make_db_user()), user=chloe)
    assert Membership.objects.filter(user=chloe).count() == 3


def test_api_answers_limit_reached_as_an_error(client, make_db_user, settings):
    settings.BRIDGE_MAX_ROOMS_PER_USER = 0
    user = make_db_user()
    client.force_login(user)
    token = client.get("/accounts/login/").cookies["csrftoken"].value
    response = client.post("/api/rooms", {"name": "nope"}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400 and response.json()["error"]["code"] == "limit_reached"
