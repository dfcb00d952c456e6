"""Builds the default emotion model with the project's own pipeline when it is missing (first start)."""

from __future__ import annotations

import os
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from sentiment.runtime import default_checkpoint_dir


class Command(BaseCommand):
    help = "Build the default emotion checkpoint (imports multilingual-e5-small, fine-tunes on data/sentiment/)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="rebuild even when the checkpoint exists")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        parser.add_argument(
            "--resume",
            action="store_true",
            help="continue an interrupted build (finished soup members and saved epochs are kept)",
        )
        parser.add_argument(
            "--threads",
            default="auto",
            help="torch threads for training: a number, or auto (every core when the machine is idle, else 1)",
        )

    def handle(
        self,
        *args,
        force: bool = False,
        quiet: bool = False,
        threads: str = "auto",
        resume: bool = False,
        **options,
    ) -> None:
        from sentiment.training.default_model import build_default_model

        out = default_checkpoint_dir()
        if (out / "config.json").exists() and not force:
            self.stdout.write(f"emotion model: {out} (already built)")
            return
        self.stdout.write(f"emotion model: building {out} from data/sentiment/ (once; 25-45 min on 2 idle cores)")
        torch_threads = training_threads(threads)
        self.stdout.write(f"emotion model: training on {torch_threads} torch thread(s)")
        started = time.monotonic()
        metrics = build_default_model(
            out,
            settings.BASE_DIR / "data" / "sentiment",
            progress=not quiet,
            log=self.stdout.write,
            torch_threads=torch_threads,
            resume=resume,
        )
        test = metrics.get("test", metrics)
        figure = test.get("macro_f1") if isinstance(test, dict) else None
        self.stdout.write(f"emotion model: built in {time.monotonic() - started:.0f} s; held-out macro-F1 {figure}")


def training_threads(choice: str) -> int:
    """`auto`: all cores when nothing else is running, else one.

    Measured on the 2-vCPU machines: two threads train 1.65x faster than one on an idle machine, but 5-27x slower
    when another process takes a core (OpenMP threads wait on each other), so two only when the machine is idle,
    as it is on first start and in the test suite's build: under a quarter of the CPU busy over half a second.
    """
    if choice != "auto":
        return max(1, int(choice))
    cores = os.cpu_count() or 1
    return cores if _busy_fraction() < 0.25 else 1


def _busy_fraction(interval_s: float = 0.5) -> float:
    """The share of all CPUs busy over `interval_s`, from /proc/stat (the load average lags by a minute)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy_before, total_before = sample()
        time.sleep(interval_s)
        busy_after, total_after = sample()
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    return (busy_after - busy_before) / max(1, total_after - total_before)
