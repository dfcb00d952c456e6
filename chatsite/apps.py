from django.apps import AppConfig


class ChatsiteConfig(AppConfig):
    name = "chatsite"
    verbose_name = "Bridge chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chatsite import signals  # noqa: F401  (connects the receivers)
