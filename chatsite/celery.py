"""The Celery app: settings come from Django's CELERY_* settings (JSON only, late acks, queues per model kind)."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_shutdown

from chatsite import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

app = Celery("bridge")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_shutdown.connect
def _drop_live_metrics(**_) -> None:
    """A worker that stops cleanly removes its live gauges (open sockets, models in use) from the shared
    metrics directory; a killed one's stay until bin/run empties the directory on the next start."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


# The pipeline's tasks take the message id first: every log line a task writes carries it (chatsite/logs.py).
_MESSAGE_TASK_PREFIXES = ("translation.", "sentiment.")


@task_prerun.connect
def _tag_logs_with_the_message(task=None, args=None, **_) -> None:
    name = getattr(task, "name", "") or ""
    first = args[0] if args else None
    is_message_task = name.startswith(_MESSAGE_TASK_PREFIXES) and isinstance(first, int)
    logs.set_message(first if is_message_task else None, name or None)


@task_postrun.connect
def _untag_logs(**_) -> None:
    logs.clear()
