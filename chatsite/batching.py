"""Micro-batching for model workers: concurrent callers with the same key share one engine call.

Celery runs the model queues with a thread pool; each task thread submits its one item and waits. The first
caller for a key becomes the batch leader: it waits up to `max_wait_s` (or until `max_batch` items are queued),
takes everything queued for that key and runs it as one batch. A GPU earns its keep only on batches; on a CPU a
batch still amortises tokenisation, padding and (for Apertium) process start-up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 (item)
O = TypeVar("O")  # noqa: E741 (output)


class MicroBatcher(Generic[K, I, O]):
    def __init__(
        self,
        run_batch: Callable[[K, list[I]], list[O]],
        *,
        max_batch: int = 16,
        max_wait_s: float = 0.01,
        on_batch: Callable[[K, int], None] | None = None,
    ) -> None:
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._condition = threading.Condition()
        self._pending: dict[K, list[tuple[I, Future]]] = {}

    def submit(self, key: K, item: I, timeout: float | None = None) -> O:
        """Runs `item` in a batch with whatever else is queued under `key`; returns its output or raises."""
        future: Future = Future()
        with self._condition:
            queue = self._pending.setdefault(key, [])
            queue.append((item, future))
            leader = len(queue) == 1
            if len(queue) >= self.max_batch:
                self._condition.notify_all()
        if leader:
            self._lead(key)
        return future.result(timeout=timeout)

    def _lead(self, key: K) -> None:
        deadline = time.monotonic() + self.max_wait_s
        with self._condition:
            while len(self._pending.get(key, ())) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            batch = self._pending.pop(key)
        # Later arrivals for the key start a new batch with a new leader while this one runs.
        for start in range(0, len(batch), self.max_batch):
            chunk = batch[start : start + self.max_batch]
            try:
                outputs = self._run_batch(key, [item for item, _ in chunk])
                if len(outputs) != len(chunk):
                    raise RuntimeError(f"batch returned {len(outputs)} outputs for {len(chunk)} items")
            except BaseException as exc:  # every waiter must wake up, whatever happened
                for _, future in chunk:
                    future.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(key, len(chunk))
            for (_, future), output in zip(chunk, outputs, strict=True):
                future.set_result(output)
