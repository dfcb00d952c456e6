"""The Celery app: settings come from Django's CELERY_* settings (JSON only, late acks, queues per model kind)."""

import os

from celery import Celery
from celery.signals import worker_shutdown

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
