"""What the Celery broker holds right now: queue depths, for the sweeper and for /healthz."""

from __future__ import annotations

import logging

from kombu.exceptions import ChannelError, OperationalError

logger = logging.getLogger(__name__)


def queue_depth(queue: str) -> int | None:
    """Messages waiting in `queue` (not those reserved by a worker); None when the broker does not answer."""
    from chatsite.celery import app

    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            try:
                return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:
                # The Redis transport reports an empty queue as a missing one: its list key no longer exists.
                return 0
    except (OperationalError, ConnectionError, OSError) as exc:
        logger.warning("broker unreachable while reading the depth of %s: %s", queue, exc.__class__.__name__)
        return None
