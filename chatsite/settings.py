"""Bridge settings, read from the environment.

Development works with no environment at all (SQLite file, Redis on localhost). Production (DEBUG off) refuses
to start without a real SECRET_KEY and an explicit ALLOWED_HOSTS. Every setting read here is listed in
docs/operations.md; tests/test_settings_documented.py fails when one is not.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    """One place that reads the environment, so the documented list can be checked against it."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

_DEV_SECRET = "django-insecure-bridge-development-only"
SECRET_KEY = env("SECRET_KEY", _DEV_SECRET) or _DEV_SECRET
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")

if not DEBUG:
    if SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured("Production needs a real SECRET_KEY (50+ random characters) in the environment.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("Production needs ALLOWED_HOSTS (comma-separated host names) in the environment.")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "chatsite",
    "translation",
    "sentiment",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "chatsite.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "chatsite.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"
AUTH_USER_MODEL = "chatsite.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "chatsite.context_processors.bridge",
            ],
        },
    },
]

# SQLite file by default; PostgreSQL (or anything dj-database-url knows) through DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
# Behind PgBouncer in transaction mode a server-side cursor can outlive its transaction's connection (Django docs,
# "Transaction pooling and server-side cursors").
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DATABASE_DISABLE_SERVER_SIDE_CURSORS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process and the workers write to one file without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Persistent connections here too: Channels closes "old" connections around every database call of a
    # consumer, and with a max age of 0 each message paid a new SQLite connection and its PRAGMAs twice (on the
    # consumers' thread and on the follow-ups thread): ~2.5 ms of CPU each, measured in bench/README.md.

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "chatsite" / "locale"]
LANGUAGES = [
    ("en", "English"),
    ("es", "Español"),
    ("fr", "Français"),
    ("de", "Deutsch"),
    ("pt", "Português"),
    ("it", "Italiano"),
    ("zh-hans", "中文"),
    ("ja", "日本語"),
]

# The chat languages a deployment serves (ISO 639-1). The UI's own LANGUAGES above are Django's locale names.
BRIDGE_LANGUAGES = env_list("BRIDGE_LANGUAGES", "en,es,fr,de,pt,it,zh,ja")

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0") or "redis://127.0.0.1:6379/0"

# Tests set BRIDGE_CHANNEL_LAYER=memory for unit tests only; everything else runs on the real Redis.
if env("BRIDGE_CHANNEL_LAYER", "redis") == "memory":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                # A burst in a busy room must not overflow a reader's channel: capacity drops are silent. Clients
                # still detect seq gaps and resume from the database, which is the truth.
                "capacity": env_int("CHANNEL_LAYER_CAPACITY", 1500),
                "expiry": 30,
                "group_expiry": 86400,
            },
        }
    }

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        if env("BRIDGE_CACHE", "redis") == "memory"
        else {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "bridge",
        }
    )
}

