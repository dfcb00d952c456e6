from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chatsite import api, health, views
from chatsite.checkpoints import api as checkpoints_api

api_patterns = [
    path("auth/signup", api.signup, name="api-signup"),
    path("auth/token", api.token, name="api-token"),
    path("me", api.me, name="api-me"),
    path("rooms", api.rooms, name="api-rooms"),
    path("rooms/<slug:slug>/join", api.join, name="api-join"),
    path("rooms/<slug:slug>/messages", api.messages, name="api-messages"),
    path("moderation/", include("sentiment.api_urls")),
    path("checkpoints", checkpoints_api.checkpoints, name="api-checkpoints"),
    path("checkpoints/<int:checkpoint_id>/activate", checkpoints_api.activate, name="api-checkpoint-activate"),
    path("checkpoints/<int:checkpoint_id>/rollback", checkpoints_api.rollback, name="api-checkpoint-rollback"),
    path("checkpoints/<int:checkpoint_id>/shadow", checkpoints_api.shadow, name="api-checkpoint-shadow"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", health.metrics_view, name="metrics"),
    path("api/", include(api_patterns)),
    path("accounts/login/", views.ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("", views.rooms, name="rooms"),
    path("rooms/new/", views.create_room, name="room-create"),
    path("rooms/<slug:slug>/join/", views.join_room, name="room-join"),
    path("rooms/<slug:slug>/", views.room, name="room"),
    path("moderation/", include("sentiment.urls")),
    path("checkpoints/", views.checkpoints, name="checkpoints"),
    path("admin/", admin.site.urls),
]
