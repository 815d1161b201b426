from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AssessmentsConfig(AppConfig):
    name = "assessments"
    verbose_name = "Assessments"

    def ready(self):
        # The outbox handlers, the staff header's facts and the caseload's couple signal register
        # themselves when imported; the loader runs after migrate.
        from . import annotations, caseload, jobs, loader  # noqa: F401

        post_migrate.connect(loader.load_after_migrate, sender=self)