# Celery: JSON only, late acks, tasks given back to the queue when a worker dies mid-task.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Model workers run a thread pool and micro-batch concurrent tasks, so each thread keeps a few tasks at hand;
# more would let one busy worker hoard messages another worker could run.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_PREFETCH_MULTIPLIER", 4)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Longer than the longest task (a model load plus a batch), shorter than a reader's patience.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600),
    # A task reserved by a worker that died (SIGKILL, OOM) comes back once its visibility timeout has passed, but
    # only when some worker scans for it: kombu 5.7 scans every interval x throttle (10 x 10 s by default), so a
    # lost task could wait 100 s past its timeout. One cheap ZRANGE every 10 s brings it back within ~10 s.
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # the workers use LOGGING (below), with the message id on each line
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "translation.*": {"queue": "translation"},
    "sentiment.*": {"queue": "sentiment"},
    # Consumed by every model worker, so the sweep runs as long as any worker is alive.
    "maintenance.*": {"queue": "maintenance"},
}
# The sweeper (Celery beat -> maintenance queue) re-sends follow-up work a worker or a Redis restart lost: a
# message older than the grace period with a translation or an emotion still missing, while that kind's queue is
# empty (so nothing merely waiting in a backlog is sent twice). Each piece is re-sent at most
# BRIDGE_SWEEP_MAX_RESENDS times; after that the translation is marked failed with the reason.
# GET /metrics: with a token, scrapers send "Authorization: Bearer <token>"; without, only direct local requests.
BRIDGE_METRICS_TOKEN = env("BRIDGE_METRICS_TOKEN", "") or ""
# How long /healthz waits for workers to answer its roll call (the answer is then remembered for 5 s).
BRIDGE_HEALTH_WORKER_TIMEOUT_S = float(env("BRIDGE_HEALTH_WORKER_TIMEOUT_S", "0.5") or 0.5)
BRIDGE_SWEEP_INTERVAL_S = env_int("BRIDGE_SWEEP_INTERVAL_S", 30)
BRIDGE_SWEEP_GRACE_S = env_int("BRIDGE_SWEEP_GRACE_S", 60)
BRIDGE_SWEEP_MAX_AGE_S = env_int("BRIDGE_SWEEP_MAX_AGE_S", 15 * 60)
BRIDGE_SWEEP_MAX_RESENDS = env_int("BRIDGE_SWEEP_MAX_RESENDS", 3)
BRIDGE_SWEEP_BATCH = env_int("BRIDGE_SWEEP_BATCH", 2000)
CELERY_BEAT_SCHEDULE = {
    "sweep-unfinished": {
        "task": "maintenance.sweep_unfinished",
        "schedule": float(BRIDGE_SWEEP_INTERVAL_S),
        # A sweep nobody ran in time is dropped: the next one does the same work with fresher data.
        "options": {"expires": float(BRIDGE_SWEEP_INTERVAL_S)},
    }
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# Chat limits (CONTRACT.md).
BRIDGE_MAX_FRAME_BYTES = env_int("BRIDGE_MAX_FRAME_BYTES", 64 * 1024)
BRIDGE_MAX_MESSAGE_CHARS = env_int("BRIDGE_MAX_MESSAGE_CHARS", 4000)
BRIDGE_SEND_RATE_PER_MINUTE = env_int("BRIDGE_SEND_RATE_PER_MINUTE", 100)
BRIDGE_AUTH_RATE_PER_MINUTE = env_int("BRIDGE_AUTH_RATE_PER_MINUTE", 20)
BRIDGE_HISTORY_LIMIT_MAX = 200
BRIDGE_MAX_ROOMS_PER_USER = env_int("BRIDGE_MAX_ROOMS_PER_USER", 50)
BRIDGE_MAX_MEMBERSHIPS_PER_USER = env_int("BRIDGE_MAX_MEMBERSHIPS_PER_USER", 500)
BRIDGE_MAX_ROOM_MEMBERS = env_int("BRIDGE_MAX_ROOM_MEMBERS", 5000)
# Checkpoint uploads per admin per minute (each one is validated on a worker).
BRIDGE_UPLOAD_RATE_PER_MINUTE = env_int("BRIDGE_UPLOAD_RATE_PER_MINUTE", 10)
# Login form attempts per minute, per client IP and per username (password guessing).
BRIDGE_LOGIN_RATE_PER_MINUTE = env_int("BRIDGE_LOGIN_RATE_PER_MINUTE", 10)

# Micro-batching in the model workers: a batch closes at this many items or after this many milliseconds.
# Publish a new message's translation and emotion tasks from a thread of the web process's own, off the
# consumers' shared database thread. Off only in unit tests: their in-memory SQLite locks whole tables and does not
# wait, so a second thread reading during a test's transaction fails.
BRIDGE_FOLLOWUPS_IN_BACKGROUND = env_bool("BRIDGE_FOLLOWUPS_IN_BACKGROUND", True)
# Keep each Apertium mode's stages running (about 1 ms of CPU per message, ~100 MB private memory per mode in
# use) instead of starting the `apertium` script per batch (~150 ms of CPU each time).
BRIDGE_APERTIUM_PERSISTENT = env_bool("BRIDGE_APERTIUM_PERSISTENT", True)
BRIDGE_TRANSLATION_MAX_BATCH = env_int("BRIDGE_TRANSLATION_MAX_BATCH", 16)
BRIDGE_TRANSLATION_MAX_WAIT_MS = env_int("BRIDGE_TRANSLATION_MAX_WAIT_MS", 10)
BRIDGE_SENTIMENT_MAX_BATCH = env_int("BRIDGE_SENTIMENT_MAX_BATCH", 16)
BRIDGE_SENTIMENT_MAX_WAIT_MS = env_int("BRIDGE_SENTIMENT_MAX_WAIT_MS", 10)
# Opt-in: a CPU emotion worker runs the model's linear layers in int8 (about 2.7x faster per message, but about one
# point of macro-F1 and several of hostile recall lower on the held-out split: docs/models.md). Off by default
# because moderation rests on the hostile score. A CUDA worker always runs fp16.
BRIDGE_SENTIMENT_CPU_INT8 = env_bool("BRIDGE_SENTIMENT_CPU_INT8", False)

# Where checkpoints and built models live (outside the repo: weights are built or uploaded, never committed).
BRIDGE_MODEL_ROOT = Path(env("BRIDGE_MODEL_ROOT", str(BASE_DIR / "var" / "models")) or "")
# Activation gate: a candidate may score at most this much below the active version (macro-F1, or chrF / 100).
# Request bodies are capped while they arrive (chatsite/bodylimit.py): checkpoint archives, everything else.
BRIDGE_CHECKPOINT_MAX_UPLOAD_BYTES = env_int("BRIDGE_CHECKPOINT_MAX_UPLOAD_BYTES", 2 * 1024**3)
BRIDGE_MAX_REQUEST_BYTES = env_int("BRIDGE_MAX_REQUEST_BYTES", 2 * 1024**2)
# How long a worker may hold a checkpoint's validation before another may take it over (it must outlast the
# longest validation; a re-delivered duplicate waits for it).
BRIDGE_VALIDATION_LEASE_S = env_int("BRIDGE_VALIDATION_LEASE_S", 3600)
BRIDGE_CHECKPOINT_MARGIN = float(env("BRIDGE_CHECKPOINT_MARGIN", "0.01") or 0.01)
# An explicit emotion checkpoint directory; empty means the default model under BRIDGE_MODEL_ROOT.
BRIDGE_SENTIMENT_MODEL_DIR = env("BRIDGE_SENTIMENT_MODEL_DIR", "") or ""

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the chat page reads the token from the page, not the cookie; kept default
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# LOG_FORMAT=json (the default in production): one JSON object per line with the message id being handled
# (chatsite/logs.py); "plain" for reading by eye. Workers log through this too (Celery does not take the root
# logger over), so web and worker lines share one format.
LOG_FORMAT = env("LOG_FORMAT", "plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"message_context": {"()": "chatsite.logs.MessageContext"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s%(message_tag)s %(message)s"},
        "json": {"()": "chatsite.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["message_context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
