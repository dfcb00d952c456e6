"""Celery interface of the checkpoint registry and of the sweeper: thin, owns only the retry policy."""

from celery import shared_task

from chatsite import pipeline
from chatsite.checkpoints import services


@shared_task(name="checkpoints.validate", acks_late=True, reject_on_worker_lost=True)
def validate_checkpoint(checkpoint_id: int) -> None:
    # No retries: validation is deterministic, and a failure is recorded as a rejection with its reason.
    services.validate(checkpoint_id=checkpoint_id)


@shared_task(name="maintenance.sweep_unfinished", ignore_result=True)
def sweep_unfinished() -> None:
    # No acks_late: a sweep lost with its worker is simply the next one.
    pipeline.sweep_unfinished()
