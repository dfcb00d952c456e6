"""Train several fine-tuning runs at once, one process each (the members of a model soup).

Why processes and not torch threads: on the 2-vCPU machines Bridge targets, one run on two torch threads trains
1.74x faster than on one, and falls to a third of its speed as soon as another process takes a core (OpenMP
threads wait on each other). Two single-threaded runs side by side keep both cores busy with nothing to wait on:
on an idle machine they train as fast in all as one run on both threads (1.04x, bench/reports/training.md), so a
two-member soup costs what two runs in a row cost, and it keeps that speed when something else runs.

Each member runs in a fresh (spawned) interpreter and sends its log lines, its step counts and its outcome back
through a queue: this process shows one progress bar over all members and raises the first member's error, after
stopping the others (finished members stay on disk, so a resumed run skips them).
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class MemberJob:
    """One run: ``finetune_sentiment(data, base, out, config=config, resume=resume)``, named ``name`` in logs."""

    name: str
    data: Path
    base: Path
    out: Path
    config: Any  # FinetuneConfig (not imported here: this module is imported by finetune.py)
    resume: bool = False

    def train(self, *, progress: bool, log: Callable[[str], None], callbacks: Sequence[Any] = ()) -> dict[str, Any]:
        """Run it here, in this process; returns its metrics."""
        from .finetune import finetune_sentiment

        return finetune_sentiment(
            self.data,
            self.base,
            self.out,
            config=self.config,
            resume=self.resume,
            overwrite=True,
            progress=progress,
            log=log,
            callbacks=callbacks,
        )


class MemberFailed(RuntimeError):
    """A member process died without reporting (killed, out of memory)."""


def train_in_processes(
    jobs: Sequence[MemberJob],
    *,
    processes: int,
    threads_per_process: int = 1,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> None:
    """Run ``jobs`` with at most ``processes`` at a time, each on ``threads_per_process`` torch threads.

    Returns when every job has written its output directory; raises the error of the first job that fails (the
    same exception the run raised, e.g. ``DataError``) after terminating the jobs still running.
    """
    if processes < 1 or threads_per_process < 1:
        raise ValueError("processes and threads_per_process must be at least 1")
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and locks
    events = context.Queue()
    pending = list(jobs)
    running: dict[str, Any] = {}
    steps: dict[str, tuple[int, int]] = {}
    gone_before: set[str] = set()
    bar = _progress_bar(progress)

    def say(line: str) -> None:
        if bar is None:
            log(line)
        else:
            with bar.external_write_mode():  # the line above the bar, not through it
                log(line)

    try:
        while pending or running:
            while pending and len(running) < processes:
                job = pending.pop(0)
                say(f"{job.name}: started in its own process ({threads_per_process} torch thread(s))")
                process = context.Process(
                    target=_run_member, args=(job, threads_per_process, events), name=job.name, daemon=True
                )
                process.start()
                running[job.name] = process
            try:
                kind, name, payload = events.get(timeout=_POLL_SECONDS)
            except queue_module.Empty:
                # A member already gone at the previous empty poll would have had its last words read by now:
                # it died without saying "done" (killed, out of memory).
                gone = {name for name, process in running.items() if not process.is_alive()}
                for name in gone & gone_before:
                    code = running[name].exitcode
                    raise MemberFailed(f"{name}: its process ended (exit code {code}) without finishing") from None
                gone_before = gone
                continue
            if kind == "log":
                say(f"{name}: {payload}")
            elif kind == "steps":
                steps[name] = payload
                if bar is not None:
                    bar.total = sum(total for _, total in steps.values())
                    bar.n = sum(done for done, _ in steps.values())
                    bar.refresh()
            elif kind == "error":
                error, remote_traceback = payload
                error.add_note(f"in {name}:\n{remote_traceback}")
                raise error
            elif kind == "done":
                running.pop(name).join()
    finally:
        if bar is not None:
            bar.close()
        for process in running.values():
            if process.is_alive():
                process.terminate()
            process.join()
        events.close()


def _progress_bar(progress: bool) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=0, unit="step", desc="soup members", dynamic_ncols=True)


def exit_with_parent() -> None:
    """In a spawned child: end this process when its parent is gone (daemon processes are only reaped when the
    parent exits normally; a killed build must not leave members training into its work directory)."""
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_member(job: MemberJob, threads: int, events: Any) -> None:
    """The member process: train quietly, report through ``events``."""
    exit_with_parent()
    try:
        import torch
        from transformers import TrainerCallback

        torch.set_num_threads(threads)
        # The Trainer prints its loss dicts when its own progress bar is off; the parent shows one bar for all.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)

        class ReportSteps(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 (Trainer API)
                events.put(("steps", job.name, (state.global_step, state.max_steps)))

        job.train(progress=False, log=lambda line: events.put(("log", job.name, line)), callbacks=[ReportSteps()])
    except BaseException as error:  # noqa: BLE001 (handed to the parent, which raises it)
        events.put(("error", job.name, (_picklable(error), traceback.format_exc())))
        return
    events.put(("done", job.name, None))


def _picklable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling as an ordinary exception, else a MemberFailed that names it."""
    import pickle

    if isinstance(error, Exception):
        try:
            return pickle.loads(pickle.dumps(error))
        except Exception:  # noqa: BLE001 (some exceptions take arguments pickle cannot rebuild)
            pass
    # KeyboardInterrupt, SystemExit(0) and the like would mean something else in the parent.
    return MemberFailed(f"{type(error).__name__}: {error}")
