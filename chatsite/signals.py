from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.dispatch import receiver

from chatsite import realtime


@receiver(user_logged_out)
def close_sockets_on_logout(sender, request, user, **kwargs) -> None:
    # A logged-out session must not keep a live socket: revalidation on the socket, not only at connect.
    if user is not None:
        transaction.on_commit(lambda: realtime.end_sessions(user.id))
