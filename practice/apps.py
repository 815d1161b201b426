from django.apps import AppConfig


class PracticeConfig(AppConfig):
    name = "practice"
    verbose_name = "Practice"

    def ready(self):
        # Signal receivers and outbox handlers register themselves when imported.
        from . import jobs, security, signals  # noqa: F401
