from django.urls import path

from sentiment import api

urlpatterns = [
    path("flags", api.flags, name="api-flags"),
    path("flags/<int:flag_id>/resolve", api.resolve, name="api-flag-resolve"),
    path("flags/<int:flag_id>/appeal", api.appeal, name="api-flag-appeal"),
]
