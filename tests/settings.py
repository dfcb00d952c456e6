"""Settings for the test process: the product's settings, with a Redis database of its own and fast hashing.

Unit and consumer tests use the in-memory channel layer and cache; integration tests start real processes
(Daphne, Celery) that use the real Redis layer.
"""

import os

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from chatsite.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_TASK_ALWAYS_EAGER = False
# In-memory SQLite locks whole tables without waiting: follow-ups are published inline here (see settings.py).
BRIDGE_FOLLOWUPS_IN_BACKGROUND = False
# Unit tests never reach a broker: follow-up tasks are recorded by the pipeline fixture instead.
