"""python manage.py finetune {sentiment,translation} ...: a thin door to the framework-free training code."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Fine-tune a checkpoint: 'finetune sentiment --data ... --base ... --out ...' or 'finetune translation ...'."

    def add_arguments(self, parser: CommandParser) -> None:
        from sentiment.training import cli as sentiment_cli
        from translation.training import cli as translation_cli

        kinds = parser.add_subparsers(dest="kind", required=True, parser_class=CommandParser)
        sentiment_cli.add_arguments(kinds.add_parser("sentiment", help="emotion / hostility classifier"))
        translation_cli.add_arguments(kinds.add_parser("translation", help="seq2seq translation model"))

    def handle(self, *args, kind: str, **options) -> None:
        from sentiment.training import cli as sentiment_cli
        from translation.training import cli as translation_cli
        from translation.training.common import DataError

        runner = sentiment_cli if kind == "sentiment" else translation_cli
        known = {
            k: v
            for k, v in options.items()
            if k not in {"verbosity", "settings", "pythonpath", "traceback", "no_color", "force_color", "skip_checks"}
        }
        try:
            result = runner.run(known)
        except DataError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result, indent=2, default=str))
