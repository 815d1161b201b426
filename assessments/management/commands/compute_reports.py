"""Compute and store the comparison report of every completed administration."""

from django.core.management.base import BaseCommand

from assessments import comparison


class Command(BaseCommand):
    help = "Recompute the stored comparison report of every completed administration."

    def handle(self, *args, **options):
        self.stdout.write(f"{comparison.store_all_reports()} comparison reports stored.")
