from django.core.management.base import BaseCommand, CommandError

from chatsite.models import User
from sentiment.services import grant_moderator


class Command(BaseCommand):
    help = "Make a user a moderator (a member of the 'moderators' group)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        grant_moderator(user=user)
        self.stdout.write(f"{username} is a moderator.")
