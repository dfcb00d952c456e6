"""Structured logs: one JSON object per line, carrying the id of the message being handled, so one message can
be followed from the consumer that stored it to the workers that translated and tagged it (and back).

The id lives in a context variable: set by the consumer around a send, by the follow-ups thread, and by Celery's
task_prerun signal for the pipeline's tasks (their first argument is the message id). Message text is never put
in a log record by Bridge's own code; the formatter has no field for it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

_message_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("bridge_message_id", default=None)
_task: contextvars.ContextVar[str | None] = contextvars.ContextVar("bridge_task", default=None)


@contextlib.contextmanager
def about_message(message_id: int | None, task: str | None = None) -> Iterator[None]:
    """Tags every log record made inside the block with the message id (and the Celery task, if any)."""
    message_token = _message_id.set(message_id)
    task_token = _task.set(task) if task is not None else None
    try:
        yield
    finally:
        _message_id.reset(message_token)
        if task_token is not None:
            _task.reset(task_token)


def set_message(message_id: int | None, task: str | None = None) -> None:
    """For Celery signals, which cannot wrap the task in a block: tags what follows until `clear`."""
    _message_id.set(message_id)
    _task.set(task)


def clear() -> None:
    _message_id.set(None)
    _task.set(None)


class MessageContext(logging.Filter):
    """Copies the context's message id and task onto each record (so the plain format can show them too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.message_id = _message_id.get()
        record.task = _task.get()
        record.message_tag = f" [message {record.message_id}]" if record.message_id is not None else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for field in ("message_id", "task"):
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
