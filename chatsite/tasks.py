"""Celery interface of the checkpoint registry and of the sweeper: thin, owns only the retry policy."""

from celery import shared_task

from chatsite import pipeline
from chatsite.checkpoints import services


@shared_task(bind=True, name="checkpoints.validate", acks_late=True, reject_on_worker_lost=True, max_retries=None)
def validate_checkpoint(self, checkpoint_id: int) -> None:
    # A failure is recorded as a rejection with its reason (validation is deterministic); the only retry is for
    # a duplicate delivery that finds another worker still validating the same checkpoint.
    try:
        services.validate(checkpoint_id=checkpoint_id)
    except services.ValidationBusy as exc:
        raise self.retry(countdown=30) from exc


@shared_task(name="maintenance.sweep_unfinished", ignore_result=True)
def sweep_unfinished() -> None:
    # No acks_late: a sweep lost with its worker is simply the next one.
    pipeline.sweep_unfinished()
