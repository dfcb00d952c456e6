"""Builds the default emotion model with the project's own pipeline when it is missing (first start)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from sentiment.runtime import default_checkpoint_dir


class Command(BaseCommand):
    help = "Build the default emotion checkpoint (imports multilingual-e5-small, fine-tunes on data/sentiment/)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="rebuild even when the checkpoint exists")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args, force: bool = False, quiet: bool = False, **options) -> None:
        from sentiment.training.default_model import build_default_model

        out = default_checkpoint_dir()
        if (out / "config.json").exists() and not force:
            self.stdout.write(f"emotion model: {out} (already built)")
            return
        self.stdout.write(f"emotion model: building {out} from data/sentiment/ (a few minutes on 2 cores)")
        started = time.monotonic()
        metrics = build_default_model(
            out, settings.BASE_DIR / "data" / "sentiment", progress=not quiet, log=self.stdout.write
        )
        test = metrics.get("test", metrics)
        figure = test.get("macro_f1") if isinstance(test, dict) else None
        self.stdout.write(f"emotion model: built in {time.monotonic() - started:.0f} s; held-out macro-F1 {figure}")
